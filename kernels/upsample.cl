// Per-cell maps spread smoothly over a frame: bilinear between cell centres, clamped at the
// edges (a pixel beyond the outermost centres takes the outermost cells' values).
//   x: (C, h, w) per-cell values     y: (C, H, W) per-pixel values, from element y_at of
//   the y buffer (a hypercolumn writes the upsampled map after the finer map's channels)
// Pixel (py, px) samples the cell grid at ((py + 0.5) h / H - 0.5, (px + 0.5) w / W - 0.5).
// Work-item (px, py) writes y[:, py, px] for every channel.

// The cell below pixel p's sample ((2p + 1) n - size) / (2 size) and the fraction past it,
// from the integer numerator: exact where the float division is not (a GPU's division may
// be 2.5 ulp off, which at its own size moved a sample just below its cell and made the copy
// a blend of two). Clamped at both ends.
void source_cell(int p, int n, int size, int *cell, float *fraction)
{
    const int numerator = (2 * p + 1) * n - size, twice = 2 * size;
    if (numerator <= 0) {
        *cell = 0;
        *fraction = 0.0f;
        return;
    }
    const int below = numerator / twice;
    if (below >= n - 1) {
        *cell = n - 1;
        *fraction = 0.0f;
        return;
    }
    *cell = below;
    *fraction = (float)(numerator - below * twice) / (float)twice;
}

__kernel void upsample_bilinear(__global float *y_buffer, int y_at, __global const float *x,
                                int channels, int h, int w, int height, int width)
{
    __global float *y = y_buffer + y_at;
    const int px = get_global_id(0), py = get_global_id(1);
    if (px >= width || py >= height) return;
    int y0, x0;
    float fy, fx;
    source_cell(py, h, height, &y0, &fy);
    source_cell(px, w, width, &x0, &fx);
    const int y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1);
    for (int c = 0; c < channels; c++) {
        __global const float *plane = x + (size_t)c * h * w;
        const float top = plane[y0 * w + x0] + fx * (plane[y0 * w + x1] - plane[y0 * w + x0]);
        const float bottom = plane[y1 * w + x0] + fx * (plane[y1 * w + x1] - plane[y1 * w + x0]);
        y[((size_t)c * height + py) * width + px] = top + fy * (bottom - top);
    }
}
