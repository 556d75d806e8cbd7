// The base's stride-2 depthwise forward on maps 8 to 32 wide (TensorFlow SAME padding:
// DW_PT rows above, DW_PL columns left, the rest below and right), NCHW float32, as
// depthwise_rows.cl does it at stride 1: input rows held in float8 registers, each tap's
// window a swizzle across them, its even lanes taken (the stride). act: 0 none, 1 ReLU,
// 2 ReLU6.
//
//   x (planes, DW_H, DW_W), w (C, DW_K, DW_K), bias (C); plane = n * C + c;
//   y (planes, DW_OH, DW_OW), DW_YP floats from one plane to the next (>= DW_OH * DW_OW).
// Work-item (band, plane): output rows band * DW_R .. + DW_R - 1 (those below DW_OH not
// stored), DW_V float8s a row. An input row's DW_IV float8s are read once, the last ending
// at the row's end and moved back (lanes past DW_W zero: the right padding). Output rows
// of 8 or more end with a float8 at the row's end; narrower ones (DW_R is then the whole
// map) are stored in order, a float8 each, the next row's store overwriting the spill.

#include "common.cl"
#include "lanes.cl"

#ifndef DW_K
#define DW_K 5
#endif
#ifndef DW_H
#define DW_H 14
#endif
#ifndef DW_W
#define DW_W 14
#endif
#ifndef DW_OH
#define DW_OH 7
#endif
#ifndef DW_OW
#define DW_OW 7
#endif
#ifndef DW_PT
#define DW_PT 1
#endif
#ifndef DW_PL
#define DW_PL 1
#endif
#ifndef DW_IV
#define DW_IV 2
#endif
#ifndef DW_V
#define DW_V 1
#endif
#ifndef DW_R
#define DW_R 7
#endif
#ifndef DW_YP
#define DW_YP (DW_OH * DW_OW)
#endif
#define DW_IN_ROWS (2 * DW_R + DW_K - 2)  // input rows a band reads

__kernel void depthwise_stride2_forward(
    __global float *y, __global const float *x, __global const float *w,
    __global const float *bias, int C, int act, int planes)
{
    const int band = get_global_id(0), plane = get_global_id(1);
    const int oh0 = band * DW_R;
    if (oh0 >= DW_OH || plane >= planes) return;
    const int c = plane % C;
    const __global float *xs = x + (long)plane * DW_H * DW_W;
    const __global float *wc = w + c * DW_K * DW_K;
    const float8 zero = (float8)(0.0f);
    float8 acc[DW_R][DW_V];
    const float b = bias[c];
    #pragma unroll
    for (int r = 0; r < DW_R; r++)
        #pragma unroll
        for (int v = 0; v < DW_V; v++) acc[r][v] = (float8)(b);
    #pragma unroll
    for (int i = 0; i < DW_IN_ROWS; i++) {
        const int ih = 2 * oh0 - DW_PT + i;
        if (ih >= 0 && ih < DW_H) {  // else the top or bottom padding
            const __global float *xr = xs + ih * DW_W;
            // row[1 + u] holds input columns 8u .. 8u + 7; zeros around them.
            float8 row[2 * DW_V + 2];
            #pragma unroll
            for (int u = 0; u < 2 * DW_V + 2; u++) row[u] = zero;
            #pragma unroll
            for (int u = 0; u < DW_IV - 1; u++)
                row[u + 1] = *(const __global float8u *)(xr + 8 * u);
            row[DW_IV] = lanes_across(zero, *(const __global float8u *)(xr + DW_W - 8), zero,
                                      8 * DW_IV - DW_W);
            #pragma unroll
            for (int kw = 0; kw < DW_K; kw++) {
                #pragma unroll
                for (int v = 0; v < DW_V; v++) {
                    // Input columns 16v + kw - DW_PL + 2l, l = 0..7: the even lanes of 16.
                    const float8 lo = lanes_across(row[2 * v], row[2 * v + 1], row[2 * v + 2],
                                                   kw - DW_PL);
                    const float8 hi = lanes_across(row[2 * v + 1], row[2 * v + 2],
                                                   row[2 * v + 3], kw - DW_PL);
                    const float8 in = (float8)(lo.even, hi.even);
                    #pragma unroll
                    for (int kh = 0; kh < DW_K; kh++) {
                        // The band row this input row feeds at tap kh, if any.
                        const int r = (i - kh) / 2;
                        if (i >= kh && (i - kh) % 2 == 0 && r < DW_R)
                            acc[r][v] += wc[kh * DW_K + kw] * in;
                    }
                }
            }
        }
    }
    #pragma unroll
    for (int r = 0; r < DW_R; r++) {
        if (oh0 + r >= DW_OH) continue;
        __global float *yr = y + (long)plane * DW_YP + (oh0 + r) * DW_OW;
        float8 out[DW_V + 1];
        out[0] = zero;
        #pragma unroll
        for (int v = 0; v < DW_V; v++) {
            float8 o = acc[r][v];
            if (act == 1) o = o > 0.0f ? o : 0.0f;
            if (act == 2) o = o > 0.0f ? (o < 6.0f ? o : 6.0f) : 0.0f;
            out[v + 1] = o;
        }
#if DW_OW >= 8
        #pragma unroll
        for (int v = 0; v < DW_V - 1; v++) *(__global float8u *)(yr + 8 * v) = out[v + 1];
        *(__global float8u *)(yr + DW_OW - 8) = lanes_across(out[DW_V - 1], out[DW_V], zero,
                                                             DW_OW - 8 * DW_V);
#else
        if ((oh0 + r) * DW_OW + 8 <= DW_YP) {
            *(__global float8u *)yr = out[1];
        } else {
            float lanes[8];
            *(float8u *)lanes = out[1];
            #pragma unroll
            for (int j = 0; j < DW_OW; j++) yr[j] = lanes[j];
        }
#endif
    }
}
