"""The base's dense convolutions as forward plans on frozen weights (the base never trains:
fine-tuning copies its blocks into the patch), so the GEMMs may pack the weights once into
their row tiles (`prepare_gemm(..., a_fixed=True)`)."""
from __future__ import annotations

from patchloop_kernels import im2col_stride2
from patchloop_kernels.conv import ConvGeometry
from patchloop_kernels.gemm import MatrixView, prepare_gemm
from patchloop_kernels.runtime import Device, Plan, Tensor


def pointwise(device: Device, g: ConvGeometry, x: Tensor, weight: Tensor, bias: Tensor,
              y: Tensor, residual: Tensor | None, y_padded=None, x_plane: int | None = None
              ) -> Plan:
    """A 1x1 stride-1 convolution as one GEMM on the input (NCHW already is its operand), as
    ConvForward runs it, but with the weights marked fixed: the base is frozen, so they are
    packed into the GEMM's row tiles once. y_padded: y is a depthwise convolution's padded
    input, (top, left, padded height, padded width) as PaddedMap.layout gives them.
    x_plane: floats from one input plane to the next, if not H * W (the GEMM's B rows)."""
    n, c, h, w = x.shape
    hw = h * w
    plane = x_plane or hw
    if y_padded is None:
        c_view, c_padding = MatrixView(y, 0, g.c_out * hw, hw), None
    else:
        top, left, hp, wp = y_padded
        c_view, c_padding = MatrixView(y, 0, g.c_out * hp * wp, hp * wp), (w, wp, top, left)
    return prepare_gemm(device, c_view, MatrixView(weight, 0, 0, c),
                        MatrixView(x, 0, c * plane, plane),
                        g.c_out, hw, c, n, bias=bias, residual=residual,
                        activation=g.activation, c_padding=c_padding, a_fixed=True)


def stride2_dense(device: Device, g: ConvGeometry, x: Tensor, weight: Tensor, bias: Tensor,
                  y: Tensor) -> Plan:
    """A dense stride-2 convolution (the stem) as im2col_stride2 + a GEMM on fixed weights."""
    _, c, h, w = x.shape
    oh, ow = g.output_size(h, w)
    rows = c * g.kernel * g.kernel
    col = Tensor.empty(device, (rows, oh * ow))
    plan = Plan([im2col_stride2.im2col_stride2(device, g, x, col)])
    plan.scratch.append(col)
    plan.add(prepare_gemm(device, MatrixView(y, 0, 0, oh * ow), MatrixView(weight, 0, 0, rows),
                          MatrixView(col, 0, 0, oh * ow), g.c_out, oh * ow, rows, bias=bias,
                          activation=g.activation, a_fixed=True))
    return plan
