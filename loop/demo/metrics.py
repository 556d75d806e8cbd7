"""Scoring verdicts against the demo's ground truth."""
from __future__ import annotations

import cv2
import numpy as np

# A predicted region of an object counts as false when it is at least this many pixels and
# under this share of it is truly that object: a speck where there is nothing.
FALSE_REGION_PIXELS = 20
FALSE_REGION_TRUE_SHARE = 0.1


def cell_truth(truth: np.ndarray, grid_h: int, grid_w: int) -> np.ndarray:
    """The ground truth at each output cell: the label at the cell's centre pixel."""
    h, w = truth.shape
    ys = ((np.arange(grid_h) + 0.5) * h / grid_h).astype(int)
    xs = ((np.arange(grid_w) + 0.5) * w / grid_w).astype(int)
    return truth[ys[:, None], xs[None, :]]


def upsample_cells(cells: np.ndarray, height: int, width: int) -> np.ndarray:
    """Cell categories (h, w) spread over frame pixels (nearest), for the annotator."""
    gh, gw = cells.shape
    ys = np.minimum((np.arange(height) * gh) // height, gh - 1)
    xs = np.minimum((np.arange(width) * gw) // width, gw - 1)
    return cells[ys[:, None], xs[None, :]]


def recalls(truths: list[np.ndarray], predictions: list[np.ndarray],
            categories: int) -> list[float | None]:
    """For each category, the fraction of its cells (or pixels) predicted right; None for a
    category the truth does not hold."""
    t = np.concatenate([a.ravel() for a in truths])
    p = np.concatenate([a.ravel() for a in predictions])
    return [float((p[t == c] == c).mean()) if (t == c).any() else None
            for c in range(categories)]


def balanced_accuracy(truths: list[np.ndarray], predictions: list[np.ndarray],
                      categories: int) -> float:
    """Mean over the categories present of the fraction of their cells predicted right."""
    present = [r for r in recalls(truths, predictions, categories) if r is not None]
    return float(np.mean(present)) if present else float("nan")


def verdict_accuracy(verdict, truth: np.ndarray) -> float:
    """A verdict's balanced accuracy per cell against the frame's truth (the demo's)."""
    grid = verdict.probabilities.shape[1:]
    return balanced_accuracy([cell_truth(truth, *grid)], [verdict.cell_categories],
                             verdict.probabilities.shape[0])


def false_regions(truth: np.ndarray, predicted: np.ndarray, categories: int) -> int:
    """Connected regions a frame's per-pixel verdict gives a category other than background
    (0) where that category is not: what a patch leaning toward objects pays in specks."""
    count = 0
    for category in range(1, categories):
        mask = (predicted == category).astype(np.uint8)
        regions, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        for region in range(1, regions):
            if stats[region, cv2.CC_STAT_AREA] < FALSE_REGION_PIXELS:
                continue
            inside = labels == region
            if (truth[inside] == category).mean() < FALSE_REGION_TRUE_SHARE:
                count += 1
    return count
