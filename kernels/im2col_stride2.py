"""Launcher for im2col_stride2.cl: the columns of a dense stride-2 convolution on one sample,
a float8 at a time (the base's stem: its GEMM then runs with fixed, packed weights)."""
from __future__ import annotations

from .conv import ConvGeometry
from .runtime import Device, Launch, Tensor, enough_groups


def fits(g: ConvGeometry, n: int, h: int, w: int) -> bool:
    """A dense stride-2 convolution, dilation 1, on one sample, at least 8 outputs wide."""
    _, ow = g.output_size(h, w)
    return g.groups == 1 and g.stride == 2 and g.dilation == 1 and n == 1 and ow >= 8


def im2col_stride2(device: Device, g: ConvGeometry, x: Tensor, col: Tensor) -> Launch:
    """col (C_in*K*K, OH*OW) from x (1, C_in, H, W)."""
    n, c, h, w = x.shape
    if not fits(g, n, h, w) or c != g.c_in:
        raise ValueError(f"im2col_stride2: {g} on {x.shape} is not a stride-2 convolution "
                         "of one sample")
    oh, ow = g.output_size(h, w)
    rows = c * g.kernel * g.kernel
    if col.size != rows * oh * ow:
        raise ValueError(f"im2col_stride2: columns of {col.size} elements, need {rows * oh * ow}")
    top, left, _, _ = g.pads(h, w)
    grid = (oh, rows)
    return Launch.prepare(device, "im2col_stride2", "im2col_stride2_forward", grid,
                          enough_groups(grid, (min(oh, 16), 1)),
                          [col, x, c, h, w, oh, ow, top, left], {"IC_K": g.kernel})
