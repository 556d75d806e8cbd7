// Losses over a label map, as three passes: per cell, one reduction, then scaling.
// Cells are (n, position) of an NCHW logit map; labels hold one int per cell, -1 = unlabeled.

// Class-weighted softmax cross-entropy over logits shifted by a fixed offset per category
// (logit adjustment: the offset is part of the loss only, not of the patch's verdict):
//   z = x + offset,  cell_loss = w[y] * -log softmax(z)[y],  cell_weight = w[y]  (0 unlabeled)
//   dx (unnormalised) = w[y] * (softmax(z) - onehot(y))       (0 when unlabeled)
// Work-item (block of 8 positions, n): the 8 cells in float8 lanes (PoCL runs one work-item
// per cell as a scalar loop: 65 ns a cell, against a few here); a block cut by the end of
// the map takes the scalar path, cell by cell.
#include "common.cl"
typedef int8 int8u __attribute__((aligned(4)));

inline void cross_entropy_cell(__global float *grad, __global float *cell_loss,
                               __global float *cell_weight, const __global float *src,
                               const __global float *class_w, const __global float *offset,
                               int y, int C, int HW)
{
    if (y < 0 || y >= C) {
        for (int c = 0; c < C; c++) grad[(long)c * HW] = 0.0f;
        *cell_loss = 0.0f;
        *cell_weight = 0.0f;
        return;
    }
    float peak = src[0] + offset[0];
    for (int c = 1; c < C; c++) peak = max(peak, src[(long)c * HW] + offset[c]);
    float total = 0.0f;
    for (int c = 0; c < C; c++) total += exp(src[(long)c * HW] + offset[c] - peak);
    const float log_total = log(total);
    const float w = class_w[y];
    for (int c = 0; c < C; c++) {
        const float p = exp(src[(long)c * HW] + offset[c] - peak - log_total);
        grad[(long)c * HW] = w * (p - (c == y ? 1.0f : 0.0f));
    }
    *cell_loss = w * (log_total + peak - src[(long)y * HW] - offset[y]);
    *cell_weight = w;
}

__kernel void cross_entropy_cells(__global float *dx, __global float *cell_loss,
                                  __global float *cell_weight, __global const float *x,
                                  __global const int *labels, __global const float *class_w,
                                  __global const float *offset, int C, int HW)
{
    const int pos0 = get_global_id(0) * 8, n = get_global_id(1);
    if (pos0 >= HW) return;
    const int cell0 = n * HW + pos0;
    const __global float *src = x + (long)n * C * HW + pos0;
    __global float *grad = dx + (long)n * C * HW + pos0;
    if (pos0 + 8 > HW) {
        for (int j = 0; pos0 + j < HW; j++)
            cross_entropy_cell(grad + j, cell_loss + cell0 + j, cell_weight + cell0 + j,
                               src + j, class_w, offset, labels[cell0 + j], C, HW);
        return;
    }
    const int8 y = *(const __global int8u *)(labels + cell0);
    const int8 valid = (y >= 0) & (y < C);
    int ys[8];
    float ws[8];
    *(int8u *)ys = y;
    for (int j = 0; j < 8; j++) ws[j] = ys[j] >= 0 && ys[j] < C ? class_w[ys[j]] : 0.0f;
    const float8 w = *(float8u *)ws;
    float8 peak = *(const __global float8u *)src + offset[0];
    for (int c = 1; c < C; c++) {
        const float8 v = *(const __global float8u *)(src + (long)c * HW) + offset[c];
        peak = v > peak ? v : peak;
    }
    float8 total = (float8)(0.0f), picked = (float8)(0.0f);
    for (int c = 0; c < C; c++) {
        const float8 v = *(const __global float8u *)(src + (long)c * HW) + offset[c];
        total += exp(v - peak);
        picked = y == c ? v : picked;
    }
    const float8 log_total = log(total);
    for (int c = 0; c < C; c++) {
        const float8 v = *(const __global float8u *)(src + (long)c * HW) + offset[c];
        const float8 p = exp(v - peak - log_total);
        const float8 g = w * (p - (y == c ? (float8)(1.0f) : (float8)(0.0f)));
        *(__global float8u *)(grad + (long)c * HW) = valid ? g : 0.0f;
    }
    *(__global float8u *)(cell_loss + cell0) = valid ? w * (log_total + peak - picked) : 0.0f;
    *(__global float8u *)(cell_weight + cell0) = w;
}

// The masked squared error on one output channel, per cell. Targets in {-1, 0, +1},
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
