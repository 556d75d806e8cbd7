// Dense stride-1 convolutions that keep their map's size (3x3 pad 1, 3x3 dilation 2 pad 2,
// ...) as an implicit GEMM, NCHW float32, for CPU OpenCL (PoCL) first.
//
// im2col would write C_in*K*K copies of the input (177 MB for the pixels patch's layers at
// batch 16) and read them back; here the GEMM reads the zero-padded input in place.
// In a padded map xp (planes of HP x WP), output pixel (oh, ow) is flat position
// p = oh*WP + ow, and tap r = (ci*K + kh)*K + kw of it lies at xp[koff[r] + p] with
// koff[r] = ci*HP*WP + kh*D*WP + kw*D: along p the taps are contiguous, across rows too, so
// one float8 load serves 8 outputs. Positions with ow >= OW (the right border) are computed
// and dropped: WP/OW - 1 of wasted work (2.5% at 120x160, 10% at 15x20).
//
// The register block is gemm.cl's: each work-item keeps TM x (8*NV) float8 accumulators over
// the whole r loop (docs/opencl-on-the-cpu.md: GPU-style tiles run far slower on PoCL).
// act: 0 none, 1 ReLU, 2 ReLU6 (as in gemm.cl).

#include "blocks.cl"

// y(b, m, oh, ow) = act(sum_r w[m*R + r] * xp[b*x_sb + koff[r] + oh*WP + ow] + bias[m])
//                   + res(b, m, oh, ow)                       for m < M, oh*WP + ow < L, ow < OW
//   y(b, m, oh, ow) at y[y_off + b*y_sb + m*y_sm + oh*y_sh + ow]; res in y's layout (res_off)
//   w (M, R) row-major; koff (R) ints; L = OH*WP. xp needs TN + koff[R-1] floats of slack
//   past its last plane: the last tile reads them for positions it does not store.
// Work-item (position tile of TN, row tile of TM, batch b).
__kernel void conv_implicit_forward(
    __global float *y, int y_off, int y_sb, int y_sm, int y_sh,
    __global const float *xp, int x_sb, __global const int *koff,
    __global const float *w, __global const float *bias, int has_bias,
    __global const float *res, int res_off, int has_residual,
    int M, int R, int L, int WP, int OW, int act)
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
    for (int i = 0; i < TM; i++) wrow[i] = w + (long)min(m0 + i, M - 1) * R;
    for (int r = 0; r < R; r++) {
        const __global float *bp = xb + koff[r];
        float8 bv[NV];
        #pragma unroll
        for (int v = 0; v < NV; v++) bv[v] = *(const __global float8u *)(bp + 8 * v);
        #pragma unroll
        for (int i = 0; i < TM; i++) {
            const float av = wrow[i][r];
            #pragma unroll
            for (int v = 0; v < NV; v++) acc[i][v] += av * bv[v];
        }
    }
    for (int i = 0; i < TM; i++) {
        const int m = m0 + i;
        if (m >= M) break;
        const float bias_m = has_bias ? bias[m] : 0.0f;
        const long base = y_off + (long)b * y_sb + (long)m * y_sm;
        const long rbase = res_off + (long)b * y_sb + (long)m * y_sm;
        for (int v = 0; v < NV; v++) {
            const int p = n0 + 8 * v;
            const int oh = p / WP, ow = p - oh * WP;
            float8 val = acc[i][v] + bias_m;
            if (act == 1) val = val > 0.0f ? val : 0.0f;
            if (act == 2) val = val > 0.0f ? (val < 6.0f ? val : 6.0f) : 0.0f;
            if (p + 8 <= L && ow + 8 <= OW) {
                const long at = (long)oh * y_sh + ow;
                if (has_residual) val += *(const __global float8u *)(res + rbase + at);
                *(__global float8u *)(y + base + at) = val;
                continue;
            }
            float lanes[8];
            *(float8u *)lanes = val;
            for (int j = 0; j < 8 && p + j < L; j++) {
                const int q = p + j, qh = q / WP, qw = q - qh * WP;
                if (qw >= OW) continue;
                const long at = (long)qh * y_sh + qw;
                y[base + at] = lanes[j] + (has_residual ? res[rbase + at] : 0.0f);
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
// Work-item (column tile of NT_N over r, row tile of NT_M over m, chunk c): the register
// block of gemm.cl's gemm_nt_forward (blocks.cl). A work-group spans
// the tiles of one chunk, so that chunk stays in cache while they all read it: summing the
// whole map per work-item streamed it from memory once per tile, at a third of the speed.
__kernel void conv_implicit_backward_weight(
    __global float *part, __global const float *dz, int dz_off, int dz_sb, int dz_sm,
    __global const float *xp, int x_sb, __global const int *koff,
    int M, int R, int L, int chunk, int chunks)
{
    const int r0 = get_global_id(0) * NT_N, m0 = get_global_id(1) * NT_M, c = get_global_id(2);
    const int b = c / chunks, p_first = (c % chunks) * chunk;
    if (m0 >= M || r0 >= R || p_first >= L) return;
    const int p_end = min(p_first + chunk, L);
    float8 acc[NT_M][NT_N];
    float tail[NT_M][NT_N];
    nt_zero(acc, tail);
    const __global float *ar[NT_M], *br[NT_N];
    #pragma unroll
    for (int i = 0; i < NT_M; i++)
        ar[i] = dz + dz_off + (long)b * dz_sb + (long)min(m0 + i, M - 1) * dz_sm;
    #pragma unroll
    for (int j = 0; j < NT_N; j++) br[j] = xp + (long)b * x_sb + koff[min(r0 + j, R - 1)];
    nt_accumulate(acc, tail, ar, br, p_first, p_end);
    __global float *out = part + (long)c * M * R;
    for (int i = 0; i < NT_M && m0 + i < M; i++)
        for (int j = 0; j < NT_N && r0 + j < R; j++)
            out[(m0 + i) * R + r0 + j] = nt_total(acc[i][j], tail[i][j]);
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
