"""Launcher for upsample.cl: per-cell maps (a verdict's probabilities) spread bilinearly
over frame pixels on the device."""
from __future__ import annotations

from .runtime import Device, Launch, Tensor


def prepare_upsample(device: Device, y: Tensor, x: Tensor) -> Launch:
    """y (C, H, W) or (1, C, H, W) from x (C, h, w) or (1, C, h, w): bilinear between cell
    centres."""
    xs, ys = x.shape[-3:], y.shape[-3:]
    if len(x.shape) < 3 or len(y.shape) < 3 or xs[0] != ys[0] or x.size != xs[0] * xs[1] * xs[2] \
            or y.size != ys[0] * ys[1] * ys[2]:
        raise ValueError(f"upsampling {x.shape} into {y.shape}")
    channels, h, w = xs
    _, height, width = ys
    return Launch.prepare(device, "upsample", "upsample_bilinear", (width, height), None,
                          [y, x, channels, h, w, height, width])
