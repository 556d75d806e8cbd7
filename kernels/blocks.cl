// Included by gemm.cl and conv_implicit.cl, not built alone: the register blocks their
// GEMMs share.

// A GEMM's block of C: TM rows x TN = 8*NV columns in float8 accumulators (the launchers
// choose TM and NV per shape; see tuning.py).
#ifndef TM
#define TM 4
#endif
#ifndef NV
#define NV 2
#endif
#define TN (8 * NV)

#include "common.cl"

// The block of a product whose operands are both contiguous along the summed index k
// (weight gradients: the output gradient times the layer's input, summed over positions):
// NT_M x NT_N float8 partial sums along k, reduced across lanes at the end. 2 x 4 sums and
// the 6 loads feeding them fit AVX2's 16 vector registers; 4 x 4 spilled and ran at 30-60
// GFLOP/s against 60-100.

#define NT_M 2
#define NT_N 4

inline void nt_zero(float8 acc[NT_M][NT_N], float tail[NT_M][NT_N])
{
    #pragma unroll
    for (int i = 0; i < NT_M; i++)
        #pragma unroll
        for (int j = 0; j < NT_N; j++) { acc[i][j] = (float8)(0.0f); tail[i][j] = 0.0f; }
}

// acc[i][j] (lane-wise) and tail[i][j] gather sum over k in [k_first, k_end) of
// ar[i][k] * br[j][k]: whole float8 steps into acc, the last k_end - k_first mod 8 into tail.
inline void nt_accumulate(float8 acc[NT_M][NT_N], float tail[NT_M][NT_N],
                          const __global float *ar[NT_M], const __global float *br[NT_N],
                          int k_first, int k_end)
{
    const int k_vec = k_first + ((k_end - k_first) & ~7);
    for (int k = k_first; k < k_vec; k += 8) {
        float8 av[NT_M], bv[NT_N];
        #pragma unroll
        for (int i = 0; i < NT_M; i++) av[i] = *(const __global float8u *)(ar[i] + k);
        #pragma unroll
        for (int j = 0; j < NT_N; j++) bv[j] = *(const __global float8u *)(br[j] + k);
        #pragma unroll
        for (int i = 0; i < NT_M; i++)
            #pragma unroll
            for (int j = 0; j < NT_N; j++) acc[i][j] += av[i] * bv[j];
    }
    for (int k = k_vec; k < k_end; k++)
        #pragma unroll
        for (int i = 0; i < NT_M; i++)
            #pragma unroll
            for (int j = 0; j < NT_N; j++) tail[i][j] += ar[i][k] * br[j][k];
}

// One sum's total: its 8 lanes and its scalar tail.
inline float nt_total(float8 v, float tail)
{
    const float4 h = v.lo + v.hi;
    return (h.x + h.y) + (h.z + h.w) + tail;
}
