// SGD with momentum and weight decay over one flat parameter buffer, in place:
//   v = momentum * v + g + decay * w ;  w = w - lr * v
// Work-item i updates elements [16 i, 16 i + 16).
__kernel void sgd_step(__global float *w, __global float *v, __global const float *g,
                       int count, float lr, float momentum, float decay)
{
    const int i0 = get_global_id(0) * 16;
    for (int i = i0; i < min(i0 + 16, count); i++) {
        const float vi = momentum * v[i] + g[i] + decay * w[i];
        v[i] = vi;
        w[i] = w[i] - lr * vi;
    }
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
