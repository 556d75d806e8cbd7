// Losses over a label map, as three passes: per cell, one reduction, then scaling.
// Cells are (n, position) of an NCHW logit map; labels hold one int per cell, -1 = unlabeled.

// Class-weighted softmax cross-entropy, per cell. Work-item (position, n):
//   cell_loss = w[y] * -log softmax(x)[y],  cell_weight = w[y]   (both 0 when unlabeled)
//   dx (unnormalised) = w[y] * (softmax(x) - onehot(y))       (0 when unlabeled)
__kernel void cross_entropy_cells(__global float *dx, __global float *cell_loss,
                                  __global float *cell_weight, __global const float *x,
                                  __global const int *labels, __global const float *class_w,
                                  int C, int HW)
{
    const int pos = get_global_id(0), n = get_global_id(1);
    if (pos >= HW) return;
    const int cell = n * HW + pos;
    const int y = labels[cell];
    const __global float *src = x + (long)n * C * HW + pos;
    __global float *grad = dx + (long)n * C * HW + pos;
    if (y < 0 || y >= C) {
        for (int c = 0; c < C; c++) grad[(long)c * HW] = 0.0f;
        cell_loss[cell] = 0.0f;
        cell_weight[cell] = 0.0f;
        return;
    }
    float peak = src[0];
    for (int c = 1; c < C; c++) peak = max(peak, src[(long)c * HW]);
    float total = 0.0f;
    for (int c = 0; c < C; c++) total += exp(src[(long)c * HW] - peak);
    const float log_total = log(total);
    const float w = class_w[y];
    for (int c = 0; c < C; c++) {
        const float p = exp(src[(long)c * HW] - peak - log_total);
        grad[(long)c * HW] = w * (p - (c == y ? 1.0f : 0.0f));
    }
    cell_loss[cell] = w * (log_total + peak - src[(long)y * HW]);
    cell_weight[cell] = w;
}

// The seed's masked squared error on one output channel, per cell. Targets in {-1, 0, +1},
// 0 = unlabeled: cell_loss = (p - t)^2 |t|, cell_weight = |t|, dx = 2 (p - t) |t|.
__kernel void masked_squared_error_cells(__global float *dx, __global float *cell_loss,
                                         __global float *cell_weight, __global const float *p,
                                         __global const float *targets, int cells)
{
    const int cell = get_global_id(0);
    if (cell >= cells) return;
    const float t = targets[cell], m = fabs(t), d = p[cell] - t;
    dx[cell] = 2.0f * d * m;
    cell_loss[cell] = d * d * m;
    cell_weight[cell] = m;
}

// One work-item sums the per-cell terms: loss[0] = sum(cell_loss) / sum(cell_weight) and
// scale[0] = 1 / sum(cell_weight), both 0 when no cell is labeled. Summed in blocks of
// 8 lanes to keep float rounding low over many cells.
__kernel void loss_reduce(__global float *loss, __global float *scale,
                          __global const float *cell_loss, __global const float *cell_weight,
                          int cells)
{
    if (get_global_id(0) != 0) return;
    float l[8] = {0}, w[8] = {0};
    for (int i = 0; i < cells; i++) { l[i & 7] += cell_loss[i]; w[i & 7] += cell_weight[i]; }
    float lt = 0.0f, wt = 0.0f;
    for (int j = 0; j < 8; j++) { lt += l[j]; wt += w[j]; }
    loss[0] = wt > 0.0f ? lt / wt : 0.0f;
    scale[0] = wt > 0.0f ? 1.0f / wt : 0.0f;
}

// dx *= scale[0], 16 elements a work-item.
__kernel void loss_scale_gradient(__global float *dx, __global const float *scale, int count)
{
    const int i0 = get_global_id(0) * 16;
    const float s = scale[0];
    for (int i = i0; i < min(i0 + 16, count); i++) dx[i] *= s;
}
