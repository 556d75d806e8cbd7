// The base's depthwise forward on maps at most 8 wide (the last stage's 7x7 at 224x224),
// stride 1, padding DW_K / 2 on every side, NCHW float32. act: 0 none, 1 ReLU, 2 ReLU6.
//
//   x (planes, DW_H, DW_W), w (C, DW_K, DW_K), bias (C); plane = n * C + c; y the same as
//   x, but DW_YP floats from one plane to the next (DW_YP >= DW_H * DW_W: a 1x1 GEMM
//   reading y wants its rows of B aligned to float8s; the floats between planes are left
//   undefined).
// Work-item: one plane. Its DW_H rows are loaded once into float8 registers (lanes past
// DW_W zeroed), every tap's horizontal offset is a swizzle of a row (zeros shifted in: the
// padding), and the DW_H output rows are summed in registers, tap by tap. No padded copy:
// depthwise_small_forward padded each plane in private memory and read it back as
// unaligned float8s (0.155 ms of the 7x7 stage's 1152-channel layers at 224x224).
// The map's sizes are defines, so the row and tap loops unroll with no bounds tests.

#include "common.cl"

#ifndef DW_K
#define DW_K 5
#endif
#ifndef DW_H
#define DW_H 7
#endif
#ifndef DW_W
#define DW_W 7
#endif
#ifndef DW_YP
#define DW_YP (DW_H * DW_W)
#endif
#define DW_P (DW_K / 2)

// Lane j of the result is lane j + d of v, or 0 past either end (d a constant once unrolled).
inline float8 lanes_shifted(float8 v, int d)
{
    const float z = 0.0f;
    switch (d) {
    case -4: return (float8)(z, z, z, z, v.s0123);
    case -3: return (float8)(z, z, z, v.s0, v.s1, v.s2, v.s3, v.s4);
    case -2: return (float8)(z, z, v.s0123, v.s4, v.s5);
    case -1: return (float8)(z, v.s0123, v.s4, v.s5, v.s6);
    case 1: return (float8)(v.s1234, v.s5, v.s6, v.s7, z);
    case 2: return (float8)(v.s2345, v.s6, v.s7, z, z);
    case 3: return (float8)(v.s3456, v.s7, z, z, z);
    case 4: return (float8)(v.s4567, z, z, z, z);
    default: return v;
    }
}

__kernel void depthwise_narrow_forward(
    __global float *y, __global const float *x, __global const float *w,
    __global const float *bias, int C, int act, int planes)
{
    const int plane = get_global_id(0);
    if (plane >= planes) return;
    const int c = plane % C;
    const __global float *xs = x + (long)plane * DW_H * DW_W;
    const int8 lane = (int8)(0, 1, 2, 3, 4, 5, 6, 7);
    float8 rows[DW_H];
    #pragma unroll
    for (int r = 0; r < DW_H; r++) {
        // A row whose float8 would run past the plane is read ending at the plane's end and
        // moved back into place (the next plane may be another work-item's, or absent).
        const int at = r * DW_W, late = at + 8 - DW_H * DW_W;
        const float8 v = late > 0 ? lanes_shifted(*(const __global float8u *)(xs + at - late),
                                                  late)
                                  : *(const __global float8u *)(xs + at);
        rows[r] = lane < DW_W ? v : 0.0f;
    }
    const float b = bias[c];
    float8 acc[DW_H];
    #pragma unroll
    for (int r = 0; r < DW_H; r++) acc[r] = (float8)(b);
    const __global float *wc = w + c * DW_K * DW_K;
    #pragma unroll
    for (int r = 0; r < DW_H; r++) {
        #pragma unroll
        for (int kw = 0; kw < DW_K; kw++) {
            const float8 in = lanes_shifted(rows[r], kw - DW_P);
            #pragma unroll
            for (int kh = 0; kh < DW_K; kh++) {
                const int oh = r - kh + DW_P;  // the output row this input row feeds at tap kh
                if (oh >= 0 && oh < DW_H) acc[oh] += wc[kh * DW_K + kw] * in;
            }
        }
    }
    __global float *ys = y + (long)plane * DW_YP;
    #pragma unroll
    for (int r = 0; r < DW_H; r++) {
        float8 v = acc[r];
        if (act == 1) v = v > 0.0f ? v : 0.0f;
        if (act == 2) v = v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f;
        // Rows in order: a float8 spilling into the next row is overwritten by that row's.
        if (r * DW_W + 8 <= DW_YP) {
            *(__global float8u *)(ys + r * DW_W) = v;
        } else {
            float out[8];
            *(float8u *)out = v;
            #pragma unroll
            for (int j = 0; j < DW_W; j++) ys[r * DW_W + j] = out[j];
        }
    }
}
