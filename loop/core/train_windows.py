"""Where a patch trains: a window of each input around its labels, not the whole input.

A pixels patch keeps the frame's size through all its layers, and a head keeps its tap's
map size (1x1, 3x3, 1x1), and the masked loss only reads the labeled pixels or cells: what
the rest of the input computes in a training step is thrown away. So each frame of a batch
is cut to a fixed window around one of its labeled pixels (cells), picked at random, and
the step runs on the windows: about a quarter of a pixels patch's frame, a fifth of the
8-pixel hypercolumn's map.

The step is exact, not an approximation: a label counts only where the window holds its
whole receptive field. Labels within `margin` (the field's radius) of a window side that
lies inside the frame are left out of that step; where a side is the frame's own border the
window's zero padding is the frame's, so labels there count. A left-out label is trained on
in other steps, from windows placed around it."""
from __future__ import annotations

import random
from collections import Counter

import numpy as np

from loop.core.receptive_field import receptive_field

# (height, width) of a window in the pixels patch's input (the frame at 120x160): a step
# at batch 16 takes ~1/3.5 of a whole frame's time; the window keeps 44x44 pixels of labels
# (more at the frame's borders) around the picked one.
WINDOW = (72, 72)
# (height, width) in cells of a head's window on its tap's map. The 8-pixel hypercolumn's
# map at 240x320 is 30x40 cells: a step at batch 16 took 31 ms on the whole maps and 8 ms
# on these windows (2-core CPU); the window keeps 14x14 cells (112x112 pixels) of labels
# around the picked one, more than a click's brush covers.
HEAD_WINDOW = (16, 16)
# Windows are cut only where a window holds at most this share of the input's area.
WINDOWED_AREA = 0.5


class TrainWindows:
    """Cuts a batch's features (C, H, W) and label maps (H, W) to windows."""

    def __init__(self, window: tuple[int, int], margin: int, seed: int = 0):
        self.window = tuple(window)
        self.margin = margin
        if min(self.window) <= 2 * margin:
            raise ValueError(f"a {window} window keeps no labels with a {margin}-pixel margin")
        self._rng = random.Random(seed)

    def shape(self, feature_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The training step's input shape for frames of `feature_shape` (C, H, W)."""
        c, h, w = feature_shape
        return (c, min(h, self.window[0]), min(w, self.window[1]))

    def place(self, label_map: np.ndarray, category: int | None = None) -> tuple[int, int]:
        """(top, left) of a window around a labeled pixel picked at random: of `category`,
        else of a category picked among the frame's labels. (Picking among all its pixels
        would train a small object's label about as rarely as its area is small next to the
        background's.)"""
        h, w = label_map.shape
        wh, ww = min(h, self.window[0]), min(w, self.window[1])
        if category is None:
            present = np.unique(label_map[label_map >= 0])
            category = present[self._rng.randrange(len(present))] if len(present) else None
        ys, xs = np.nonzero(label_map == category) if category is not None else ((), ())
        if len(ys) == 0:
            return (h - wh) // 2, (w - ww) // 2
        pick = self._rng.randrange(len(ys))
        top = min(max(0, int(ys[pick]) - wh // 2), h - wh)
        left = min(max(0, int(xs[pick]) - ww // 2), w - ww)
        return top, left

    def around(self, label_map: np.ndarray, row: int, col: int) -> tuple[int, int]:
        """(top, left) of the window centred on (row, col) as far as the frame allows: the
        cell then lies at least half a window from an inside side, well past the margin."""
        h, w = label_map.shape
        wh, ww = min(h, self.window[0]), min(w, self.window[1])
        return min(max(0, row - wh // 2), h - wh), min(max(0, col - ww // 2), w - ww)

    def cut_at(self, features: np.ndarray, label_map: np.ndarray, top: int, left: int):
        """(features, labels) of the window at (top, left): labels whose receptive field
        leaves the window (near a side inside the frame) unlabeled (-1)."""
        _, h, w = features.shape
        wh, ww = min(h, self.window[0]), min(w, self.window[1])
        labels = np.full((wh, ww), -1, label_map.dtype)
        m = self.margin
        y0, y1 = (m if top > 0 else 0), wh - (m if top + wh < h else 0)
        x0, x1 = (m if left > 0 else 0), ww - (m if left + ww < w else 0)
        labels[y0:y1, x0:x1] = label_map[top + y0:top + y1, left + x0:left + x1]
        return features[:, top:top + wh, left:left + ww], labels

    def batch(self, frames, count: int, centred: tuple[int, int, int] | None = None
              ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
        """`count` windows of LabeledFrames, frame after frame in turn and, within a frame,
        category after category: (N, C, h, w) features, (N, h, w) int32 labels and each
        window's (top, left). A frame's first window goes to the category the batch's
        windows so far hold least (the fewest of the batch's frames hold, then at random):
        the batch chooser adds a frame for each category a batch would lack, and a window
        placed on that frame's other category lost it again (a rare category then missed
        half the steps). A frame alone gives a window for each of its categories in turn: a
        step on one window of background only would push the whole patch towards
        background, and the next one back. `centred`: (frame id, row, col) of a cell whose
        frame's first window is centred on it (the cell a user waits on: the step's own
        logits there say whether it has turned)."""
        present = [sorted(f.categories) for f in frames]
        holders = Counter(c for categories in present for c in categories)
        windows_on = Counter()
        first: list[int] = []
        cuts, corners = [], []
        for i in range(count):
            n, turn = i % len(frames), i // len(frames)
            frame, categories = frames[n], present[n]
            if turn == 0:
                first.append(self._least_held(categories, windows_on, holders))
            category = (categories[(first[n] + turn) % len(categories)]
                        if len(categories) else None)
            if centred is not None and turn == 0 and frame.frame_id == centred[0]:
                corner = self.around(frame.label_map, centred[1], centred[2])
            else:
                corner = self.place(frame.label_map, category)
            windows_on[category] += 1
            cuts.append(self.cut_at(frame.features, frame.label_map, *corner))
            corners.append(corner)
        return (np.stack([c[0] for c in cuts]),
                np.stack([c[1] for c in cuts]).astype(np.int32), corners)

    def _least_held(self, categories: list, windows_on: Counter, holders: Counter) -> int:
        """The index in `categories` of the one with the fewest windows so far, then the
        fewest holders, then at random."""
        if not categories:
            return 0
        keys = [(windows_on[c], holders[c], self._rng.random()) for c in categories]
        return min(range(len(categories)), key=keys.__getitem__)


def train_windows(arch, feature_shape: tuple[int, ...], seed: int = 0) -> TrainWindows | None:
    """The windows a patch trains on, or None where it trains on whole inputs: only a chain
    that keeps its input's size (stride 1, same padding: a pixels patch, a head) maps a
    window of labels to a window of input. A fine-tuned head starts from base layers that
    shrink the map; inputs not much larger than the window are taken whole."""
    if arch.tuned:
        return None
    _, h, w = feature_shape
    if any(g.output_size(h, w) != (h, w) for g in arch.layers):
        return None
    size, _ = receptive_field(list(arch.layers))
    window = WINDOW if arch.input_layer is None else HEAD_WINDOW
    windows = TrainWindows(window, (size - 1) // 2, seed)
    _, wh, ww = windows.shape(feature_shape)
    # A window of most of the input saves little and leaves the input's far sides out of
    # most steps (the stride-16 map, 15x20 cells: 15x16 windows): whole inputs then.
    return windows if wh * ww <= WINDOWED_AREA * h * w else None
