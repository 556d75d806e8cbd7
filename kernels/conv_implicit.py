"""Launchers for conv_implicit.cl: dense stride-1 convolutions that keep their map's size,
forward and backward, as GEMMs that read the zero-padded input in place (no im2col).

ConvForward and ConvBackward (conv.py) choose this path when `fits(g, h, w)`; the caller
sees the same tensors either way.
"""
from __future__ import annotations

import numpy as np

from .conv_implicit_weight import implicit_weight_gradient
from .gemm import group_shape
from .runtime import Device, Launch, Plan, Tensor
from .tuning import TUNE_MIN_WORK

# The widest position tile (8*NV floats) the forward may use: the padded maps' slack.
MAX_TILE_N = 32
GROUP_WORK = 1 << 16  # elements per work-group of the padding passes (see conv.py)


def fits(g, h: int, w: int) -> bool:
    """Dense, stride 1, larger than 1x1, output the input's size (so the input gradient is
    the same kind of convolution, on the output gradient padded the other way round)."""
    return (g.groups == 1 and g.stride == 1 and g.kernel > 1
            and g.output_size(h, w) == (h, w))


# The register blocks timed (rows, float8 vectors per row, tall work-groups), the default
# first: 4 x 16 (8 float8 sums) as in gemm.py; then the ones that won elsewhere, and 4 x 24
# (12 sums) and 2 x 32, which beat it by 5-15% on the pixels patch's 16-channel layers once
# the taps' offsets were computed instead of loaded (runs on a loaded machine). 8 x 8 tall
# won nowhere and went: each variant costs compile time.
VARIANTS = [(4, 2, False), (4, 2, True), (6, 2, False), (6, 2, True), (4, 3, False),
            (2, 4, False)]


class PaddedPlanes:
    """planes maps of h x w, stored with zero borders (top, left, bottom, right) and zeroed
    slack past the last plane, as conv_implicit.cl reads them."""

    def __init__(self, device: Device, planes: int, h: int, w: int, pads, kernel: int,
                 dilation: int):
        self.top, self.left, bottom, right = pads
        self.h, self.w, self.planes = h, w, planes
        self.hp, self.wp = h + self.top + bottom, w + self.left + right
        slack = MAX_TILE_N + (kernel - 1) * dilation
        # Zeroed once: pad_forward rewrites borders and inside, the slack stays zero.
        self.tensor = Tensor.from_numpy(
            device, np.zeros(planes * self.hp * self.wp + slack, np.float32))

    def batch_stride(self, batch: int) -> int:
        return self.planes // batch * self.hp * self.wp

    def inside(self, batch: int) -> tuple[int, int, int, int]:
        """(offset, batch stride, plane stride, row stride) of the inside: a layout in which
        conv_implicit_forward writes its output, or reads a residual or mask."""
        return (self.top * self.wp + self.left, self.batch_stride(batch), self.hp * self.wp,
                self.wp)

    def fill(self, device: Device, x: Tensor, y: Tensor | None = None, act: int = 0) -> Launch:
        """Copy x (planes of h x w) into the inside, zeros around it. With act, x is the
        gradient at an activation's output y, and the inside gets the gradient before it."""
        items = max(1, GROUP_WORK // self.wp)
        rows = min(self.hp, items)
        local = (rows, max(1, min(self.planes, items // rows, 64)))
        return Launch.prepare(device, "conv", "pad_forward", (self.hp, self.planes), local,
                              [self.tensor, x, y if y is not None else x, act, self.h, self.w,
                               self.top, self.left, self.hp, self.wp, self.planes])


def gradient_planes(device: Device, g, planes: int, h: int, w: int) -> PaddedPlanes:
    """Where a layer's dz lives: padded the other way round (bottom/right pads on top/left),
    so that it has the forward's padded width and dx is the same kind of convolution."""
    top, left, bottom, right = g.pads(h, w)
    return PaddedPlanes(device, planes, h, w, (bottom, right, top, left), g.kernel, g.dilation)


def tap_offsets(device: Device, channels: int, kernel: int, dilation: int, hp: int, wp: int
                ) -> Tensor:
    """koff[(c*K + kh)*K + kw] = c*hp*wp + kh*D*wp + kw*D, as int32 on the device."""
    c, kh, kw = np.meshgrid(np.arange(channels), np.arange(kernel), np.arange(kernel),
                            indexing="ij")
    offsets = c * hp * wp + kh * dilation * wp + kw * dilation
    return Tensor.from_numpy(device, offsets.ravel().astype(np.int32))


def implicit_launch(device: Device, y: Tensor, y_layout, planes: PaddedPlanes, kernel: int,
                    dilation: int, weight: Tensor, bias: Tensor | None,
                    residual: Tensor | None, m: int, channels: int, batch: int, out_w: int,
                    act: int, mask=None) -> Launch:
    """conv_implicit_forward over `planes` (batch x channels planes); y_layout is (offset,
    batch stride, row stride m, row stride oh) of y; mask (optional): (tensor, offset in y's
    layout, activation code) of the earlier activation the output passes back through. The
    register block is tuned per shape when the shape is worth it (tuning.py)."""
    length = planes.h * planes.wp
    args = [y, y_layout, planes.tensor, planes.batch_stride(batch), planes.hp * planes.wp,
            dilation, weight, bias, residual, mask or (y, 0, 0), m, channels, length,
            planes.wp, out_w, act, batch, kernel]
    variant = list(VARIANTS[0])
    if m * channels * kernel ** 2 * length * batch >= TUNE_MIN_WORK:
        key = (f"conv_implicit m={m} r={channels * kernel ** 2} positions={length} "
               f"width={planes.wp} batch={batch}{' residual' if residual is not None else ''}")
        variant = device.tuning.choose(key, [list(v) for v in VARIANTS], _runner(device, args))
    return _launch(device, variant, *args)


def _launch(device, variant, y, y_layout, xp, x_sb, plane, dilation, weight, bias, residual,
            mask, m, channels, length, wp, out_w, act, batch, kernel) -> Launch:
    rows, vectors, tall = variant
    tile_n = 8 * vectors
    y_off, y_sb, y_sm, y_sh = y_layout
    tiles = (-(-length // tile_n), -(-m // rows), batch)
    r = channels * kernel ** 2
    local = (1, min(tiles[1], 16), 1) if tall else group_shape(tiles[0], tiles[1], r, tile_n, rows)
    return Launch.prepare(
        device, "conv_implicit", "conv_implicit_forward", tiles, local,
        [y, y_off, y_sb, y_sm, y_sh, xp, x_sb, plane, dilation,
         weight, bias if bias is not None else weight, bias is not None,
         residual if residual is not None else y, y_off, residual is not None, *mask,
         m, channels, length, wp, out_w, act],
        {"TM": rows, "NV": vectors, "KS": kernel})


def _runner(device: Device, args):
    """variant -> a function that runs it once on zero-filled copies of the tensors it
    reads and writes and waits."""
    def twin(t):
        if isinstance(t, tuple):  # the mask: (tensor, offset, activation)
            return (twin(t[0]),) + t[1:]
        if not isinstance(t, Tensor) or t.dtype != np.float32:
            return t
        return Tensor.from_numpy(device, np.zeros(t.size, np.float32))

    copies, queue = [twin(a) for a in args], device.new_queue()

    def prepare(variant):
        launch = _launch(device, variant, *copies)

        def run():
            launch.enqueue(queue)
            queue.finish()
        return run
    return prepare


class ImplicitForward(Plan):
    """y = act(conv(x, weight) + bias) [+ residual] for x (N, C_in, H, W), y (N, C_out, H, W)
    or, with y_padded (top, left, padded height, padded width), the inside of a padded map.

    In a chain of such layers (patch_plans.py), x_planes: x is already the inside of these
    padded planes (the layer before wrote it there: no copy); y_planes: write y into the
    inside of the next layer's input planes (y is then None)."""

    def __init__(self, device: Device, g, x: Tensor | None, weight: Tensor, bias: Tensor,
                 y: Tensor | None, residual: Tensor | None, act: int, y_padded=None, *,
                 x_planes: PaddedPlanes | None = None, y_planes: PaddedPlanes | None = None):
        super().__init__()
        if x_planes is None:
            n, c, h, w = x.shape
            self.input = PaddedPlanes(device, n * c, h, w, g.pads(h, w), g.kernel, g.dilation)
            self.scratch.append(self.input.tensor)
            self.add(self.input.fill(device, x))
        else:
            c, h, w = g.c_in, x_planes.h, x_planes.w
            n = x_planes.planes // c
            self.input = x_planes
        self.batch = n
        # The weight gradient reads its taps through a table of offsets (one per work-item).
        self.koff = tap_offsets(device, c, g.kernel, g.dilation, self.input.hp, self.input.wp)
        self.scratch.append(self.koff)
        if y_planes is not None:
            y, layout = y_planes.tensor, y_planes.inside(n)
        elif y_padded is None:
            layout = (0, g.c_out * h * w, h * w, w)
        else:
            top, left, hp, wp = y_padded
            layout = (top * wp + left, g.c_out * hp * wp, hp * wp, wp)
        self.add(implicit_launch(device, y, layout, self.input, g.kernel, g.dilation, weight,
                                 bias, residual, g.c_out, c, n, w, act))


class ImplicitBackward(Plan):
    """dbias, dweight, and dx if asked, from dy (N, C_out, H, W: the gradient at the
    activation's output y). dz, the gradient before the activation, is written once as a
    padded map (`self.grad`, see gradient_planes): the weight gradient pairs it with the
    forward's padded input, chunk by chunk, and dx is the same convolution of it with the
    weights turned half a turn and transposed.

    In a chain (patch_plans.py), grad: dz is already in these planes (the next layer's dx
    wrote it; dy and y are then None); dx_into (planes, mask planes, activation code): dx
    goes, passed back through the layer before's activation (whose output the mask planes
    hold), straight into that layer's gradient planes (dx is then None)."""

    def __init__(self, device: Device, g, forward: ImplicitForward, dy: Tensor | None,
                 y: Tensor | None, act: int, weight: Tensor, dweight: Tensor, dbias: Tensor,
                 dx: Tensor | None, *, grad: PaddedPlanes | None = None, dx_into=None):
        super().__init__()
        n, c_out, h, w = forward.batch, g.c_out, forward.input.h, forward.input.w
        if grad is None:
            grad = gradient_planes(device, g, n * c_out, h, w)
            self.scratch.append(grad.tensor)
            self.add(grad.fill(device, dy, y, act))
        self.grad, self.dz = grad, grad.tensor
        # The zero borders add nothing: the bias gradient sums the padded planes.
        self.add(Launch.prepare(device, "conv", "conv_backward_bias", (c_out,), None,
                                [dbias, grad.tensor, n, c_out, grad.hp * grad.wp]))
        self.add(implicit_weight_gradient(device, g, forward.input, forward.koff, grad,
                                          dweight, n))
        if dx is None and dx_into is None:
            return
        turned = Tensor.empty(device, (g.c_in, c_out, g.kernel, g.kernel))
        self.scratch.append(turned)
        self.add(Launch.prepare(device, "conv_implicit", "flip_weights", (turned.size,), None,
                                [turned, weight, c_out, g.c_in, g.kernel ** 2]))
        mask, layout = None, (0, g.c_in * h * w, h * w, w)
        if dx_into is not None:
            target, stored, mask_act = dx_into
            if (target.hp, target.wp) != (stored.hp, stored.wp):
                raise ValueError("convolution chain: a gradient map and its mask differ in size")
            dx, layout = target.tensor, target.inside(n)
            mask = (stored.tensor, stored.inside(n)[0], mask_act)
        self.add(implicit_launch(device, dx, layout, grad, g.kernel, g.dilation, turned, None,
                                 None, g.c_in, c_out, n, w, 0, mask))
