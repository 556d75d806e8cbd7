"""The backward of a convolution (conv.py's ConvForward): the bias, weight and input gradients,
through the layer's activation, as GEMMs, the implicit GEMM, or the direct and depthwise
kernels, whichever the forward used."""
from __future__ import annotations

import numpy as np

from .conv import (ConvForward, ConvGeometry, PaddedMap, check_shape, depthwise_band_launch,
                   geometry_args, pad_launch)
from .conv_implicit import ImplicitBackward
from .gemm import MatrixView, activation_code, prepare_gemm
from .gemm_nt import sum_parts
from .runtime import Device, Launch, Plan, Tensor
from .weight_gradient import WeightGradient


class ConvBackward(Plan):
    """From dy (the gradient at the activation's output y): dweight, dbias, and dx if asked.
    dz (the gradient before the activation) is kept in `self.dz` (for an implicit GEMM, as a
    padded map: see ImplicitBackward). Needs the forward's im2col buffer (`forward.col`) for
    dense convolutions that use one.

    dx_residual: a gradient that also reaches x by another path (x fed a residual add
    further on); dx becomes the sum. Only 1x1 stride-1 dense convolutions take it: it rides
    in their GEMM's epilogue, which is where residual blocks need it.

    x and y are what the forward read and wrote: padded maps where it took them so (a
    depthwise convolution's padded input, written straight by the layer before)."""

    def __init__(self, device: Device, g: ConvGeometry, forward: ConvForward, x: Tensor,
                 weight: Tensor, y: Tensor, dy: Tensor, dweight: Tensor, dbias: Tensor,
                 dx: Tensor | None = None, dx_residual: Tensor | None = None):
        n, _, h, w = forward.x_shape
        oh, ow = g.output_size(h, w)
        check_shape(dy, (n, g.c_out, oh, ow), "dy")
        if forward.y_padded is None:
            check_shape(y, dy.shape, "output")
        check_shape(dweight, g.weight_shape, "weight gradient")
        check_shape(dbias, (g.c_out,), "bias gradient")
        if dx is not None:
            check_shape(dx, forward.x_shape, "input gradient")
        if dx_residual is not None:
            if dx is None or not (g.uses_gemm and g.skips_im2col):
                raise ValueError("convolution: only a 1x1 stride-1 dense one with dx adds a "
                                 "residual gradient")
            check_shape(dx_residual, forward.x_shape, "residual gradient")
        act = activation_code(g.activation)
        super().__init__()
        if forward.implicit is not None:
            # Its own activation pass writes dz straight into the padded map it needs.
            implicit = ImplicitBackward(device, g, forward.implicit, dy, y, act, weight,
                                        dweight, dbias, dx)
            self.add(implicit)
            self.dz = implicit.dz
            return
        # A depthwise input gradient by the flipped forward reads dz padded (see _depthwise).
        self.dz_padded = None
        if g.is_depthwise and dx is not None and _flipped(g, h, w) is not None:
            self.dz_padded = PaddedMap.tensor(device, _flipped(g, h, w), n, oh, ow, zeroed=True)
            self.scratch.append(self.dz_padded)
        if act:
            # One pass: dz, its padded copy if one is needed, and the bias gradient.
            self.dz = Tensor.empty(device, dy.shape)
            top, left, hp, wp = (PaddedMap.layout(_flipped(g, h, w), oh, ow)
                                 if self.dz_padded is not None else (0, 0, 0, 0))
            y_top, y_left, y_hp, y_wp = forward.y_padded or (0, 0, 0, 0)
            planes = n * g.c_out
            bias_parts = Tensor.empty(device, (n, g.c_out))
            self.scratch.append(bias_parts)
            self.add(Launch.prepare(
                device, "conv", "activation_backward_bias", (planes,), (min(planes, 64),),
                [self.dz, bias_parts, self.dz if self.dz_padded is None else self.dz_padded,
                 self.dz_padded is not None,
                 hp, wp, top, left, dy, y, forward.y_padded is not None, y_hp, y_wp, y_top,
                 y_left, planes, oh, ow, act]))
            self.add(sum_parts(device, dbias, 0, bias_parts, g.c_out, n, False))
        else:
            self.dz = dy
            self.add(Launch.prepare(device, "conv", "conv_backward_bias", (g.c_out,), None,
                                    [dbias, dy, n, g.c_out, oh * ow]))
            if self.dz_padded is not None:
                self.add(pad_launch(device, _flipped(g, h, w), self.dz_padded, dy, n * g.c_in,
                                    oh, ow))
        dz = self.dz
        if g.uses_gemm:
            self._dense(device, g, forward, x, weight, dweight, dx, n, h, w, oh, ow, dx_residual)
        elif g.is_depthwise:
            self._depthwise(device, g, forward, x, weight, dweight, dx, n, h, w, oh, ow)
        else:
            geometry = geometry_args(g, n, h, w)
            self.add(Launch.prepare(
                device, "conv", "conv_direct_backward_weight",
                (g.kernel * g.kernel, g.c_in // g.groups, g.c_out), None,
                [dweight, dz, x] + geometry))
            if dx is not None:
                self.add(Launch.prepare(
                    device, "conv", "conv_direct_backward_input", (w, h, n * g.c_in), None,
                    [dx, dz, weight] + geometry))

    def _depthwise(self, device, g, forward, x, weight, dweight, dx, n, h, w, oh, ow):
        """Depthwise backward in the forward's register-blocked shape (the direct kernels
        are 3-8x slower on the shapes fine-tuning meets)."""
        planes, build = n * g.c_in, {"DW_K": g.kernel, "DW_S": g.stride}
        _, _, hp, wp = PaddedMap.layout(g, h, w)
        padded = forward.padded
        if padded is None:  # the forward fused a residual and ran the direct kernel
            padded = PaddedMap.tensor(device, g, n, h, w, zeroed=True)
            self.scratch.append(padded)
            self.add(pad_launch(device, g, padded, x, planes, h, w))
        self.add(Launch.prepare(
            device, "depthwise", "depthwise_backward_weight", (g.kernel, g.c_in),
            (g.kernel, min(g.c_in, 16)), [dweight, self.dz, padded, n, g.c_in, hp, wp, oh, ow],
            build))
        if dx is None:
            return
        turned = _flipped(g, h, w)
        if turned is None:
            self.add(Launch.prepare(device, "conv", "conv_direct_backward_input",
                                    (w, h, n * g.c_in), None,
                                    [dx, self.dz, weight] + geometry_args(g, n, h, w)))
            return
        # dx = dz, padded by K - 1 - pad (self.dz_padded), correlated with the kernel turned
        # half a turn.
        zero_bias = Tensor.from_numpy(device, np.zeros(g.c_in, np.float32))
        self.scratch.append(zero_bias)
        _, _, hp2, wp2 = PaddedMap.layout(turned, oh, ow)
        self.add(depthwise_band_launch(device, g.kernel, 1, dx, self.dz_padded, weight,
                                       zero_bias, g.c_in, hp2, wp2, h, w, 0, planes, flip=True))

    def _dense(self, device, g, forward, x, weight, dweight, dx, n, h, w, oh, ow,
               dx_residual=None):
        rows, hw = g.c_in * g.kernel * g.kernel, oh * ow
        col = x if g.skips_im2col else forward.col
        self.add(WeightGradient(device, dweight, self.dz, col, n, g.c_out, rows, hw))
        if dx is None:
            return
        # dcol[n] (rows x hw) = W^T (rows x C_out) @ dz[n]; W^T is read through strides.
        target = dx if g.skips_im2col else Tensor.empty(device, (n, rows, hw))
        self.scratch.append(target)
        self.add(prepare_gemm(
            device, MatrixView(target, 0, rows * hw, hw), MatrixView(weight, 0, 0, 1, rows),
            MatrixView(self.dz, 0, g.c_out * hw, hw), rows, hw, g.c_out, n,
            residual=dx_residual))
        if not g.skips_im2col:
            top, left, _, _ = g.pads(h, w)
            self.add(Launch.prepare(
                device, "conv", "col2im_backward", (h, n * g.c_in), None,
                [dx, target, n, g.c_in, h, w, oh, ow, g.kernel, g.stride, g.dilation, top, left]))


def _flipped(g: ConvGeometry, h: int, w: int) -> ConvGeometry | None:
    """The depthwise convolution whose forward on dz (padded by K - 1 - pad) is the input
    gradient of g, or None where it has none (strided, asymmetric padding): the direct
    kernel does those."""
    top, left, bottom, right = g.pads(h, w)
    flipped = g.kernel - 1 - top
    if g.stride != 1 or (top, left) != (bottom, right) or top != left or flipped < 0:
        return None
    return ConvGeometry(g.c_in, g.c_in, g.kernel, 1, flipped, groups=g.c_in)
