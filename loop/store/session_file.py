"""The session file (HDF5, readable with plain h5py). Layout, version 1:

    /                 attrs: format="patchloop-session", version=1, created (unix s),
                      journal_seq (the newest journal event the file holds),
                      patch (JSON: name, categories [[tag, index, name]], triggers,
                      topology, tap, threshold, seed, description, base_name, base_hash),
                      settings (JSON: the trainer's settings)
    /frames/<id>      uint8 (H, W, 3) RGB, one chunk a frame, gzip level 1
    /labels           compound (N,): frame int64, kind uint8 (0 disc, 1 whole frame),
                      x, y, radius float32 (frame pixels), category int32 (-2 erases),
                      time float64, undone float64 (NaN while the label stands): the
                      whole edit history, in order
    /excluded         int64 (K,): frames left out of training
    /loss_log         float64 (M, 2): (step, loss)
    /snapshots/<tag>  weights, velocity float32; attrs header (JSON: created, steps,
                      settings, label_counts)

The file is only ever replaced whole (written beside, fsync'ed, renamed over), so a crash
leaves the old or the new one, never a half-written one; labels since the last write live
in the journal beside it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from loop.store.records import (LabelRecord, SessionFormatError, SessionState, Snapshot,
                                check_image, settings_from_json, settings_to_json,
                                spec_from_json, spec_to_json)

FORMAT = "patchloop-session"
VERSION = 2          # the newest format read; 2 adds the patch's `fine_tune`
FROZEN_VERSION = 1   # what sessions of patches on a frozen base still write, for older readers
MAX_FILE_BYTES = 8 << 30
MAX_LABELS = 10_000_000
LABEL_DTYPE = np.dtype([("frame", "<i8"), ("kind", "u1"), ("x", "<f4"), ("y", "<f4"),
                        ("radius", "<f4"), ("category", "<i4"), ("time", "<f8"),
                        ("undone", "<f8")])
KINDS = ("disc", "whole")


def format_version(spec) -> int:
    """The version a session of this patch is written in."""
    return VERSION if spec.fine_tune else FROZEN_VERSION


def write_session(state: SessionState, path: Path) -> None:
    """Writes the whole state to `path` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".writing")
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["version"] = format_version(state.spec)
        f.attrs["created"] = state.created
        f.attrs["journal_seq"] = state.last_seq
        f.attrs["patch"] = json.dumps(spec_to_json(state.spec))
        f.attrs["settings"] = json.dumps(settings_to_json(state.settings))
        frames = f.create_group("frames")
        for frame_id, image in state.frames.items():
            frames.create_dataset(str(frame_id), data=image, chunks=image.shape,
                                  compression="gzip", compression_opts=1)
        labels = np.array([(r.frame_id, KINDS.index(r.kind), r.x, r.y, r.radius, r.category,
                            r.time, r.undone) for r in state.labels], LABEL_DTYPE)
        f.create_dataset("labels", data=labels, maxshape=(None,), chunks=(1024,))
        f.create_dataset("excluded", data=np.array(sorted(state.excluded), np.int64))
        f.create_dataset("loss_log", data=np.array(state.loss_log, np.float64).reshape(-1, 2))
        snaps = f.create_group("snapshots")
        for tag, snap in state.snapshots.items():
            g = snaps.create_group(tag)
            g.create_dataset("weights", data=snap.weights)
            g.create_dataset("velocity", data=snap.velocity)
            g.attrs["header"] = json.dumps(snap.header)
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_session(path: Path) -> SessionState:
    path = Path(path)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise SessionFormatError(f"{path}: larger than {MAX_FILE_BYTES >> 30} GiB")
    try:
        with h5py.File(path, "r") as f:
            return _read(f, path)
    except OSError as exc:
        raise SessionFormatError(f"{path}: not a readable HDF5 session file ({exc})") from exc
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        if isinstance(exc, SessionFormatError):
            raise
        raise SessionFormatError(f"{path}: damaged session file ({exc})") from exc


def _read(f: h5py.File, path: Path) -> SessionState:
    if f.attrs.get("format") != FORMAT:
        raise SessionFormatError(f"{path}: not a Patchloop session file")
    version = int(f.attrs.get("version", 0))
    if version > VERSION:
        raise SessionFormatError(f"{path}: session format version {version} is newer than this "
                                 f"Patchloop reads ({VERSION}); update Patchloop")
    if version < 1:
        raise SessionFormatError(f"{path}: session format version {version} is unknown")
    spec = spec_from_json(json.loads(f.attrs["patch"]))
    if spec.fine_tune and version < 2:
        raise SessionFormatError(f"{path}: a version {version} session cannot fine-tune the base")
    state = SessionState(spec,
                         settings_from_json(json.loads(f.attrs["settings"])),
                         float(f.attrs["created"]))
    state.last_seq = int(f.attrs["journal_seq"])
    for name, dataset in f["frames"].items():
        state.frames[int(name)] = check_image(dataset[()], f"{path}: frame {name}")
    labels = f["labels"]
    if labels.dtype != LABEL_DTYPE or labels.ndim != 1 or labels.shape[0] > MAX_LABELS:
        raise SessionFormatError(f"{path}: /labels has the wrong type or size")
    for row in labels[()]:
        if int(row["kind"]) >= len(KINDS) or int(row["frame"]) not in state.frames:
            raise SessionFormatError(f"{path}: a label refers to kind {row['kind']} or a "
                                     f"missing frame {row['frame']}")
        state.labels.append(LabelRecord(int(row["frame"]), KINDS[int(row["kind"])],
                                        float(row["x"]), float(row["y"]), float(row["radius"]),
                                        int(row["category"]), float(row["time"]),
                                        float(row["undone"])))
    state.excluded = {int(i) for i in f["excluded"][()]}
    state.loss_log = [(int(s), float(v)) for s, v in f["loss_log"][()]]
    for tag, group in f["snapshots"].items():
        state.snapshots[tag] = Snapshot(tag, json.loads(group.attrs["header"]),
                                        np.asarray(group["weights"][()], np.float32),
                                        np.asarray(group["velocity"][()], np.float32))
    return state
