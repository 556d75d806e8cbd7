"""Launchers for upsample.cl: per-cell maps (a verdict's probabilities) spread bilinearly
over frame pixels on the device, and two feature maps of different strides stacked into one
(a hypercolumn)."""
from __future__ import annotations

import numpy as np

from .runtime import Device, Launch, Plan, Tensor, enough_groups

# Outputs from which the variant is measured per device (tuning.py): a verdict's map and the
# hypercolumn's spread coarse map are; smaller maps take the row variant, measured faster on
# PoCL at every size tried.
TUNE_MIN_OUTPUTS = 1 << 16
VARIANTS = ("rows", "pixels")   # upsample.cl's two kernels; the first is the default


def source_cells(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of `size` pixels over `n` cells: the two cells it lies between ((size, 2)
    int32) and its fraction of the way from the first to the second (float32). Pixel p
    samples the cells at ((2p + 1) n - size) / (2 size), clamped at both ends. Cell and
    fraction come from the integer numerator: exact where a float division is not (a GPU's
    may be 2.5 ulp off, which at the map's own size moved a sample just below its cell and
    made the hypercolumn's copy of the fine map a blend of two)."""
    p = np.arange(size, dtype=np.int64)
    numerator, twice = (2 * p + 1) * n - size, 2 * size
    below = np.maximum(numerator, 0) // twice
    inside = (numerator > 0) & (below < n - 1)
    cell = np.where(inside, below, np.where(numerator <= 0, 0, n - 1))
    fraction = np.where(inside, (numerator - below * twice).astype(np.float32)
                        / np.float32(twice), np.float32(0)).astype(np.float32)
    pairs = np.stack([cell, np.minimum(cell + 1, n - 1)], axis=1).astype(np.int32)
    return pairs, fraction


def prepare_upsample(device: Device, y: Tensor, x: Tensor, y_channel: int = 0) -> Launch:
    """y (C', H, W) or (1, C', H, W) from x (C, h, w) or (1, C, h, w): bilinear between cell
    centres, into y's channels [y_channel, y_channel + C)."""
    xs, ys = x.shape[-3:], y.shape[-3:]
    if len(x.shape) < 3 or len(y.shape) < 3 or x.size != xs[0] * xs[1] * xs[2] \
            or y.size != ys[0] * ys[1] * ys[2] or not 0 <= y_channel <= ys[0] - xs[0]:
        raise ValueError(f"upsampling {x.shape} into {y.shape} at channel {y_channel}")
    channels, h, w = xs
    _, height, width = ys
    rows, row_fractions = source_cells(h, height)
    cols, col_fractions = source_cells(w, width)
    tables = [Tensor.from_numpy(device, a) for a in (rows, row_fractions, cols, col_fractions)]
    args = [y, y_channel * height * width, x, *tables, h, w, height, width]
    variant = VARIANTS[0]
    if channels * height * width >= TUNE_MIN_OUTPUTS:
        key = f"upsample c={channels} h={h} w={w} height={height} width={width}"
        variant = device.tuning.choose(key, list(VARIANTS), _runner(device, args, y, x))
    return _upsample_launch(device, variant, args, (channels, height, width))


def _upsample_launch(device: Device, variant: str, args: list, shape) -> Launch:
    channels, height, width = shape
    if variant == "rows":
        return Launch.prepare(device, "upsample", "upsample_bilinear_rows", (height, channels),
                              enough_groups((height, channels), (height, 1)), args)
    return Launch.prepare(device, "upsample", "upsample_bilinear", (width, height, channels),
                          None, args)


def _runner(device: Device, args: list, y: Tensor, x: Tensor):
    """variant -> a function that runs it once on zero-filled stand-ins for y and x."""
    stand_ins = {id(t): Tensor.from_numpy(device, np.zeros(t.shape, np.float32)) for t in (y, x)}
    copied = [stand_ins.get(id(a), a) for a in args]
    shape = (x.shape[-3], y.shape[-2], y.shape[-1])
    queue = device.new_queue()

    def prepare(variant):
        launch = _upsample_launch(device, variant, copied, shape)

        def run():
            launch.enqueue(queue)
            queue.finish()
        return run
    return prepare


def prepare_hypercolumn(device: Device, y: Tensor, fine: Tensor, coarse: Tensor) -> Plan:
    """y (1, Cf + Cc, H, W): a fine map (1, Cf, H, W) and a coarser one (1, Cc, h, w) spread
    bilinearly to H x W, stacked channel-wise (a hypercolumn: detail and context per cell).
    At its own size the bilinear spread is an exact copy."""
    cf, cc = fine.shape[1], coarse.shape[1]
    if y.shape != (1, cf + cc) + fine.shape[2:]:
        raise ValueError(f"a hypercolumn of {fine.shape} and {coarse.shape} is not {y.shape}")
    return Plan([prepare_upsample(device, y, fine, 0), prepare_upsample(device, y, coarse, cf)])
