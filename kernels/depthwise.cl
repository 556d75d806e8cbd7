// Depthwise convolution, NCHW float32, for CPU OpenCL (PoCL): the forward and the weight
// gradient (the input gradient is the forward over the padded output gradient, with the
// kernel turned half a turn: conv.py). Inputs are padded explicitly first (conv.cl's
// pad_forward). act: 0 none, 1 ReLU, 2 ReLU6.

#include "common.cl"

// Depthwise convolution (groups == C_in == C_out, dilation 1) on an explicitly padded input
// (pad_forward), with the kernel size DW_K and stride DW_S fixed at build time so the tap
// loops unroll into straight float8 code with no bounds checks. A row's blocks may read
// past the row (into the next row, or the buffer's slack) for columns they do not store.
#ifndef DW_K
#define DW_K 3
#endif
#ifndef DW_S
#define DW_S 1
#endif

inline float8 tap_inputs(const __global float *seg, int kw) {
#if DW_S == 1
    return *(const __global float8u *)(seg + kw);
#else
    const float8 lo = *(const __global float8u *)(seg + kw);
    const float8 hi = *(const __global float8u *)(seg + kw + 8);
    return (float8)(lo.even, hi.even);
#endif
}

// dw (C, K, K) of a depthwise convolution: dw[c, kh, kw] = sum over n, oh, ow of
// dz[n, c, oh, ow] * xp[n, c, oh*S + kh, ow*S + kw], with xp the padded input (pad_forward;
// its slack must be zero: the last block reads past the row for lanes whose dz is 0).
// Work-item (kh, c) keeps one float8 sum per kw while it runs over the batch and the map.
__kernel void depthwise_backward_weight(
    __global float *dw, __global const float *dz, __global const float *xp,
    int N, int C, int HP, int WP, int OH, int OW)
{
    const int kh = get_global_id(0), c = get_global_id(1);
    if (kh >= DW_K || c >= C) return;
    float8 acc[DW_K];
    #pragma unroll
    for (int kw = 0; kw < DW_K; kw++) acc[kw] = (float8)(0.0f);
    for (int n = 0; n < N; n++) {
        const long plane = (long)n * C + c;
        for (int oh = 0; oh < OH; oh++) {
            const __global float *x0 = xp + (plane * HP + oh * DW_S + kh) * WP;
            const __global float *dzr = dz + (plane * OH + oh) * OW;
            for (int ow0 = 0; ow0 < OW; ow0 += 8) {
                float8 g;
                if (ow0 + 8 <= OW) {
                    g = *(const __global float8u *)(dzr + ow0);
                } else {
                    float part[8];
                    for (int j = 0; j < 8; j++) part[j] = ow0 + j < OW ? dzr[ow0 + j] : 0.0f;
                    g = *(float8u *)part;
                }
                const __global float *seg = x0 + ow0 * DW_S;
                #pragma unroll
                for (int kw = 0; kw < DW_K; kw++) acc[kw] += g * tap_inputs(seg, kw);
            }
        }
    }
    #pragma unroll
    for (int kw = 0; kw < DW_K; kw++) {
        const float8 a = acc[kw];
        const float4 h = a.lo + a.hi;
        dw[(c * DW_K + kh) * DW_K + kw] = (h.x + h.y) + (h.z + h.w);
    }
}

// The depthwise forward on a padded input, for the base (depthwise_bands.py) and for
// training (conv.py; with DW_FLIP its input gradient too): a work-item computes `band` output
// rows of one plane, so its K*K weights are read once per band rather than per row (one row
// a work-item, the kernel before it, was 1.6-2x slower on fine-tuning's maps; on the last
// stages' 8x10 maps a row is two float8 blocks: the weights cost as much as the taps). The
// last block of a row slides left to end at OW and stores a whole float8, rewriting a few
// columns with the same values (rows under 8 wide: lane by lane). Stride 2 reads each pair
// of float8s once for two taps (even lanes: tap kw, odd lanes: kw + 1). PoCL calls the
// min/max built-ins rather than inlining them: ternaries here. (Computing 2-8 rows at once,
// for independent sums and shared loads, ran no faster: LLVM spilled the extra registers.)
// Work-item (band index i, plane): rows [i*band, min(OH, i*band + band)).
__kernel void depthwise_band_forward(
    __global float *y, __global const float *xp, __global const float *w,
    __global const float *bias, int C, int HP, int WP, int OH, int OW, int act, int planes,
    int band)
{
    const int oh_first = get_global_id(0) * band, plane = get_global_id(1);
    if (oh_first >= OH || plane >= planes) return;
    const int oh_end = oh_first + band < OH ? oh_first + band : OH;
    const int c = plane % C;
    float wk[DW_K * DW_K];
    #pragma unroll
#ifdef DW_FLIP
    // The input gradient of a stride-1 depthwise convolution: the same correlation with the
    // kernel turned half a turn, over dz padded by K - 1 - pad (see ConvBackward).
    for (int i = 0; i < DW_K * DW_K; i++) wk[i] = w[c * DW_K * DW_K + DW_K * DW_K - 1 - i];
#else
    for (int i = 0; i < DW_K * DW_K; i++) wk[i] = w[c * DW_K * DW_K + i];
#endif
    const float b = bias[c];
    for (int oh = oh_first; oh < oh_end; oh++) {
        const __global float *x0 = xp + ((long)plane * HP + oh * DW_S) * WP;
        __global float *yr = y + ((long)plane * OH + oh) * OW;
        for (int ow0 = 0; ow0 < OW; ow0 += 8) {
            const int at = ow0 + 8 <= OW ? ow0 : (OW >= 8 ? OW - 8 : 0);
            float8 acc0 = (float8)(b), acc1 = (float8)(0.0f);
            #pragma unroll
            for (int kh = 0; kh < DW_K; kh++) {
                const __global float *seg = x0 + kh * WP + at * DW_S;
#if DW_S == 1
                #pragma unroll
                for (int kw = 0; kw < DW_K; kw++) {
                    const float8 in = *(const __global float8u *)(seg + kw);
                    if (kw & 1) acc1 += wk[kh * DW_K + kw] * in;
                    else acc0 += wk[kh * DW_K + kw] * in;
                }
#else
                #pragma unroll
                for (int kw = 0; kw < DW_K; kw += 2) {
                    const float8 lo = *(const __global float8u *)(seg + kw);
                    const float8 hi = *(const __global float8u *)(seg + kw + 8);
                    acc0 += wk[kh * DW_K + kw] * (float8)(lo.even, hi.even);
                    if (kw + 1 < DW_K)
                        acc1 += wk[kh * DW_K + kw + 1] * (float8)(lo.odd, hi.odd);
                }
#endif
            }
            float8 v = acc0 + acc1;
            if (act == 1) v = v > 0.0f ? v : 0.0f;
            if (act == 2) v = v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f;
            if (OW >= 8) {
                *(__global float8u *)(yr + at) = v;
            } else {
                float out[8];
                *(float8u *)out = v;
                for (int j = 0; j < OW; j++) yr[j] = out[j];
            }
        }
    }
}

// The base's depthwise forward on small maps (depthwise_bands.py): the input is a plain
// (unpadded) map, and each work-item copies its plane into a zero-bordered private buffer
// (L1) first, then convolves from there as depthwise_band_forward does. On the last stages'
// maps (7x7 to 15x20) this replaced a padding pass per layer, and let the expand before it
// write whole float8s instead of splitting the many that straddle a padded map's rows.
// The buffer holds HP x WP <= DW_PRIVATE floats (HP = H + pt + pb, WP = W + pl + pr).
// Work-item: plane (n*C + c), all OH rows.
#ifndef DW_PRIVATE
#define DW_PRIVATE 1024
#endif

__kernel void depthwise_small_forward(
    __global float *y, __global const float *x, __global const float *w,
    __global const float *bias, int C, int H, int W, int pt, int pl, int HP, int WP,
    int OH, int OW, int act, int planes)
{
    const int plane = get_global_id(0);
    if (plane >= planes) return;
    const int c = plane % C;
    // Slack past HP x WP: the last float8 of a row may read up to 8*DW_S + DW_K floats on.
    float xp[DW_PRIVATE + 8 * DW_S + DW_K + 8];
    // Zeros only where no input lands: the rows above and below, then each row's ends.
    for (int i = 0; i < pt * WP; i++) xp[i] = 0.0f;
    for (int i = (pt + H) * WP; i < HP * WP + 8 * DW_S + DW_K + 8; i++) xp[i] = 0.0f;
    const __global float *xs = x + (long)plane * H * W;
    for (int r = 0; r < H; r++) {
        float *dst = xp + (r + pt) * WP + pl;
        for (int j = -pl; j < 0; j++) dst[j] = 0.0f;
        for (int j = W; j < WP - pl; j++) dst[j] = 0.0f;
        for (int col = 0; col < W; col += 8) {
            const int at = col + 8 <= W ? col : (W >= 8 ? W - 8 : 0);
            if (W >= 8) {
                *(float8u *)(dst + at) = *(const __global float8u *)(xs + r * W + at);
            } else {
                for (int j = 0; j < W; j++) dst[j] = xs[r * W + j];
            }
        }
    }
    float wk[DW_K * DW_K];
    #pragma unroll
    for (int i = 0; i < DW_K * DW_K; i++) wk[i] = w[c * DW_K * DW_K + i];
    const float b = bias[c];
    __global float *yp = y + (long)plane * OH * OW;
    for (int oh = 0; oh < OH; oh++) {
        const float *x0 = xp + oh * DW_S * WP;
        __global float *yr = yp + oh * OW;
        for (int ow0 = 0; ow0 < OW; ow0 += 8) {
            const int at = ow0 + 8 <= OW ? ow0 : (OW >= 8 ? OW - 8 : 0);
            float8 acc0 = (float8)(b), acc1 = (float8)(0.0f);
            #pragma unroll
            for (int kh = 0; kh < DW_K; kh++) {
                const float *seg = x0 + kh * WP + at * DW_S;
#if DW_S == 1
                #pragma unroll
                for (int kw = 0; kw < DW_K; kw++) {
                    const float8 in = *(const float8u *)(seg + kw);
                    if (kw & 1) acc1 += wk[kh * DW_K + kw] * in;
                    else acc0 += wk[kh * DW_K + kw] * in;
                }
#else
                #pragma unroll
                for (int kw = 0; kw < DW_K; kw += 2) {
                    const float8 lo = *(const float8u *)(seg + kw);
                    const float8 hi = *(const float8u *)(seg + kw + 8);
                    acc0 += wk[kh * DW_K + kw] * (float8)(lo.even, hi.even);
                    if (kw + 1 < DW_K)
                        acc1 += wk[kh * DW_K + kw + 1] * (float8)(lo.odd, hi.odd);
                }
#endif
            }
            float8 v = acc0 + acc1;
            if (act == 1) v = v > 0.0f ? v : 0.0f;
            if (act == 2) v = v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f;
            if (OW >= 8) {
                *(__global float8u *)(yr + at) = v;
            } else {
                float out[8];
                *(float8u *)out = v;
                for (int j = 0; j < OW; j++) yr[j] = out[j];
            }
        }
    }
}
