"""A simulated annotator that works as a careful user does: it looks at the verdict, finds
the largest region where it is wrong, and clicks deep inside it, alternating background and
objects when it can (seed 001: alternate foreground and background, click where the net is
wrong)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Click:
    x: int          # frame pixels
    y: int
    radius: int     # pixels; the disc lies inside the wrong region
    category: int   # the truth under the click: index into the scene's categories


class SimulatedAnnotator:
    def __init__(self, radius: int = 12):
        self.radius = radius
        self.last_category: int | None = None

    def click(self, truth: np.ndarray, predicted: np.ndarray) -> Click | None:
        """One click on the largest wrong region, or None when nothing is wrong.

        After a background click a wrong object region is preferred, after an object click
        a wrong background region; otherwise the largest wrong region of any category."""
        if truth.shape != predicted.shape:
            raise ValueError(f"truth {truth.shape} and prediction {predicted.shape} differ")
        wrong = truth != predicted
        if not wrong.any():
            return None
        regions = []  # (area, category, labels, label): one per connected wrong region
        for category in np.unique(truth[wrong]):
            mask = (wrong & (truth == category)).astype(np.uint8)
            count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
            regions += [(int(stats[i, cv2.CC_STAT_AREA]), int(category), labels, i)
                        for i in range(1, count)]
        regions.sort(key=lambda r: (-r[0], r[1]))
        pick = regions[0]
        if self.last_category is not None:
            was_background = self.last_category == 0
            other = [r for r in regions if (r[1] == 0) != was_background]
            if other:
                pick = other[0]
        _, category, labels, label = pick
        region = np.pad((labels == label).astype(np.uint8), 1)  # the frame edge bounds it too
        depth = cv2.distanceTransform(region, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        y, x = np.unravel_index(int(depth.argmax()), depth.shape)
        # Every pixel nearer than depth[y, x] to (x, y) is in the region.
        radius = max(1, min(self.radius, int(np.ceil(depth[y, x])) - 1))
        self.last_category = category
        return Click(int(x), int(y), radius, category)
