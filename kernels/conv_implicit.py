"""Launchers for conv_implicit.cl: dense stride-1 convolutions that keep their map's size,
forward and backward, as GEMMs that read the zero-padded input in place (no im2col).

ConvForward and ConvBackward (conv.py) choose this path when `fits(g, h, w)`; the caller
sees the same tensors either way.
"""
from __future__ import annotations

import numpy as np

from .gemm import group_shape
from .gemm_nt import sum_parts
from .runtime import Device, Launch, Plan, Tensor
from .tuning import TUNE_MIN_WORK

# The widest position tile (8*NV floats) the forward may use: the padded maps' slack.
MAX_TILE_N = 32
GROUP_WORK = 1 << 16  # elements per work-group of the padding passes (see conv.py)
# Positions per partial weight gradient: a chunk of both operands (16 channels x 2048
# floats each) stays in cache while every tile of its work-group reads it.
WEIGHT_CHUNK = 2048


def fits(g, h: int, w: int) -> bool:
    """Dense, stride 1, larger than 1x1, output the input's size (so the input gradient is
    the same kind of convolution, on the output gradient padded the other way round)."""
    return (g.groups == 1 and g.stride == 1 and g.kernel > 1
            and g.output_size(h, w) == (h, w))


# The register blocks timed (rows, float8 vectors per row, tall work-groups), the default
# first: 4 x 16 (8 float8 sums) as in gemm.py; the rest are the ones that won elsewhere.
VARIANTS = [(4, 2, False), (4, 2, True), (6, 2, False), (6, 2, True), (8, 1, True)]


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

    def fill(self, device: Device, x: Tensor, y: Tensor | None = None, act: int = 0) -> Launch:
        """Copy x (planes of h x w) into the inside, zeros around it. With act, x is the
        gradient at an activation's output y, and the inside gets the gradient before it."""
        items = max(1, GROUP_WORK // self.wp)
        rows = min(self.hp, items)
        local = (rows, max(1, min(self.planes, items // rows, 64)))
        return Launch.prepare(device, "conv", "pad_forward", (self.hp, self.planes), local,
                              [self.tensor, x, y if y is not None else x, act, self.h, self.w,
                               self.top, self.left, self.hp, self.wp, self.planes])


def tap_offsets(device: Device, channels: int, kernel: int, dilation: int, hp: int, wp: int
                ) -> Tensor:
    """koff[(c*K + kh)*K + kw] = c*hp*wp + kh*D*wp + kw*D, as int32 on the device."""
    c, kh, kw = np.meshgrid(np.arange(channels), np.arange(kernel), np.arange(kernel),
                            indexing="ij")
    offsets = c * hp * wp + kh * dilation * wp + kw * dilation
    return Tensor.from_numpy(device, offsets.ravel().astype(np.int32))


def implicit_launch(device: Device, y: Tensor, y_layout, planes: PaddedPlanes, koff: Tensor,
                    weight: Tensor, bias: Tensor | None, residual: Tensor | None,
                    m: int, r: int, batch: int, out_w: int, act: int) -> Launch:
    """conv_implicit_forward over `planes` (batch x r/K^2 planes); y_layout is (offset,
    batch stride, row stride m, row stride oh) of y. The register block is tuned per shape
    when the shape is worth it (tuning.py)."""
    length = planes.h * planes.wp
    args = [y, y_layout, planes.tensor, planes.batch_stride(batch), koff, weight, bias,
            residual, m, r, length, planes.wp, out_w, act, batch]
    variant = list(VARIANTS[0])
    if m * r * length * batch >= TUNE_MIN_WORK:
        key = (f"conv_implicit m={m} r={r} positions={length} width={planes.wp} "
               f"batch={batch}{' residual' if residual is not None else ''}")
        variant = device.tuning.choose(key, [list(v) for v in VARIANTS], _runner(device, args))
    return _launch(device, variant, *args)


def _launch(device, variant, y, y_layout, xp, x_sb, koff, weight, bias, residual, m, r,
            length, wp, out_w, act, batch) -> Launch:
    rows, vectors, tall = variant
    tile_n = 8 * vectors
    y_off, y_sb, y_sm, y_sh = y_layout
    tiles = (-(-length // tile_n), -(-m // rows), batch)
    local = (1, min(tiles[1], 16), 1) if tall else group_shape(tiles[0], tiles[1], r, tile_n, rows)
    return Launch.prepare(
        device, "conv_implicit", "conv_implicit_forward", tiles, local,
        [y, y_off, y_sb, y_sm, y_sh, xp, x_sb, koff,
         weight, bias if bias is not None else weight, bias is not None,
         residual if residual is not None else y, y_off, residual is not None,
         m, r, length, wp, out_w, act],
        {"TM": rows, "NV": vectors})


def _runner(device: Device, args):
    """variant -> a function that runs it once on zero-filled copies of the tensors it
    reads and writes (the tap offsets are shared) and waits."""
    def twin(t):
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
    or, with y_padded (top, left, padded height, padded width), the inside of a padded map."""

    def __init__(self, device: Device, g, x: Tensor, weight: Tensor, bias: Tensor, y: Tensor,
                 residual: Tensor | None, act: int, y_padded=None):
        super().__init__()
        n, c, h, w = x.shape
        self.input = PaddedPlanes(device, n * c, h, w, g.pads(h, w), g.kernel, g.dilation)
        self.koff = tap_offsets(device, c, g.kernel, g.dilation, self.input.hp, self.input.wp)
        self.scratch += [self.input.tensor, self.koff]
        if y_padded is None:
            layout = (0, g.c_out * h * w, h * w, w)
        else:
            top, left, hp, wp = y_padded
            layout = (top * wp + left, g.c_out * hp * wp, hp * wp, wp)
        self.add(self.input.fill(device, x))
        self.add(implicit_launch(device, y, layout, self.input, self.koff, weight, bias,
                                 residual, g.c_out, c * g.kernel ** 2, n, w, act))


class ImplicitBackward(Plan):
    """dbias, dweight, and dx if asked, from dy (N, C_out, H, W: the gradient at the
    activation's output y). dz, the gradient before the activation, is written once as a
    padded map (`self.dz`) of the forward's padded width, padded the other way round: the
    weight gradient pairs it with the forward's padded input, chunk by chunk, and dx is the
    same convolution of it with the weights turned half a turn and transposed."""

    def __init__(self, device: Device, g, forward: ImplicitForward, dy: Tensor, y: Tensor,
                 act: int, weight: Tensor, dweight: Tensor, dbias: Tensor, dx: Tensor | None):
        super().__init__()
        n, c_out, h, w = dy.shape
        top, left, bottom, right = g.pads(h, w)
        grad = PaddedPlanes(device, n * c_out, h, w, (bottom, right, top, left), g.kernel,
                            g.dilation)
        self.dz = grad.tensor
        plane = grad.hp * grad.wp
        self.add(grad.fill(device, dy, y, act))
        # The zero borders add nothing: the bias gradient sums the padded planes.
        self.add(Launch.prepare(device, "conv", "conv_backward_bias", (c_out,), None,
                                [dbias, grad.tensor, n, c_out, plane]))
        self._weight(device, g, forward, grad, dweight, n, c_out, h)
        if dx is None:
            return
        turned = Tensor.empty(device, (g.c_in, c_out, g.kernel, g.kernel))
        koff = tap_offsets(device, c_out, g.kernel, g.dilation, grad.hp, grad.wp)
        self.scratch += [turned, koff]
        self.add(Launch.prepare(device, "conv_implicit", "flip_weights", (turned.size,), None,
                                [turned, weight, c_out, g.c_in, g.kernel ** 2]))
        self.add(implicit_launch(device, dx, (0, g.c_in * h * w, h * w, w), grad, koff, turned,
                                 None, None, g.c_in, c_out * g.kernel ** 2, n, w, 0))

    def _weight(self, device, g, forward, grad, dweight, n, c_out, h) -> None:
        """Partial sums per chunk of WEIGHT_CHUNK positions, then their sum."""
        taps, length = g.c_in * g.kernel ** 2, h * grad.wp
        chunks = -(-length // WEIGHT_CHUNK)
        parts = Tensor.empty(device, (n * chunks, c_out, taps))
        self.scratch.append(parts)
        tiles = (-(-taps // 4), -(-c_out // 2), n * chunks)
        # A group spans the tiles of one chunk (within 256 work-items, for GPUs too).
        local = (min(tiles[0], 32), min(tiles[1], max(1, 256 // min(tiles[0], 32))), 1)
        self.add(Launch.prepare(
            device, "conv_implicit", "conv_implicit_backward_weight", tiles, local,
            [parts, grad.tensor, grad.top * grad.wp + grad.left, c_out * grad.hp * grad.wp,
             grad.hp * grad.wp, forward.input.tensor, forward.input.batch_stride(n),
             forward.koff, c_out, taps, length, WEIGHT_CHUNK, chunks]))
        self.add(sum_parts(device, dweight, 0, parts, dweight.size, n * chunks, False))
