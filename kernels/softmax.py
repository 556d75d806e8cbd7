"""Launcher for softmax.cl: per-position softmax over channels."""
from __future__ import annotations

from .runtime import Device, Launch, Tensor


def prepare_softmax(device: Device, y: Tensor, x: Tensor) -> Launch:
    """y = softmax over axis 1 of x (N, C, H, W); (N, C) works as H = W = 1."""
    shape = x.shape + (1,) * (4 - len(x.shape))
    if len(shape) != 4 or y.size != x.size:
        raise ValueError(f"softmax of {x.shape} into {y.shape}")
    n, c, h, w = shape
    return Launch.prepare(device, "softmax", "softmax_forward", (h * w, n), None,
                          [y, x, c, h * w])


def prepare_score_probabilities(device: Device, y: Tensor, s: Tensor) -> Launch:
    """y (N, 2, H, W) two-category probabilities from scores s (N, 1, H, W) in [-1, 1]."""
    n, c, h, w = s.shape
    if c != 1 or y.shape != (n, 2, h, w):
        raise ValueError(f"scores {s.shape} give probabilities (N, 2, H, W), not {y.shape}")
    return Launch.prepare(device, "softmax", "score_probabilities_forward", (h * w, n), None,
                          [y, s, h * w])
