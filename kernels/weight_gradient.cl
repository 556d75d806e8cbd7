// Weight gradients of dense convolutions as a plain GEMM summed over the batch.
//
// dW (C_out x rows) = sum_n dz[n] (C_out x hw) @ x[n] (rows x hw)^T has both operands
// contiguous along the summed hw; gemm.cl's gemm_nt_forward reads them so, at 50-100 GFLOP/s
// on fine-tuning's shapes (hw = 300: short rows, a scalar tail each). Transposing the
// narrower operand once (a few hundred KB) lets gemm.cl's register-blocked GEMM sum over
// every sample in one K loop of n*hw, read along its columns as float8: 1.3-1.7x faster
// (interleaved runs on a loaded machine).

#include "common.cl"

// xt[b][k][c] = x[b][c][k] for c < C, k < K (a batch of C x K matrices, each transposed).
// Work-item (block of 8 k, b) reads 8 consecutive k of every row as one float8 and writes
// them to 8 rows of xt, each contiguous along c as the loop over c runs.
__kernel void transpose_batched(__global float *xt, __global const float *x, int C, int K)
{
    const int k0 = get_global_id(0) * 8, b = get_global_id(1);
    if (k0 >= K) return;
    const __global float *src = x + (long)b * C * K + k0;
    __global float *dst = xt + (long)b * C * K + (long)k0 * C;
    if (k0 + 8 <= K) {
        for (int c = 0; c < C; c++) {
            float lanes[8];
            *(float8u *)lanes = *(const __global float8u *)(src + (long)c * K);
            #pragma unroll
            for (int j = 0; j < 8; j++) dst[(long)j * C + c] = lanes[j];
        }
        return;
    }
    for (int c = 0; c < C; c++)
        for (int j = 0; j < K - k0; j++) dst[(long)j * C + c] = src[(long)c * K + j];
}
