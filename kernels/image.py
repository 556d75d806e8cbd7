"""Launcher for image.cl: a camera frame crosses to the device once, as bytes, and becomes
the network's input there."""
from __future__ import annotations

import numpy as np

from .runtime import Device, Launch, Plan, Tensor, enough_groups


class FramePreprocess(Plan):
    """uint8 RGB frames of `frame_shape` (H, W, 3) -> out[batch_index] (3, h, w), resized
    bilinearly and normalised as (p - offset) / scale. The frame is read from `frame` when
    given (a frame another plan uploads: no second copy), else from its own tensor that
    `upload` fills."""

    def __init__(self, device: Device, frame_shape, out: Tensor, offset: float = 127.0,
                 scale: float = 128.0, batch_index: int = 0, bgr: bool = False,
                 frame: Tensor | None = None):
        super().__init__()
        frame_shape = tuple(frame_shape)
        if len(frame_shape) != 3 or frame_shape[2] != 3 or min(frame_shape[:2]) < 1:
            raise ValueError(f"frames must be (H, W, 3), not {frame_shape}")
        n, c, h, w = out.shape
        if c != 3 or not 0 <= batch_index < n:
            raise ValueError(f"cannot place a frame at batch {batch_index} of {out.shape}")
        if scale == 0:
            raise ValueError("normalisation scale must not be 0")
        self.frame_shape = frame_shape
        if frame is not None and (frame.shape != frame_shape or frame.dtype != np.uint8):
            raise ValueError(f"cannot read {frame_shape} frames from {frame.dtype} {frame.shape}")
        self.frame = frame if frame is not None else Tensor.empty(device, frame_shape, np.uint8)
        same_size = frame_shape[:2] == (h, w)
        blocks = -(-w // 8)
        # A work-item per 8 columns of a row, in groups of a row's blocks (at least 64 groups).
        self.add(Launch.prepare(device, "image", "frame_preprocess", (blocks, h),
                                enough_groups((blocks, h), (min(blocks, 64), 1)),
                                [out, batch_index * 3 * h * w, self.frame, frame_shape[0],
                                 frame_shape[1], h, w, float(offset), float(scale), bgr],
                                {"SAME_SIZE": int(same_size)}))

    def upload(self, frame: np.ndarray, queue, wait: bool = False) -> None:
        if frame.shape != self.frame_shape or frame.dtype != np.uint8:
            raise ValueError(f"frame {frame.dtype} {frame.shape} does not match "
                             f"the prepared {self.frame_shape}")
        self.frame.write(frame, queue, wait=wait)
