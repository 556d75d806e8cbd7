"""The session file (HDF5, readable with plain h5py), version 3: a file that grows. Every
dataset is created with the file, chunked and resizable; changes are appended in
single-writer-multiple-reader (SWMR) mode, so the file is consistent for a reader at any
moment, a kill in the middle of an append included.

    /                  attrs: format="patchloop-session", version=3, created (unix s),
                       patch (JSON: name, categories [[tag, index, name]], triggers, topology,
                       tap, threshold, seed, description, base_name, base_hash, pooling,
                       loss, fine_tune)
    /commit            int64 (8,): journal_seq (the newest journal event the file holds),
                       then how many rows of frames, labels, loss_log, settings_log and
                       snapshots the file holds. Written last by each append: rows past
                       these counts are an append that never finished, and are ignored.
    /frames            uint8 (N, 4096, 4096, 3), chunks (1, 256, 256, 3), gzip 1: frame i
                       is frames[i, :height, :width]; tiles never written take no space
    /frame_index       compound (N,): id int64, height int32, width int32, excluded uint8
    /labels            compound (N,): frame int64, kind uint8 (0 disc, 1 whole frame),
                       x, y, radius float32 (frame pixels), category int32 (-2 erases),
                       time float64, undone float64 (NaN while the label stands): the
                       whole edit history, in order
    /loss_log          float64 (M, 2): (step, loss)
    /settings_log      uint8 (K, 4096): the trainer settings as JSON, zero-padded, with
                       "window": the window's brush, category and view, and
                       "categories": the category names (renamed, and added since
                       the patch was made); the last row is the current one
    /snapshot_headers  uint8 (S, 16384): JSON (tag, created, steps, settings,
                       label_counts, size), zero-padded
    /snapshot_arrays   float32 (S, 2, W): weights and velocity of each snapshot (its
                       header's size of them: W grows when a category is added)

Versions 1 and 2 (written whole) are still read (session_legacy); reading is in
session_read."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace

import h5py
import numpy as np

from loop.store.records import (MAX_SIDE, SessionFormatError, SessionState,
                                check_frame_shape, settings_to_json, snapshot_header,
                                spec_to_json)
from loop.safe_files import write_atomically
from loop.store.session_rows import LABEL_DTYPE, MAX_WEIGHTS, label_rows

FORMAT = "patchloop-session"
VERSION = 3
TILE = 256
SETTINGS_BYTES = 4096
HEADER_BYTES = 16384
MAX_SETTINGS_ROWS = 1_000_000
FRAME_DTYPE = np.dtype([("id", "<i8"), ("height", "<i4"), ("width", "<i4"),
                        ("excluded", "u1")])
COMMIT_FIELDS = ("journal_seq", "frames", "labels", "loss_log", "settings_log", "snapshots")


@dataclass
class FileCounts:
    """What a file holds (a version 3 file's /commit), and the row of each frame id."""
    journal_seq: int = 0
    frames: int = 0
    labels: int = 0
    loss_log: int = 0
    settings_log: int = 0
    snapshots: int = 0
    frame_rows: dict = field(default_factory=dict)
    snapshot_rows: dict = field(default_factory=dict)   # tag -> row
    version: int = VERSION

    def copy(self) -> "FileCounts":
        return replace(self, frame_rows=dict(self.frame_rows),
                       snapshot_rows=dict(self.snapshot_rows))

    def record(self) -> np.ndarray:
        values = [getattr(self, name) for name in COMMIT_FIELDS]
        return np.array(values + [0] * (8 - len(values)), np.int64)


@dataclass
class Append:
    """One append's changes: new rows, and changes to rows the file holds."""
    journal_seq: int
    frames: object = ()                              # (id, uint8 image), in order: any iterable
    labels: list = field(default_factory=list)       # new LabelRecords, in order
    undone: dict = field(default_factory=dict)       # label row -> undone time
    excluded: dict = field(default_factory=dict)     # frame id -> left out or not
    loss_log: list = field(default_factory=list)     # (step, loss)
    settings: object = None                          # TrainerSettings, when changed
    snapshots: list = field(default_factory=list)    # Snapshot
    window: dict = field(default_factory=dict)       # the window's view, kept with settings
    categories: list = field(default_factory=list)   # names, kept with settings (renamed, added)


# -- writing ------------------------------------------------------------------------------
def create_file(path, state: SessionState, frames, replace: bool = False) -> FileCounts:
    """A whole session file at `path` (a temporary file in its folder, fsync'ed, moved into
    place): the state's labels, settings, loss log and snapshots, and `frames`, an iterable
    of (id, image) in order (read one at a time: memory stays bounded). An existing file
    is replaced only when asked (FileExistsError otherwise)."""
    counts = FileCounts()

    def write(handle):
        # HDF5 reads back what it wrote: the temporary file, opened for reading too.
        with os.fdopen(os.dup(handle.fileno()), "w+b") as both, \
                h5py.File(both, "w", libver="latest") as f:
            _create_datasets(f, state)
            excluded = {i: True for i in state.excluded}
            _append_into(f, counts, Append(state.last_seq, frames, list(state.labels),
                                           {}, excluded, list(state.loss_log), state.settings,
                                           list(state.snapshots.values()), state.window,
                                           state.spec.names))
    write_atomically(path, write, replace=replace)
    return counts


def append(path, counts: FileCounts, change: Append) -> None:
    """Appends `change` in place, in single-writer mode, then makes it durable; `counts`
    becomes what the file holds. OSError when the file cannot be opened for writing (a
    killed writer's append left it marked: the caller rebuilds it)."""
    with h5py.File(path, "r+", libver="latest", locking=False) as f:
        f.swmr_mode = True
        _append_into(f, counts, change)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_datasets(f: h5py.File, state: SessionState) -> None:
    f.attrs["format"] = FORMAT
    f.attrs["version"] = VERSION
    f.attrs["created"] = state.created
    f.attrs["patch"] = json.dumps(spec_to_json(state.spec))
    f.create_dataset("commit", data=np.zeros(8, np.int64))
    gzip = dict(compression="gzip", compression_opts=1)
    f.create_dataset("frames", shape=(0, MAX_SIDE, MAX_SIDE, 3), dtype=np.uint8,
                     maxshape=(None, MAX_SIDE, MAX_SIDE, 3), chunks=(1, TILE, TILE, 3), **gzip)
    f.create_dataset("frame_index", shape=(0,), dtype=FRAME_DTYPE, maxshape=(None,),
                     chunks=(1024,))
    f.create_dataset("labels", shape=(0,), dtype=LABEL_DTYPE, maxshape=(None,), chunks=(1024,))
    f.create_dataset("loss_log", shape=(0, 2), dtype=np.float64, maxshape=(None, 2),
                     chunks=(4096, 2))
    f.create_dataset("settings_log", shape=(0, SETTINGS_BYTES), dtype=np.uint8,
                     maxshape=(None, SETTINGS_BYTES), chunks=(1, SETTINGS_BYTES), **gzip)
    f.create_dataset("snapshot_headers", shape=(0, HEADER_BYTES), dtype=np.uint8,
                     maxshape=(None, HEADER_BYTES), chunks=(1, HEADER_BYTES), **gzip)
    f.create_dataset("snapshot_arrays", shape=(0, 2, 0), dtype=np.float32,
                     maxshape=(None, 2, MAX_WEIGHTS), chunks=(1, 2, 1 << 16))


def _append_into(f: h5py.File, counts: FileCounts, change: Append) -> None:
    """Data first, flushed; the commit record last, flushed: a kill in between leaves rows
    past the old counts, which readers ignore."""
    _append_frames(f, counts, change)
    labels = f["labels"]
    for row, when in change.undone.items():
        record = labels[row]
        record["undone"] = when
        labels[row] = record
    n = counts.labels + len(change.labels)
    if change.labels:
        labels.resize((n,))
        labels[counts.labels:n] = label_rows(change.labels)
    loss = np.array(change.loss_log, np.float64).reshape(-1, 2)
    m = counts.loss_log + len(loss)
    if len(loss):
        f["loss_log"].resize((m, 2))
        f["loss_log"][counts.loss_log:m] = loss
    k = counts.settings_log
    if change.settings is not None:
        k += 1
        f["settings_log"].resize((k, SETTINGS_BYTES))
        row = dict(settings_to_json(change.settings), window=change.window,
                   categories=change.categories)
        f["settings_log"][k - 1] = _padded(row, SETTINGS_BYTES)
    s = _append_snapshots(f, counts, change.snapshots)
    f.flush()
    counts.journal_seq, counts.labels, counts.loss_log = change.journal_seq, n, m
    counts.settings_log, counts.snapshots = k, s
    f["commit"][:] = counts.record()
    f.flush()


def _append_frames(f: h5py.File, counts: FileCounts, change: Append) -> None:
    """One frame at a time (a generator of frames is never held whole)."""
    frames, index = f["frames"], f["frame_index"]
    for row, (frame_id, image) in enumerate(change.frames, counts.frames):
        check_frame_shape(image.shape, image.dtype, f"frame {frame_id}")  # readable back
        h, w = image.shape[:2]
        frames.resize(row + 1, axis=0)
        index.resize((row + 1,))
        tiled = np.zeros((-(-h // TILE) * TILE, -(-w // TILE) * TILE, 3), np.uint8)
        tiled[:h, :w] = image  # whole tiles: the fast path, and no stale pixels
        frames[row, :tiled.shape[0], :tiled.shape[1]] = tiled
        index[row] = (frame_id, h, w, 0)
        counts.frame_rows[frame_id] = row
        counts.frames = row + 1
    for frame_id, excluded in change.excluded.items():
        row = counts.frame_rows.get(frame_id)
        if row is not None:
            record = index[row]
            record["excluded"] = bool(excluded)
            index[row] = record


def _append_snapshots(f: h5py.File, counts: FileCounts, snapshots: list) -> int:
    headers, arrays = f["snapshot_headers"], f["snapshot_arrays"]
    start = counts.snapshots
    n = start + len(snapshots)
    if not snapshots:
        return n
    # A patch that gained a category has more weights: the rows widen, older snapshots
    # keep their own size (their header's "size") and zeros after it.
    width = max(arrays.shape[2], max(s.weights.size for s in snapshots))
    if width > MAX_WEIGHTS:
        raise SessionFormatError(f"a snapshot of {width} weights is over {MAX_WEIGHTS}")
    headers.resize((n, HEADER_BYTES))
    arrays.resize((n, 2, width))
    for row, snap in enumerate(snapshots, start):
        headers[row] = _padded(snapshot_header(snap), HEADER_BYTES)
        both = np.zeros((2, width), np.float32)
        both[0, :snap.weights.size], both[1, :snap.velocity.size] = snap.weights, snap.velocity
        arrays[row] = both
        counts.snapshot_rows[snap.tag] = row
    return n


def _padded(value: dict, size: int) -> np.ndarray:
    data = json.dumps(value, separators=(",", ":")).encode()
    if len(data) > size:
        raise SessionFormatError(f"{len(data)} bytes of JSON do not fit a {size}-byte row")
    row = np.zeros(size, np.uint8)
    row[:len(data)] = np.frombuffer(data, np.uint8)
    return row
