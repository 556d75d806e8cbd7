"""Merging two sessions of the same patch: frames and label histories side by side. Both
are read with their journals (nothing is written to them); the result is a new session,
written under its lock into a temporary file moved into place, so a kill leaves none or all
of it. Frames are copied one at a time: memory holds no session whole."""
from __future__ import annotations

import os
import time
from itertools import chain
from dataclasses import replace
from pathlib import Path

from loop.store.records import SessionFormatError, SessionState
from loop.safe_files import same_place, shown
from loop.store.session import SessionStore
from loop.store.session_read import read_frames
from loop.store.session_loader import load_session
from loop.store.session_paths import journal_path


def merge_states(a: SessionState, b: SessionState) -> SessionState:
    """B's frames get fresh ids after A's; both histories are kept, ordered by time."""
    same = ("categories", "topology", "tap", "base_hash", "fine_tune")
    if [getattr(a.spec, k) for k in same] != [getattr(b.spec, k) for k in same]:
        raise SessionFormatError(
            f"the sessions are of different patches: {_describe(a)} vs {_describe(b)}")
    merged = SessionState(a.spec, a.settings, time.time())
    moved = moved_ids(a, b)
    for frame_id, (h, w) in a.frame_shapes.items():
        merged.add_frame(frame_id, h, w)
    for frame_id, (h, w) in b.frame_shapes.items():
        merged.add_frame(moved[frame_id], h, w)
    labels = list(a.labels) + [replace(r, frame_id=moved[r.frame_id]) for r in b.labels]
    merged.labels = sorted(labels, key=lambda r: r.time)
    merged.excluded = set(a.excluded) | {moved[i] for i in b.excluded if i in moved}
    merged.snapshots = {**b.snapshots, **a.snapshots}
    merged.loss_log = list(a.loss_log)
    return merged


def merge_files(a_path, b_path, out_path, warn=None) -> SessionState:
    out = Path(out_path)
    for source in (Path(a_path), Path(b_path)):
        if same_place(source, out) or same_place(journal_path(source), out):
            raise SessionFormatError(f"{shown(str(out))}: is one of the sessions merged; "
                                     "choose a new file for the merge")
    if os.path.lexists(out):
        raise SessionFormatError(f"{shown(str(out))}: exists already; choose a new file for "
                                 "the merge")
    states = []
    for source in (a_path, b_path):
        loaded = load_session(source, frames=False, journal_frames=True)
        for line in loaded.warnings:
            if warn is not None:
                warn(line)
        states.append(loaded.state)
    merged = merge_states(*states)
    moved = moved_ids(*states)
    frames = chain(_frames(Path(a_path), states[0], {}), _frames(Path(b_path), states[1], moved))
    SessionStore.write_new(out, merged, frames, holder="patchloop merge")
    return merged


def moved_ids(a: SessionState, b: SessionState) -> dict:
    """B's frame ids in the merge: after A's."""
    offset = max(a.frame_shapes, default=0) + 1 - min(b.frame_shapes, default=0)
    return {frame_id: frame_id + offset for frame_id in b.frame_shapes}


def _frames(path: Path, state: SessionState, moved: dict):
    """(id in the merge, image) of a source's frames: the file's, then its journal's."""
    for frame_id, image in read_frames(path, set(state.frame_shapes) - set(state.frames)):
        yield moved.get(frame_id, frame_id), image
    for frame_id, image in state.frames.items():
        yield moved.get(frame_id, frame_id), image



def _describe(state: SessionState) -> str:
    names = ",".join(c.name for c in state.spec.categories)
    return f"{state.spec.name!r} ({state.spec.topology} on {state.spec.tap}, [{shown(names)}])"
