"""A simulated annotator that works as a careful user does: it looks at the verdict, finds
the largest region where it is wrong, and clicks deep inside it, alternating categories
when it can (seed 001: alternate foreground and background, click where the net is wrong)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Click:
    x: int
    y: int
    radius: int
    category: int


class SimulatedAnnotator:
    def __init__(self, radius: int = 12):
        self.radius = radius
        self.last_category: int | None = None

    def click(self, truth: np.ndarray, predicted: np.ndarray) -> Click | None:
        """One click on the largest wrong region, or None when nothing is wrong."""
        if truth.shape != predicted.shape:
            raise ValueError(f"truth {truth.shape} and prediction {predicted.shape} differ")
        wrong = truth != predicted
        if not wrong.any():
            return None
        regions = []  # (area, category, mask)
        for category in np.unique(truth[wrong]):
            mask = (wrong & (truth == category)).astype(np.uint8)
            count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
            for i in range(1, count):
                regions.append((int(stats[i, cv2.CC_STAT_AREA]), int(category), labels == i))
        regions.sort(key=lambda r: -r[0])
        pick = regions[0]
        if self.last_category is not None:
            other = [r for r in regions if r[1] != self.last_category]
            if other:
                pick = other[0]
        _, category, mask = pick
        depth = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
        y, x = np.unravel_index(int(depth.argmax()), depth.shape)
        radius = int(max(1, min(self.radius, depth[y, x])))
        self.last_category = category
        return Click(int(x), int(y), radius, category)
