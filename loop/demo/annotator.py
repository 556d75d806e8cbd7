"""A simulated annotator that works as a careful user does: it looks at the verdict, finds
the largest region where it is wrong, and clicks deep inside it, alternating background and
objects when it can (alternate foreground and background, click where the net is
wrong). The region helpers below serve the other simulated users too (loop/demo/policies.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass(frozen=True)
class Click:
    x: int          # frame pixels
    y: int
    radius: int     # pixels; the disc lies inside the wrong region
    category: int   # the truth under the click: index into the scene's categories


@dataclass(frozen=True)
class Region:
    """One 4-connected region of a mask where the truth is a single category."""

    area: int       # pixels
    category: int   # the truth inside it
    labels: np.ndarray = field(repr=False, compare=False)  # int (H, W) component labels
    label: int      # this region's value in `labels`


def regions(mask: np.ndarray, truth: np.ndarray) -> list[Region]:
    """The connected regions of `mask` (bool (H, W)), split by truth category; largest
    first, ties by category."""
    found = []
    for category in np.unique(truth[mask]):
        part = (mask & (truth == category)).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(part, connectivity=4)
        found += [Region(int(stats[i, cv2.CC_STAT_AREA]), int(category), labels, i)
                  for i in range(1, count)]
    found.sort(key=lambda r: (-r.area, r.category))
    return found


def click_inside(region: Region, radius: int) -> Click:
    """A click at the region's deepest point, its disc shrunk to stay inside the region."""
    # Padded so that the frame edge bounds the region too.
    mask = np.pad((region.labels == region.label).astype(np.uint8), 1)
    depth = cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    y, x = np.unravel_index(int(depth.argmax()), depth.shape)
    # Every pixel nearer than depth[y, x] to (x, y) is in the region.
    radius = max(1, min(radius, int(np.ceil(depth[y, x])) - 1))
    return Click(int(x), int(y), radius, region.category)


class SimulatedAnnotator:
    def __init__(self, radius: int = 12):
        self.radius = radius
        self.last_category: int | None = None

    def click(self, truth: np.ndarray, predicted: np.ndarray,
              labeled: tuple = ()) -> Click | None:
        """One click on the largest wrong region, or None when nothing is wrong.

        After a background click a wrong object region is preferred, after an object click
        a wrong background region; otherwise the largest wrong region of any category.
        `labeled` names the categories that have labels: while it is just one, the trainer
        waits for a second and the panel says so, and this user does as it says: labels a
        category that has none, wrong there or not (an untaught patch calls everything
        background, so no background is wrong to click)."""
        if truth.shape != predicted.shape:
            raise ValueError(f"truth {truth.shape} and prediction {predicted.shape} differ")
        if len(labeled) == 1:
            missing = np.isin(truth, list(labeled), invert=True)
            for mask in (missing & (truth != predicted), missing):
                found = regions(mask, truth)
                if found:
                    self.last_category = found[0].category
                    return click_inside(found[0], self.radius)
        wrong = regions(truth != predicted, truth)
        if not wrong:
            return None
        pick = wrong[0]
        if self.last_category is not None:
            was_background = self.last_category == 0
            other = [r for r in wrong if (r.category == 0) != was_background]
            if other:
                pick = other[0]
        self.last_category = pick.category
        return click_inside(pick, self.radius)
