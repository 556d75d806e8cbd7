"""Rand-tilt-shift (random tilt, shift, colour and gain): a labeled frame
turned a little, shifted, its colours shifted, optionally mirrored, with its labels moved
along so they still sit on what they labeled."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from loop.core.labels import LabelDisc, LabeledFrame, WholeFrameLabel


@dataclass(frozen=True)
class AugmentRanges:
    """How far a copy may differ (rotation, shifts, channel shift)."""

    tilt_degrees: float = 10.0
    shift: float = 0.08          # of the frame's width and height
    colour_shift: float = 20.0   # per channel, in 0..255 units
    gain: float = 0.15           # brightness/contrast, relative

    def __post_init__(self):
        for name, value, high, unit in (("tilt", self.tilt_degrees, 45, " degrees"),
                                        ("shift", self.shift, 0.5, " of the size"),
                                        ("colour shift", self.colour_shift, 128, ""),
                                        ("gain", self.gain, 1, "")):
            if not 0 <= value <= high:
                raise ValueError(f"augment: {name} {value:g}{unit} is outside [0, {high}]")


def augment(image: np.ndarray, labels: list, rng: np.random.Generator,
            flips: bool = False, ranges: AugmentRanges = AugmentRanges()
            ) -> tuple[np.ndarray, list]:
    """(image, labels) transformed by one random tilt, shift, colour shift (and mirror)."""
    h, w = image.shape[:2]
    angle = rng.uniform(-ranges.tilt_degrees, ranges.tilt_degrees)
    shift = rng.uniform(-ranges.shift, ranges.shift, 2) * (w, h)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    matrix[:, 2] += shift
    mirror = flips and rng.random() < 0.5
    if mirror:
        matrix = np.array([[-1, 0, w - 1], [0, 1, 0]], np.float64) @ np.vstack([matrix, [0, 0, 1]])
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101).astype(np.float32)
    gain = 1.0 + rng.uniform(-ranges.gain, ranges.gain)
    out = out * gain + rng.uniform(-ranges.colour_shift, ranges.colour_shift, 3)
    moved = []
    for label in labels:
        if isinstance(label, WholeFrameLabel):
            moved.append(label)
            continue
        x, y = matrix @ np.array([label.x, label.y, 1.0])
        if 0 <= x < w and 0 <= y < h:  # a label pushed out of the frame is dropped
            moved.append(LabelDisc(float(x), float(y), label.radius, label.category))
    return np.clip(out, 0, 255).astype(np.uint8), moved


class CopyMaker:
    """Rand-tilt-shift copies of labeled frames for the trainer (run in its thread, one at a
    time): of a frame with fewer than its share, chosen at random."""

    def __init__(self, book, seed: int, cells):
        self.book, self.cells = book, cells
        self.rng = np.random.default_rng(seed)
        self.ranges = AugmentRanges()
        self._next_id = -1   # copies count down, never meeting frame ids

    def make_one(self, features_of, flips: bool) -> bool:
        """One copy (its features from `features_of(image)`); False when every frame has
        its copies."""
        picked = self.book.wanting_copies(self.rng)
        if picked is None:
            return False
        source, labels = picked
        image, new_labels = augment(source.image, labels, self.rng, flips, self.ranges)
        copy = LabeledFrame(self._next_id, image, features_of(image), new_labels,
                            added_at=source.added_at, augmented_from=source.frame_id,
                            cells=self.cells)
        copy.relabel()
        self._next_id -= 1
        self.book.add_copy(copy, source, labels)  # dropped if the original changed meanwhile
        return True
