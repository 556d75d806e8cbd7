"""Launchers for optim.cl: the SGD step, the gradient-norm clip, the non-finite check and the
running average of weights."""
from __future__ import annotations

import numpy as np

from .runtime import Device, Launch, Plan, Tensor


class SgdStep:
    """SGD with momentum and decay over flat weights, velocity and gradients (same length).
    Learning rate, momentum and decay are given at each step, so they can change live. The
    gradient is multiplied by `scale[0]` (a GradientClip's factor) or by 1 without one."""

    def __init__(self, device: Device, weights: Tensor, grads: Tensor, velocity: Tensor,
                 scale: Tensor | None = None):
        if not weights.size == grads.size == velocity.size:
            raise ValueError(f"SGD buffers differ in length: {weights.size}, {grads.size}, "
                             f"{velocity.size}")
        if scale is None:
            scale = Tensor.from_numpy(device, np.ones(1, np.float32))
        self.scale = scale
        self.launch = Launch.prepare(device, "optim", "sgd_step", (-(-weights.size // 16),), None,
                                     [weights, velocity, grads, scale, weights.size, 0.0, 0.0,
                                      0.0])

    def enqueue(self, queue, learning_rate: float, momentum: float, weight_decay: float) -> None:
        self.launch.set_arg(5, float(learning_rate))
        self.launch.set_arg(6, float(momentum))
        self.launch.set_arg(7, float(weight_decay))
        self.launch.enqueue(queue)


class RunningAverage:
    """average = (1 - rate) average + rate weights over two flat buffers of one length; the rate is
    given at each call (1 copies)."""

    def __init__(self, device: Device, average: Tensor, weights: Tensor):
        if average.size != weights.size:
            raise ValueError(f"running average over {average.size} and {weights.size} elements")
        self.launch = Launch.prepare(device, "optim", "running_average",
                                     (-(-average.size // 16),), None,
                                     [average, weights, average.size, 1.0])

    def enqueue(self, queue, rate: float) -> None:
        self.launch.set_arg(3, float(rate))
        self.launch.enqueue(queue)


class GradientClip(Plan):
    """factor[0] = min(1, max_norm / ||grads||), factor[1] = ||grads||, computed on the device
    so that the SGD step that reads the factor needs no round trip to the host."""

    CHUNK = 1024  # elements one work-item of the first pass sums

    def __init__(self, device: Device, grads: Tensor, max_norm: float):
        super().__init__()
        parts = -(-grads.size // self.CHUNK)
        self.partial = Tensor.empty(device, (parts,))
        self.factor = Tensor.empty(device, (2,))
        self.add(Launch.prepare(device, "optim", "sum_squares_partial", (parts,), None,
                                [self.partial, grads, grads.size, self.CHUNK]))
        self._clip = Launch.prepare(device, "optim", "clip_factor", (1,), None,
                                    [self.factor, self.partial, parts, float(max_norm)])
        self.add(self._clip)

    def set_max_norm(self, max_norm: float) -> None:
        self._clip.set_arg(3, float(max_norm))


class NonfiniteCount(Plan):
    """count[0] = how many elements of the given float32 tensors are NaN or Inf."""

    def __init__(self, device: Device, *tensors: Tensor):
        super().__init__()
        self.count = Tensor.empty(device, (1,), np.int32)
        self.add(Launch.prepare(device, "optim", "fill_int", (1,), None, [self.count, 0]))
        for t in tensors:
            if t.dtype != np.float32:
                raise ValueError(f"non-finite check wants float32, not {t.dtype}")
            self.add(Launch.prepare(device, "optim", "nonfinite_count", (-(-t.size // 256),), None,
                                    [self.count, t, t.size]))
