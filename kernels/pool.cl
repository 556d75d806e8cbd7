// Global average pooling over each (n, c) plane of an NCHW map. Work-item n*C + c.

// y (N*C) = mean over H*W of x (N*C, H*W)
__kernel void global_avg_pool_forward(__global float *y, __global const float *x,
                                      int planes, int hw)
{
    const int p = get_global_id(0);
    if (p >= planes) return;
    const __global float *src = x + (long)p * hw;
    float acc = 0.0f;
    for (int i = 0; i < hw; i++) acc += src[i];
    y[p] = acc / (float)hw;
}

// dx (N*C, H*W) = dy (N*C) / (H*W) at every position
__kernel void global_avg_pool_backward_input(__global float *dx, __global const float *dy,
                                             int planes, int hw)
{
    const int p = get_global_id(0);
    if (p >= planes) return;
    const float g = dy[p] / (float)hw;
    __global float *dst = dx + (long)p * hw;
    for (int i = 0; i < hw; i++) dst[i] = g;
}
