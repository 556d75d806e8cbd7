// im2col for a dense stride-2 convolution on one sample (the base's stem: 3 channels, 3x3),
// a float8 of output positions at a time: a stride-2 row of inputs is the even lanes of two
// float8 loads. conv.cl's im2col_forward, general (any stride, dilation, batch) and scalar,
// moved 6 GB/s; this is its forward-path twin for the base's first layer.
//
//   x (C, H, W) one sample; col (C*K*K, OH*OW): row r = (c*K + kh)*K + kw holds
//   x[c, 2*oh + kh - pt, 2*ow + kw - pl] at column oh*OW + ow, zero outside the map.
// Work-item (oh, r) writes the OW columns of output row oh in col row r, 8 at a time; the
// last 8 slide left to end at OW (OW >= 8), rewriting a few with the same values.
// K = IC_K (a define).

#include "common.cl"

#ifndef IC_K
#define IC_K 3
#endif

__kernel void im2col_stride2_forward(__global float *col, __global const float *x, int C, int H,
                                     int W, int OH, int OW, int pt, int pl)
{
    const int oh = get_global_id(0), r = get_global_id(1);
    if (oh >= OH || r >= C * IC_K * IC_K) return;
    const int c = r / (IC_K * IC_K), kh = (r / IC_K) % IC_K, kw = r % IC_K;
    const int row = 2 * oh + kh - pt;
    __global float *out = col + (long)r * OH * OW + (long)oh * OW;
    const __global float *xr = x + ((long)c * H + row) * W;
    for (int ow0 = 0; ow0 < OW; ow0 += 8) {
        const int at = ow0 + 8 <= OW ? ow0 : OW - 8;
        const int first = 2 * at + kw - pl;
        float8 v;
        if (row < 0 || row >= H) {
            v = (float8)(0.0f);
        } else if (first >= 0 && first + 15 < W) {
            const float8 lo = *(const __global float8u *)(xr + first);
            const float8 hi = *(const __global float8u *)(xr + first + 8);
            v = (float8)(lo.even, hi.even);
        } else {
            float lanes[8];
            for (int j = 0; j < 8; j++) {
                const int in = first + 2 * j;
                lanes[j] = in >= 0 && in < W ? xr[in] : 0.0f;
            }
            v = *(float8u *)lanes;
        }
        *(__global float8u *)(out + at) = v;
    }
}
