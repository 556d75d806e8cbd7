"""A patch's layers on the device: a forward plan and a backward plan for a fixed batch and
map size, over parameters in flat buffers (their geometry: patch_layers)."""
from __future__ import annotations

from loop.core.patch_layers import residual_consumers
from patchloop_kernels.conv import ConvForward, ConvGeometry
from patchloop_kernels.conv_backward import ConvBackward
from patchloop_kernels.flat import FlatTensors
from patchloop_kernels.runtime import Device, Plan, Tensor


class PatchForward(Plan):
    """logits (N, outputs, h, w) from input (N, C_in, h, w), with the given parameters.
    residuals[i] (optional): the earlier output added to layer i's (-1: the input x), as
    in fine-tuned base blocks."""

    def __init__(self, device: Device, layers: list[ConvGeometry], params: FlatTensors,
                 x: Tensor, residuals=None):
        super().__init__()
        self.x = x
        self.activations: list[Tensor] = []
        self.layer_plans: list[ConvForward] = []
        residuals = residuals or [None] * len(layers)
        current = x
        for i, g in enumerate(layers):
            n, _, h, w = current.shape
            oh, ow = g.output_size(h, w)
            out = Tensor.empty(device, (n, g.c_out, oh, ow))
            source = residuals[i]
            residual = None if source is None else x if source < 0 else self.activations[source]
            plan = ConvForward(device, g, current, params[f"w{i}"], params[f"b{i}"], out,
                               residual)
            self.add(plan)
            self.layer_plans.append(plan)
            self.activations.append(out)
            current = out
        self.logits = current


class PatchBackward(Plan):
    """Gradients of every parameter into `grads`, from dlogits (the logits' shape). An
    output that also feeds a residual gets that layer's gradient added to its own."""

    def __init__(self, device: Device, layers: list[ConvGeometry], params: FlatTensors,
                 grads: FlatTensors, forward: PatchForward, dlogits: Tensor, residuals=None):
        super().__init__()
        consumers = residual_consumers(residuals or [None] * len(layers))
        inputs = [forward.x] + forward.activations[:-1]
        upstream = {len(layers) - 1: dlogits}   # layer -> gradient at its output
        for i in reversed(range(len(layers))):
            x = inputs[i]
            # The first layer's input is the frozen base's features: no gradient needed there.
            dx = Tensor.empty(device, x.shape) if i > 0 else None
            also = upstream[consumers[i - 1]] if i > 0 and i - 1 in consumers else None
            self.add(ConvBackward(device, layers[i], forward.layer_plans[i], x, params[f"w{i}"],
                                  forward.activations[i], upstream[i], grads[f"w{i}"],
                                  grads[f"b{i}"], dx, also))
            if dx is not None:
                self.scratch.append(dx)
                upstream[i - 1] = dx
