"""Reading a session file of any version (see session_file for version 3, session_legacy
for 1 and 2) into a SessionState, with what the file holds (FileCounts). Reading trusts
nothing (session_h5); the frame bytes a read decodes are bounded by the file's size, and
frames and snapshot arrays are read only when the caller wants them."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import h5py
import numpy as np

from loop.store.records import (MAX_FRAMES, MAX_LABELS, MAX_LOSS_POINTS, MAX_SIDE,
                                SessionFormatError, SessionState, categories_from_json,
                                check_frame_shape, settings_from_json, snapshot_from_header,
                                spec_from_json, window_from_json)
from loop.safe_files import shown
from loop.store.session_file import (COMMIT_FIELDS, FORMAT, FRAME_DTYPE, HEADER_BYTES,
                                     MAX_SETTINGS_ROWS, SETTINGS_BYTES, TILE, VERSION,
                                     FileCounts)
from loop.store.session_h5 import Checked, open_for_reading, whole
from loop.store.session_legacy import read_legacy
from loop.store.session_rows import (LABEL_DTYPE, MAX_SNAPSHOTS, MAX_WEIGHTS,
                                     FrameBudget, add_label_rows, loss_points)


def read_session_counts(path, frames: bool = True, arrays: bool = True):
    """(state, FileCounts); the counts of a version 1 or 2 file hold only its version."""
    path = Path(path)
    name = shown(str(path))
    with open_for_reading(path) as f:
        try:
            checked = Checked(f, name)
            state, version = _head(checked)
            budget = FrameBudget(os.path.getsize(path), name)
            if version < VERSION:
                read_legacy(checked, state, frames, arrays, budget)
                return state, FileCounts(journal_seq=state.last_seq, version=version)
            return state, _read_v3(checked, state, frames, arrays, budget)
        except SessionFormatError as exc:
            if str(exc).startswith(name):
                raise
            raise SessionFormatError(f"{name}: {exc}") from None
        except RecursionError:
            raise SessionFormatError(f"{name}: damaged session file (nested too deeply)") \
                from None
        except (OSError, KeyError, TypeError, ValueError, RuntimeError, AttributeError,
                IndexError, OverflowError, UnicodeError) as exc:
            raise SessionFormatError(f"{name}: not a readable session file "
                                     f"({type(exc).__name__}: {_brief(exc)})") from None


def read_frames(path, ids=None):
    """(id, image) of the file's frames (those in `ids`, when given), in file order, read
    one at a time."""
    path = Path(path)
    name = shown(str(path))
    state, counts = read_session_counts(path, frames=False, arrays=False)
    wanted = [i for i in state.frame_shapes if ids is None or i in ids]
    budget = FrameBudget(os.path.getsize(path), name)
    with open_for_reading(path) as f:
        checked = Checked(f, name)
        for frame_id in wanted:
            h, w = state.frame_shapes[frame_id]
            budget.take((h, w))
            if counts.version < VERSION:
                dataset = checked.member(f["frames"], str(frame_id), h5py.Dataset, "/frames")
                image = dataset[()]
            else:
                image = f["frames"][counts.frame_rows[frame_id], :h, :w]
            yield frame_id, np.ascontiguousarray(image)


def _head(checked: Checked):
    f = checked.f
    if checked.attr(f, "format") != FORMAT:
        raise SessionFormatError(f"{checked.name}: not a Patchloop session file")
    version = whole(checked.attr(f, "version"), f"{checked.name}: version")
    if version > VERSION:
        raise SessionFormatError(f"{checked.name}: session format version {version} is newer "
                                 f"than this Patchloop reads ({VERSION}); update Patchloop")
    if version < 1:
        raise SessionFormatError(f"{checked.name}: session format version {version} is "
                                 "unknown")
    spec = spec_from_json(checked.json_attr(f, "patch"))
    if spec.fine_tune and version == 1:
        raise SessionFormatError(f"{checked.name}: a version 1 session cannot fine-tune the "
                                 "base")
    created = float(checked.attr(f, "created"))
    settings = settings_from_json(checked.json_attr(f, "settings")) if version < VERSION \
        else None
    state = SessionState(spec, settings, created if math.isfinite(created) else 0.0)
    return state, version


def _read_v3(checked: Checked, state: SessionState, frames: bool, arrays: bool,
             budget: FrameBudget) -> FileCounts:
    commit = checked.rows("commit", np.int64, 1, 8)
    if commit.shape != (8,) or (commit < 0).any():
        raise SessionFormatError(f"{checked.name}: /commit is damaged")
    counts = FileCounts(*(int(v) for v in commit[:len(COMMIT_FIELDS)]))
    state.last_seq = counts.journal_seq
    if counts.settings_log < 1:
        raise SessionFormatError(f"{checked.name}: holds no trainer settings")
    settings = checked.dataset("settings_log", np.uint8, 2, MAX_SETTINGS_ROWS)
    if counts.settings_log > settings.shape[0] or settings.shape[1] != SETTINGS_BYTES:
        raise SessionFormatError(f"{checked.name}: /settings_log is damaged")
    row = _unpadded(settings[counts.settings_log - 1])
    state.settings = settings_from_json(row)
    state.window = window_from_json(row.get("window", {}))
    if "categories" in row:
        state.spec = categories_from_json(state.spec, row["categories"])
    _read_frames_index(checked, state, counts, frames, budget)
    add_label_rows(state, checked.rows("labels", LABEL_DTYPE, 1, MAX_LABELS, counts.labels),
                   checked.name)
    loss = checked.rows("loss_log", np.float64, 2, MAX_LOSS_POINTS, counts.loss_log)
    state.loss_log = loss_points(loss)
    _read_snapshots(checked, state, counts, arrays)
    return counts


def _read_frames_index(checked: Checked, state: SessionState, counts: FileCounts,
                       frames: bool, budget: FrameBudget) -> None:
    index = checked.rows("frame_index", FRAME_DTYPE, 1, MAX_FRAMES, counts.frames)
    pixels = checked.dataset("frames", np.uint8, 4, MAX_FRAMES)
    if pixels.shape[0] < counts.frames or pixels.shape[1:] != (MAX_SIDE, MAX_SIDE, 3):
        raise SessionFormatError(f"{checked.name}: /frames has the wrong shape {pixels.shape}")
    heights, widths = index["height"].astype(np.int64), index["width"].astype(np.int64)
    tiles = int(np.sum(-(-heights // TILE) * -(-widths // TILE)))
    if tiles > pixels.id.get_num_chunks():
        raise SessionFormatError(f"{checked.name}: /frames stores fewer tiles than its "
                                 "frames need")
    for row, (frame_id, h, w, excluded) in enumerate(index.tolist()):
        check_frame_shape((h, w, 3), np.uint8, f"frame {frame_id}")
        if frame_id in counts.frame_rows:
            raise SessionFormatError(f"frame {frame_id} is there twice")
        counts.frame_rows[frame_id] = row
        image = None
        if frames:
            budget.take((h, w))
            image = np.ascontiguousarray(pixels[row, :h, :w])
        state.add_frame(frame_id, h, w, image)
        if excluded:
            state.excluded.add(frame_id)


def _read_snapshots(checked: Checked, state: SessionState, counts: FileCounts,
                    arrays: bool) -> None:
    count = counts.snapshots
    headers = checked.dataset("snapshot_headers", np.uint8, 2, MAX_SNAPSHOTS)
    values = checked.dataset("snapshot_arrays", np.float32, 3, MAX_SNAPSHOTS)
    if count > min(headers.shape[0], values.shape[0]) or headers.shape[1] != HEADER_BYTES \
            or values.shape[1] != 2 or values.shape[2] > MAX_WEIGHTS:
        raise SessionFormatError(f"{checked.name}: the snapshots are damaged")
    if arrays and count:
        checked.check_declared(values, "/snapshot_arrays", count)
    for row in range(count):
        header = _unpadded(headers[row])
        if not isinstance(header, dict) or not isinstance(header.get("tag"), str):
            raise SessionFormatError(f"{checked.name}: snapshot {row} has no header")
        tag = header["tag"]
        if arrays:
            both = values[row]
            size = _snapshot_size(header, both.shape[1], checked.name)
            weights, velocity = both[0, :size].copy(), both[1, :size].copy()
        else:
            weights = velocity = np.zeros(0, np.float32)
        state.snapshots[tag] = snapshot_from_header(header, state, weights, velocity)
        counts.snapshot_rows[tag] = row


def read_snapshot_arrays(path, row: int):
    """(weights, velocity) of the snapshot in `row` of a version 3 file."""
    path = Path(path)
    name = shown(str(path))
    with open_for_reading(path) as f:
        checked = Checked(f, name)
        both = checked.dataset("snapshot_arrays", np.float32, 3, MAX_SNAPSHOTS)
        headers = checked.dataset("snapshot_headers", np.uint8, 2, MAX_SNAPSHOTS)
        if not 0 <= row < min(both.shape[0], headers.shape[0]):
            raise SessionFormatError(f"{name}: no snapshot in row {row}")
        header = _unpadded(headers[row])
        if not isinstance(header, dict):
            raise SessionFormatError(f"{name}: snapshot {row} has no header")
        size = _snapshot_size(header, both.shape[2], name)
        values = both[row, :, :size]
    return values[0].copy(), values[1].copy()


def _snapshot_size(header: dict, width: int, name: str) -> int:
    """How many of a row's weights are the snapshot's (rows are as wide as the widest)."""
    size = header.get("size", width)
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= width:
        raise SessionFormatError(f"{name}: snapshot {header.get('tag')!r:.40} says it holds "
                                 f"{size!r:.20} of {width} weights")
    return size


def _unpadded(row: np.ndarray):
    return json.loads(row.tobytes().rstrip(b"\0").decode("utf-8"))


def _brief(value, limit: int = 160) -> str:
    text = str(value).replace("\n", " ")
    return shown(text if len(text) <= limit else text[:limit] + "...")
