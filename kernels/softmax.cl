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
