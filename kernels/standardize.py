"""Launchers for standardize.cl: a patch input's per-channel standardisation, and the fold
that turns a first layer trained on standardised inputs into one on raw inputs (and back)."""
from __future__ import annotations

from .runtime import Device, Launch, Tensor


class ChannelAffine:
    """x = x * scale[c] + shift[c] in place over an (N, C, H, W) tensor."""

    def __init__(self, device: Device, x: Tensor, scale: Tensor, shift: Tensor):
        channels = x.shape[1]
        if scale.shape != (channels,) or shift.shape != (channels,):
            raise ValueError(f"scale and shift must have shape ({channels},), not "
                             f"{scale.shape} and {shift.shape}")
        rows = x.shape[0] * channels
        plane = x.size // rows
        self.launch = Launch.prepare(device, "standardize", "channel_affine",
                                     (rows, -(-plane // 16)), None,
                                     [x, scale, shift, channels, plane])

    def enqueue(self, queue) -> None:
        self.launch.enqueue(queue)


class FoldStandardization:
    """A 1x1 convolution's weights [outputs, inputs] and bias, read from flat `src` at
    element offsets (src_w, src_b), written folded (or unfolded) to flat `out` at (out_w,
    out_b). `src` and `out` must be different buffers."""

    def __init__(self, device: Device, out: Tensor, out_at: tuple[int, int], src: Tensor,
                 src_at: tuple[int, int], scale: Tensor, shift: Tensor, outputs: int,
                 unfold: bool = False):
        if src.buffer is out.buffer:
            raise ValueError("the fold reads and writes different buffers")
        inputs = scale.size
        for flat, (w_at, b_at) in ((src, src_at), (out, out_at)):
            if min(w_at, b_at) < 0 or max(w_at + outputs * inputs, b_at + outputs) > flat.size:
                raise ValueError(f"weights at {w_at} or bias at {b_at} lie outside "
                                 f"{flat.size} elements")
        self.launch = Launch.prepare(device, "standardize", "fold_standardization",
                                     (outputs,), None,
                                     [out, out_at[0], out_at[1], src, src_at[0], src_at[1],
                                      scale, shift, outputs, inputs, int(unfold)])

    def enqueue(self, queue) -> None:
        self.launch.enqueue(queue)
