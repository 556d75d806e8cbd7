"""A verdict's per-cell probabilities spread over the frame's pixels and refined by the
frame's own edges, on the device (bilinear between cell centres, then a colour-guided
filter: kernels/guided.cl). The window draws this map and the benchmark scores it, so what
is shown is what is measured."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from patchloop_kernels.runtime import Device, Tensor
from patchloop_kernels.guided import GuidedSpread

KEPT_SHAPES = 2   # frame and grid sizes seen last (images of several sizes)


class PixelMaps:
    def __init__(self, device: Device):
        self.device = device
        self._plans: OrderedDict = OrderedDict()

    def spread(self, probabilities: np.ndarray, frame: np.ndarray, queue) -> np.ndarray:
        """float32 (K, H, W) from per-cell probabilities (K, h, w) and the frame they are
        the verdict on, uint8 RGB (H, W, 3)."""
        probabilities = np.ascontiguousarray(probabilities, np.float32)
        key = probabilities.shape + frame.shape
        if key not in self._plans:
            while len(self._plans) >= KEPT_SHAPES:
                self._plans.popitem(last=False)
            cells = Tensor.empty(self.device, probabilities.shape)
            pixels = Tensor.empty(self.device, (probabilities.shape[0],) + frame.shape[:2])
            self._plans[key] = (cells, pixels, GuidedSpread(self.device, cells, pixels),
                                np.empty(pixels.shape, np.float32))
        cells, pixels, plan, host = self._plans[key]
        cells.write(probabilities, queue, wait=False)
        plan.upload(frame, queue)
        plan.enqueue(queue)
        return pixels.read_into(host, queue).copy()
