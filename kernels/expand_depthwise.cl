// A block's expand 1x1 convolution (+ ReLU6) and its stride-2 depthwise convolution (+ act)
// in one kernel, for the base's first stride-2 block: its 6x-wide expanded map (7.6 MB at
// 240x320) then never goes to memory. Apart, the two ran at the speed of that round trip and
// did not scale from one thread to two (~1.4 ms either way on PoCL); here each work-item
// computes the expanded rows its output band needs into a private buffer (L1) and reads
// the depthwise taps from there.
//
//   x (C_in, H, W)                  the block's input, one sample
//   we (C_exp, C_in), be (C_exp)    the expand's weights and bias; its activation is ReLU6
//   wd (C_exp, K, K), bd (C_exp)    the depthwise's (K = DW_K, stride 2, act `act`)
//   y (C_exp, OH, OW)               the depthwise's output
// The depthwise pads the expanded map by pt rows on top and pl columns on the left (zeros,
// after the ReLU6), to a padded width WP; output (oh, ow) reads padded (2*oh + kh, 2*ow + kw).
// The private buffer keeps each expanded row split by padded column parity (even columns,
// then odd), so every tap is one contiguous float8 load: the deinterleave happens once per
// expanded value, not once per tap.
// Work-item (band b, channel group g): output rows [b*BAND, b*BAND + BAND) (clipped to OH)
// of channels [g*TC, g*TC + TC) (clipped to C_exp); the expanded rows of a band's border are
// computed by both bands that read them (BAND 4, k3: 9 rows for 8, 12% more expand work).
// act: 0 none, 1 ReLU, 2 ReLU6. Requires W >= 16 and OW >= 8.

#include "common.cl"

#ifndef DW_K
#define DW_K 3
#endif
#ifndef TC
#define TC 4
#endif
#ifndef BAND
#define BAND 4
#endif
#ifndef HALF
#define HALF 96  // floats per parity of one buffered row: at least (WP + 1) / 2
#endif
#define E_ROWS (2 * (BAND - 1) + DW_K)

typedef float4 float4u __attribute__((aligned(4)));

inline float8 relu6_8(float8 v) { return v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f; }

// Stores 8 expanded columns starting at image column c into a buffered row (even half at
// e, odd half at e + HALF), by padded column parity.
inline void store_split(float *e, int c, int pl, float8 v) {
    const int p = c + pl;
    if ((p & 1) == 0) {
        *(float4u *)(e + p / 2) = v.even;
        *(float4u *)(e + HALF + p / 2) = v.odd;
    } else {
        *(float4u *)(e + (p + 1) / 2) = v.odd;
        *(float4u *)(e + HALF + (p - 1) / 2) = v.even;
    }
}

__kernel void expand_depthwise_forward(
    __global float *y, __global const float *x, __global const float *we,
    __global const float *be, __global const float *wd, __global const float *bd,
    int C_in, int C_exp, int H, int W, int OH, int OW, int pt, int pl, int WP, int act)
{
    const int band = get_global_id(0), group = get_global_id(1);
    const int oh0 = band * BAND, c0 = group * TC;
    if (oh0 >= OH || c0 >= C_exp) return;
    int ch[TC];
    #pragma unroll
    for (int i = 0; i < TC; i++) ch[i] = c0 + i < C_exp ? c0 + i : C_exp - 1;
    float e[TC][E_ROWS][2 * HALF];

    // 1. The expanded rows 2*oh0 - pt .. 2*oh0 - pt + E_ROWS - 1 (zeros outside the image).
    for (int j = 0; j < E_ROWS; j++) {
        const int r = 2 * oh0 - pt + j;
        if (r < 0 || r >= H) {
            for (int i = 0; i < TC; i++)
                for (int q = 0; q < 2 * HALF; q++) e[i][j][q] = 0.0f;
            continue;
        }
        for (int i = 0; i < TC; i++) {
            for (int p = 0; p < pl; p++) e[i][j][(p & 1) * HALF + p / 2] = 0.0f;
            for (int p = W + pl; p < WP; p++) e[i][j][(p & 1) * HALF + p / 2] = 0.0f;
        }
        const __global float *xr = x + (long)r * W;
        for (int cb = 0; cb < W; cb += 16) {
            const int cs = cb + 16 <= W ? cb : W - 16;  // the last pair slides left
            float8 acc[TC][2];
            #pragma unroll
            for (int i = 0; i < TC; i++) acc[i][0] = acc[i][1] = (float8)(be[ch[i]]);
            for (int k = 0; k < C_in; k++) {
                const __global float *xk = xr + (long)k * H * W + cs;
                const float8 x0 = *(const __global float8u *)xk;
                const float8 x1 = *(const __global float8u *)(xk + 8);
                #pragma unroll
                for (int i = 0; i < TC; i++) {
                    const float a = we[ch[i] * C_in + k];
                    acc[i][0] += a * x0;
                    acc[i][1] += a * x1;
                }
            }
            #pragma unroll
            for (int i = 0; i < TC; i++) {
                store_split(e[i][j], cs, pl, relu6_8(acc[i][0]));
                store_split(e[i][j], cs + 8, pl, relu6_8(acc[i][1]));
            }
        }
    }

    // 2. The depthwise over the buffer: tap kw of output column ow is padded column
    // 2*ow + kw, in the even half (kw even) or the odd half (kw odd) at ow + kw/2.
    const int oh_end = oh0 + BAND < OH ? oh0 + BAND : OH;
    #pragma unroll
    for (int i = 0; i < TC; i++) {
        const int c = ch[i];
        if (c0 + i >= C_exp) break;
        float wk[DW_K * DW_K];
        #pragma unroll
        for (int t = 0; t < DW_K * DW_K; t++) wk[t] = wd[c * DW_K * DW_K + t];
        const float b = bd[c];
        for (int oh = oh0; oh < oh_end; oh++) {
            __global float *yr = y + ((long)c * OH + oh) * OW;
            for (int ow0 = 0; ow0 < OW; ow0 += 8) {
                const int at = ow0 + 8 <= OW ? ow0 : OW - 8;
                float8 acc0 = (float8)(b), acc1 = (float8)(0.0f);
                #pragma unroll
                for (int kh = 0; kh < DW_K; kh++) {
                    const float *row = e[i][2 * (oh - oh0) + kh];
                    #pragma unroll
                    for (int kw = 0; kw < DW_K; kw++) {
                        const float8 in = *(const float8u *)(row + (kw & 1) * HALF + at + kw / 2);
                        if (kw & 1) acc1 += wk[kh * DW_K + kw] * in;
                        else acc0 += wk[kh * DW_K + kw] * in;
                    }
                }
                float8 v = acc0 + acc1;
                if (act == 1) v = v > 0.0f ? v : 0.0f;
                if (act == 2) v = relu6_8(v);
                *(__global float8u *)(yr + at) = v;
            }
        }
    }
}
