// On-device preprocessing: a uint8 RGB frame, interleaved (H_in, W_in, 3), resized with
// bilinear interpolation (OpenCV's INTER_LINEAR convention: pixel centres at +0.5, edges
// clamped) and normalised, x = (p - offset) / scale, into channel planes of an NCHW tensor.
// `swap_rb` reads BGR frames. Work-item (output row, batch slot is fixed by out_off).

inline void source_index(int dst, int in_size, float ratio, int *i0, int *i1, float *f)
{
    const float s = ((float)dst + 0.5f) * ratio - 0.5f;
    int lo = s < 0.0f ? -1 : (int)s;  // floor: s >= -0.5 (floor() is a call on PoCL)
    float frac = s - (float)lo;
    if (lo < 0) { lo = 0; frac = 0.0f; }
    if (lo >= in_size - 1) { lo = in_size - 1; frac = 0.0f; }
    *i0 = lo;
    *i1 = min(lo + 1, in_size - 1);
    *f = frac;
}

__kernel void frame_preprocess(__global float *out, int out_off,
                               __global const uchar *frame, int H_in, int W_in,
                               int H_out, int W_out, float offset, float scale, int swap_rb)
{
    const int oy = get_global_id(0);
    if (oy >= H_out) return;
    int y0, y1;
    float fy;
    source_index(oy, H_in, (float)H_in / (float)H_out, &y0, &y1, &fy);
    const __global uchar *r0 = frame + (long)y0 * W_in * 3, *r1 = frame + (long)y1 * W_in * 3;
    const float inv = 1.0f / scale;
    const long plane = (long)H_out * W_out;
    __global float *dst = out + out_off + (long)oy * W_out;
    const float ratio_x = (float)W_in / (float)W_out;
    for (int ox = 0; ox < W_out; ox++) {
        int x0, x1;
        float fx;
        source_index(ox, W_in, ratio_x, &x0, &x1, &fx);
        for (int c = 0; c < 3; c++) {
            const int sc = swap_rb ? 2 - c : c;
            const float top = (float)r0[x0 * 3 + sc] * (1.0f - fx) + (float)r0[x1 * 3 + sc] * fx;
            const float bottom = (float)r1[x0 * 3 + sc] * (1.0f - fx) + (float)r1[x1 * 3 + sc] * fx;
            dst[c * plane + ox] = (top * (1.0f - fy) + bottom * fy - offset) * inv;
        }
    }
}
