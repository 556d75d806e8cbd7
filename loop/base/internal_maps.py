"""The base forward's internal maps: an expand's output read only by the depthwise conv
after it, a depthwise output read only by the 1x1 project after it. Two buffers, used in
turn, hold them all (each is read by the very next layer, on one in-order queue), so a
frame's working set stays in cache instead of a buffer per layer (block outputs keep
their own: taps and fine-tuned patches read them after the frame)."""
from __future__ import annotations

import pyopencl as cl

from loop.base.config import AddLayer, BaseSpec, ConvLayer
from loop.base.layer_readers import geometry, sole_readers
from patchloop_kernels.runtime import Device, Tensor


def internal_layers(spec: BaseSpec, keep: set[str]) -> set[str]:
    """Conv layers whose output only the next conv reads (a depthwise conv or a 1x1 in the
    same block; never a tap), except those in `keep`."""
    readers = sole_readers(spec, lambda g: g.is_depthwise or g.skips_im2col)
    convs = [layer.name for layer in spec.layers if isinstance(layer, ConvLayer)]
    after = dict(zip(convs, convs[1:]))
    return {name for name, reader in readers.items()
            if name not in keep and after.get(name) == reader.name}


def largest_output(spec: BaseSpec, height: int, width: int, names: set[str]) -> int:
    """Floats the largest of these layers' outputs takes, its planes spaced to whole
    float8s (as depthwise outputs may be)."""
    sizes = {"input": (height, width)}
    largest = 0
    for layer in spec.layers:
        if isinstance(layer, ConvLayer):
            oh, ow = geometry(layer).output_size(*sizes[layer.input])
            sizes[layer.name] = (oh, ow)
            if layer.name in names:
                largest = max(largest, layer.cout * (-(-oh * ow // 8) * 8))
        elif isinstance(layer, AddLayer):
            sizes[layer.name] = sizes[layer.inputs[0]]
    return largest


class InternalMaps:
    """Hands out the internal maps' tensors, alternating between two buffers."""

    def __init__(self, device: Device, spec: BaseSpec, height: int, width: int,
                 keep: set[str]):
        self.device = device
        self.names = internal_layers(spec, keep)
        self.floats = largest_output(spec, height, width, self.names)
        self._buffers: list[cl.Buffer] = []
        self._turn = 0

    def tensor(self, name: str, shape) -> Tensor | None:
        """The output tensor of layer `name` in the next buffer, or None if the layer's
        output is not internal."""
        if name not in self.names:
            return None
        if len(self._buffers) < 2:
            self._buffers.append(cl.Buffer(self.device.context, cl.mem_flags.READ_WRITE,
                                           4 * self.floats))
        buffer = self._buffers[self._turn]
        self._turn ^= 1
        return Tensor(self.device, shape, buffer=buffer)
