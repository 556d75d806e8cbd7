"""What both layouts of a session file share: the label row type, the limits on every
count, turning label rows into checked LabelRecords, and the budget that bounds the frame
bytes a reader decodes by the file's real size."""
from __future__ import annotations

import numpy as np

from loop.store.records import (LABEL_KINDS, LabelRecord, SessionFormatError, SessionState,
                                check_label)

LABEL_DTYPE = np.dtype([("frame", "<i8"), ("kind", "u1"), ("x", "<f4"), ("y", "<f4"),
                        ("radius", "<f4"), ("category", "<i4"), ("time", "<f8"),
                        ("undone", "<f8")])
MAX_SNAPSHOTS = 10_000
MAX_WEIGHTS = 64 << 20         # floats in one snapshot's weights
FRAME_EXPANSION = 2_000        # decoded frame bytes per byte of file (flat frames: ~500)
MIN_FRAME_BUDGET = 256 << 20


class FrameBudget:
    """Decoded frame bytes a read may take: at least MIN_FRAME_BUDGET, else FRAME_EXPANSION
    times the file's size (a few KB declaring a hundred 4096 px frames is refused)."""

    def __init__(self, file_bytes: int, name: str):
        self.left = max(MIN_FRAME_BUDGET, FRAME_EXPANSION * file_bytes)
        self.name = name

    def take(self, shape) -> None:
        need = int(shape[0]) * int(shape[1]) * 3
        if need > self.left:
            raise SessionFormatError(f"{self.name}: its frames decode to far more than the "
                                     "file holds (damaged or crafted)")
        self.left -= need


def loss_points(rows: np.ndarray) -> list:
    """(step, loss) pairs; a step that is not a finite number reads as -1 (rows are kept,
    so that counts of rows stay true)."""
    return [(int(s) if np.isfinite(s) and abs(s) < 2 ** 62 else -1, float(v)) for s, v in rows]


def label_rows(labels: list[LabelRecord]) -> np.ndarray:
    return np.array([(r.frame_id, LABEL_KINDS.index(r.kind), r.x, r.y, r.radius, r.category,
                      r.time, r.undone) for r in labels], LABEL_DTYPE)


def add_label_rows(state: SessionState, rows: np.ndarray, name: str) -> None:
    """Checked labels from file rows: known frames and kinds, categories of the patch,
    finite coordinates."""
    if not len(rows):
        return
    known = np.fromiter(state.frame_shapes, np.int64, len(state.frame_shapes))
    missing = ~np.isin(rows["frame"], known)
    if missing.any():
        raise SessionFormatError(f"{name}: a label refers to frame {rows['frame'][missing][0]}, "
                                 "which the file does not hold")
    if int(rows["kind"].max()) >= len(LABEL_KINDS):
        raise SessionFormatError(f"{name}: a label's kind is unknown")
    outputs = state.spec.outputs
    for frame_id, kind, x, y, radius, category, when, undone in rows.tolist():
        record = LabelRecord(frame_id, LABEL_KINDS[kind], x, y, radius, category, when, undone)
        try:
            state.labels.append(check_label(record, outputs))
        except SessionFormatError as exc:
            raise SessionFormatError(f"{name}: {exc}") from None
