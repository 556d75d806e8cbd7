// Per-channel standardisation of a patch's input, and the 1x1 convolution that reads it.
//
// The base's features are far from unit scale (on the demo the stride-8 channels have means
// up to +-9 and spreads of 5-9), so SGD on a head that reads them raw is badly conditioned:
// the first layer's steps are scaled by the features' squared size and tilted by their
// means. The trainer trains the first layer on standardised features x' = scale x + shift
// and hands the verdicts the same function on raw features, folded into that layer.

// x[r, p] = x[r, p] * scale[r % channels] + shift[r % channels], in place, over rows
// r = n * channels + c of `plane` elements each; work-item (r, j) does elements
// [16 j, 16 j + 16) of row r (the channel is found once per work-item, not per element).
__kernel void channel_affine(__global float *x, __global const float *scale,
                             __global const float *shift, int channels, int plane)
{
    const int r = get_global_id(0);
    const int p0 = get_global_id(1) * 16;
    const float a = scale[r % channels], b = shift[r % channels];
    __global float *row = x + (size_t)r * plane;
    for (int p = p0; p < min(p0 + 16, plane); p++) row[p] = row[p] * a + b;
}

// A 1x1 convolution (weights [outputs, inputs] at src[src_w], bias at src[src_b]) that reads
// standardised inputs, rewritten as the one that reads raw inputs (fold):
//   w'[o, i] = w[o, i] scale[i] ;  b'[o] = b[o] + sum_i w[o, i] shift[i]
// or back (unfold = 1):
//   w[o, i] = w'[o, i] / scale[i] ;  b[o] = b'[o] - sum_i w[o, i] shift[i]
// written at out[out_w], out[out_b]. Work-item o does output row o; src and out must not
// overlap.
__kernel void fold_standardization(__global float *out, int out_w, int out_b,
                                   __global const float *src, int src_w, int src_b,
                                   __global const float *scale, __global const float *shift,
                                   int outputs, int inputs, int unfold)
{
    const int o = get_global_id(0);
    if (o >= outputs) return;
    float moved = 0.0f;
    for (int i = 0; i < inputs; i++) {
        const float w = src[src_w + o * inputs + i];
        const float v = unfold ? w / scale[i] : w * scale[i];
        out[out_w + o * inputs + i] = v;
        moved += (unfold ? v : w) * shift[i];
    }
    out[out_b + o] = unfold ? src[src_b + o] - moved : src[src_b + o] + moved;
}
