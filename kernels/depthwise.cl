// Depthwise convolution, NCHW float32, for CPU OpenCL (PoCL): the forward and the weight
// gradient (the input gradient is the forward over the padded output gradient, with the
// kernel turned half a turn: conv.py). Inputs are padded explicitly first (conv.cl's
// pad_forward). act: 0 none, 1 ReLU, 2 ReLU6.

#include "common.cl"

// Depthwise convolution (groups == C_in == C_out, dilation 1) on an explicitly padded input
// (pad_forward), with the kernel size DW_K and stride DW_S fixed at build time so the tap
// loops unroll into straight float8 code with no bounds checks. Work-item (oh, plane)
// computes a whole output row, 8 columns at a time; the last block may read past the row
// (into the next row, or the buffer's slack) for columns it does not store.
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

__kernel void depthwise_forward(
    __global float *y, __global const float *xp, __global const float *w,
    __global const float *bias, int C, int HP, int WP, int OH, int OW, int act, int planes)
{
    const int oh = get_global_id(0), plane = get_global_id(1);
    if (oh >= OH || plane >= planes) return;
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
    const __global float *x0 = xp + ((long)plane * HP + oh * DW_S) * WP;
    __global float *yr = y + ((long)plane * OH + oh) * OW;
    for (int ow0 = 0; ow0 < OW; ow0 += 8) {
        float8 acc0 = (float8)(b), acc1 = (float8)(0.0f);
        #pragma unroll
        for (int kh = 0; kh < DW_K; kh++) {
            const __global float *seg = x0 + kh * WP + ow0 * DW_S;
            #pragma unroll
            for (int kw = 0; kw < DW_K; kw++) {
                if (kw & 1) acc1 += wk[kh * DW_K + kw] * tap_inputs(seg, kw);
                else acc0 += wk[kh * DW_K + kw] * tap_inputs(seg, kw);
            }
        }
        float8 v = acc0 + acc1;
        if (act == 1) v = v > 0.0f ? v : 0.0f;
        if (act == 2) v = v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f;
        if (ow0 + 8 <= OW) {
            *(__global float8u *)(yr + ow0) = v;
        } else {
            float out[8];
            *(float8u *)out = v;
            for (int j = 0; ow0 + j < OW; j++) yr[ow0 + j] = out[j];
        }
    }
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
