// The forward GEMM of a layer, C = act(A@B + bias) [+ R], with its epilogue fixed at build
// time: the activation (ACT), a residual (RESIDUAL), a padded output map (PADDED), packed B
// panels (PACKED) and weights packed into row tiles (PACKED_A) are defines, so the stores
// need no division and no per-element test. gemm.cl's gemm_forward decides all of that per
// element at run time, and on PoCL its general epilogue cost more than the K loop on the
// base's short-K 1x1 convolutions (96x16x19200: 1.56 ms against 0.74 ms here). Even ACT and
// RESIDUAL as plain arguments (uniform branches) cost the base's forward 3.5% more CPU time.
//
//   A(m,k) at A[m*K + k]                  row-major weights, shared by every sample
//   B(k,n) at B[b_off + b*b_sb + k*ldb + n]  or, PACKED, panels as gemm.cl's pack_panels
//   C(m,n) at C[c_off + b*c_sb + m*ldc + n]  or, PADDED, pixel (n / ow, n % ow) of a map
//                                         with pt rows and pl columns of zeros around it,
//                                         wp wide: column n at (n/ow + pt)*wp + n%ow + pl
//                                         PACKED_A: row tiles as pack_weight_tiles below
//   R(m,n) (RESIDUAL) at R[r_off + b*c_sb + m*ldc + n]: C's unpadded layout
// ACT: 0 none, 1 ReLU, 2 ReLU6.
// Work-item (column tile, row tile, sample) computes a TM x TN block in float8 sums over K.
// Unpacked, N >= TN: the last tile slides left to end at N and stores only the columns no
// other tile owns. Packed, the last panel's missing columns are zeros and are not stored.
// NTAIL (1..8, with PACKED_A and TM <= 8): the last tile holds only N % TN = NTAIL columns
// and sums them one by one, the tile's TM rows in one float8 (the packed weights' k-th
// TM values, read with the next ones after them): on the 7x7 maps (N = 49) the slid tile
// computed 8 columns for 1, with 7 loads for 6 multiply-adds.

#include "blocks.cl"

#ifndef ACT
#define ACT 0
#endif
#ifndef RESIDUAL
#define RESIDUAL 0
#endif
#ifndef PADDED
#define PADDED 0
#endif
#ifndef PACKED
#define PACKED 0
#endif
#ifndef PACKED_A
#define PACKED_A 0
#endif
#ifndef NTAIL
#define NTAIL 0
#endif
// Independent sums per tail column: about 8 in all (AVX2 retires two FMAs a cycle, each
// with a latency of four), within the 16 vector registers.
#if NTAIL == 1
#define TAIL_SPLIT 8
#elif NTAIL == 2
#define TAIL_SPLIT 4
#elif NTAIL <= 4
#define TAIL_SPLIT 2
#else
#define TAIL_SPLIT 1
#endif

inline float8 finish8(float8 v) {
#if ACT == 1
    v = v > 0.0f ? v : 0.0f;
#elif ACT == 2
    v = v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f;
#endif
    return v;
}

#if NTAIL
// The last NTAIL columns n0.. of rows m0.. (see the top); A is packed into row tiles.
inline void tail_columns(
    __global float *C, int c_off, int c_sb, int ldc,
    __global const float *A, __global const float *B, int b_off, int b_sb, int ldb,
    __global const float *bias, __global const float *R, int r_off,
    int M, int N, int K, int ow, int wp, int pt, int pl, int n0, int m0, int b, int tiles)
{
#if PACKED
    const __global float *bp = B + ((long)b * tiles + tiles - 1) * K * TN;
    const int step = TN;
#else
    const __global float *bp = B + b_off + (long)b * b_sb + n0;
    const int step = ldb;
#endif
    const __global float *ap = A + (long)(m0 / TM) * K * TM;
    float rows_bias[8];
    #pragma unroll
    for (int i = 0; i < 8; i++) rows_bias[i] = bias[m0 + i < M ? m0 + i : M - 1];
    // TAIL_SPLIT sums a column over interleaved k: one sum alone waits out the FMA's
    // latency at every k, and the last tile then cost most of a whole tile's time.
    float8 acc[NTAIL][TAIL_SPLIT];
    #pragma unroll
    for (int j = 0; j < NTAIL; j++) {
        acc[j][0] = *(float8u *)rows_bias;
        #pragma unroll
        for (int s = 1; s < TAIL_SPLIT; s++) acc[j][s] = (float8)(0.0f);
    }
    int k = 0;
    for (; k + TAIL_SPLIT <= K; k += TAIL_SPLIT) {
        #pragma unroll
        for (int s = 0; s < TAIL_SPLIT; s++) {
            const float8 a = *(const __global float8u *)(ap + (k + s) * TM);
            #pragma unroll
            for (int j = 0; j < NTAIL; j++) acc[j][s] += a * bp[s * step + j];
        }
        bp += TAIL_SPLIT * step;
    }
    for (; k < K; k++) {
        const float8 a = *(const __global float8u *)(ap + k * TM);
        #pragma unroll
        for (int j = 0; j < NTAIL; j++) acc[j][0] += a * bp[j];
        bp += step;
    }
    #pragma unroll
    for (int j = 0; j < NTAIL; j++)
        #pragma unroll
        for (int s = 1; s < TAIL_SPLIT; s++) acc[j][0] += acc[j][s];
    __global float *c = C + c_off + (long)b * c_sb;
#if RESIDUAL
    __global const float *r = R + r_off + (long)b * c_sb;
#endif
    #pragma unroll
    for (int j = 0; j < NTAIL; j++) {
        const int n = n0 + j;
#if PADDED
        const int at = (n / ow + pt) * wp + n % ow + pl;
#else
        const int at = n;
#endif
        float lanes[8];
        *(float8u *)lanes = finish8(acc[j][0]);
        #pragma unroll
        for (int i = 0; i < TM; i++) {
            if (m0 + i >= M) break;
            float out = lanes[i];
#if RESIDUAL
            out += r[(m0 + i) * ldc + n];
#endif
            c[(m0 + i) * ldc + at] = out;
        }
    }
}
#endif

__kernel void gemm_specialized_forward(
    __global float *C, int c_off, int c_sb, int ldc,
    __global const float *A, __global const float *B, int b_off, int b_sb, int ldb,
    __global const float *bias, __global const float *R, int r_off,
    int M, int N, int K, int ow, int wp, int pt, int pl)
{
    const int tile = get_global_id(0), m0 = get_global_id(1) * TM, b = get_global_id(2);
    const int tiles = (N + TN - 1) / TN;
    if (m0 >= M || tile >= tiles) return;
    int n0 = tile * TN, first = 0, last = N - n0 < TN ? N - n0 : TN;
#if NTAIL
    if (tile == tiles - 1) {
        tail_columns(C, c_off, c_sb, ldc, A, B, b_off, b_sb, ldb, bias, R, r_off, M, N, K,
                     ow, wp, pt, pl, n0, m0, b, tiles);
        return;
    }
#endif
#if PACKED
    const __global float *bp = B + ((long)b * tiles + tile) * K * TN;
    const int step = TN;
#else
    if (last < TN) { first = TN - last; n0 = N - TN; last = TN; }
    const __global float *bp = B + b_off + (long)b * b_sb + n0;
    const int step = ldb;
#endif
    // Rows past M repeat the last row (loads stay in bounds) and are not stored.
    float8 acc[TM][NV];
    #pragma unroll
    for (int i = 0; i < TM; i++) {
        const float bias_i = bias[m0 + i < M ? m0 + i : M - 1];
        #pragma unroll
        for (int v = 0; v < NV; v++) acc[i][v] = (float8)(bias_i);
    }
#if PACKED_A
    // The tile's rows, k by k, in one stream: the hardware prefetcher follows it (six rows
    // of 192 floats each were too short for it, and frozen weights come from memory).
    const __global float *ap = A + (long)(m0 / TM) * K * TM;
#else
    int a_at[TM];
    #pragma unroll
    for (int i = 0; i < TM; i++) a_at[i] = (m0 + i < M ? m0 + i : M - 1) * K;
#endif
#if PACKED_A
#define A_AT(i, k) ap[(k) * TM + (i)]
#else
#define A_AT(i, k) A[a_at[i] + (k)]
#endif
    // A slid last tile that owns no more than its last float8 (N = 49: 1 of 16 columns)
    // computes only that one: 56 columns instead of 64 on the 7x7 maps.
    if (NV > 1 && first >= TN - 8) {
        for (int k = 0; k < K; k++) {
            const float8 bv = *(const __global float8u *)(bp + 8 * (NV - 1));
            #pragma unroll
            for (int i = 0; i < TM; i++) acc[i][NV - 1] += A_AT(i, k) * bv;
            bp += step;
        }
    } else {
        for (int k = 0; k < K; k++) {
            float8 bv[NV];
            #pragma unroll
            for (int v = 0; v < NV; v++) bv[v] = *(const __global float8u *)(bp + 8 * v);
            #pragma unroll
            for (int i = 0; i < TM; i++) {
                const float av = A_AT(i, k);
                #pragma unroll
                for (int v = 0; v < NV; v++) acc[i][v] += av * bv[v];
            }
            bp += step;
        }
    }

    __global float *c = C + c_off + (long)b * c_sb;
#if RESIDUAL
    __global const float *r = R + r_off + (long)b * c_sb;
#endif
#if PADDED
    // One division per work-item: later columns step from this one.
    const int row0 = n0 / ow, col0 = n0 - row0 * ow;
#endif
    #pragma unroll
    for (int v = 0; v < NV; v++) {
#if PADDED
        int row = row0, col = col0 + 8 * v;
        while (col >= ow) { col -= ow; row++; }
        const int at = (row + pt) * wp + col + pl;
        const bool whole = 8 * v >= first && 8 * v + 8 <= last && col + 8 <= ow;
#else
        const int at = n0 + 8 * v;
        const bool whole = 8 * v >= first && 8 * v + 8 <= last;
#endif
        #pragma unroll
        for (int i = 0; i < TM; i++) {
            if (m0 + i >= M) break;
            float8 val = finish8(acc[i][v]);
            if (whole) {
#if RESIDUAL
                val += *(const __global float8u *)(r + (m0 + i) * ldc + at);
#endif
                *(__global float8u *)(c + (m0 + i) * ldc + at) = val;
                continue;
            }
            // A tile's edge or a row boundary of a padded map: lane by lane.
            float lanes[8];
            *(float8u *)lanes = val;
            int lane_at = at;
#if PADDED
            int lane_col = col;
#endif
            for (int j = 0; j < 8; j++) {
                const int t = 8 * v + j;
                if (t >= first && t < last) {
                    float out = lanes[j];
#if RESIDUAL
                    out += r[(m0 + i) * ldc + lane_at];
#endif
                    c[(m0 + i) * ldc + lane_at] = out;
                }
                lane_at++;
#if PADDED
                if (++lane_col == ow) { lane_col = 0; lane_at += wp - ow; }
#endif
            }
        }
    }
}

// Frozen weights in row tiles, once when a plan is built: P[(t*K + k)*TM + i] = A(t*TM + i, k)
// with A(m,k) at A[m*K + k] (rows past M repeat the last). Work-item (k, row tile t).
__kernel void pack_weight_tiles(__global float *P, __global const float *A, int M, int K)
{
    const int k = get_global_id(0), t = get_global_id(1);
    if (k >= K || t * TM >= M) return;
    #pragma unroll
    for (int i = 0; i < TM; i++) {
        const int m = t * TM + i < M ? t * TM + i : M - 1;
        P[((long)t * K + k) * TM + i] = A[(long)m * K + k];
    }
}
