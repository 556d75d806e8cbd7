"""A patch's layers, pure geometry: which convolutions a topology has, that a chain with
residuals is well formed, each parameter's shape, and the initial parameters. No device.

Topologies (chosen when the patch is made):
  head   -- on a base tap: 1x1 conv, ReLU, 3x3 conv, ReLU, 1x1 conv to one logit per category
  pixels -- a from-scratch net on the raw frame: seven 3x3 convolutions with
            dilation 2, ReLU on all but the last, one logit per category per pixel
"""
from __future__ import annotations

import numpy as np

from loop.core.patch import HEAD_HIDDEN, PIXELS_HIDDEN
from patchloop_kernels.conv import ConvGeometry
from patchloop_kernels.flat import FlatLayout
from patchloop_kernels.runtime import Device

PIXELS_DEPTH = 7


def head_layers(tap_channels: int, outputs: int, hidden: int = HEAD_HIDDEN) -> list[ConvGeometry]:
    return [ConvGeometry(tap_channels, hidden, 1, activation="relu"),
            ConvGeometry(hidden, hidden, 3, 1, 1, activation="relu"),
            ConvGeometry(hidden, outputs, 1)]


def pixels_layers(outputs: int, hidden: int = PIXELS_HIDDEN) -> list[ConvGeometry]:
    widths = [3] + [hidden] * (PIXELS_DEPTH - 1) + [outputs]
    return [ConvGeometry(widths[i], widths[i + 1], 3, 1, 2, 2,
                         activation="relu" if i < PIXELS_DEPTH - 1 else "none")
            for i in range(PIXELS_DEPTH)]


def patch_layers(spec, input_channels: int) -> list[ConvGeometry]:
    """The layers of a patch: its topology, one output per category (one score in [-1, 1]
    for the squared-error loss)."""
    outputs = 1 if spec.loss == "squared_error" else spec.outputs
    if spec.topology == "head":
        return head_layers(input_channels, outputs, spec.hidden)
    return pixels_layers(outputs, spec.hidden)


def parameter_layout(device: Device, layers: list[ConvGeometry]) -> FlatLayout:
    return FlatLayout(device, layer_shapes(layers))


def check_chain(layers, residuals) -> None:
    """A chain with residuals is well formed: channels follow on, and each residual adds an
    earlier output of the same shape (same channels, every layer since keeps the map's
    size) after a layer without activation."""
    for i, g in enumerate(layers):
        if i and layers[i - 1].c_out != g.c_in:
            raise ValueError(f"layer {i} takes {g.c_in} channels after {layers[i - 1].c_out}")
        source = residuals[i]
        if source is None:
            continue
        if not -1 <= source < i:
            raise ValueError(f"layer {i}'s residual comes from layer {source}, not before it")
        channels = layers[source].c_out if source >= 0 else layers[0].c_in
        if g.activation != "none":
            raise ValueError(f"layer {i} has a residual after its {g.activation}")
        resized = any(layers[j].output_size(17, 23) != (17, 23) for j in range(source + 1, i + 1))
        if channels != g.c_out or resized:
            raise ValueError(f"layer {i}'s residual from layer {source} has another shape")
        reader = layers[source + 1]
        if source >= 0 and not (reader.uses_gemm and reader.skips_im2col):
            # Its gradient joins the reader's input gradient in that GEMM's epilogue.
            raise ValueError(f"layer {i}'s residual from layer {source} needs layer "
                             f"{source + 1} to be a 1x1 convolution")


def residual_consumers(residuals) -> dict[int, int]:
    """chain output index -> the layer whose residual reads it (-1: the input)."""
    out = {}
    for i, source in enumerate(residuals):
        if source is not None:
            if source in out:
                raise ValueError(f"output {source} feeds two residuals")
            out[source] = i
    return out


# The untaught patch leans to the background (category 0): p(background) ~ 0.9 everywhere,
# so a new patch reports nothing until the user has taught it something.
BACKGROUND_PRIOR = 2.0
BACKGROUND_SCORE = 0.8


def layer_shapes(layers: list[ConvGeometry]) -> dict[str, tuple[int, ...]]:
    """Each layer's weight and bias shape by name (w0, b0, w1, ...), in the dense order."""
    shapes = {}
    for i, g in enumerate(layers):
        shapes[f"w{i}"] = g.weight_shape
        shapes[f"b{i}"] = (g.c_out,)
    return shapes


def initial_parameters(layers: list[ConvGeometry], seed: int) -> dict[str, np.ndarray]:
    """He initialisation for layers followed by ReLU; the last layer starts small, leaning
    to the background."""
    rng = np.random.default_rng(seed)
    params = {}
    for i, g in enumerate(layers):
        fan_in = g.c_in // g.groups * g.kernel ** 2
        gain = np.sqrt(2.0 / fan_in) if g.activation != "none" else 0.1 / np.sqrt(fan_in)
        params[f"w{i}"] = (rng.standard_normal(g.weight_shape) * gain).astype(np.float32)
        params[f"b{i}"] = np.zeros(g.c_out, np.float32)
    last = len(layers) - 1
    if layers[-1].c_out == 1:  # one score in [-1, 1] (squared error): lean to -1, background
        params[f"b{last}"][0] = -BACKGROUND_SCORE
    else:
        params[f"b{last}"][0] = BACKGROUND_PRIOR + np.log(max(1, layers[-1].c_out - 1))
    return params
