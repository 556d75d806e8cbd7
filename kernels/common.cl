// What several kernel files share (included; guarded so that two includes are one).
#ifndef PATCHLOOP_COMMON_CL
#define PATCHLOOP_COMMON_CL

// float8 with 4-byte alignment: rows need not start on 32-byte boundaries, and PoCL's
// vload8 is a real call (not inlined), so kernels dereference an under-aligned vector type.
typedef float8 float8u __attribute__((aligned(4)));

// act: 0 none, 1 ReLU, 2 ReLU6.
inline float activate(float v, int act) {
    if (act == 1) return v > 0.0f ? v : 0.0f;
    if (act == 2) return v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f;
    return v;
}

#endif
