"""The trainer trains a head patch's first layer on standardised inputs: each channel of the
base's features shifted and scaled to mean 0 and spread 1 over the labeled frames. The
verdicts, snapshots, sessions and exports get the same function on the raw features, folded
into that layer (standardize.cl), so nothing outside the trainer changes.

Why: the base's features are far from unit scale (on the demo the stride-8 channels' means
reach +-9, their spreads 5-9; the stride-16 channels' spreads 3-6), and plain SGD on a layer
that reads them raw is badly conditioned: its steps scale with the features' squared size
and lean along their means, so one step that answers a click moved the verdict on large
unseen regions. Measured step by step on the demo (hypercolumn patch, alternating clicks,
scenes 0-47, with the head's rates of 0.15 / 0.05): the largest fall of the per-pixel curve
after 90% from a median of 0.023 to 0.014 (at most 0.02 on 41 scenes of 48 instead of 18),
95% within 30 clicks on 48 of 48 (46), 0.97 by the end on 41 (35); see the README.

The statistics are the labeled frames' own, taken again each time the labeled frames have
doubled (up to STAT_FRAMES): a camera's features are not the demo's. Taking them again keeps
the function the training weights compute; only the coordinates SGD moves in change."""
from __future__ import annotations

import numpy as np

from loop.core.patch_arch import PatchArch
from patchloop_kernels.flat import FlatLayout, FlatTensors
from patchloop_kernels.runtime import Device, Tensor
from patchloop_kernels.standardize import FoldStandardization

STAT_FRAMES = 32      # the newest labeled frames the statistics are taken over
# A channel whose spread is below this share of the median channel's (a dead channel, or a
# frame that does not move it) is scaled as if its spread were that: standardising it fully
# would blow its noise up into the first layer's steps.
MIN_SPREAD_SHARE = 1e-2
SAMPLE_STRIDE = 2     # the statistics read every other cell of every other row


def standardizes(arch: PatchArch) -> bool:
    """Whether the patch's first layer can be folded exactly: a head on base features (not
    fine-tuned base layers, not raw pixels) whose first layer is a plain 1x1 convolution (a
    wider one would meet its zero padding, where a shifted input is not zero)."""
    if arch.input_layer is None or arch.tuned:
        return False
    first = arch.layers[0]
    return first.kernel == 1 and first.groups == 1 and first.padding == 0 and first.stride == 1


def channel_statistics(features: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(mean, spread) per channel over frames' features, each (C, h, w) float32, from every
    other cell of every other row: a channel's mean and spread need thousands of cells, not
    all 32 x 1200 of them (32 whole hypercolumn frames took 90 ms on the trainer's thread,
    this 5-10 ms)."""
    stacked = np.stack([np.asarray(f, np.float32)[:, ::SAMPLE_STRIDE, ::SAMPLE_STRIDE]
                        for f in features])
    mean = stacked.mean(axis=(0, 2, 3), dtype=np.float64)
    spread = stacked.std(axis=(0, 2, 3), dtype=np.float64)
    floor = MIN_SPREAD_SHARE * max(float(np.median(spread)), 1e-6)
    spread = np.maximum(spread, floor)
    return mean.astype(np.float32), spread.astype(np.float32)


class Standardization:
    """The scale and shift per input channel on the device (x' = scale x + shift; identity
    until set) and the folds of a flat weight buffer's first layer between standardised
    inputs (what the trainer trains) and raw inputs (what the rest of the product reads)."""

    def __init__(self, device: Device, arch: PatchArch, layout: FlatLayout):
        channels = arch.input_channels
        self.device = device
        self.scale = Tensor.from_numpy(device, np.ones(channels, np.float32))
        self.shift = Tensor.from_numpy(device, np.zeros(channels, np.float32))
        self._at = (layout.offsets["w0"], layout.offsets["b0"])
        self._outputs = arch.layers[0].c_out
        self._launches: dict = {}
        # No statistics taken (or switched back to raw features): the steps skip the pass.
        self.identity = True

    def set(self, mean: np.ndarray, spread: np.ndarray, queue) -> None:
        """Standardise by these statistics from the next step on (queued in order)."""
        spread = np.asarray(spread, np.float64)
        scale = (1.0 / spread).astype(np.float32)
        shift = (-np.asarray(mean, np.float64) / spread).astype(np.float32)
        self.scale.write(scale, queue)
        self.shift.write(shift, queue)
        self.identity = bool(np.all(scale == 1.0) and np.all(shift == 0.0))

    def fold(self, queue, out: FlatTensors, src: FlatTensors, unfold: bool = False) -> None:
        """out's first layer = src's, read on raw inputs (or back, `unfold`). The rest of
        `out` is left as it is: the caller copies it."""
        key = (id(out), id(src), unfold)
        if key not in self._launches:
            self._launches[key] = (FoldStandardization(
                self.device, out.flat, self._at, src.flat, self._at, self.scale, self.shift,
                self._outputs, unfold), out, src)   # (kept alive with the launch)
        self._launches[key][0].enqueue(queue)
