"""A patch's layers on the device: a forward plan and a backward plan for a fixed batch and
map size, over parameters in flat buffers (their geometry: patch_layers).

Consecutive convolutions that both run as implicit GEMMs (all seven of a pixels patch) form
a chain: each writes its output straight into the next one's zero-padded input, and in the
backward each input gradient is passed back through the activation before it and written
straight into that layer's padded gradient map. Without the chain every such layer copied
its input into a padded map, and its gradient too: two passes over a 20 MB map per layer
and direction at batch 16 on a pixels patch."""
from __future__ import annotations

from loop.core.patch_layers import residual_consumers
from patchloop_kernels.conv import ConvForward, ConvGeometry, PaddedMap
from patchloop_kernels.conv_backward import ConvBackward
from patchloop_kernels.conv_implicit import (ImplicitBackward, ImplicitForward, PaddedPlanes,
                                             fits, gradient_planes)
from patchloop_kernels.flat import FlatTensors
from patchloop_kernels.gemm import TILE_N, activation_code
from patchloop_kernels.runtime import Device, Plan, Tensor


def chained_layers(layers: list[ConvGeometry], residuals, h: int, w: int) -> set[int]:
    """The layers i whose output goes straight into layer i + 1's padded input: both are
    implicit GEMMs on maps of the same size, whose padded maps (and so the gradient map of
    layer i and the copy of its output that masks it) have the same size. Chains with
    residuals are left alone."""
    if any(r is not None for r in residuals):
        return set()
    chained = set()
    for i in range(len(layers) - 1):
        a, b = layers[i], layers[i + 1]
        if fits(a, h, w) and fits(b, h, w):
            pa, pb = a.pads(h, w), b.pads(h, w)
            if pa[0] + pa[2] == pb[0] + pb[2] and pa[1] + pa[3] == pb[1] + pb[3]:
                chained.add(i)
        h, w = a.output_size(h, w)
    return chained


class PatchForward(Plan):
    """logits (N, outputs, h, w) from input (N, C_in, h, w), with the given parameters.
    residuals[i] (optional): the earlier output added to layer i's (-1: the input x), as
    in fine-tuned base blocks. A chained layer's output lives only in the next layer's
    padded input (`stored[i]`); its `activations[i]` is None. A 1x1 layer whose output only
    a depthwise one reads writes it into that one's padded input: `activations[i]` is that
    padded map (conv.py's PaddedMap)."""

    def __init__(self, device: Device, layers: list[ConvGeometry], params: FlatTensors,
                 x: Tensor, residuals=None):
        super().__init__()
        self.x = x
        self.activations: list[Tensor | None] = []
        self.layer_plans: list[ConvForward | ImplicitForward] = []
        self.stored: dict[int, PaddedPlanes] = {}
        residuals = residuals or [None] * len(layers)
        n, _, h, w = x.shape
        self.chained = chained_layers(layers, residuals, h, w)
        sources = set(residual_consumers(residuals))
        current, x_padded = x, None
        for i, g in enumerate(layers):
            oh, ow = g.output_size(h, w)
            weight, bias = params[f"w{i}"], params[f"b{i}"]
            out = None
            if _feeds_depthwise(layers, residuals, sources, i, oh * ow):
                # Straight into the depthwise convolution's padded input (as the base does):
                # no copy of a 12 MB map per fine-tuned block and step.
                after = layers[i + 1]
                out = PaddedMap.tensor(device, after, n, oh, ow, zeroed=True)
                plan = ConvForward(device, g, current, weight, bias, out,
                                   y_padded=PaddedMap.layout(after, oh, ow))
                self.add(plan)
                self.layer_plans.append(plan)
                self.activations.append(out)
                current, x_padded, h, w = out, (n, g.c_out, oh, ow), oh, ow
                continue
            if i in self.chained:
                nxt = layers[i + 1]
                self.stored[i] = PaddedPlanes(device, n * g.c_out, oh, ow, nxt.pads(oh, ow),
                                              nxt.kernel, nxt.dilation)
                self.scratch.append(self.stored[i].tensor)
            else:
                out = Tensor.empty(device, (n, g.c_out, oh, ow))
            if i in self.chained or i - 1 in self.chained:
                plan = ImplicitForward(device, g, current, weight, bias, out, None,
                                       activation_code(g.activation),
                                       x_planes=self.stored.get(i - 1),
                                       y_planes=self.stored.get(i))
            else:
                source = residuals[i]
                residual = (None if source is None else x if source < 0
                            else self.activations[source])
                plan = ConvForward(device, g, current, weight, bias, out, residual,
                                   x_padded=x_padded)
            self.add(plan)
            self.layer_plans.append(plan)
            self.activations.append(out)
            current, x_padded, h, w = out, None, oh, ow
        self.logits = current


def _feeds_depthwise(layers, residuals, sources, i: int, positions: int) -> bool:
    """Layer i is a 1x1 GEMM whose output only a depthwise convolution reads, with no
    residual on either: it can write into that convolution's padded input (a GEMM writes a
    padded map only when its rows span a whole register tile: TILE_N positions)."""
    if i + 1 >= len(layers) or i in sources:
        return False
    g, after = layers[i], layers[i + 1]
    return (g.uses_gemm and g.skips_im2col and after.is_depthwise and positions >= TILE_N
            and residuals[i] is None and residuals[i + 1] is None)


class PatchBackward(Plan):
    """Gradients of every parameter into `grads`, from dlogits (the logits' shape). An
    output that also feeds a residual gets that layer's gradient added to its own."""

    def __init__(self, device: Device, layers: list[ConvGeometry], params: FlatTensors,
                 grads: FlatTensors, forward: PatchForward, dlogits: Tensor, residuals=None):
        super().__init__()
        consumers = residual_consumers(residuals or [None] * len(layers))
        inputs = [forward.x] + forward.activations[:-1]
        upstream = {len(layers) - 1: dlogits}   # layer -> gradient at its output
        gradient_maps = {}  # chained layer -> its padded dz, written by the next layer's dx
        chained = forward.chained
        for i in reversed(range(len(layers))):
            g, x = layers[i], inputs[i]
            weight, dweight, dbias = params[f"w{i}"], grads[f"w{i}"], grads[f"b{i}"]
            if i in chained or i - 1 in chained:
                self.add(self._chained(device, layers, i, forward, upstream, gradient_maps,
                                       weight, dweight, dbias))
                continue
            # The first layer's input is the frozen base's features: no gradient needed there.
            dx = Tensor.empty(device, forward.layer_plans[i].x_shape) if i > 0 else None
            also = upstream[consumers[i - 1]] if i > 0 and i - 1 in consumers else None
            self.add(ConvBackward(device, g, forward.layer_plans[i], x, weight,
                                  forward.activations[i], upstream[i], dweight, dbias, dx,
                                  also))
            if dx is not None:
                self.scratch.append(dx)
                upstream[i - 1] = dx

    def _chained(self, device, layers, i, forward, upstream, gradient_maps, weight, dweight,
                 dbias) -> ImplicitBackward:
        g, dx, dx_into = layers[i], None, None
        if i - 1 in forward.chained:
            before = layers[i - 1]
            planes = forward.stored[i - 1]
            gradient_maps[i - 1] = gradient_planes(device, before, planes.planes, planes.h,
                                                   planes.w)
            self.scratch.append(gradient_maps[i - 1].tensor)
            dx_into = (gradient_maps[i - 1], planes, activation_code(before.activation))
        elif i > 0:
            dx = Tensor.empty(device, forward.activations[i - 1].shape)
            self.scratch.append(dx)
            upstream[i - 1] = dx
        if i in forward.chained:
            return ImplicitBackward(device, g, forward.layer_plans[i], None, None, 0, weight,
                                    dweight, dbias, dx, grad=gradient_maps[i], dx_into=dx_into)
        return ImplicitBackward(device, g, forward.layer_plans[i], upstream[i],
                                forward.activations[i], activation_code(g.activation), weight,
                                dweight, dbias, dx, dx_into=dx_into)
