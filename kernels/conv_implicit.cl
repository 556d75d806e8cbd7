// Dense stride-1 convolutions that keep their map's size (3x3 pad 1, 3x3 dilation 2 pad 2,
// ...) as an implicit GEMM, NCHW float32, for CPU OpenCL (PoCL) first.
//
// im2col would write C_in*K*K copies of the input (177 MB for the pixels patch's layers at
// batch 16) and read them back; here the GEMM reads the zero-padded input in place.
// In a padded map xp (planes of HP x WP), output pixel (oh, ow) is flat position
// p = oh*WP + ow of that map and its tap (ci, kh, kw) lies at xp[ci*HP*WP + kh*D*WP + kw*D + p]:
// along p the taps are contiguous, across rows too, so one float8 load serves 8 outputs.
// Positions with ow >= OW (the right border) are computed and dropped: WP/OW - 1 of wasted
// work (2.5% at 120x160, 10% at 15x20).
// The register block is gemm.cl's: each work-item keeps TM x (8*NV) float8 accumulators over
// the whole r loop (docs/opencl-on-the-cpu.md: GPU-style tiles run far slower on PoCL).
// act: 0 none, 1 ReLU, 2 ReLU6 (as in gemm.cl).

#include "blocks.cl"

// The kernel size KS is a define: the taps' loops (ci, then kh and kw unrolled) compute each
// tap's offset, where a table of offsets cost a load per tap (12-15% of the time on the
// pixels patch's layers).
#ifndef KS
#define KS 3
#endif

// y(b, m, oh, ow) = act(sum_{ci,kh,kw} w[m, ci, kh, kw] * xp[b*x_sb + ci*plane + kh*D*WP + kw*D
//                                                        + oh*WP + ow] + bias[m])
//                   + res(b, m, oh, ow)                       for m < M, oh*WP + ow < L, ow < OW
//   y(b, m, oh, ow) at y[y_off + b*y_sb + m*y_sm + oh*y_sh + ow]; res in y's layout (res_off)
//   With mask_act (1 ReLU, 2 ReLU6), y is an input gradient that passes back through the
//   layer before's activation: it is kept only where that activation's output, mask in y's
//   layout (mask_off), has a nonzero slope (ReLU: > 0; ReLU6: in (0, 6)). This writes a
//   chain's dz straight into the padded map its weight gradient and input gradient read.
//   w (M, C, KS, KS); L = OH*WP; plane = HP*WP = (OH + (KS-1)*D)*WP. xp needs TN + (KS-1)*D
//   floats of slack past its last plane: the last tile reads them for positions it drops.
// Work-item (position tile of TN, row tile of TM, batch b).
__kernel void conv_implicit_forward(
    __global float *y, int y_off, int y_sb, int y_sm, int y_sh,
    __global const float *xp, int x_sb, int plane, int D,
    __global const float *w, __global const float *bias, int has_bias,
    __global const float *res, int res_off, int has_residual,
    __global const float *mask, int mask_off, int mask_act,
    int M, int C, int L, int WP, int OW, int act)
{
    const int tile_n = get_global_id(0), tile_m = get_global_id(1), b = get_global_id(2);
    const int n0 = tile_n * TN, m0 = tile_m * TM;
    if (n0 >= L || m0 >= M) return;
    float8 acc[TM][NV];
    #pragma unroll
    for (int i = 0; i < TM; i++)
        #pragma unroll
        for (int v = 0; v < NV; v++) acc[i][v] = (float8)(0.0f);
    const __global float *xb = xp + (long)b * x_sb + n0;
    const __global float *wrow[TM];
    #pragma unroll
    for (int i = 0; i < TM; i++) wrow[i] = w + (long)min(m0 + i, M - 1) * C * KS * KS;
    const int row = D * WP;
    for (int ci = 0; ci < C; ci++, xb += plane) {
        #pragma unroll
        for (int kh = 0; kh < KS; kh++) {
            #pragma unroll
            for (int kw = 0; kw < KS; kw++) {
                const __global float *bp = xb + kh * row + kw * D;
                float8 bv[NV];
                #pragma unroll
                for (int v = 0; v < NV; v++) bv[v] = *(const __global float8u *)(bp + 8 * v);
                #pragma unroll
                for (int i = 0; i < TM; i++) {
                    const float av = wrow[i][kh * KS + kw];
                    #pragma unroll
                    for (int v = 0; v < NV; v++) acc[i][v] += av * bv[v];
                }
            }
        }
        #pragma unroll
        for (int i = 0; i < TM; i++) wrow[i] += KS * KS;
    }
    for (int i = 0; i < TM; i++) {
        const int m = m0 + i;
        if (m >= M) break;
        const float bias_m = has_bias ? bias[m] : 0.0f;
        const long base = y_off + (long)b * y_sb + (long)m * y_sm;
        const long rbase = res_off + (long)b * y_sb + (long)m * y_sm;
        const long mbase = mask_off + (long)b * y_sb + (long)m * y_sm;
        for (int v = 0; v < NV; v++) {
            const int p = n0 + 8 * v;
            const int oh = p / WP, ow = p - oh * WP;
            float8 val = acc[i][v] + bias_m;
            if (act == 1) val = val > 0.0f ? val : 0.0f;
            if (act == 2) val = val > 0.0f ? (val < 6.0f ? val : 6.0f) : 0.0f;
            if (p + 8 <= L && ow + 8 <= OW) {
                const long at = (long)oh * y_sh + ow;
                if (has_residual) val += *(const __global float8u *)(res + rbase + at);
                if (mask_act) {
                    const float8 mv = *(const __global float8u *)(mask + mbase + at);
                    int8 pass = mv > 0.0f;
                    if (mask_act == 2) pass &= mv < 6.0f;
                    val = as_float8(as_int8(val) & pass);
                }
                *(__global float8u *)(y + base + at) = val;
                continue;
            }
            float lanes[8];
            *(float8u *)lanes = val;
            for (int j = 0; j < 8 && p + j < L; j++) {
                const int q = p + j, qh = q / WP, qw = q - qh * WP;
                if (qw >= OW) continue;
                const long at = (long)qh * y_sh + qw;
                float out = lanes[j] + (has_residual ? res[rbase + at] : 0.0f);
                if (mask_act) {
                    const float mv = mask[mbase + at];
                    if (!(mv > 0.0f && (mask_act == 1 || mv < 6.0f))) out = 0.0f;
                }
                y[base + at] = out;
            }
        }
    }
}

// Partial weight gradients (added up by gemm.cl's sum_parts), one per chunk of `chunk`
// positions of one sample:
//   part[c, m, r] = sum over p in chunk c of dz[dz_off + b*dz_sb + m*dz_sm + p] * xp[b*x_sb + koff[r] + p]
// with b = c / chunks, the chunk's positions [(c % chunks)*chunk, +chunk) cut at L.
// dz is the output gradient as a padded map of the same width WP, read from the offset of its
// inside: its zero borders make the dropped positions (ow >= OW) contribute nothing, and its
// zeroed slack covers the last row's overrun. Both operands are contiguous along p.
// Work-item (column tile of WN taps, row tile of WM rows of m, chunk c): WM x WN float8 sums
// along p, reduced across lanes at the end (gemm.cl's gemm_nt_forward block is 2 x 4; 4 x 3,
// 12 sums fed by 7 loads, is the tuned variant). A work-group spans the tiles of one chunk,
// so that chunk stays in cache while they all read it: summing the whole map per work-item
// streamed it from memory once per tile, at a third of the speed.
#ifndef WM
#define WM 2
#endif
#ifndef WN
#define WN 4
#endif
__kernel void conv_implicit_backward_weight(
    __global float *part, __global const float *dz, int dz_off, int dz_sb, int dz_sm,
    __global const float *xp, int x_sb, __global const int *koff,
    int M, int R, int L, int chunk, int chunks)
{
    const int r0 = get_global_id(0) * WN, m0 = get_global_id(1) * WM, c = get_global_id(2);
    const int b = c / chunks, p_first = (c % chunks) * chunk;
    if (m0 >= M || r0 >= R || p_first >= L) return;
    const int p_end = min(p_first + chunk, L);
    float8 acc[WM][WN];
    #pragma unroll
    for (int i = 0; i < WM; i++)
        #pragma unroll
        for (int j = 0; j < WN; j++) acc[i][j] = (float8)(0.0f);
    const __global float *ar[WM], *br[WN];
    #pragma unroll
    for (int i = 0; i < WM; i++)
        ar[i] = dz + dz_off + (long)b * dz_sb + (long)min(m0 + i, M - 1) * dz_sm;
    #pragma unroll
    for (int j = 0; j < WN; j++) br[j] = xp + (long)b * x_sb + koff[min(r0 + j, R - 1)];
    const int p_vec = p_first + ((p_end - p_first) & ~7);
    for (int p = p_first; p < p_vec; p += 8) {
        float8 bv[WN];
        #pragma unroll
        for (int j = 0; j < WN; j++) bv[j] = *(const __global float8u *)(br[j] + p);
        #pragma unroll
        for (int i = 0; i < WM; i++) {
            const float8 av = *(const __global float8u *)(ar[i] + p);
            #pragma unroll
            for (int j = 0; j < WN; j++) acc[i][j] += av * bv[j];
        }
    }
    __global float *out = part + (long)c * M * R;
    for (int i = 0; i < WM && m0 + i < M; i++)
        for (int j = 0; j < WN && r0 + j < R; j++) {
            float tail = 0.0f;
            for (int p = p_vec; p < p_end; p++) tail += ar[i][p] * br[j][p];
            const float4 h = acc[i][j].lo + acc[i][j].hi;
            out[(m0 + i) * R + r0 + j] = (h.x + h.y) + (h.z + h.w) + tail;
        }
}



// The input gradient's weights: wt(ci, co, kh, kw) = w(co, ci, K-1-kh, K-1-kw), so that
// dx = conv_implicit_forward(dz padded by D*(K-1) - pad, wt). Work-item (element of wt).
__kernel void flip_weights(__global float *wt, __global const float *w, int C_out, int C_in,
                           int KK)
{
    const int i = get_global_id(0);
    if (i >= C_out * C_in * KK) return;
    const int ci = i / (C_out * KK), co = (i / KK) % C_out, t = i % KK;
    wt[i] = w[(co * C_in + ci) * KK + KK - 1 - t];
}
