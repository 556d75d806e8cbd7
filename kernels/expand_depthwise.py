"""Launcher for expand_depthwise.cl: a block's expand 1x1 convolution (ReLU6) and its
stride-2 depthwise convolution in one kernel, the expanded map kept in each work-item's
private buffer instead of memory. The base takes it where that map is large (see
loop/base/network.py); the two layers apart give the same result."""
from __future__ import annotations

from .conv import ConvGeometry, PaddedMap, check_shape
from .gemm import activation_code
from .runtime import Device, Launch, Plan, Tensor, enough_groups

CHANNELS = 6   # TC: expanded channels per work-item
BAND = 4       # output rows per work-item
GROUP_CHANNELS = 8  # work-items per work-group (PoCL pays per group)


# A work-item's private buffer (CHANNELS x its band's expanded rows, split by column
# parity) stays within this many bytes: 36 KB at 240x320; wider frames take the two apart.
PRIVATE_BYTES = 64 << 10


def _half(depthwise: ConvGeometry, h: int, w: int) -> int:
    """HALF: floats per parity of one buffered row."""
    _, _, _, wp = PaddedMap.layout(depthwise, h, w)
    return (wp + 1) // 2 + depthwise.kernel


def fits(expand: ConvGeometry, depthwise: ConvGeometry, h: int, w: int) -> bool:
    """Whether the pair is one this kernel computes: a 1x1 stride-1 expand with ReLU6, then
    a stride-2 depthwise convolution over its output, the map at least 16 wide and narrow
    enough for the private buffer."""
    oh, ow = depthwise.output_size(h, w)
    rows = 2 * (BAND - 1) + depthwise.kernel
    return (expand.skips_im2col and expand.groups == 1 and expand.activation == "relu6"
            and depthwise.is_depthwise and depthwise.c_in == expand.c_out
            and depthwise.stride == 2 and depthwise.kernel in (3, 5) and w >= 16 and ow >= 8
            and CHANNELS * rows * 2 * _half(depthwise, h, w) * 4 <= PRIVATE_BYTES)


class ExpandDepthwiseForward(Plan):
    """y (1, C_exp, OH, OW) = depthwise(relu6(expand(x))), x (1, C_in, H, W)."""

    def __init__(self, device: Device, expand: ConvGeometry, depthwise: ConvGeometry,
                 x: Tensor, w_expand: Tensor, b_expand: Tensor, w_depthwise: Tensor,
                 b_depthwise: Tensor, y: Tensor):
        n, c_in, h, w = x.shape
        if n != 1 or c_in != expand.c_in or not fits(expand, depthwise, h, w):
            raise ValueError(f"expand_depthwise: {expand} then {depthwise} on {x.shape} is "
                             "not an expand + stride-2 depthwise pair on one sample")
        oh, ow = depthwise.output_size(h, w)
        c_exp = expand.c_out
        check_shape(w_expand, expand.weight_shape, "expand weight")
        check_shape(b_expand, (c_exp,), "expand bias")
        check_shape(w_depthwise, depthwise.weight_shape, "depthwise weight")
        check_shape(b_depthwise, (c_exp,), "depthwise bias")
        check_shape(y, (1, c_exp, oh, ow), "output")
        super().__init__()
        top, left, _, wp = PaddedMap.layout(depthwise, h, w)
        defines = {"DW_K": depthwise.kernel, "TC": CHANNELS, "BAND": BAND,
                   "HALF": _half(depthwise, h, w)}
        grid = (-(-oh // BAND), -(-c_exp // CHANNELS))
        self.add(Launch.prepare(
            device, "expand_depthwise", "expand_depthwise_forward",
            grid, enough_groups(grid, (1, GROUP_CHANNELS)),
            [y, x, w_expand, b_expand, w_depthwise, b_depthwise, c_in, c_exp, h, w, oh, ow,
             top, left, wp, activation_code(depthwise.activation)], defines))

