"""Labels: discs the user clicks and whole-frame labels, turned into sparse label maps.

A label map holds one category index per output cell, or UNLABELED (-1): unlabeled cells
carry no loss (a masked loss).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

UNLABELED = -1
ERASE = -2  # a disc with this category removes earlier labels under it


@dataclass(frozen=True)
class LabelDisc:
    """A click: centre and radius in frame pixels, and the category it teaches (or ERASE)."""

    x: float
    y: float
    radius: float
    category: int


@dataclass(frozen=True)
class WholeFrameLabel:
    """The `b` key: every cell of the frame is this category (background, usually)."""

    category: int


Label = LabelDisc | WholeFrameLabel


def cell_centres(grid_h: int, grid_w: int, frame_h: int, frame_w: int):
    """Frame-pixel coordinates of each output cell's centre: (ys (h,1), xs (1,w))."""
    ys = (np.arange(grid_h, dtype=np.float32) + 0.5) * (frame_h / grid_h)
    xs = (np.arange(grid_w, dtype=np.float32) + 0.5) * (frame_w / grid_w)
    return ys[:, None], xs[None, :]


def cell_under(x: float, y: float, grid_h: int, grid_w: int, frame_h: int, frame_w: int
               ) -> tuple[int, int]:
    """(row, column) of the output cell under frame pixel (x, y), clamped to the grid."""
    return (min(grid_h - 1, max(0, int(y * grid_h / frame_h))),
            min(grid_w - 1, max(0, int(x * grid_w / frame_w))))


def rasterize(labels: list, grid_h: int, grid_w: int, frame_h: int, frame_w: int) -> np.ndarray:
    """The label map (grid_h, grid_w) int32 of a frame's labels, later ones over earlier ones.

    A disc labels the cells whose centres it covers, and always the cell under its centre,
    so a click smaller than a cell still teaches that cell."""
    out = np.full((grid_h, grid_w), UNLABELED, np.int32)
    ys, xs = cell_centres(grid_h, grid_w, frame_h, frame_w)
    for label in labels:
        value = UNLABELED if getattr(label, "category", None) == ERASE else label.category
        if isinstance(label, WholeFrameLabel):
            out[:] = value
            continue
        inside = (xs - label.x) ** 2 + (ys - label.y) ** 2 <= label.radius ** 2
        inside[cell_under(label.x, label.y, grid_h, grid_w, frame_h, frame_w)] = True
        out[inside] = value
    return out


@dataclass
class LabeledFrame:
    """One frame the user labeled: its features for training and its labels in order."""

    frame_id: int
    image: np.ndarray                   # uint8 RGB (H, W, 3)
    features: np.ndarray                # float32 (C, h, w): the patch's input for this frame
    labels: list = field(default_factory=list)
    label_map: np.ndarray | None = None  # int32 (h, w), rebuilt when labels change
    added_at: float = 0.0                # time of the newest label (orders "new" labels first)
    excluded: bool = False               # deleted from training (kept in history)
    augmented_from: int | None = None    # the frame this is a rand-tilt-shift copy of
    cells: tuple | None = None           # the verdict's grid (h, w); None: the features'
                                         # (they differ when tuned base blocks stride)
    _categories: frozenset | None = field(default=None, init=False, repr=False, compare=False)
    _counts: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def relabel(self) -> None:
        h, w = self.cells or self.features.shape[1:]
        fh, fw = self.image.shape[:2]
        self.label_map = rasterize(self.labels, h, w, fh, fw)
        self._categories = None
        self._counts = None

    @property
    def categories(self) -> frozenset:
        """The categories this frame has labeled cells of (kept until its labels change:
        every training step asks it of every frame)."""
        if self.label_map is None:
            return frozenset()
        if self._categories is None:
            self._categories = frozenset(np.unique(self.label_map[self.label_map >= 0]).tolist())
        return self._categories

    @property
    def labeled_cells(self) -> int:
        return int(self.cell_counts().sum())

    def cell_counts(self) -> np.ndarray:
        """Labeled cells per category, 0 up to the largest labeled one (kept until the
        labels change: every training step counts every frame's, dozens of them, and
        counting them afresh was a fifth of the trainer thread's time on the demo)."""
        if self._counts is None:
            values = np.empty(0, np.int64) if self.label_map is None \
                else self.label_map[self.label_map >= 0]
            self._counts = np.bincount(values)
            self._counts.flags.writeable = False
        return self._counts


def label_counts(frames: list[LabeledFrame], categories: int) -> np.ndarray:
    """Labeled cells per category over every frame still in training."""
    counts = np.zeros(categories, np.int64)
    for frame in frames:
        if frame.excluded or frame.label_map is None:
            continue
        cells = frame.cell_counts()[:categories]
        counts[:len(cells)] += cells
    return counts


def balanced_class_weights(counts: np.ndarray) -> np.ndarray:
    """Inverse-frequency weights, mean 1 over the categories that have labels, so a flood of
    background labels does not drag the patch (background often outnumbers the rest 49:1)."""
    counts = np.asarray(counts, np.float64)
    weights = np.zeros(len(counts), np.float32)
    present = counts > 0
    if present.any():
        inv = 1.0 / counts[present]
        weights[present] = inv / inv.mean()
    return weights
