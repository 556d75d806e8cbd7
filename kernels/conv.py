"""Launchers for 2-D convolutions: geometry, a forward plan and a backward plan.

Dense convolutions (groups == 1) run as GEMMs: stride-1 ones that keep the map's size as an
implicit GEMM on the padded input (conv_implicit.py), 1x1 stride-1 ones straight on the input
(it already is the GEMM operand in NCHW), the rest as im2col + GEMM; grouped and depthwise
ones run direct kernels.
A plan binds its tensors once and owns its scratch buffers, so a frame allocates nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conv_implicit import ImplicitForward, fits as implicit_fits
from .gemm import MatrixView, activation_code, prepare_gemm
from .runtime import Device, Launch, Plan, Tensor, enough_groups


@dataclass(frozen=True)
class ConvGeometry:
    """A convolution's shape. `padding` is "same" (TensorFlow: output ceil(n/stride), the odd
    pixel at the bottom/right) or a symmetric integer."""

    c_in: int
    c_out: int
    kernel: int
    stride: int = 1
    padding: int | str = 0
    dilation: int = 1
    groups: int = 1
    activation: str = "none"

    def __post_init__(self):
        if min(self.c_in, self.c_out, self.kernel, self.stride, self.dilation, self.groups) < 1:
            raise ValueError(f"convolution {self} has a size below 1")
        if self.c_in % self.groups or self.c_out % self.groups:
            raise ValueError(f"groups={self.groups} does not divide channels {self.c_in}->{self.c_out}")
        if self.padding != "same" and (not isinstance(self.padding, int) or self.padding < 0):
            raise ValueError(f"padding must be 'same' or an integer >= 0, not {self.padding!r}")
        activation_code(self.activation)

    @property
    def span(self) -> int:
        return (self.kernel - 1) * self.dilation + 1

    def pads(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right)."""
        if self.padding == "same":
            th = max((-(-h // self.stride) - 1) * self.stride + self.span - h, 0)
            tw = max((-(-w // self.stride) - 1) * self.stride + self.span - w, 0)
            return th // 2, tw // 2, th - th // 2, tw - tw // 2
        p = self.padding
        return p, p, p, p

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        top, left, bottom, right = self.pads(h, w)
        oh = (h + top + bottom - self.span) // self.stride + 1
        ow = (w + left + right - self.span) // self.stride + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"convolution {self.kernel}x{self.kernel} leaves no output on a "
                             f"{h}x{w} input")
        return oh, ow

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return self.c_out, self.c_in // self.groups, self.kernel, self.kernel

    @property
    def uses_gemm(self) -> bool:
        return self.groups == 1

    @property
    def is_depthwise(self) -> bool:
        return self.groups == self.c_in == self.c_out and self.dilation == 1

    @property
    def skips_im2col(self) -> bool:
        return self.kernel == 1 and self.stride == 1 and self.pads(1, 1) == (0, 0, 0, 0)


# Work a work-group should hold: PoCL pays a few microseconds per group (see gemm.py).
GROUP_WORK = 1 << 16


def rows_by_planes(rows: int, planes: int, work_per_row: int) -> tuple[int, int]:
    """A (rows, planes) work-group holding about GROUP_WORK units; kernels guard both ends."""
    items = max(1, GROUP_WORK // max(1, work_per_row))
    group_rows = min(rows, items)
    return group_rows, max(1, min(planes, items // group_rows, 64))


# Float8 blocks a depthwise band work-item should compute: enough that reading its K*K
# weights is small beside the taps (a band of rows on small maps, one row on wide ones).
BAND_BLOCKS = 64


def band_rows(oh: int, ow: int, blocks: int = BAND_BLOCKS) -> int:
    """Rows per work-item of depthwise_band_forward: about `blocks` float8 blocks."""
    return max(1, min(oh, -(-blocks // -(-ow // 8))))


def depthwise_band_launch(device: Device, kernel: int, stride: int, y: Tensor, padded: Tensor,
                          weight: Tensor, bias: Tensor, channels: int, hp: int, wp: int,
                          oh: int, ow: int, act: int, planes: int, flip: bool = False,
                          blocks: int = BAND_BLOCKS, defines: dict | None = None) -> Launch:
    """depthwise_band_forward over a padded map (PaddedMap's layout), bands of rows per
    work-item; `flip`: the kernel turned half a turn (a stride-1 input gradient)."""
    band = band_rows(oh, ow, blocks)
    bands = -(-oh // band)
    build = {"DW_K": kernel, "DW_S": stride, **(defines or {})}
    if flip:
        build["DW_FLIP"] = 1
    return Launch.prepare(
        device, "depthwise", "depthwise_band_forward", (bands, planes),
        enough_groups((bands, planes), rows_by_planes(bands, planes, band * ow * kernel * kernel)),
        [y, padded, weight, bias, channels, hp, wp, oh, ow, act, planes, band], build)


def check_shape(tensor: Tensor, shape, what: str) -> None:
    if tensor.shape != tuple(shape):
        raise ValueError(f"convolution: {what} has shape {tensor.shape}, expected {tuple(shape)}")


def checked_sizes(g: ConvGeometry, x: Tensor, weight: Tensor, bias: Tensor,
                  x_padded=None) -> tuple[int, int, int, int, int, int]:
    """(n, c, h, w, output height, output width) of a convolution's input, its weight and
    bias checked against the geometry (x_padded: the input's shape inside its padding)."""
    n, c, h, w = x_padded or x.shape
    if c != g.c_in:
        raise ValueError(f"convolution expects {g.c_in} input channels, got {c}")
    oh, ow = g.output_size(h, w)
    check_shape(weight, g.weight_shape, "weight")
    check_shape(bias, (g.c_out,), "bias")
    return n, c, h, w, oh, ow


def geometry_args(g: ConvGeometry, n: int, h: int, w: int) -> list[int]:
    oh, ow = g.output_size(h, w)
    top, left, _, _ = g.pads(h, w)
    return [n, g.c_in, h, w, g.c_out, oh, ow, g.kernel, g.stride, g.dilation, top, left, g.groups]


def im2col_launch(device, g, x, col, n, h, w) -> Launch:
    oh, ow = g.output_size(h, w)
    top, left, _, _ = g.pads(h, w)
    rows = g.c_in * g.kernel * g.kernel
    return Launch.prepare(device, "conv", "im2col_forward", (oh, n * rows), None,
                          [col, x, n, g.c_in, h, w, oh, ow, g.kernel, g.stride, g.dilation,
                           top, left])


class PaddedMap:
    """A depthwise convolution's input with its zero padding made explicit, plus slack after
    the last row (the last output block may read up to 8*stride+K floats past its row, for
    columns it never stores)."""

    @staticmethod
    def layout(g: ConvGeometry, h: int, w: int) -> tuple[int, int, int, int]:
        top, left, bottom, right = g.pads(h, w)
        return top, left, h + top + bottom, w + left + right

    @staticmethod
    def tensor(device: Device, g: ConvGeometry, n: int, h: int, w: int, zeroed: bool = False):
        _, _, hp, wp = PaddedMap.layout(g, h, w)
        size = n * g.c_in * hp * wp + 16 * g.stride + g.kernel
        if zeroed:  # a producer will write only the inside: the border must start at zero
            return Tensor.from_numpy(device, np.zeros(size, np.float32))
        return Tensor.empty(device, (size,))


def pad_launch(device, g: ConvGeometry, padded: Tensor, x: Tensor, planes: int, h: int, w: int):
    top, left, hp, wp = PaddedMap.layout(g, h, w)
    return Launch.prepare(device, "conv", "pad_forward", (hp, planes),
                          rows_by_planes(hp, planes, wp),
                          [padded, x, x, 0, h, w, top, left, hp, wp, planes])


class ConvForward(Plan):
    """y = act(conv(x, weight) + bias) [+ residual], with x (N, C_in, H, W)."""

    def __init__(self, device: Device, g: ConvGeometry, x: Tensor, weight: Tensor, bias: Tensor,
                 y: Tensor, residual: Tensor | None = None, *,
                 x_padded: tuple[int, int, int, int] | None = None,
                 y_padded: tuple[int, int, int, int] | None = None):
        """x_padded (N, C, H, W): x is a depthwise convolution's input already padded (see
        PaddedMap). y_padded (top, left, padded height, padded width): y is such a padded
        map and a dense convolution writes into its inside."""
        n, c, h, w, oh, ow = checked_sizes(g, x, weight, bias, x_padded)
        if y_padded is None:
            check_shape(y, (n, g.c_out, oh, ow), "output")
        elif not g.uses_gemm or residual is not None or y.size < n * g.c_out * y_padded[2] * y_padded[3]:
            raise ValueError("convolution: only a dense one without residual writes a padded map")
        if x_padded is not None and not (g.is_depthwise and residual is None):
            raise ValueError("convolution: only a depthwise one reads a padded map")
        if residual is not None:
            check_shape(residual, y.shape, "residual")
        super().__init__()
        self.x_shape, self.y_padded = (n, c, h, w), y_padded  # for the backward
        self.col: Tensor | None = None
        self.padded: Tensor | None = None  # a depthwise one's padded input, for its backward
        self.implicit: ImplicitForward | None = None
        if g.uses_gemm and x_padded is None and implicit_fits(g, h, w):
            self.implicit = ImplicitForward(device, g, x, weight, bias, y, residual,
                                            activation_code(g.activation), y_padded)
            self.add(self.implicit)
        elif g.uses_gemm:
            rows = g.c_in * g.kernel * g.kernel
            if g.skips_im2col:
                operand = x
            else:
                self.col = operand = Tensor.empty(device, (n, rows, oh * ow))
                self.add(im2col_launch(device, g, x, self.col, n, h, w))
            if y_padded is None:
                c_view, c_padding = MatrixView(y, 0, g.c_out * oh * ow, oh * ow), None
            else:
                top, left, hp, wp = y_padded
                c_view = MatrixView(y, 0, g.c_out * hp * wp, hp * wp)
                c_padding = (ow, wp, top, left)
            self.add(prepare_gemm(
                device, c_view,
                MatrixView(weight, 0, 0, rows), MatrixView(operand, 0, rows * oh * ow, oh * ow),
                g.c_out, oh * ow, rows, n, bias=bias, residual=residual,
                activation=g.activation, c_padding=c_padding))
        elif g.is_depthwise and residual is None:
            top, left, hp, wp = PaddedMap.layout(g, h, w)
            planes = n * g.c_in
            if x_padded is not None:
                self.padded = padded = x
            else:
                # Zeroed once: the slack past the map stays zero, as the backward needs.
                self.padded = padded = PaddedMap.tensor(device, g, n, h, w, zeroed=True)
                self.scratch.append(padded)
                self.add(pad_launch(device, g, padded, x, planes, h, w))
            # Bands of rows a work-item: 1.6-2x the one-row kernel on fine-tuning's maps.
            self.add(depthwise_band_launch(device, g.kernel, g.stride, y, padded, weight, bias,
                                           g.c_out, hp, wp, oh, ow,
                                           activation_code(g.activation), planes))
        else:
            self.add(Launch.prepare(
                device, "conv", "conv_direct_forward", (-(-ow // 8), oh, n * g.c_out), None,
                [y, x, weight, bias, residual if residual is not None else y,
                 residual is not None] + geometry_args(g, n, h, w)
                + [activation_code(g.activation)]))
