// Matrix times vector for CPU OpenCL (PoCL): a fully connected layer on one sample (the
// base's classifier). act: 0 none, 1 ReLU, 2 ReLU6 (as in gemm.cl).

#include "common.cl"

// Matrix times vector (a fully connected layer on one sample):
//   y[y_off + m] = act(sum_k A[a_off + m*lda + k] * x[x_off + k] + bias[m])      for m < M
// Work-item: GEMV_ROWS rows, float8 sums along k (the GEMM's narrow path runs one scalar
// row at a time: 0.7 ms for the base's 1000x1280 classifier). A's rows need not be aligned.
// The classifier's 5 MB of weights come from memory every frame: 8 rows in flight per
// work-item took 0.26 ms where 4 took 0.31 (16: 0.25-0.29; prefetch hints did not help),
// and at least 64 work-groups (gemm.py) 0.15 ms: both threads stream it.
#define GEMV_ROWS 8

__kernel void gemv_forward(__global float *y, int y_off,
                           __global const float *A, int a_off, int lda,
                           __global const float *x, int x_off,
                           __global const float *bias, int has_bias, int M, int K, int act)
{
    const int m0 = get_global_id(0) * GEMV_ROWS;
    if (m0 >= M) return;
    const __global float *arow[GEMV_ROWS];
    #pragma unroll
    for (int i = 0; i < GEMV_ROWS; i++) arow[i] = A + a_off + (long)min(m0 + i, M - 1) * lda;
    const __global float *xv = x + x_off;
    float8 acc[GEMV_ROWS];
    float tail[GEMV_ROWS];
    #pragma unroll
    for (int i = 0; i < GEMV_ROWS; i++) { acc[i] = (float8)(0.0f); tail[i] = 0.0f; }
    const int k_vec = K & ~7;
    for (int k = 0; k < k_vec; k += 8) {
        const float8 v = *(const __global float8u *)(xv + k);
        #pragma unroll
        for (int i = 0; i < GEMV_ROWS; i++) acc[i] += *(const __global float8u *)(arow[i] + k) * v;
    }
    for (int k = k_vec; k < K; k++)
        #pragma unroll
        for (int i = 0; i < GEMV_ROWS; i++) tail[i] += arow[i][k] * xv[k];
    for (int i = 0; i < GEMV_ROWS && m0 + i < M; i++) {
        const float4 h = acc[i].lo + acc[i].hi;
        const float sum = (h.x + h.y) + (h.z + h.w) + tail[i];
        y[y_off + m0 + i] = activate(sum + (has_bias ? bias[m0 + i] : 0.0f), act);
    }
}
