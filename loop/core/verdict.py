"""A verdict: what the patch says about one frame, computed from its per-cell probabilities."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loop.core.labels import cell_under

BASE_TOP = 5   # the base's best classes a verdict names (and triggers are looked up in)


@dataclass(frozen=True)
class Verdict:
    frame_id: int
    probabilities: np.ndarray      # float32 (K, h, w): per-cell probability of each category
    category: int                  # the frame's category
    confidence: float              # its probability
    triggered: bool                # whether the patch ran (its trigger categories were seen)
    base_top: tuple                # ((tag, name, probability), ...) of the base, best first
                                   # (read every few verdicts unless a trigger needs them)
    receptive_field: tuple[int, int]  # (height, width) of one cell's view, in frame pixels
    weights_version: int           # which published weights produced it
    frame_shape: tuple[int, int]   # (height, width) of the frame
    pixels: np.ndarray | None = None  # float32 (K, H, W): probabilities spread over the
                                      # frame's pixels (bilinear between cell centres)

    @property
    def cell_categories(self) -> np.ndarray:
        """int (h, w): the best category of each cell."""
        return self.probabilities.argmax(axis=0)

    @property
    def uncertainty(self) -> np.ndarray:
        """float (h, w) in [0, 1]: 1 minus the margin between the two best categories. High
        where a click would teach the most."""
        if self.probabilities.shape[0] < 2:
            return np.zeros(self.probabilities.shape[1:], np.float32)
        top2 = np.sort(self.probabilities, axis=0)[-2:]
        return (1.0 - (top2[1] - top2[0])).astype(np.float32)

    def category_at(self, x: float, y: float) -> int:
        """The best category of the cell under frame pixel (x, y)."""
        _, h, w = self.probabilities.shape
        cy, cx = cell_under(x, y, h, w, *self.frame_shape)
        return int(self.probabilities[:, cy, cx].argmax())


def frame_verdict(probabilities: np.ndarray, threshold: float,
                  pooling: str = "detect") -> tuple[int, float]:
    """Pool cells into the frame's verdict. "detect": the non-background category whose most
    confident cell passes the threshold (the best such), else background with 1 minus that
    peak. "mean": the category with the highest mean probability over the cells."""
    if pooling == "mean":
        means = probabilities.reshape(probabilities.shape[0], -1).mean(axis=1)
        best = int(means.argmax())
        return best, float(means[best])
    peaks = probabilities[1:].reshape(probabilities.shape[0] - 1, -1).max(axis=1)
    best = int(peaks.argmax())
    if peaks[best] >= threshold:
        return best + 1, float(peaks[best])
    return 0, float(1.0 - peaks[best])


def base_top(probabilities: np.ndarray, classes, count: int = BASE_TOP) -> tuple:
    """((tag, name, probability), ...) of the base's `count` best classes, best first."""
    best = np.argsort(probabilities)[::-1][:count]
    return tuple((classes[i].tag, classes[i].name, float(probabilities[i])) for i in best)
