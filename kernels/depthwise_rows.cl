// The base's depthwise forward on maps 8 to 8 * DW_V wide, stride 1, padding DW_K / 2 on
// every side, NCHW float32: like depthwise_narrow.cl, rows held in float8 registers and
// every tap's horizontal offset a swizzle, here across a row's DW_V float8s, for a band of
// DW_R output rows per work-item. act: 0 none, 1 ReLU, 2 ReLU6.
//
//   x (planes, DW_H, DW_W), w (C, DW_K, DW_K), bias (C); plane = n * C + c; y the same as
//   x, but DW_YP floats from one plane to the next (as depthwise_narrow.cl's).
// Work-item (band, plane): output rows band * DW_R .. + DW_R - 1 (those below DW_H not
// stored). Each input row the band needs is read once: its last float8 ends at the row's
// end and is moved back into place, so every read stays inside the row and the lanes past
// DW_W come out zero (the right padding). All stores stay inside the band's rows.
// DW_SEG > 1 (rows of DW_SEG * DW_V whole float8s): work-item (band * DW_SEG + segment,
// plane) takes one segment of its band's rows, reading the float8 either side of it too.

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
#ifndef DW_V
#define DW_V 2
#endif
#ifndef DW_R
#define DW_R 4
#endif
#ifndef DW_YP
#define DW_YP (DW_H * DW_W)
#endif
#ifndef DW_SEG
#define DW_SEG 1
#endif
#define DW_P (DW_K / 2)
#define DW_LATE (8 * DW_V - DW_W)  // lanes of the last float8 past the row's end

__kernel void depthwise_rows_forward(
    __global float *y, __global const float *x, __global const float *w,
    __global const float *bias, int C, int act, int planes)
{
    const int band = get_global_id(0) / DW_SEG, seg = get_global_id(0) % DW_SEG;
    const int plane = get_global_id(1), oh0 = band * DW_R, c0 = seg * 8 * DW_V;
    if (oh0 >= DW_H || plane >= planes) return;
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
    for (int i = 0; i < DW_R + DW_K - 1; i++) {
        const int ih = oh0 - DW_P + i;
        if (ih >= 0 && ih < DW_H) {  // else the top or bottom padding
            const __global float *xr = xs + ih * DW_W + c0;
            float8 row[DW_V + 2];
#if DW_SEG > 1
            // A segment of the row: the float8s either side of it, or the padding's zeros.
            row[0] = seg > 0 ? *(const __global float8u *)(xr - 8) : zero;
            row[DW_V + 1] = seg < DW_SEG - 1 ? *(const __global float8u *)(xr + 8 * DW_V)
                                             : zero;
            #pragma unroll
            for (int v = 0; v < DW_V; v++) row[v + 1] = *(const __global float8u *)(xr + 8 * v);
#else
            row[0] = zero;
            row[DW_V + 1] = zero;
            #pragma unroll
            for (int v = 0; v < DW_V - 1; v++)
                row[v + 1] = *(const __global float8u *)(xr + 8 * v);
            row[DW_V] = lanes_across(zero, *(const __global float8u *)(xr + DW_W - 8), zero,
                                     DW_LATE);
#endif
            #pragma unroll
            for (int kw = 0; kw < DW_K; kw++) {
                #pragma unroll
                for (int v = 0; v < DW_V; v++) {
                    const float8 in = lanes_across(row[v], row[v + 1], row[v + 2], kw - DW_P);
                    #pragma unroll
                    for (int kh = 0; kh < DW_K; kh++) {
                        const int r = i - kh;  // the band row this input row feeds at tap kh
                        if (r >= 0 && r < DW_R) acc[r][v] += wc[kh * DW_K + kw] * in;
                    }
                }
            }
        }
    }
    #pragma unroll
    for (int r = 0; r < DW_R; r++) {
        if (oh0 + r >= DW_H) continue;
        __global float *yr = y + (long)plane * DW_YP + (oh0 + r) * DW_W + c0;
        float8 out[DW_V + 1];
        out[0] = zero;
        #pragma unroll
        for (int v = 0; v < DW_V; v++) {
            float8 o = acc[r][v];
            if (act == 1) o = o > 0.0f ? o : 0.0f;
            if (act == 2) o = o > 0.0f ? (o < 6.0f ? o : 6.0f) : 0.0f;
            out[v + 1] = o;
        }
#if DW_SEG > 1
        #pragma unroll
        for (int v = 0; v < DW_V; v++) *(__global float8u *)(yr + 8 * v) = out[v + 1];
#else
        #pragma unroll
        for (int v = 0; v < DW_V - 1; v++) *(__global float8u *)(yr + 8 * v) = out[v + 1];
        // The last float8 ends at the row's end (it rewrites lanes the one before it wrote).
        *(__global float8u *)(yr + DW_W - 8) = lanes_across(out[DW_V - 1], out[DW_V], zero,
                                                            -DW_LATE);
#endif
    }
}
