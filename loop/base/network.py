"""The base network on the device: weights uploaded once, and a forward plan per input size.

A plan runs, from a uint8 RGB frame: on-device preprocessing (resize + normalize) and every
layer up to the global pool. The classifier (pool, fully connected layer over the 1,000
classes, softmax) runs only when the classes are asked for (`classify`, or
`read_probabilities`): a frame whose classes nobody reads skips it. Each tap (the output of a
stage) is a tensor of the plan, so a patch reads it where it lies: no copy. The layers take
the forward-only kernels docs/kernels.md lists under "The base's forward" (the base is
frozen: its weights are packed once for the GEMMs).
"""
from __future__ import annotations

import hashlib

import numpy as np
import pyopencl as cl

from loop.base.config import AddLayer, BaseSpec, ConvLayer, FcLayer, PoolLayer
from loop.base import frozen_convs
from loop.base.internal_maps import InternalMaps
from loop.base.layer_readers import block_of, geometry, sole_readers  # noqa: F401 (re-exported)
from patchloop_kernels import expand_depthwise, im2col_stride2
from patchloop_kernels.conv import ConvForward, PaddedMap
from patchloop_kernels.depthwise_bands import (DepthwiseBandForward, reads_plain,
                                               takes_plane_stride)
from patchloop_kernels.gemm import MatrixView, prepare_gemm
from patchloop_kernels.image import FramePreprocess
from patchloop_kernels.pool import prepare_global_avg_pool
from patchloop_kernels.runtime import Device, Plan, Tensor
from patchloop_kernels.softmax import prepare_softmax

MIN_SIDE = 64
# An expand whose output is at least this large runs fused with its stride-2 depthwise
# reader (expand_depthwise.cl): the first block's 7.6 MB map at 240x320 made the pair
# memory-bound; on the smaller maps after it, the two apart were faster.
FUSE_MIN_BYTES = 4 << 20


def weights_hash(spec: BaseSpec) -> str:
    """A short hash of the weights: patches record it to know which base they were made on."""
    return hashlib.sha256(np.ascontiguousarray(spec.weights).tobytes()).hexdigest()[:16]


class BaseNetwork:
    """The base's weights on one device; `plan(h, w)` gives a forward for frames of that size."""

    def __init__(self, device: Device, spec: BaseSpec):
        self.device = device
        self.spec = spec
        self.hash = weights_hash(spec)
        self.params: dict[str, tuple[Tensor, Tensor]] = {}
        for layer in spec.layers:
            if isinstance(layer, ConvLayer):
                w, b = spec.params(layer)
                self.params[layer.name] = (Tensor.from_numpy(device, w), Tensor.from_numpy(device, b))
            elif isinstance(layer, FcLayer):
                w, b = spec.params(layer)
                self.params[layer.name] = (Tensor.from_numpy(device, w), Tensor.from_numpy(device, b))
        self.classes = spec.classes

    def tap_channels(self, tap: str) -> int:
        return tap_channels(self.spec, tap)

    def plan(self, height: int, width: int, frame_shape=None, stop_at: str | None = None
             ) -> "BaseForward":
        """A forward for frames of this size; with stop_at, only up to that layer's output
        (features for a patch, without the classes)."""
        return BaseForward(self, height, width, frame_shape or (height, width, 3), stop_at)


def tap_channels(spec: BaseSpec, tap: str) -> int:
    """Channels of the feature map a tap names (no device needed)."""
    layer = spec.layer_by_name[spec.taps[tap]]
    while isinstance(layer, AddLayer):
        layer = spec.layer_by_name[layer.inputs[0]]
    return layer.cout


def _fused_residuals(spec: BaseSpec) -> dict[str, AddLayer]:
    """conv name -> the add that follows it: the add is folded into the conv's epilogue."""
    consumers: dict[str, int] = {}
    for layer in spec.layers:
        for source in getattr(layer, "inputs", None) or [getattr(layer, "input", None)]:
            consumers[source] = consumers.get(source, 0) + 1
    fused = {}
    for layer in spec.layers:
        if isinstance(layer, AddLayer):
            first = spec.layer_by_name.get(layer.inputs[0])
            if (len(layer.inputs) != 2 or not isinstance(first, ConvLayer)
                    or consumers.get(first.name) != 1):
                raise ValueError(f"{spec.path or spec.name}: add {layer.name!r} must add one "
                                 "layer to a conv whose output nothing else reads")
            fused[first.name] = layer
    return fused


class BaseForward(Plan):
    """One forward of the base for frames of a fixed size, batch 1 (or its first layers, up
    to `stop_at`: then it has no classes)."""

    def __init__(self, network: BaseNetwork, height: int, width: int, frame_shape,
                 stop_at: str | None = None):
        super().__init__()
        if height < MIN_SIDE or width < MIN_SIDE:
            raise ValueError(f"input {width}x{height} is below the base's minimum of "
                             f"{MIN_SIDE}x{MIN_SIDE}")
        device, spec = network.device, network.spec
        self.network, self.height, self.width = network, height, width
        self.input = Tensor.empty(device, (1, spec.input_channels, height, width))
        self.preprocess = FramePreprocess(device, frame_shape, self.input,
                                          spec.norm_offset, spec.norm_scale)
        self.add(self.preprocess)
        self.outputs: dict[str, Tensor] = {"input": self.input}
        self.layer_kinds: list[tuple[str, Plan]] = []
        # From the global pool on: launched by `classify`, not by `run`.
        self.classifier = Plan()
        self._classified = False
        fused = _fused_residuals(spec)
        # A dense conv whose only reader is a depthwise conv writes straight into that one's
        # padded input: no separate padding pass. name -> (N, C, H, W) of the map inside.
        self.padded: dict[str, tuple[int, int, int, int]] = {}
        self._sole_reader = sole_readers(spec, lambda g: g.is_depthwise)
        self._gemm_reader = sole_readers(spec, lambda g: g.skips_im2col)
        # A depthwise output whose planes lie whole float8s apart -> floats between them.
        self.plane_stride: dict[str, int] = {}
        if stop_at is not None and stop_at not in spec.layer_by_name and stop_at != "input":
            raise ValueError(f"the base has no layer {stop_at!r}")
        self._stop_at = stop_at
        # Launches up to and including each layer's: `run(..., until=layer)` stops there.
        self._ends: dict[str, int] = {"input": len(self.launches)}
        self._rest_from: int | None = None   # where a run stopped short; the rest is owed
        self.internal = InternalMaps(device, spec, height, width, {stop_at})
        for layer in spec.layers:
            if stop_at in self.outputs:
                break
            if isinstance(layer, AddLayer) or layer.name in self.outputs:
                continue  # produced by the conv it was fused into
            plan, kind = self._fused_pair(device, network, layer) or (
                self._layer(device, network, layer, fused), self._kind(layer))
            in_classifier = isinstance(layer, PoolLayer) or bool(self.classifier.launches)
            (self.classifier if in_classifier else self).add(plan)
            self.layer_kinds.append((kind, plan))
            for name in self.outputs.keys() - self._ends.keys():
                self._ends[name] = len(self.launches)
        self.taps = {name: self.outputs[layer] for name, layer in spec.taps.items()
                     if layer in self.outputs}
        self.complete = stop_at is None
        if not self.complete:
            return
        self.logits = self.outputs[spec.layers[-1].name]
        self.probabilities = Tensor.empty(device, self.logits.shape)
        self.classifier.add(prepare_softmax(device, self.probabilities, self.logits))
        self.probabilities_np = np.empty(self.logits.shape[1], np.float32)

    @staticmethod
    def _kind(layer) -> str:
        if isinstance(layer, ConvLayer):
            if layer.groups > 1:
                return "depthwise"
            return "1x1" if layer.k == 1 else f"{layer.k}x{layer.k}"
        return "other"

    def _fused_pair(self, device, network, layer):
        """(plan, kind) for an expand and its stride-2 depthwise reader in one kernel, where
        the expanded map is large; None otherwise."""
        reader = self._sole_reader.get(layer.name)
        if (reader is None or not isinstance(layer, ConvLayer) or self._stop_at == layer.name
                or layer.input in self.padded):
            return None
        x = self.outputs[layer.input]
        g, dw = geometry(layer), geometry(reader)
        n, _, h, w = x.shape
        if (n != 1 or not expand_depthwise.fits(g, dw, h, w)
                or g.c_out * h * w * 4 < FUSE_MIN_BYTES):
            return None
        oh, ow = dw.output_size(h, w)
        out = self._output(reader.name, (1, dw.c_out, oh, ow))
        plan = expand_depthwise.ExpandDepthwiseForward(
            device, g, dw, x, *network.params[layer.name], *network.params[reader.name], out)
        self.outputs[reader.name] = out
        return plan, "1x1+depthwise"

    def _layer(self, device, network, layer, fused) -> Plan:
        if isinstance(layer, ConvLayer):
            x = self.outputs[layer.input]
            g = geometry(layer)
            x_shape = self.padded.get(layer.input)
            oh, ow = g.output_size(*(x_shape or x.shape)[2:])
            add = fused.get(layer.name)
            residual = self.outputs[add.inputs[1]] if add else None
            w, b = network.params[layer.name]
            reader = self._sole_reader.get(layer.name)
            # A dense conv writes straight into its depthwise reader's padded input, unless
            # that one pads small maps itself (depthwise_small_forward): there most float8
            # stores into a padded map would straddle its rows and go lane by lane.
            if (reader is not None and g.uses_gemm and add is None and ow >= 8
                    and not reads_plain(geometry(reader), oh, ow)):
                dw = geometry(reader)
                out = PaddedMap.tensor(device, dw, 1, oh, ow, zeroed=True)
                if g.skips_im2col and x_shape is None:
                    plan = frozen_convs.pointwise(device, g, x, w, b, out, None,
                                                  PaddedMap.layout(dw, oh, ow))
                else:
                    plan = ConvForward(device, g, x, w, b, out, x_padded=x_shape,
                                       y_padded=PaddedMap.layout(dw, oh, ow))
                self.padded[layer.name] = (1, g.c_out, oh, ow)
            elif g.skips_im2col and g.uses_gemm and x_shape is None:
                out = self._output(layer.name, (1, g.c_out, oh, ow))
                plan = frozen_convs.pointwise(device, g, x, w, b, out, residual,
                                              x_plane=self.plane_stride.get(layer.input))
            elif (residual is None and x_shape is None
                  and im2col_stride2.fits(g, x.shape[0], *x.shape[2:])):
                out = Tensor.empty(device, (1, g.c_out, oh, ow))
                plan = frozen_convs.stride2_dense(device, g, x, w, b, out)
            elif g.is_depthwise and residual is None:
                plane = self._output_plane(layer, g, x_shape, *(x_shape or x.shape)[2:])
                out = self._output(layer.name, (1, g.c_out, oh, ow), g.c_out * plane)
                plan = DepthwiseBandForward(device, g, x, w, b, out, x_padded=x_shape,
                                            y_plane=plane)
                if plane != oh * ow:
                    self.plane_stride[layer.name] = plane
            else:
                out = Tensor.empty(device, (1, g.c_out, oh, ow))
                plan = ConvForward(device, g, x, w, b, out, residual, x_padded=x_shape)
            self.outputs[add.name if add else layer.name] = out
            return plan
        if isinstance(layer, PoolLayer):
            x = self.outputs[layer.input]
            out = Tensor.empty(device, x.shape[:2])
            self.outputs[layer.name] = out
            return prepare_global_avg_pool(device, out, x)
        if isinstance(layer, FcLayer):
            x = self.outputs[layer.input]
            out = Tensor.empty(device, (1, layer.cout, 1, 1))
            w, b = network.params[layer.name]
            self.outputs[layer.name] = out
            # One sample: logits (out x 1) = W (out x in) @ pooled (in x 1) + bias.
            return prepare_gemm(device, MatrixView(out, 0, 0, 1), MatrixView(w, 0, 0, layer.cin),
                                MatrixView(x, 0, 0, 1), layer.cout, 1, layer.cin, bias=b)
        raise ValueError(f"layer {layer!r} has no device implementation")

    def _output(self, name: str, shape, floats: int | None = None) -> Tensor:
        """A layer's output tensor: in one of the internal maps' buffers if it is one, else
        its own (of `floats`, when its planes lie apart)."""
        tensor = self.internal.tensor(name, shape)
        if tensor is not None:
            return tensor
        if floats is None:
            return Tensor.empty(self.network.device, shape)
        return Tensor(self.network.device, shape, buffer=cl.Buffer(
            self.network.device.context, cl.mem_flags.READ_WRITE, 4 * floats))

    def _output_plane(self, layer, g, x_shape, h, w) -> int:
        """Floats between the planes of a depthwise output: whole float8s where its only
        reader is a 1x1 GEMM (B's rows then start aligned: 192x1152x49 took 0.24 against
        0.37 ms with rows 49 floats apart) and its kernel can space them; else OH * OW."""
        oh, ow = g.output_size(h, w)
        reader = self._gemm_reader.get(layer.name)
        if (reader is None or x_shape is not None or (oh * ow) % 8 == 0
                or not takes_plane_stride(g, h, w)):
            return oh * ow
        return -(-oh * ow // 8) * 8

    def feature_map(self, layer: str) -> Tensor:
        """The (1, C, H, W) output of a base layer, read where it lies (a tap, or where a
        fine-tuned patch branches off)."""
        if layer not in self.outputs:
            raise ValueError(f"the base has no layer {layer!r}")
        if layer in self.padded:
            raise ValueError(f"base layer {layer!r} is stored padded for its depthwise reader")
        if layer in self.internal.names:
            raise ValueError(f"base layer {layer!r} is an internal map, overwritten by later "
                             "blocks in the frame")
        if layer in self.plane_stride:
            raise ValueError(f"base layer {layer!r} is stored with its planes spaced for "
                             "the 1x1 convolution reading it")
        return self.outputs[layer]

    def run(self, frame: np.ndarray, queue, until: str | None = None) -> None:
        """Enqueue the forward for one uint8 RGB frame up to the classifier (no wait), or only
        up to layer `until` (a patch's tap): `classify` then runs the rest first.

        Why stop short: the live verdict reads the base at stride 16 at the deepest, and the
        stride-32 blocks and the 1280-wide head conv after it took about a third of a 240x320
        frame (12.7 against 8.7 ms with the classes, two CPU cores); the classes are read
        only when a trigger or the panel asks."""
        if until is not None and until not in self._ends:
            raise ValueError(f"the base has no layer {until!r} before its classifier")
        self.preprocess.upload(frame, queue)
        end = len(self.launches) if until is None else self._ends[until]
        for launch in self.launches[:end]:
            launch.enqueue(queue)
        self._rest_from = end if end < len(self.launches) else None
        self._classified = False

    def classify(self, queue) -> None:
        """Enqueue the classifier on the last frame run, once (no wait), after the layers a
        shortened run left out: `logits` and `probabilities` hold its classes after it."""
        if not self.complete:
            raise ValueError("this forward stops before the classes")
        if self._rest_from is not None:
            for launch in self.launches[self._rest_from:]:
                launch.enqueue(queue)
            self._rest_from = None
        if not self._classified:
            self.classifier.enqueue(queue)
            self._classified = True

    def read_probabilities(self, queue) -> np.ndarray:
        """The last frame's class probabilities (runs the classifier if it has not run)."""
        self.classify(queue)
        shaped = self.probabilities_np.reshape(self.probabilities.shape)
        return self.probabilities.read_into(shaped, queue).ravel()
