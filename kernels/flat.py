"""Many small tensors in one flat device buffer, so one optimizer launch updates them all.

Each tensor is an OpenCL sub-buffer of the flat one; OpenCL wants sub-buffers to start on the
device's base-address alignment, so tensors are padded apart. The padding is zero in every
flat buffer and no kernel writes it, so it never becomes NaN and never moves.
"""
from __future__ import annotations

import numpy as np

from .runtime import Device, Tensor


def split_dense(shapes: dict[str, tuple[int, ...]], dense: np.ndarray) -> dict[str, np.ndarray]:
    """Tensors by name from the dense order (each of `shapes` back to back, no padding: the
    same on every device); ValueError when the values do not fill them exactly."""
    dense = np.asarray(dense, np.float32).ravel()
    needed = int(sum(int(np.prod(shape)) for shape in shapes.values()))
    if dense.size != needed:
        raise ValueError(f"{dense.size} values given, the layout holds {needed}")
    arrays, at = {}, 0
    for name, shape in shapes.items():
        count = int(np.prod(shape))
        arrays[name] = dense[at:at + count].reshape(shape)
        at += count
    return arrays


class FlatLayout:
    """Where each named tensor sits in a flat float32 buffer."""

    def __init__(self, device: Device, shapes: dict[str, tuple[int, ...]]):
        align = max(1, device.device.mem_base_addr_align // 8 // 4)  # bits -> float32 elements
        self.shapes = dict(shapes)
        self.offsets: dict[str, int] = {}
        at = 0
        for name, shape in self.shapes.items():
            self.offsets[name] = at
            at += -(-int(np.prod(shape)) // align) * align
        self.size = max(at, 1)

    def pack(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        flat = np.zeros(self.size, np.float32)
        for name, shape in self.shapes.items():
            array = np.asarray(arrays[name], np.float32)
            if array.shape != shape:
                raise ValueError(f"{name}: shape {array.shape}, expected {shape}")
            flat[self.offsets[name]:self.offsets[name] + array.size] = array.ravel()
        return flat

    @property
    def dense_size(self) -> int:
        return int(sum(int(np.prod(shape)) for shape in self.shapes.values()))

    def dense(self, flat: np.ndarray) -> np.ndarray:
        """The tensors back to back, no padding: the same on every device, for files."""
        return np.concatenate([a.ravel() for a in self.unpack(flat).values()]).astype(np.float32)

    def from_dense(self, dense: np.ndarray) -> np.ndarray:
        return self.pack(split_dense(self.shapes, dense))

    def unpack(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        return {name: flat[self.offsets[name]:self.offsets[name] + int(np.prod(shape))]
                .reshape(shape).copy() for name, shape in self.shapes.items()}


class FlatTensors:
    """A flat device buffer laid out by a FlatLayout, with a Tensor view per name."""

    def __init__(self, device: Device, layout: FlatLayout, initial: np.ndarray | None = None):
        self.layout = layout
        self.flat = Tensor.from_numpy(device, initial if initial is not None
                                      else np.zeros(layout.size, np.float32))
        self.views: dict[str, Tensor] = {}
        for name, shape in layout.shapes.items():
            start = layout.offsets[name] * 4
            nbytes = int(np.prod(shape)) * 4
            region = self.flat.buffer.get_sub_region(start, nbytes)
            self.views[name] = Tensor(device, shape, np.float32, region)

    def __getitem__(self, name: str) -> Tensor:
        return self.views[name]

    def span(self, first: str, last: str) -> Tensor:
        """One view over the tensors from `first` to `last` in layout order (and the padding
        between them), so one launch can treat a run of them alike."""
        start = self.layout.offsets[first]
        end = self.layout.offsets[last] + int(np.prod(self.layout.shapes[last]))
        region = self.flat.buffer.get_sub_region(start * 4, (end - start) * 4)
        return Tensor(self.flat.device, (end - start,), np.float32, region)
