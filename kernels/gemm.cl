// Register-blocked SGEMM written for CPU OpenCL (PoCL): each work-item owns a TM x (8*NV)
// block of C and keeps it in float8 accumulators over the whole K loop. GPU-style tiling
// (one output per work-item, local memory) runs far slower on PoCL: see
// docs/opencl-on-the-cpu.md.
//
// C[b](m,n) = act(beta*C[b](m,n) + sum_k A[b](m,k) * B[b](k,n) + bias[m]) + R[b](m,n)
//   A(m,k) at A[a_off + b*a_sb + m*a_sm + k*a_sk]    any strides: A is read a scalar at a time
//   B(k,n) at B[b_off + b*b_sb + k*ldb + n]           contiguous along n: read as float8
//   C(m,n) at C[c_off + b*c_sb + m*ldc + n]; R (residual) uses C's layout at r_off
// Work-item (i0, i1, i2) = (column tile, row tile, batch); with reduce_batches the K loop
// runs over every batch and the grid has one batch (weight gradients: sum over samples).
// act: 0 none, 1 ReLU, 2 ReLU6. has_bias / has_residual / beta are 0 or 1.

#include "blocks.cl"


// The K loop both GEMMs share: acc[i][v] += A(row i, k) * B(k, 8v..8v+7) for k < K, where
// B's rows are `ldb` floats apart (packed panels: ldb = TN). Inlined, so the accumulators
// stay in registers.
inline void accumulate_tile(float8 acc[TM][NV], const __global float *arow[TM], int a_sk,
                            const __global float *bp, int ldb, int K) {
    for (int k = 0; k < K; k++) {
        float8 bv[NV];
        #pragma unroll
        for (int v = 0; v < NV; v++) bv[v] = *(const __global float8u *)(bp + 8 * v);
        #pragma unroll
        for (int i = 0; i < TM; i++) {
            const float av = *arow[i];
            arow[i] += a_sk;
            #pragma unroll
            for (int v = 0; v < NV; v++) acc[i][v] += av * bv[v];
        }
        bp += ldb;
    }
}

// Stores one accumulated value: bias, optional accumulation into C, activation, residual.
inline void store_c(__global float *C, __global const float *R, int c_base, int r_base, int at,
                    float acc, float bias_m, int beta, int act, int has_residual) {
    float val = acc + bias_m;
    if (beta) val += C[c_base + at];
    val = activate(val, act);
    if (has_residual) val += R[r_base + at];
    C[c_base + at] = val;
}

// Stores 8 consecutive values of one row at once (the common case: a whole tile inside C).
inline void store_c8(__global float *C, __global const float *R, int c_base, int r_base, int at,
                     float8 acc, float bias_m, int beta, int act, int has_residual) {
    float8 val = acc + bias_m;
    if (beta) val += *(__global float8u *)(C + c_base + at);
    if (act == 1) val = val > 0.0f ? val : 0.0f;
    if (act == 2) val = val > 0.0f ? (val < 6.0f ? val : 6.0f) : 0.0f;
    if (has_residual) val += *(const __global float8u *)(R + r_base + at);
    *(__global float8u *)(C + c_base + at) = val;
}

__kernel void gemm_forward(
    __global float *C, int c_off, int c_sb, int ldc,
    __global const float *A, int a_off, int a_sb, int a_sm, int a_sk,
    __global const float *B, int b_off, int b_sb, int ldb,
    __global const float *bias, int has_bias,
    __global const float *R, int r_off, int has_residual,
    int M, int N, int K, int batches, int reduce_batches, int beta, int act,
    int c_ow, int c_wp, int c_pt, int c_pl)
{
    const int tile_n = get_global_id(0), tile_m = get_global_id(1), b = get_global_id(2);
    int m0 = tile_m * TM, n0 = tile_n * TN;
    if (m0 >= M || n0 >= N) return;
    const int b_first = reduce_batches ? 0 : b;
    const int b_last = reduce_batches ? batches : b + 1;
    const int c_base = c_off + (reduce_batches ? 0 : b * c_sb);
    const int r_base = r_off + (reduce_batches ? 0 : b * c_sb);

    int rows[TM];
    for (int i = 0; i < TM; i++) rows[i] = min(m0 + i, M - 1);  // clamp: loads stay in bounds

    if (N >= TN) {
        // Vector path. The last column tile slides left to end at N; it stores only the
        // columns no other tile owns, so no element is written twice.
        int first_owned = 0;
        if (n0 + TN > N) { first_owned = n0 - (N - TN); n0 = N - TN; }
        float8 acc[TM][NV];
        #pragma unroll
        for (int i = 0; i < TM; i++)
            #pragma unroll
            for (int v = 0; v < NV; v++) acc[i][v] = (float8)(0.0f);
        for (int bb = b_first; bb < b_last; bb++) {
            const __global float *a = A + a_off + bb * a_sb;
            const __global float *bp = B + b_off + bb * b_sb + n0;
            const __global float *arow[TM];
            #pragma unroll
            for (int i = 0; i < TM; i++) arow[i] = a + rows[i] * a_sm;
            accumulate_tile(acc, arow, a_sk, bp, ldb, K);
        }
        for (int i = 0; i < TM; i++) {
            const int m = m0 + i;
            if (m >= M) break;
            const float bias_m = has_bias ? bias[m] : 0.0f;
            for (int v = 0; v < NV; v++) {
                if (first_owned <= 8 * v) {
                    store_c8(C, R, c_base, r_base, m * ldc + n0 + 8 * v, acc[i][v], bias_m,
                             beta, act, has_residual);
                    continue;
                }
                float lanes[8];
                *(float8u *)lanes = acc[i][v];
                for (int j = 0; j < 8; j++) {
                    const int col = 8 * v + j;
                    if (col < first_owned) continue;
                    store_c(C, R, c_base, r_base, m * ldc + n0 + col, lanes[j], bias_m,
                            beta, act, has_residual);
                }
            }
        }
        return;
    }

    // Narrow matrices (N < TN, e.g. a fully connected layer on one sample): scalar path.
    for (int i = 0; i < TM; i++) {
        const int m = m0 + i;
        if (m >= M) break;
        for (int n = 0; n < N; n++) {
            float acc = 0.0f;
            for (int bb = b_first; bb < b_last; bb++) {
                const __global float *a = A + a_off + bb * a_sb + m * a_sm;
                const __global float *bp = B + b_off + bb * b_sb + n;
                for (int k = 0; k < K; k++) acc += a[k * a_sk] * bp[k * ldb];
            }
            store_c(C, R, c_base, r_base, m * ldc + n, acc, has_bias ? bias[m] : 0.0f,
                    beta, act, has_residual);
        }
    }
}

// B copied into column panels: P(b, p, k, j) = B(k, p*TN + j), zero where p*TN + j >= N,
// at P[((b*panels + p)*K + k)*TN + j]. Each panel is then one contiguous stream for the
// GEMM's K loop: large power-of-two row strides otherwise alias in cache and TLB.
// Work-item (k, b) copies one whole row of B into every panel: finer work-items cost PoCL
// more in scheduling than the copy itself.
__kernel void pack_panels(__global float *P, __global const float *B, int b_off, int b_sb,
                          int ldb, int K, int N)
{
    const int k = get_global_id(0), b = get_global_id(1);
    const int panels = (N + TN - 1) / TN;
    if (k >= K) return;
    const __global float *src = B + b_off + b * b_sb + k * ldb;
    for (int p = 0; p < panels; p++) {
        __global float *dst = P + (((long)b * panels + p) * K + k) * TN;
        const int valid = min(TN, N - p * TN);
        if (valid == TN) {
            #pragma unroll
            for (int v = 0; v < NV; v++)
                *(__global float8 *)(dst + 8 * v) = *(const __global float8u *)(src + p * TN + 8 * v);
        } else {
            for (int j = 0; j < TN; j++) dst[j] = j < valid ? src[p * TN + j] : 0.0f;
        }
    }
}

// The GEMM on packed B (see pack_panels); A, C, bias and residual as in gemm_forward, except
// that C may be a padded map (c_ow > 0, see the epilogue); gemm_forward ignores those four.
// Work-item (panel, row tile, batch).
__kernel void gemm_packed_forward(
    __global float *C, int c_off, int c_sb, int ldc,
    __global const float *A, int a_off, int a_sb, int a_sm, int a_sk,
    __global const float *P,
    __global const float *bias, int has_bias,
    __global const float *R, int r_off, int has_residual,
    int M, int N, int K, int batches, int reduce_batches, int beta, int act,
    int c_ow, int c_wp, int c_pt, int c_pl)
{
    const int panel = get_global_id(0), tile_m = get_global_id(1), b = get_global_id(2);
    const int panels = (N + TN - 1) / TN;
    const int m0 = tile_m * TM, n0 = panel * TN;
    if (m0 >= M || panel >= panels) return;
    const int b_first = reduce_batches ? 0 : b;
    const int b_last = reduce_batches ? batches : b + 1;
    const int c_base = c_off + (reduce_batches ? 0 : b * c_sb);
    const int r_base = r_off + (reduce_batches ? 0 : b * c_sb);
    float8 acc[TM][NV];
    #pragma unroll
    for (int i = 0; i < TM; i++)
        #pragma unroll
        for (int v = 0; v < NV; v++) acc[i][v] = (float8)(0.0f);
    for (int bb = b_first; bb < b_last; bb++) {
        const __global float *a = A + a_off + bb * a_sb;
        const __global float8 *bp = (const __global float8 *)(P + (((long)bb * panels + panel) * K) * TN);
        const __global float *arow[TM];
        #pragma unroll
        for (int i = 0; i < TM; i++) arow[i] = a + min(m0 + i, M - 1) * a_sm;
        accumulate_tile(acc, arow, a_sk, (const __global float *)bp, TN, K);
    }
    for (int i = 0; i < TM; i++) {
        const int m = m0 + i;
        if (m >= M) break;
        const float bias_m = has_bias ? bias[m] : 0.0f;
        for (int v = 0; v < NV; v++) {
            const int n = n0 + 8 * v;
            // Padded output (c_ow > 0): column n is pixel (n / c_ow, n % c_ow) of a map
            // stored with c_pt rows and c_pl columns of zeros around it, c_wp wide.
            const bool whole = n + 8 <= N && (c_ow == 0 || n % c_ow + 8 <= c_ow);
            if (whole) {
                const int at = c_ow ? m * ldc + (n / c_ow + c_pt) * c_wp + n % c_ow + c_pl
                                    : m * ldc + n;
                store_c8(C, R, c_base, r_base, at, acc[i][v], bias_m, beta, act, has_residual);
                continue;
            }
            float lanes[8];
            *(float8u *)lanes = acc[i][v];
            for (int j = 0; j < 8 && n + j < N; j++) {
                const int nn = n + j;
                const int at = c_ow ? m * ldc + (nn / c_ow + c_pt) * c_wp + nn % c_ow + c_pl
                                    : m * ldc + nn;
                store_c(C, R, c_base, r_base, at, lanes[j], bias_m, beta, act, has_residual);
            }
        }
    }
}

// C(m,n) = sum over batches and k of A[b](m,k) * B[b](n,k): both operands contiguous along k
// (weight gradients: dz times the layer's input, summed over positions and samples).
//   A(m,k) at A[a_off + b*a_sb + m*lda + k], B(n,k) at B[b_off + b*b_sb + n*ldb + k]
//   C(m,n) at C[c_off + m*ldc + n] (written, or added to when beta is 1)
// With part_stride > 0, work-item (.., .., b) sums batch b alone into C + b*part_stride
// (beta ignored): partial sums for sum_parts, so that a work-group spanning the tiles of one
// batch keeps that batch's operands in cache while they all read it.
// Work-item (column tile of NT_N, row tile of NT_M[, batch]): see blocks.cl.
__kernel void gemm_nt_forward(
    __global float *C, int c_off, int ldc,
    __global const float *A, int a_off, int a_sb, int lda,
    __global const float *B, int b_off, int b_sb, int ldb,
    int M, int N, int K, int batches, int beta, int part_stride)
{
    const int n0 = get_global_id(0) * NT_N, m0 = get_global_id(1) * NT_M;
    const int b_first = part_stride ? get_global_id(2) : 0;
    const int b_last = part_stride ? b_first + 1 : batches;
    if (m0 >= M || n0 >= N || b_first >= batches) return;
    float8 acc[NT_M][NT_N];
    float tail[NT_M][NT_N];
    nt_zero(acc, tail);
    for (int b = b_first; b < b_last; b++) {
        const __global float *ar[NT_M], *br[NT_N];
        #pragma unroll
        for (int i = 0; i < NT_M; i++) ar[i] = A + a_off + b * a_sb + min(m0 + i, M - 1) * lda;
        #pragma unroll
        for (int j = 0; j < NT_N; j++) br[j] = B + b_off + b * b_sb + min(n0 + j, N - 1) * ldb;
        nt_accumulate(acc, tail, ar, br, 0, K);
    }
    const long base = c_off + (long)b_first * part_stride;
    for (int i = 0; i < NT_M && m0 + i < M; i++)
        for (int j = 0; j < NT_N && n0 + j < N; j++) {
            const long at = base + (m0 + i) * ldc + n0 + j;
            const float sum = nt_total(acc[i][j], tail[i][j]);
            C[at] = beta && !part_stride ? C[at] + sum : sum;
        }
}

// out[out_off + i] = beta*out[out_off + i] + sum over parts of part[k*count + i], i < count.
// Work-item i.
__kernel void sum_parts(__global float *out, int out_off, __global const float *part,
                        int count, int parts, int beta)
{
    const int i = get_global_id(0);
    if (i >= count) return;
    float acc = 0.0f;
    for (int k = 0; k < parts; k++) acc += part[(long)k * count + i];
    out[out_off + i] = beta ? out[out_off + i] + acc : acc;
}
