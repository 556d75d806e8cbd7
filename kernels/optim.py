"""Launchers for optim.cl: the SGD step and the non-finite check."""
from __future__ import annotations

import numpy as np

from .runtime import Device, Launch, Plan, Tensor


class SgdStep:
    """SGD with momentum and decay over flat weights, velocity and gradients (same length).
    Learning rate, momentum and decay are given at each step, so they can change live."""

    def __init__(self, device: Device, weights: Tensor, grads: Tensor, velocity: Tensor):
        if not weights.size == grads.size == velocity.size:
            raise ValueError(f"SGD buffers differ in length: {weights.size}, {grads.size}, "
                             f"{velocity.size}")
        self.launch = Launch.prepare(device, "optim", "sgd_step", (-(-weights.size // 16),), None,
                                     [weights, velocity, grads, weights.size, 0.0, 0.0, 0.0])

    def enqueue(self, queue, learning_rate: float, momentum: float, weight_decay: float) -> None:
        self.launch.set_arg(4, float(learning_rate))
        self.launch.set_arg(5, float(momentum))
        self.launch.set_arg(6, float(weight_decay))
        self.launch.enqueue(queue)


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
