// Softmax over the channel axis of an NCHW map, at every (n, h, w): stable (max subtracted).
// Work-item (position, n) with position = h*W + w.
__kernel void softmax_forward(__global float *y, __global const float *x, int C, int HW)
{
    const int pos = get_global_id(0), n = get_global_id(1);
    if (pos >= HW) return;
    const __global float *src = x + (long)n * C * HW + pos;
    __global float *dst = y + (long)n * C * HW + pos;
    float peak = src[0];
    for (int c = 1; c < C; c++) peak = max(peak, src[(long)c * HW]);
    float total = 0.0f;
    for (int c = 0; c < C; c++) {
        const float e = exp(src[(long)c * HW] - peak);
        dst[(long)c * HW] = e;
        total += e;
    }
    const float inv = 1.0f / total;
    for (int c = 0; c < C; c++) dst[(long)c * HW] *= inv;
}

// Two-category probabilities from one score per cell (the squared-error patches,
// trained towards +1 for the category and -1 for background):
//   p = clamp((s + 1) / 2, 0, 1);  y[n, 0] = 1 - p, y[n, 1] = p.   Work-item (position, n).
__kernel void score_probabilities_forward(__global float *y, __global const float *s, int HW)
{
    const int pos = get_global_id(0), n = get_global_id(1);
    if (pos >= HW) return;
    const float p = clamp((s[(long)n * HW + pos] + 1.0f) * 0.5f, 0.0f, 1.0f);
    y[(long)n * 2 * HW + pos] = 1.0f - p;
    y[(long)n * 2 * HW + HW + pos] = p;
}
