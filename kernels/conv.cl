// 2-D convolution, NCHW float32, for CPU OpenCL (PoCL).
// Dense convolutions (groups == 1) run as im2col + the GEMM in gemm.cl, or as the implicit
// GEMM of conv_implicit.cl; this file holds the direct kernel for grouped convolutions, the
// im2col/col2im pair, padding, and the backward pieces that are not GEMMs. Depthwise
// convolutions are in depthwise.cl.
//
// Geometry shared by every kernel (ints):
//   N batch, C_in, H, W input; C_out, OH, OW output; K kernel size (square);
//   S stride; D dilation; PT, PL padding at top and left (bottom/right follow from OH, OW);
//   G groups: output channel co reads input channels (co / (C_out/G)) * (C_in/G) + [0, C_in/G).
// Weights: (C_out, C_in/G, K, K). act: 0 none, 1 ReLU, 2 ReLU6 (as in gemm.cl).

#define OW_BLOCK 8

#include "common.cl"

// Direct grouped convolution. Work-item (ow block of 8, oh, n*C_out + co) computes 8 outputs
// of one row; the block is kept in registers while the (ci, kh, kw) loop runs.
// y (N, C_out, OH, OW) = act(conv(x) + bias) + residual (residual optional, y's layout).
__kernel void conv_direct_forward(
    __global float *y, __global const float *x, __global const float *w,
    __global const float *bias, __global const float *residual, int has_residual,
    int N, int C_in, int H, int W, int C_out, int OH, int OW,
    int K, int S, int D, int PT, int PL, int G, int act)
{
    const int ow0 = get_global_id(0) * OW_BLOCK, oh = get_global_id(1), nco = get_global_id(2);
    if (ow0 >= OW || oh >= OH || nco >= N * C_out) return;
    const int n = nco / C_out, co = nco % C_out;
    const int cin_g = C_in / G, cout_g = C_out / G;
    const int ci0 = (co / cout_g) * cin_g;
    float acc[OW_BLOCK];
    for (int j = 0; j < OW_BLOCK; j++) acc[j] = 0.0f;
    // Columns of the block whose every tap lies inside the row: no bounds checks needed there.
    const bool interior = (ow0 * S - PL >= 0) && ((ow0 + OW_BLOCK - 1) * S - PL + (K - 1) * D < W)
                          && (ow0 + OW_BLOCK <= OW);
    for (int c = 0; c < cin_g; c++) {
        const __global float *xc = x + ((long)(n * C_in + ci0 + c) * H) * W;
        const __global float *wc = w + ((long)co * cin_g + c) * K * K;
        for (int kh = 0; kh < K; kh++) {
            const int ih = oh * S - PT + kh * D;
            if (ih < 0 || ih >= H) continue;
            const __global float *xr = xc + ih * W;
            for (int kw = 0; kw < K; kw++) {
                const float wv = wc[kh * K + kw];
                const int iw0 = ow0 * S - PL + kw * D;
                if (interior) {
                    #pragma unroll
                    for (int j = 0; j < OW_BLOCK; j++) acc[j] += wv * xr[iw0 + j * S];
                } else {
                    for (int j = 0; j < OW_BLOCK; j++) {
                        const int iw = iw0 + j * S;
                        if (iw >= 0 && iw < W) acc[j] += wv * xr[iw];
                    }
                }
            }
        }
    }
    const float b = bias[co];
    const long base = ((long)nco * OH + oh) * OW;
    for (int j = 0; j < OW_BLOCK && ow0 + j < OW; j++) {
        float v = activate(acc[j] + b, act);
        if (has_residual) v += residual[base + ow0 + j];
        y[base + ow0 + j] = v;
    }
}

// dx of the direct convolution: work-item (iw, ih, n*C_in + ci) gathers every output the
// pixel fed, so each element of dx is written exactly once (no atomics).
__kernel void conv_direct_backward_input(
    __global float *dx, __global const float *dz, __global const float *w,
    int N, int C_in, int H, int W, int C_out, int OH, int OW,
    int K, int S, int D, int PT, int PL, int G)
{
    const int iw = get_global_id(0), ih = get_global_id(1), nci = get_global_id(2);
    if (iw >= W || ih >= H || nci >= N * C_in) return;
    const int n = nci / C_in, ci = nci % C_in;
    const int cin_g = C_in / G, cout_g = C_out / G;
    const int g = ci / cin_g, c = ci % cin_g;
    float acc = 0.0f;
    for (int kh = 0; kh < K; kh++) {
        const int th = ih + PT - kh * D;
        if (th < 0 || th % S) continue;
        const int oh = th / S;
        if (oh >= OH) continue;
        for (int kw = 0; kw < K; kw++) {
            const int tw = iw + PL - kw * D;
            if (tw < 0 || tw % S) continue;
            const int ow = tw / S;
            if (ow >= OW) continue;
            for (int co = g * cout_g; co < (g + 1) * cout_g; co++)
                acc += w[((co * cin_g + c) * K + kh) * K + kw]
                       * dz[(((long)n * C_out + co) * OH + oh) * OW + ow];
        }
    }
    dx[(((long)n * C_in + ci) * H + ih) * W + iw] = acc;
}

// dw of the direct convolution: work-item (kw + K*kh, c, co) sums over batch and positions.
__kernel void conv_direct_backward_weight(
    __global float *dw, __global const float *dz, __global const float *x,
    int N, int C_in, int H, int W, int C_out, int OH, int OW,
    int K, int S, int D, int PT, int PL, int G)
{
    const int khw = get_global_id(0), c = get_global_id(1), co = get_global_id(2);
    const int cin_g = C_in / G, cout_g = C_out / G;
    if (khw >= K * K || c >= cin_g || co >= C_out) return;
    const int kh = khw / K, kw = khw % K;
    const int ci = (co / cout_g) * cin_g + c;
    float acc = 0.0f;
    for (int n = 0; n < N; n++) {
        const __global float *xc = x + ((long)n * C_in + ci) * H * W;
        const __global float *dzc = dz + ((long)n * C_out + co) * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            const int ih = oh * S - PT + kh * D;
            if (ih < 0 || ih >= H) continue;
            for (int ow = 0; ow < OW; ow++) {
                const int iw = ow * S - PL + kw * D;
                if (iw >= 0 && iw < W) acc += dzc[oh * OW + ow] * xc[ih * W + iw];
            }
        }
    }
    dw[(co * cin_g + c) * K * K + khw] = acc;
}

// db[co] = sum over n, h, w of dz[n, co, h, w]. One work-item per channel, summing each
// plane's row in float8 (PoCL does not vectorize the scalar loop).
__kernel void conv_backward_bias(__global float *db, __global const float *dz,
                                 int N, int C, int HW)
{
    const int co = get_global_id(0);
    if (co >= C) return;
    const int hw8 = HW & ~7;
    float8 acc8 = (float8)(0.0f);
    float acc = 0.0f;
    for (int n = 0; n < N; n++) {
        const __global float *p = dz + ((long)n * C + co) * HW;
        for (int i = 0; i < hw8; i += 8) acc8 += *(const __global float8u *)(p + i);
        for (int i = hw8; i < HW; i++) acc += p[i];
    }
    const float4 h = acc8.lo + acc8.hi;
    db[co] = acc + (h.x + h.y) + (h.z + h.w);
}

// The gradient through an activation and the bias gradient, in one pass over dy and y
// (N, C, H, W): dz = dy * act'(y), read off the activation's output y (ReLU: y > 0; ReLU6:
// 0 < y < 6), and db_part[n*C + c] = sum over h, w of dz (gemm.cl's sum_parts adds the N
// parts of each channel's bias gradient). With has_padded, dz also goes into
// the inside of a padded map dzp (planes of HP x WP, the inside from row PT, column PL; the
// caller zeroes its border once): a depthwise convolution's input gradient reads it there.
// With y_padded, y is the inside of such a map (YHP x YWP, from row YPT, column YPL): the
// layer wrote its output straight into the next depthwise convolution's padded input.
// Work-item: one plane (n*C + c), in float8 with the comparisons' lane masks.
inline float8 gradient_through8(float8 g, float8 v, int act)
{
    int8 pass = v > 0.0f;
    if (act == 2) pass &= v < 6.0f;
    return as_float8(as_int8(g) & pass);
}

inline float gradient_through(float g, float v, int act)
{
    return v > 0.0f && (act == 1 || v < 6.0f) ? g : 0.0f;
}

__kernel void activation_backward_bias(
    __global float *dz, __global float *db_part, __global float *dzp, int has_padded,
    int HP, int WP, int PT, int PL, __global const float *dy,
    __global const float *y, int y_padded, int YHP, int YWP, int YPT, int YPL,
    int planes, int H, int W, int act)
{
    const int plane = get_global_id(0);
    if (plane >= planes) return;
    float8 acc8 = (float8)(0.0f);
    float acc = 0.0f;
    // Plain maps: a plane is one contiguous run; with a padded one, it goes row by row.
    const int by_rows = has_padded || y_padded;
    const int runs = by_rows ? H : 1, run = by_rows ? W : H * W;
    for (int r = 0; r < runs; r++) {
        const long at = (long)plane * H * W + (long)r * run;
        __global float *padded = dzp + ((long)plane * HP + PT + r) * WP + PL;
        const __global float *yr = y_padded ? y + ((long)plane * YHP + YPT + r) * YWP + YPL
                                            : y + at;
        int i = 0;
        for (; i + 8 <= run; i += 8) {
            const float8 d = gradient_through8(*(const __global float8u *)(dy + at + i),
                                               *(const __global float8u *)(yr + i), act);
            *(__global float8u *)(dz + at + i) = d;
            if (has_padded) *(__global float8u *)(padded + i) = d;
            acc8 += d;
        }
        for (; i < run; i++) {
            const float d = gradient_through(dy[at + i], yr[i], act);
            dz[at + i] = d;
            if (has_padded) padded[i] = d;
            acc += d;
        }
    }
    const float4 h = acc8.lo + acc8.hi;
    db_part[plane] = acc + (h.x + h.y) + (h.z + h.w);
}

// col (N, C_in*K*K, OH*OW): row r = (ci*K + kh)*K + kw holds the input under that tap.
// Work-item (oh, n*C_in*K*K + r) fills one output row's stretch of a col row.
__kernel void im2col_forward(__global float *col, __global const float *x,
                             int N, int C_in, int H, int W, int OH, int OW,
                             int K, int S, int D, int PT, int PL)
{
    const int oh = get_global_id(0), nr = get_global_id(1);
    const int rows = C_in * K * K;
    if (oh >= OH || nr >= N * rows) return;
    const int n = nr / rows, r = nr % rows;
    const int ci = r / (K * K), kh = (r / K) % K, kw = r % K;
    const int ih = oh * S - PT + kh * D;
    __global float *out = col + ((long)nr * OH + oh) * OW;
    if (ih < 0 || ih >= H) {
        for (int ow = 0; ow < OW; ow++) out[ow] = 0.0f;
        return;
    }
    const __global float *xr = x + (((long)n * C_in + ci) * H + ih) * W;
    for (int ow = 0; ow < OW; ow++) {
        const int iw = ow * S - PL + kw * D;
        out[ow] = (iw >= 0 && iw < W) ? xr[iw] : 0.0f;
    }
}

// dx (N, C_in, H, W) from dcol (N, C_in*K*K, OH*OW): each input pixel gathers the taps that
// read it, so dx is written once per element. Work-item (ih, n*C_in + ci) does a whole row:
// finer work-items cost PoCL more in scheduling than they compute.
__kernel void col2im_backward(__global float *dx, __global const float *dcol,
                              int N, int C_in, int H, int W, int OH, int OW,
                              int K, int S, int D, int PT, int PL)
{
    const int ih = get_global_id(0), nci = get_global_id(1);
    if (ih >= H || nci >= N * C_in) return;
    const int n = nci / C_in, ci = nci % C_in;
    __global float *row = dx + ((long)nci * H + ih) * W;
    for (int iw = 0; iw < W; iw++) row[iw] = 0.0f;
    for (int kh = 0; kh < K; kh++) {
        const int th = ih + PT - kh * D;
        if (th < 0 || th % S) continue;
        const int oh = th / S;
        if (oh >= OH) continue;
        for (int kw = 0; kw < K; kw++) {
            const int r = (ci * K + kh) * K + kw;
            const __global float *src = dcol + (((long)n * C_in * K * K + r) * OH + oh) * OW;
            // Columns iw whose tap lands on an output: iw = ow*S - PL + kw*D for ow in [0, OW).
            for (int ow = 0; ow < OW; ow++) {
                const int iw = ow * S - PL + kw * D;
                if (iw >= 0 && iw < W) row[iw] += src[ow];
            }
        }
    }
}

// Zero padding made explicit: xp (planes, H + PT + PB, W + PL + PR) from x (planes, H, W), so
// the kernels reading it need no bounds checks. With act (1 ReLU, 2 ReLU6), x is the gradient
// at an activation's output y (y's layout), and xp gets the gradient before it: 0 where
// act'(y) is 0 (ReLU: y <= 0; ReLU6: y <= 0 or y >= 6). Work-item (padded row, plane).
__kernel void pad_forward(__global float *xp, __global const float *x, __global const float *y,
                          int act, int H, int W, int PT, int PL, int HP, int WP, int planes)
{
    const int r = get_global_id(0), plane = get_global_id(1);
    if (r >= HP || plane >= planes) return;
    __global float *dst = xp + ((long)plane * HP + r) * WP;
    const int ih = r - PT;
    if (ih < 0 || ih >= H) {
        for (int i = 0; i < WP; i++) dst[i] = 0.0f;
        return;
    }
    const long at = ((long)plane * H + ih) * W;
    for (int i = 0; i < PL; i++) dst[i] = 0.0f;
    if (act) {
        for (int i = 0; i < W; i++) {
            const float v = y[at + i];
            dst[PL + i] = v > 0.0f && (act == 1 || v < 6.0f) ? x[at + i] : 0.0f;
        }
    } else {
        for (int i = 0; i < W; i++) dst[PL + i] = x[at + i];
    }
    for (int i = PL + W; i < WP; i++) dst[i] = 0.0f;
}
