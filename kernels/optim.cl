// SGD with momentum and weight decay over one flat parameter buffer, in place, the gradient
// scaled by scale[0] first (1, or the gradient-norm clip's factor computed on the device):
//   v = momentum * v + scale * g + decay * w ;  w = w - lr * v
// Work-item i updates elements [16 i, 16 i + 16).
__kernel void sgd_step(__global float *w, __global float *v, __global const float *g,
                       __global const float *scale, int count, float lr, float momentum,
                       float decay)
{
    const int i0 = get_global_id(0) * 16;
    const float s = scale[0];
    for (int i = i0; i < min(i0 + 16, count); i++) {
        const float vi = momentum * v[i] + s * g[i] + decay * w[i];
        v[i] = vi;
        w[i] = w[i] - lr * vi;
    }
}

// Squared L2 norm of a flat buffer in two passes with no barriers (PoCL runs a plain loop per
// work-item fastest). Pass 1: partial[i] = sum of x[j]^2 over j in [CHUNK i, CHUNK i + CHUNK).
__kernel void sum_squares_partial(__global float *partial, __global const float *x, int n,
                                  int chunk)
{
    const int i = get_global_id(0);
    const int j0 = i * chunk;
    float sum = 0.0f;
    for (int j = j0; j < min(j0 + chunk, n); j++) sum += x[j] * x[j];
    partial[i] = sum;
}

// Pass 2, one work-item: out[0] = the clip factor min(1, max_norm / norm), out[1] = the norm
// over partial[0 .. parts). A non-finite norm gives factor 1: the non-finite check rejects
// that step anyway, and a factor of 0 or NaN would hide which buffer went bad.
__kernel void clip_factor(__global float *out, __global const float *partial, int parts,
                          float max_norm)
{
    float sum = 0.0f;
    for (int i = 0; i < parts; i++) sum += partial[i];
    const float norm = sqrt(sum);
    out[0] = (isfinite(norm) && norm > max_norm) ? max_norm / norm : 1.0f;
    out[1] = norm;
}

// Counts NaN and Inf elements of a buffer into count[0] (which must start at 0): work-item i
// scans elements [256 i, 256 i + 256) and adds its count atomically. A float is not finite
// when all its exponent bits are set; testing the bits keeps the check even under compiler
// options that assume finite math.
__kernel void nonfinite_count(__global volatile int *count, __global const uint *bits, int n)
{
    const int i0 = get_global_id(0) * 256;
    int found = 0;
    for (int i = i0; i < min(i0 + 256, n); i++) found += (bits[i] & 0x7f800000u) == 0x7f800000u;
    if (found) atomic_add(count, found);
}

__kernel void fill_int(__global int *dst, int value) { dst[get_global_id(0)] = value; }

// A running average of weights (Polyak/EMA), in place: avg = (1 - rate) avg + rate w
// (in this form rate 1 gives w exactly). Work-item i updates elements [16 i, 16 i + 16).
__kernel void running_average(__global float *avg, __global const float *w, int count,
                              float rate)
{
    const int i0 = get_global_id(0) * 16;
    const float keep = 1.0f - rate;
    for (int i = i0; i < min(i0 + 16, count); i++) avg[i] = keep * avg[i] + rate * w[i];
}
