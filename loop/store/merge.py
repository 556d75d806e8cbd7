"""Merging two sessions of the same patch: frames and label histories side by side."""
from __future__ import annotations

import time

from loop.store.records import SessionFormatError, SessionState
from loop.store.session_file import write_session


def merge_states(a: SessionState, b: SessionState) -> SessionState:
    """B's frames get fresh ids after A's; both histories are kept, ordered by time."""
    same = ("categories", "topology", "tap", "base_hash", "fine_tune")
    if [getattr(a.spec, k) for k in same] != [getattr(b.spec, k) for k in same]:
        raise SessionFormatError(
            f"the sessions are of different patches: {_describe(a)} vs {_describe(b)}")
    merged = SessionState(a.spec, a.settings, time.time())
    merged.frames.update(a.frames)
    offset = max(a.frames, default=0) + 1 - min(b.frames, default=0)
    moved = {frame_id: frame_id + offset for frame_id in b.frames}
    for frame_id, image in b.frames.items():
        merged.frames[moved[frame_id]] = image
    from dataclasses import replace
    labels = list(a.labels) + [replace(r, frame_id=moved[r.frame_id]) for r in b.labels]
    merged.labels = sorted(labels, key=lambda r: r.time)
    merged.excluded = set(a.excluded) | {moved[i] for i in b.excluded}
    merged.snapshots = {**b.snapshots, **a.snapshots}
    merged.loss_log = list(a.loss_log)
    return merged


def merge_files(a_path, b_path, out_path) -> SessionState:
    from pathlib import Path
    from loop.store.session_file import read_session
    out = Path(out_path)
    if out.exists():
        raise SessionFormatError(f"{out}: exists already; choose a new file for the merge")
    merged = merge_states(read_session(a_path), read_session(b_path))
    write_session(merged, out)
    return merged


def _describe(state: SessionState) -> str:
    names = ",".join(c.name for c in state.spec.categories)
    return f"{state.spec.name!r} ({state.spec.topology} on {state.spec.tap}, [{names}])"
