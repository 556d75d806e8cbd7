// On-device preprocessing: a uint8 RGB frame, interleaved (H_in, W_in, 3), resized with
// bilinear interpolation (OpenCV's INTER_LINEAR convention: pixel centres at +0.5, edges
// clamped) and normalised, x = (p - offset) / scale, into channel planes of an NCHW tensor.
// `swap_rb` reads BGR frames. Work-item (block of 8 output columns, output row); the batch
// slot is fixed by out_off. SAME_SIZE (a define): the frame has the output's size, so no
// interpolation (at 224x224 the general kernel, a row per work-item and a scalar loop over
// it, took 0.5 ms of a 9 ms frame).

#include "common.cl"

#ifndef SAME_SIZE
#define SAME_SIZE 0
#endif

// Source pixel and weight of an output coordinate; ternaries (min() is a call on PoCL).
inline void source_index(int dst, int in_size, float ratio, int *i0, int *i1, float *f)
{
    const float s = ((float)dst + 0.5f) * ratio - 0.5f;
    int lo = s < 0.0f ? -1 : (int)s;  // floor: s >= -0.5 (floor() is a call on PoCL)
    float frac = s - (float)lo;
    if (lo < 0) { lo = 0; frac = 0.0f; }
    if (lo >= in_size - 1) { lo = in_size - 1; frac = 0.0f; }
    *i0 = lo;
    *i1 = lo + 1 < in_size ? lo + 1 : in_size - 1;
    *f = frac;
}

__kernel void frame_preprocess(__global float *out, int out_off,
                               __global const uchar *frame, int H_in, int W_in,
                               int H_out, int W_out, float offset, float scale, int swap_rb)
{
    const int x0 = get_global_id(0) * 8, oy = get_global_id(1);
    if (oy >= H_out || x0 >= W_out) return;
    const float inv = 1.0f / scale;
    const long plane = (long)H_out * W_out;
    const int c0 = swap_rb ? 2 : 0, c2 = 2 - c0;
    float lanes[3][8];
#if SAME_SIZE
    const __global uchar *row = frame + ((long)oy * W_in + x0) * 3;
    #pragma unroll
    for (int j = 0; j < 8; j++) {
        const int at = (x0 + j < W_out ? j : 0) * 3;  // past the row's end: any pixel
        lanes[0][j] = ((float)row[at + c0] - offset) * inv;
        lanes[1][j] = ((float)row[at + 1] - offset) * inv;
        lanes[2][j] = ((float)row[at + c2] - offset) * inv;
    }
#else
    int y0, y1;
    float fy;
    source_index(oy, H_in, (float)H_in / (float)H_out, &y0, &y1, &fy);
    const __global uchar *r0 = frame + (long)y0 * W_in * 3, *r1 = frame + (long)y1 * W_in * 3;
    const float ratio_x = (float)W_in / (float)W_out;
    #pragma unroll
    for (int j = 0; j < 8; j++) {
        int a, b;
        float fx;
        source_index(x0 + j < W_out ? x0 + j : W_out - 1, W_in, ratio_x, &a, &b, &fx);
        a *= 3;
        b *= 3;
        #pragma unroll
        for (int c = 0; c < 3; c++) {
            const int sc = c == 0 ? c0 : (c == 1 ? 1 : c2);
            const float top = (float)r0[a + sc] * (1.0f - fx) + (float)r0[b + sc] * fx;
            const float bottom = (float)r1[a + sc] * (1.0f - fx) + (float)r1[b + sc] * fx;
            lanes[c][j] = (top * (1.0f - fy) + bottom * fy - offset) * inv;
        }
    }
#endif
    __global float *dst = out + out_off + (long)oy * W_out + x0;
    if (x0 + 8 <= W_out) {
        #pragma unroll
        for (int c = 0; c < 3; c++) *(__global float8u *)(dst + c * plane) = *(float8u *)lanes[c];
        return;
    }
    for (int c = 0; c < 3; c++)
        for (int j = 0; j < 8 && x0 + j < W_out; j++) dst[c * plane + j] = lanes[c][j];
}
