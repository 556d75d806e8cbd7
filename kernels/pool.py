"""Launchers for pool.cl: global average pooling, forward and backward."""
from __future__ import annotations

from .runtime import Device, Launch, Tensor


def _planes(x: Tensor) -> tuple[int, int]:
    if len(x.shape) != 4:
        raise ValueError(f"global pooling wants an NCHW map, not shape {x.shape}")
    n, c, h, w = x.shape
    return n * c, h * w


def prepare_global_avg_pool(device: Device, y: Tensor, x: Tensor) -> Launch:
    """y (N, C) = mean of x (N, C, H, W) over H and W."""
    planes, hw = _planes(x)
    if y.size != planes:
        raise ValueError(f"global pooling of {x.shape} gives {planes} values, output has {y.size}")
    return Launch.prepare(device, "pool", "global_avg_pool_forward", (planes,), None,
                          [y, x, planes, hw])


def prepare_global_avg_pool_backward(device: Device, dx: Tensor, dy: Tensor) -> Launch:
    """dx (N, C, H, W) from dy (N, C)."""
    planes, hw = _planes(dx)
    if dy.size != planes:
        raise ValueError(f"pooling gradient has {dy.size} values, {dx.shape} needs {planes}")
    return Launch.prepare(device, "pool", "global_avg_pool_backward_input", (planes,), None,
                          [dx, dy, planes, hw])
