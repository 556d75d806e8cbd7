// A verdict's per-pixel probabilities refined by the frame's own edges: a guided filter
// (He, Sun and Tang, "Guided Image Filtering", colour guide) at a working size, spread over
// the frame bilinearly afterwards (upsample.cl). Within a window of
// radius r each category's probability is fitted as a linear function of the frame's
// colour, q = a . I + b, so where the colour changes sharply (an object's outline) the
// probability can change as sharply, and where it does not the map stays smooth.
//
// Planes, all (N, h, w) at the working size:
//   products: I0 I1 I2 | I0I0 I0I1 I0I2 I1I1 I1I2 I2I2 | p_0..p_K-1 | I0p_k I1p_k I2p_k per k
//   coefficients: a0 a1 a2 per k | b_k         refined: q_k
// Box means are over the window clipped to the image (divided by the pixels it holds).
// CATEGORIES (a define, K): the loops over the categories have a known length, so the
// compiler may unroll them.

#ifndef CATEGORIES
#define CATEGORIES 1
#endif

// The mean of each element's window [i - r, i + r] within a line of n elements, as a running
// sum along it; element i is a[i * stride], times b[i * stride] when b is given (a product
// of two planes, formed here rather than stored). Work-items run it on whole rows or
// columns: a work-item per element summing its own window was about twice as slow on PoCL
// (docs/pixel-maps.md).
inline void line_means(__global const float *a, __global const float *b, int has_b,
                       long stride, int n, int r, __global float *out)
{
    // Sums of up to 2r + 1 values in [0, 1]: float keeps them to about 1e-6 of the mean.
    float sum = 0.0f;
    const float inner = 1.0f / (float)(2 * r + 1);   // a window wholly inside the line
    if (has_b) {
        for (int i = 0; i < r && i < n; i++) sum += a[i * stride] * b[i * stride];
        for (int i = 0; i < n; i++) {
            if (i + r < n) sum += a[(i + r) * stride] * b[(i + r) * stride];
            if (i - r - 1 >= 0) sum -= a[(i - r - 1) * stride] * b[(i - r - 1) * stride];
            const int first = i - r < 0 ? 0 : i - r, last = i + r < n ? i + r : n - 1;
            out[i * stride] = last - first == 2 * r ? sum * inner
                                                    : sum / (float)(last - first + 1);
        }
    } else {
        for (int i = 0; i < r && i < n; i++) sum += a[i * stride];
        for (int i = 0; i < n; i++) {
            if (i + r < n) sum += a[(i + r) * stride];
            if (i - r - 1 >= 0) sum -= a[(i - r - 1) * stride];
            const int first = i - r < 0 ? 0 : i - r, last = i + r < n ? i + r : n - 1;
            out[i * stride] = last - first == 2 * r ? sum * inner
                                                    : sum / (float)(last - first + 1);
        }
    }
}

// Work-item (row, product plane): the row means of the products of the guide (3, h, w) and
// the probabilities (K, h, w), in the planes' order above.
__kernel void guided_product_rows(__global const float *guide, __global const float *p,
                                  __global float *out, int categories, int h, int w, int r)
{
    const int row = get_global_id(0), n = get_global_id(1);
    if (row >= h) return;
    const long plane = (long)h * w, at = (long)row * w;
    __global const float *a, *b = guide;
    int has_b = 1;
    if (n < 3) {
        a = guide + n * plane;
        has_b = 0;
    } else if (n < 9) {  // I0I0 I0I1 I0I2 I1I1 I1I2 I2I2
        const int first = n < 6 ? 0 : n < 8 ? 1 : 2;
        const int second = n < 6 ? n - 3 : n < 8 ? n - 5 : 2;
        a = guide + first * plane;
        b = guide + second * plane;
    } else if (n < 9 + categories) {
        a = p + (n - 9) * plane;
        has_b = 0;
    } else {
        const int m = n - 9 - categories;
        a = guide + (m % 3) * plane;
        b = p + (m / 3) * plane;
    }
    line_means(a + at, b + at, has_b, 1, w, r, out + n * plane + at);
}

// Work-item (row, plane): the row means of planes (N, h, w).
__kernel void box_mean_rows(__global const float *x, __global float *y, int h, int w, int r)
{
    const int row = get_global_id(0), n = get_global_id(1);
    if (row >= h) return;
    const long at = ((long)n * h + row) * w;
    line_means(x + at, x + at, 0, 1, w, r, y + at);
}

// Work-item (column, plane): the column means of planes (N, h, w).
__kernel void box_mean_columns(__global const float *x, __global float *y, int h, int w,
                               int r)
{
    const int column = get_global_id(0), n = get_global_id(1);
    if (column >= w) return;
    const long at = (long)n * h * w + column;
    line_means(x + at, x + at, 0, w, h, r, y + at);
}

// Work-item (x, y): from the box means of the products, each category's coefficients:
// a = (cov(I) + eps E)^-1 cov(I, p), b = mean(p) - a . mean(I).
__kernel void guided_coefficients(__global const float *m, __global float *out,
                                  int h, int w, float eps)
{
    const int x = get_global_id(0), y = get_global_id(1);
    if (x >= w || y >= h) return;
    const long plane = (long)h * w, at = (long)y * w + x;
    const float m0 = m[at], m1 = m[plane + at], m2 = m[2 * plane + at];
    // The guide's covariance in its window, regularised: symmetric, positive definite.
    const float s00 = m[3 * plane + at] - m0 * m0 + eps, s01 = m[4 * plane + at] - m0 * m1;
    const float s02 = m[5 * plane + at] - m0 * m2, s11 = m[6 * plane + at] - m1 * m1 + eps;
    const float s12 = m[7 * plane + at] - m1 * m2, s22 = m[8 * plane + at] - m2 * m2 + eps;
    // Its inverse through the adjugate.
    const float c00 = s11 * s22 - s12 * s12, c01 = s02 * s12 - s01 * s22;
    const float c02 = s01 * s12 - s02 * s11, c11 = s00 * s22 - s02 * s02;
    const float c12 = s01 * s02 - s00 * s12, c22 = s00 * s11 - s01 * s01;
    const float inv = 1.0f / (s00 * c00 + s01 * c01 + s02 * c02);
    const int categories = CATEGORIES;
    for (int k = 0; k < CATEGORIES; k++) {
        const float mp = m[(9 + k) * plane + at];
        __global const float *ip = m + (9 + categories + 3 * k) * plane + at;
        const float v0 = ip[0] - m0 * mp, v1 = ip[plane] - m1 * mp, v2 = ip[2 * plane] - m2 * mp;
        const float a0 = (c00 * v0 + c01 * v1 + c02 * v2) * inv;
        const float a1 = (c01 * v0 + c11 * v1 + c12 * v2) * inv;
        const float a2 = (c02 * v0 + c12 * v1 + c22 * v2) * inv;
        __global float *a = out + 3 * k * plane + at;
        a[0] = a0;
        a[plane] = a1;
        a[2 * plane] = a2;
        out[(3 * categories + k) * plane + at] = mp - a0 * m0 - a1 * m1 - a2 * m2;
    }
}

// Work-item (x, y): each category's mean coefficients (4K, h, w) applied to the guide's
// colour there (3, h, w), clamped to [0, 1], the K values scaled to sum to 1 (before the
// clamp they do: the probabilities did, so the a sum to 0 and the b to 1). Ternaries, not
// clamp(): on PoCL a call, which keeps neighbouring work-items from running as vector lanes.
__kernel void guided_output(__global const float *coefficients, __global const float *guide,
                            __global float *out, int h, int w)
{
    const int x = get_global_id(0), y = get_global_id(1);
    if (x >= w || y >= h) return;
    const int plane = h * w, at = y * w + x;
    const float i0 = guide[at], i1 = guide[plane + at], i2 = guide[2 * plane + at];
    float total = 0.0f;
    for (int k = 0; k < CATEGORIES; k++) {
        __global const float *a = coefficients + 3 * k * plane + at;
        float value = i0 * a[0] + i1 * a[plane] + i2 * a[2 * plane]
                    + coefficients[(3 * CATEGORIES + k) * plane + at];
        value = value < 0.0f ? 0.0f : value > 1.0f ? 1.0f : value;
        out[k * plane + at] = value;
        total += value;
    }
    // Never 0 in exact arithmetic (the values summed to 1 before the clamp); if rounding
    // ever made it so, every category is as likely.
    for (int k = 0; k < CATEGORIES; k++)
        out[k * plane + at] = total > 0.0f ? out[k * plane + at] / total : 1.0f / CATEGORIES;
}
