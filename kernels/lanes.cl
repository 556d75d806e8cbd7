// Included by the register depthwise kernels (depthwise_rows.cl, depthwise_stride2.cl), not
// built alone: a float8 window at any lane offset across neighbouring float8s, as swizzles
// (PoCL inlines them; its shuffle built-ins are calls).
#ifndef PATCHLOOP_LANES_CL
#define PATCHLOOP_LANES_CL

// Lanes 8 + d .. 15 + d of the 24 lanes (lo, mid, hi): mid moved d lanes, for
// -7 <= d <= 7 (a constant once unrolled), d > 0 reading into hi, d < 0 into lo.
inline float8 lanes_across(float8 lo, float8 mid, float8 hi, int d)
{
    switch (d) {
    case -7: return (float8)(lo.s1234, lo.s567, mid.s0);
    case -6: return (float8)(lo.s2345, lo.s67, mid.s01);
    case -5: return (float8)(lo.s3456, lo.s7, mid.s012);
    case -4: return (float8)(lo.s4567, mid.s0123);
    case -3: return (float8)(lo.s567, mid.s0123, mid.s4);
    case -2: return (float8)(lo.s67, mid.s0123, mid.s45);
    case -1: return (float8)(lo.s7, mid.s0123, mid.s456);
    case 1: return (float8)(mid.s1234, mid.s567, hi.s0);
    case 2: return (float8)(mid.s2345, mid.s67, hi.s01);
    case 3: return (float8)(mid.s3456, mid.s7, hi.s012);
    case 4: return (float8)(mid.s4567, hi.s0123);
    case 5: return (float8)(mid.s567, hi.s0123, hi.s4);
    case 6: return (float8)(mid.s67, hi.s0123, hi.s45);
    case 7: return (float8)(mid.s7, hi.s0123, hi.s456);
    default: return mid;
    }
}

#endif
