"""The backward of a convolution (conv.py's ConvForward): the bias, weight and input gradients,
through the layer's activation, as GEMMs, the implicit GEMM, or the direct and depthwise
kernels, whichever the forward used."""
from __future__ import annotations

import numpy as np

from .conv import (ACT_SPAN, ConvForward, ConvGeometry, PaddedMap, check_shape, geometry_args,
                   pad_launch, rows_by_planes)
from .conv_implicit import ImplicitBackward
from .gemm import MatrixView, activation_code, prepare_gemm
from .gemm_nt import prepare_gemm_nt
from .runtime import Device, Launch, Plan, Tensor


class ConvBackward(Plan):
    """From dy (the gradient at the activation's output y): dweight, dbias, and dx if asked.
    dz (the gradient before the activation) is kept in `self.dz` (for an implicit GEMM, as a
    padded map: see ImplicitBackward). Needs the forward's im2col buffer (`forward.col`) for
    dense convolutions that use one.

    dx_residual: a gradient that also reaches x by another path (x fed a residual add
    further on); dx becomes the sum. Only 1x1 stride-1 dense convolutions take it: it rides
    in their GEMM's epilogue, which is where residual blocks need it."""

    def __init__(self, device: Device, g: ConvGeometry, forward: ConvForward, x: Tensor,
                 weight: Tensor, y: Tensor, dy: Tensor, dweight: Tensor, dbias: Tensor,
                 dx: Tensor | None = None, dx_residual: Tensor | None = None):
        n, _, h, w = x.shape
        oh, ow = g.output_size(h, w)
        check_shape(dy, y.shape, "dy")
        check_shape(dweight, g.weight_shape, "weight gradient")
        check_shape(dbias, (g.c_out,), "bias gradient")
        if dx is not None:
            check_shape(dx, x.shape, "input gradient")
        if dx_residual is not None:
            if dx is None or not (g.uses_gemm and g.skips_im2col):
                raise ValueError("convolution: only a 1x1 stride-1 dense one with dx adds a "
                                 "residual gradient")
            check_shape(dx_residual, x.shape, "residual gradient")
        act = activation_code(g.activation)
        super().__init__()
        if forward.implicit is not None:
            # Its own activation pass writes dz straight into the padded map it needs.
            implicit = ImplicitBackward(device, g, forward.implicit, dy, y, act, weight,
                                        dweight, dbias, dx)
            self.add(implicit)
            self.dz = implicit.dz
            return
        if act:
            self.dz = Tensor.empty(device, y.shape)
            self.add(Launch.prepare(
                device, "conv", "activation_backward", (-(-dy.size // ACT_SPAN),), None,
                [self.dz, dy, y, dy.size, act]))
        else:
            self.dz = dy
        dz = self.dz
        self.add(Launch.prepare(device, "conv", "conv_backward_bias", (g.c_out,), None,
                                            [dbias, dz, n, g.c_out, oh * ow]))
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
        top, left, bottom, right = g.pads(h, w)
        flipped = g.kernel - 1 - top
        if g.stride != 1 or (top, left) != (bottom, right) or top != left or flipped < 0:
            self.add(Launch.prepare(device, "conv", "conv_direct_backward_input",
                                    (w, h, n * g.c_in), None,
                                    [dx, self.dz, weight] + geometry_args(g, n, h, w)))
            return
        # dx = dz, padded by K - 1 - pad, correlated with the kernel turned half a turn.
        turned = ConvGeometry(g.c_in, g.c_in, g.kernel, 1, flipped, groups=g.c_in)
        dz_padded = PaddedMap.tensor(device, turned, n, oh, ow)
        zero_bias = Tensor.from_numpy(device, np.zeros(g.c_in, np.float32))
        self.scratch += [dz_padded, zero_bias]
        self.add(pad_launch(device, turned, dz_padded, self.dz, planes, oh, ow))
        _, _, hp2, wp2 = PaddedMap.layout(turned, oh, ow)
        self.add(Launch.prepare(
            device, "depthwise", "depthwise_forward", (h, planes),
            rows_by_planes(h, planes, w * g.kernel * g.kernel),
            [dx, dz_padded, weight, zero_bias, g.c_in, hp2, wp2, h, w, 0, planes],
            {"DW_K": g.kernel, "DW_S": 1, "DW_FLIP": 1}))

    def _dense(self, device, g, forward, x, weight, dweight, dx, n, h, w, oh, ow,
               dx_residual=None):
        rows, hw = g.c_in * g.kernel * g.kernel, oh * ow
        col = x if g.skips_im2col else forward.col
        # dW (C_out x rows) = sum_n dz[n] (C_out x hw) @ col[n]^T: both read along hw.
        self.add(prepare_gemm_nt(
            device, MatrixView(dweight, 0, 0, rows), MatrixView(self.dz, 0, g.c_out * hw, hw),
            MatrixView(col, 0, rows * hw, hw), g.c_out, rows, hw, n))
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
