"""A training step's inputs: the batch's frames (or windows of them) as
arrays of one fixed size, the batch size the user set.

Why a fixed size: a step's device plan is built for one batch size, and building one takes
0.1-0.5 s (kernels compiled with the size in them). While fewer frames than the batch size
were labeled, each click used to add a frame, so the first ten clicks of a session each
waited for a new plan before the patch could answer (click-to-flip 0.2-0.7 s on the demo).
A batch short of frames is padded with unlabeled entries, which add nothing to the loss or
its gradient (the loss is normalised by the labeled cells' weights): the step is the same
step on the frames there are. Past PADDED_BATCH_MAX the padding would cost more than the
plans: a batch that large takes the frames there are."""
from __future__ import annotations

import numpy as np

PADDED_BATCH_MAX = 32


def planned_batch(frames: int, batch_size: int) -> int:
    """The batch a step on `frames` frames runs at."""
    return max(frames, batch_size) if batch_size <= PADDED_BATCH_MAX else frames


def step_inputs(frames, batch_size: int, windows=None, centred=None
                ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """(features (N, C, h, w) float32, labels (N, h, w) int32, each entry's (top, left) in
    its frame) for LabeledFrames: whole frames, padded with unlabeled entries, or `windows`
    (TrainWindows) cut from them, `centred` (frame id, row, col) on a cell when given."""
    size = planned_batch(len(frames), batch_size)
    if windows is not None:
        return windows.batch(frames, size, centred)
    first = frames[0]
    features = np.zeros((size,) + first.features.shape, np.float32)
    labels = np.full((size,) + first.label_map.shape, -1, np.int32)
    for i, frame in enumerate(frames):
        features[i] = frame.features
        labels[i] = frame.label_map
    return features, labels, [(0, 0)] * size
