"""What a session store has journaled but not yet appended to its file, besides the new
rows (frames, labels, loss points past the file's counts): changes to rows the file already
holds (an undone label, a frame left out), whether the settings row must be written again
(trainer settings, the window's view, category names), and snapshots the file lacks. Also
how snapshot arrays come back into memory when a rebuild or a resumed window needs them."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from loop.store.records import SessionState
from loop.store.session_file import Append, FileCounts
from loop.store.session_read import read_session_counts, read_snapshot_arrays


@dataclass
class PendingChanges:
    undone: dict = field(default_factory=dict)      # label row in the file -> undone time
    excluded: dict = field(default_factory=dict)    # frame id -> left out or not
    settings_changed: bool = False
    new_snapshots: list = field(default_factory=list)  # tags not in the file yet

    @classmethod
    def since(cls, state: SessionState, in_file) -> "PendingChanges":
        """What a journal changed beyond the file (`in_file`: the loader's FileHeld)."""
        pending = cls()
        for row, (mine, theirs) in enumerate(zip(state.labels, in_file.undone)):
            if not _same_time(mine.undone, theirs):
                pending.undone[row] = mine.undone
        for frame_id in state.excluded ^ in_file.excluded:
            pending.excluded[frame_id] = frame_id in state.excluded
        pending.settings_changed = state.settings != in_file.settings or \
            state.window != in_file.window or state.spec.names != in_file.names
        pending.new_snapshots = [t for t in state.snapshots if t not in in_file.snapshots]
        return pending

    def append_of(self, state: SessionState, counts: FileCounts, seq: int) -> Append:
        """Everything the file lacks, as one append."""
        new = [i for i in state.frame_shapes if i not in counts.frame_rows]
        return Append(seq, [(i, state.frames.pending[i]) for i in new],
                      state.labels[counts.labels:], dict(self.undone), dict(self.excluded),
                      state.loss_log[counts.loss_log:],
                      state.settings if self.settings_changed else None,
                      [state.snapshots[t] for t in self.new_snapshots], dict(state.window),
                      state.spec.names)

    def snapshot_saved(self, tag: str) -> None:
        if tag not in self.new_snapshots:
            self.new_snapshots.append(tag)


def drop_old_arrays(state: SessionState) -> None:
    """Once the file holds them, memory keeps only the newest snapshot's arrays."""
    latest = state.latest_snapshot()
    for tag, snap in state.snapshots.items():
        if snap is not latest and snap.weights.size:
            empty = np.zeros(0, np.float32)
            state.snapshots[tag] = replace(snap, weights=empty, velocity=empty)


def load_all_arrays(path, state: SessionState) -> None:
    """Every snapshot's arrays in memory (a rebuild writes them all)."""
    if all(s.weights.size for s in state.snapshots.values()):
        return
    in_file, _ = read_session_counts(path, frames=False, arrays=True)
    for tag, snap in state.snapshots.items():
        if not snap.weights.size and tag in in_file.snapshots:
            state.snapshots[tag] = in_file.snapshots[tag]


def load_latest_arrays(path, state: SessionState, counts: FileCounts) -> None:
    """The newest snapshot's weights, which a resumed window starts from."""
    latest = state.latest_snapshot()
    if latest is not None and not latest.weights.size:
        weights, velocity = read_snapshot_arrays(path, counts.snapshot_rows[latest.tag])
        state.snapshots[latest.tag] = replace(latest, weights=weights, velocity=velocity)


def _same_time(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b
