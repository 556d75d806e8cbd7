"""The base's depthwise convolutions (forward only): depthwise.cl's depthwise_band_forward,
a band of output rows per work-item on a padded map, or, on small maps,
depthwise_small_forward, which pads each plane in private memory, or, on maps 4 to 8 wide
at stride 1, depthwise_narrow.cl, a plane in registers. Training (ConvForward and
ConvBackward, conv.py) takes depthwise_band_forward too, on the padded maps it keeps for
its backward."""
from __future__ import annotations

from .conv import (BAND_BLOCKS, ConvGeometry, PaddedMap, check_shape, checked_sizes,
                   depthwise_band_launch, rows_by_planes)
from .gemm import activation_code
from .runtime import Device, Launch, Plan, Tensor, enough_groups

# depthwise_small_forward's private padded plane, in floats (4 KB: the 7x7 to 15x20 maps
# of the last stages, k5 included), and planes per work-group.
PRIVATE_FLOATS = 1024
SMALL_GROUP = 16


def reads_plain(g: ConvGeometry, h: int, w: int) -> bool:
    """Whether the convolution reads a plain map: depthwise_narrow_forward or
    depthwise_rows_forward (padding by swizzles in registers), or depthwise_small_forward
    (a padded plane in private memory, when it fits PRIVATE_FLOATS)."""
    return takes_plane_stride(g, h, w) or _fits_private(g, h, w)


def _fits_private(g: ConvGeometry, h: int, w: int) -> bool:
    _, _, hp, wp = PaddedMap.layout(g, h, w)
    return hp * wp <= PRIVATE_FLOATS


def fits_narrow(g: ConvGeometry, h: int, w: int) -> bool:
    """Whether depthwise_narrow_forward computes it: stride 1, padding K // 2 on every side,
    rows of 4 to 8 (a float8 each; a row's spilled float8 store must end inside the next
    row), taps at most 4 lanes either side."""
    p = g.kernel // 2
    return (g.stride == 1 and g.dilation == 1 and g.kernel % 2 == 1 and g.kernel <= 9
            and g.pads(h, w) == (p, p, p, p) and 4 <= w <= 8 and h * w >= 8)


# depthwise_rows_forward: float8s a row at most (taps across them are swizzles), and band
# rows by a row's float8s, so the band's sums and the row being read fit 16 registers.
ROWS_MAX_VECTORS = 5
ROWS_BAND = {1: 8, 2: 4, 3: 2, 4: 2, 5: 1}


# A plain map with wider rows of whole segments of this many float8s (a work-item each,
# reading the float8 either side too) also takes depthwise_rows_forward, in place of a
# padding pass and depthwise_band_forward: 112x112 k3 32 ch 0.150 against 0.167 ms,
# 120x160 0.231 against 0.253 (segments of 4: 0.165, 0.216). Where a producer can write
# the padded map itself, depthwise_band_forward on it is faster still (56x56 k3 144 ch:
# 0.139 against 0.214), so these maps are not `reads_plain`.
ROWS_SEGMENT = 2


def fits_rows(g: ConvGeometry, h: int, w: int, wide: bool = False) -> bool:
    """Whether depthwise_rows_forward computes it: stride 1, padding K // 2 on every side,
    rows of 8 to 8 * ROWS_MAX_VECTORS (or, `wide`, longer rows of whole segments), taps
    at most 4 lanes either side."""
    p = g.kernel // 2
    rows_fit = 8 <= w <= 8 * ROWS_MAX_VECTORS or (wide and w % (8 * ROWS_SEGMENT) == 0)
    return (g.stride == 1 and g.dilation == 1 and g.kernel % 2 == 1 and g.kernel <= 9
            and g.pads(h, w) == (p, p, p, p) and rows_fit)


# depthwise_stride2_forward: input float8s a row at most, and band rows by the output's
# float8s a row (its sums, the input row and the taps' windows fit 16 registers). Wider
# rows leave bands of one row, where each tap's window (two swizzles and an even-lane
# gather) feeds one multiply-add: 56 wide, k5, 144 channels took 0.271 ms against the
# padded-map kernel's 0.191; 28 wide, k3: 0.040 against 0.054.
STRIDE2_MAX_VECTORS = 4
STRIDE2_BAND = {1: 4, 2: 2}


def fits_stride2(g: ConvGeometry, h: int, w: int) -> bool:
    """Whether depthwise_stride2_forward computes it: stride 2, input rows of 8 to
    8 * STRIDE2_MAX_VECTORS (32), output rows of at least 4 (a narrower row's float8 store
    spills past the next row's start), taps at most 7 lanes either side."""
    top, left, _, _ = g.pads(h, w)
    oh, ow = g.output_size(h, w)
    return (g.stride == 2 and g.dilation == 1 and g.kernel <= 9 and left <= 7
            and 8 <= w <= 8 * STRIDE2_MAX_VECTORS and ow >= 4 and oh >= 1)


def takes_plane_stride(g: ConvGeometry, h: int, w: int) -> bool:
    """Whether DepthwiseBandForward can space its output planes wider than OH * OW (the
    register kernels, on a plain input)."""
    return fits_narrow(g, h, w) or fits_rows(g, h, w) or fits_stride2(g, h, w)


class DepthwiseBandForward(Plan):
    """y (N, C, OH, OW) = act(depthwise(x) + bias). x is (N, C, H, W), or, with x_padded
    (N, C, H, W), already a PaddedMap of that map (a dense conv wrote into it). y_plane:
    floats from one output plane to the next, if not OH * OW (`takes_plane_stride`; y's
    buffer then holds N * C planes of y_plane floats)."""

    def __init__(self, device: Device, g: ConvGeometry, x: Tensor, weight: Tensor,
                 bias: Tensor, y: Tensor, x_padded: tuple[int, int, int, int] | None = None,
                 blocks: int = BAND_BLOCKS, y_plane: int | None = None):
        if not g.is_depthwise:
            raise ValueError(f"depthwise_bands: {g} is not a depthwise convolution")
        n, c, h, w, oh, ow = checked_sizes(g, x, weight, bias, x_padded)
        check_shape(y, (n, g.c_out, oh, ow), "output")
        super().__init__()
        top, left, hp, wp = PaddedMap.layout(g, h, w)
        planes = n * c
        y_plane = y_plane or oh * ow
        if y_plane != oh * ow and (x_padded is not None or not takes_plane_stride(g, h, w)
                                   or y_plane < oh * ow or y.buffer.size < 4 * planes * y_plane):
            raise ValueError(f"depthwise_bands: cannot space {oh}x{ow} output planes "
                             f"{y_plane} floats apart here")
        if x_padded is None and fits_narrow(g, h, w):
            self.add(Launch.prepare(
                device, "depthwise_narrow", "depthwise_narrow_forward", (planes,),
                enough_groups((planes,), (min(planes, SMALL_GROUP),)),
                [y, x, weight, bias, c, activation_code(g.activation), planes],
                {"DW_K": g.kernel, "DW_H": h, "DW_W": w, "DW_YP": y_plane}))
            return
        if x_padded is None and fits_rows(g, h, w, wide=not _fits_private(g, h, w)):
            vectors = -(-w // 8)
            segments = 1 if vectors <= ROWS_MAX_VECTORS else vectors // ROWS_SEGMENT
            vectors //= segments
            band = min(ROWS_BAND[vectors], h)
            items = -(-h // band) * segments
            self.add(Launch.prepare(
                device, "depthwise_rows", "depthwise_rows_forward", (items, planes),
                enough_groups((items, planes), (min(items, 64), min(planes, SMALL_GROUP))),
                [y, x, weight, bias, c, activation_code(g.activation), planes],
                {"DW_K": g.kernel, "DW_H": h, "DW_W": w, "DW_V": vectors, "DW_R": band,
                 "DW_SEG": segments, "DW_YP": y_plane}))
            return
        if x_padded is None and fits_stride2(g, h, w):
            self.add(_stride2_launch(device, g, x, weight, bias, y, h, w, y_plane))
            return
        if x_padded is None and _fits_private(g, h, w):
            self.add(Launch.prepare(
                device, "depthwise", "depthwise_small_forward", (planes,),
                enough_groups((planes,), (min(planes, SMALL_GROUP),)),
                [y, x, weight, bias, c, h, w, top, left, hp, wp, oh, ow,
                 activation_code(g.activation), planes],
                {"DW_K": g.kernel, "DW_S": g.stride, "DW_PRIVATE": PRIVATE_FLOATS}))
            return
        if x_padded is not None:
            padded = x
        else:
            padded = PaddedMap.tensor(device, g, n, h, w, zeroed=True)
            self.scratch.append(padded)
            # conv.py's pad_launch, in at least MIN_GROUPS work-groups (it made 7 at 224x224).
            self.add(Launch.prepare(device, "conv", "pad_forward", (hp, planes),
                                    enough_groups((hp, planes), rows_by_planes(hp, planes, wp)),
                                    [padded, x, x, 0, h, w, top, left, hp, wp, planes]))
        self.add(depthwise_band_launch(device, g.kernel, g.stride, y, padded, weight, bias, c,
                                       hp, wp, oh, ow, activation_code(g.activation), planes,
                                       blocks=blocks, defines={"DW_PRIVATE": PRIVATE_FLOATS}))


def _stride2_launch(device, g, x, weight, bias, y, h, w, y_plane) -> Launch:
    n, c = x.shape[:2]
    planes = n * c
    top, left, _, _ = g.pads(h, w)
    oh, ow = g.output_size(h, w)
    vectors = -(-ow // 8)
    # Output rows narrower than a float8 spill into the next row: one work-item a plane.
    band = oh if ow < 8 else min(STRIDE2_BAND[vectors], oh)
    bands = -(-oh // band)
    return Launch.prepare(
        device, "depthwise_stride2", "depthwise_stride2_forward", (bands, planes),
        enough_groups((bands, planes), (bands, min(planes, SMALL_GROUP))),
        [y, x, weight, bias, c, activation_code(g.activation), planes],
        {"DW_K": g.kernel, "DW_H": h, "DW_W": w, "DW_OH": oh, "DW_OW": ow, "DW_PT": top,
         "DW_PL": left, "DW_IV": -(-w // 8), "DW_V": vectors, "DW_R": band, "DW_YP": y_plane})
