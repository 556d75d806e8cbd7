"""A verdict's per-cell probabilities spread over the frame's pixels, on the device
(bilinear between cell centres: kernels/upsample.cl). The window draws this map and the
benchmark scores it, so what is shown is what is measured."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from patchloop_kernels.runtime import Device, Tensor
from patchloop_kernels.upsample import prepare_upsample

KEPT_SHAPES = 2   # frame and grid sizes seen last (images of several sizes)


class PixelMaps:
    def __init__(self, device: Device):
        self.device = device
        self._plans: OrderedDict = OrderedDict()

    def spread(self, probabilities: np.ndarray, frame_hw, queue) -> np.ndarray:
        """float32 (K, H, W) from per-cell probabilities (K, h, w) for a frame of frame_hw."""
        probabilities = np.ascontiguousarray(probabilities, np.float32)
        key = probabilities.shape + tuple(frame_hw)
        if key not in self._plans:
            while len(self._plans) >= KEPT_SHAPES:
                self._plans.popitem(last=False)
            cells = Tensor.empty(self.device, probabilities.shape)
            pixels = Tensor.empty(self.device, (probabilities.shape[0],) + tuple(frame_hw))
            self._plans[key] = (cells, pixels, prepare_upsample(self.device, pixels, cells),
                                np.empty(pixels.shape, np.float32))
        cells, pixels, launch, host = self._plans[key]
        cells.write(probabilities, queue, wait=False)
        launch.enqueue(queue)
        return pixels.read_into(host, queue).copy()
