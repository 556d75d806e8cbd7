"""Rand-tilt-shift (Neural Patches' checkbox; seed 002's augmentations): a labeled frame
turned a little, shifted, its colours shifted, optionally mirrored, with its labels moved
along so they still sit on what they labeled."""
from __future__ import annotations

import cv2
import numpy as np

from loop.core.labels import LabelDisc, WholeFrameLabel

MAX_TILT_DEGREES = 10.0
MAX_SHIFT = 0.08          # of the frame's width and height
MAX_COLOUR_SHIFT = 20.0   # per channel, in 0..255 units
MAX_GAIN = 0.15           # brightness/contrast, relative


def augment(image: np.ndarray, labels: list, rng: np.random.Generator,
            flips: bool = False) -> tuple[np.ndarray, list]:
    """(image, labels) transformed by one random tilt, shift, colour shift (and mirror)."""
    h, w = image.shape[:2]
    angle = rng.uniform(-MAX_TILT_DEGREES, MAX_TILT_DEGREES)
    shift = rng.uniform(-MAX_SHIFT, MAX_SHIFT, 2) * (w, h)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    matrix[:, 2] += shift
    mirror = flips and rng.random() < 0.5
    if mirror:
        matrix = np.array([[-1, 0, w - 1], [0, 1, 0]], np.float64) @ np.vstack([matrix, [0, 0, 1]])
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101).astype(np.float32)
    gain = 1.0 + rng.uniform(-MAX_GAIN, MAX_GAIN)
    out = out * gain + rng.uniform(-MAX_COLOUR_SHIFT, MAX_COLOUR_SHIFT, 3)
    moved = []
    for label in labels:
        if isinstance(label, WholeFrameLabel):
            moved.append(label)
            continue
        x, y = matrix @ np.array([label.x, label.y, 1.0])
        if 0 <= x < w and 0 <= y < h:  # a label pushed out of the frame is dropped
            moved.append(LabelDisc(float(x), float(y), label.radius, label.category))
    return np.clip(out, 0, 255).astype(np.uint8), moved
