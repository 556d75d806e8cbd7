"""Launchers for upsample.cl: per-cell maps (a verdict's probabilities) spread bilinearly
over frame pixels on the device, and two feature maps of different strides stacked into one
(a hypercolumn)."""
from __future__ import annotations

from .runtime import Device, Launch, Plan, Tensor


def prepare_upsample(device: Device, y: Tensor, x: Tensor, y_channel: int = 0) -> Launch:
    """y (C', H, W) or (1, C', H, W) from x (C, h, w) or (1, C, h, w): bilinear between cell
    centres, into y's channels [y_channel, y_channel + C)."""
    xs, ys = x.shape[-3:], y.shape[-3:]
    if len(x.shape) < 3 or len(y.shape) < 3 or x.size != xs[0] * xs[1] * xs[2] \
            or y.size != ys[0] * ys[1] * ys[2] or not 0 <= y_channel <= ys[0] - xs[0]:
        raise ValueError(f"upsampling {x.shape} into {y.shape} at channel {y_channel}")
    channels, h, w = xs
    _, height, width = ys
    return Launch.prepare(device, "upsample", "upsample_bilinear", (width, height), None,
                          [y, y_channel * height * width, x, channels, h, w, height, width])


def prepare_hypercolumn(device: Device, y: Tensor, fine: Tensor, coarse: Tensor) -> Plan:
    """y (1, Cf + Cc, H, W): a fine map (1, Cf, H, W) and a coarser one (1, Cc, h, w) spread
    bilinearly to H x W, stacked channel-wise (a hypercolumn: detail and context per cell).
    At its own size the bilinear spread is an exact copy."""
    cf, cc = fine.shape[1], coarse.shape[1]
    if y.shape != (1, cf + cc) + fine.shape[2:]:
        raise ValueError(f"a hypercolumn of {fine.shape} and {coarse.shape} is not {y.shape}")
    return Plan([prepare_upsample(device, y, fine, 0), prepare_upsample(device, y, coarse, cf)])
