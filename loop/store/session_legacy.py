"""Reading session files of versions 1 and 2 (written whole, before sessions grew). A writer
that opens one converts it to the current version; readers read it as it is.

    /                 attrs: format, version (1, or 2 for a patch that fine-tunes the base),
                      created, journal_seq, patch (JSON), settings (JSON)
    /frames/<id>      uint8 (H, W, 3) RGB, one chunk a frame, gzip
    /labels           compound (N,) as LABEL_DTYPE: the edit history, in order
    /excluded         int64 (K,): frames left out of training
    /loss_log         float64 (M, 2): (step, loss)
    /snapshots/<tag>  weights, velocity float32; attrs header (JSON)
"""
from __future__ import annotations

import h5py
import numpy as np

from loop.store.records import (MAX_FRAMES, MAX_LABELS, MAX_LOSS_POINTS, SessionFormatError,
                                SessionState, check_frame_shape, snapshot_from_header)
from loop.safe_files import shown
from loop.store.session_h5 import Checked, whole
from loop.store.session_rows import (LABEL_DTYPE, MAX_SNAPSHOTS, MAX_WEIGHTS,
                                     FrameBudget, add_label_rows, loss_points)


def read_legacy(checked: Checked, state: SessionState, frames: bool, arrays: bool,
                budget: FrameBudget) -> None:
    """Fills `state` (its spec, settings and created already read) from a version 1 or 2
    file."""
    f = checked.f
    state.last_seq = whole(checked.attr(f, "journal_seq"), f"{checked.name}: journal_seq")
    group = checked.group("frames", MAX_FRAMES)
    for key in group:
        try:
            frame_id = int(key)
        except ValueError:
            raise SessionFormatError(f"{checked.name}: frame name {shown(key)} is not a "
                                     "number") from None
        dataset = checked.member(group, key, h5py.Dataset, f"/frames/{shown(key)}")
        check_frame_shape(dataset.shape, dataset.dtype, f"{checked.name}: frame {frame_id}")
        image = None
        if frames:
            budget.take(dataset.shape)
            image = np.ascontiguousarray(dataset[()])
        state.add_frame(frame_id, dataset.shape[0], dataset.shape[1], image)
    add_label_rows(state, checked.rows("labels", LABEL_DTYPE, 1, MAX_LABELS), checked.name)
    state.excluded = {int(i) for i in checked.rows("excluded", np.int64, 1, MAX_FRAMES)}
    loss = checked.rows("loss_log", np.float64, 2, MAX_LOSS_POINTS)
    if loss.shape[1:] != (2,):
        raise SessionFormatError(f"{checked.name}: /loss_log is not (steps, 2)")
    state.loss_log = loss_points(loss)
    snapshots = checked.group("snapshots", MAX_SNAPSHOTS)
    for tag in snapshots:
        where = f"/snapshots/{shown(tag[:60])}"
        g = checked.member(snapshots, tag, h5py.Group, where)
        header = checked.json_attr(g, "header")
        if not isinstance(header, dict):
            raise SessionFormatError(f"{checked.name}: {where} has no header")
        weights = checked.member(g, "weights", h5py.Dataset, where + "/weights")
        velocity = checked.member(g, "velocity", h5py.Dataset, where + "/velocity")
        for d in (weights, velocity):
            if d.dtype != np.float32 or d.ndim != 1 or d.shape[0] > MAX_WEIGHTS:
                raise SessionFormatError(f"{checked.name}: {where} holds no float32 weights")
            checked.check_declared(d, where)
        if weights.shape != velocity.shape:
            raise SessionFormatError(f"{checked.name}: {where}: weights and velocity differ "
                                     "in size")
        if arrays:
            w, v = np.asarray(weights[()], np.float32), np.asarray(velocity[()], np.float32)
        else:
            w = v = np.zeros(0, np.float32)
        state.snapshots[tag] = snapshot_from_header(header, state, w, v)

