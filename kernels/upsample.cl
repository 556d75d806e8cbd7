// Per-cell maps spread smoothly over a frame: bilinear between cell centres, clamped at the
// edges (a pixel beyond the outermost centres takes the outermost cells' values).
//   x: (C, h, w) per-cell values     y: (C, H, W) per-pixel values, from element y_at of
//   the y buffer (a hypercolumn writes the upsampled map after the finer map's channels)
// Pixel (py, px) samples the cell grid at ((py + 0.5) h / H - 0.5, (px + 0.5) w / W - 0.5).
// Work-item (px, py) writes y[:, py, px] for every channel.
__kernel void upsample_bilinear(__global float *y_buffer, int y_at, __global const float *x,
                                int channels, int h, int w, int height, int width)
{
    __global float *y = y_buffer + y_at;
    const int px = get_global_id(0), py = get_global_id(1);
    if (px >= width || py >= height) return;
    const float sy = clamp((py + 0.5f) * h / height - 0.5f, 0.0f, (float)(h - 1));
    const float sx = clamp((px + 0.5f) * w / width - 0.5f, 0.0f, (float)(w - 1));
    const int y0 = (int)sy, x0 = (int)sx;
    const int y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1);
    const float fy = sy - y0, fx = sx - x0;
    for (int c = 0; c < channels; c++) {
        __global const float *plane = x + (size_t)c * h * w;
        const float top = plane[y0 * w + x0] + fx * (plane[y0 * w + x1] - plane[y0 * w + x0]);
        const float bottom = plane[y1 * w + x0] + fx * (plane[y1 * w + x1] - plane[y1 * w + x0]);
        y[((size_t)c * height + py) * width + px] = top + fy * (bottom - top);
    }
}
