"""The one way every reader (info, sessions, export, merge, eval, replay, live's resume) sees
a session: the HDF5 file plus the changes its journal holds beyond it. Read-only: nothing is
written, locked or truncated, so it works on read-only media and beside a running window.

The journal is read before the file. A writer consolidates by moving a new file into place
and only then emptying the journal, so whatever the journal held when it was read is either
still applied from it or already in the (same or newer) file read after it: a reader never
misses an acknowledged change, even while the session is being written.

A damaged journal record (a bad byte, a torn piece, an event that makes no sense: a label for
a frame the session lacks, a NaN coordinate, a snapshot cut short) is skipped with a warning;
every other record, before and after it, is kept."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loop.store.journal import (EVENT, FRAME, FRAME_HEAD, SNAP_HEAD, SNAPSHOT, JournalError,
                                JournalScan, read_journal)
from loop.store.records import (SessionFormatError, SessionState, check_frame_shape,
                                snapshot_from_header)
from loop.safe_files import check_plain_name, shown
from loop.store.session_paths import journal_path
from loop.store.session_read import FileCounts, read_session_counts
from loop.store.session_rows import MAX_WEIGHTS

MAX_EVENT_BYTES = 1 << 20
MAX_WARNINGS = 20


@dataclass
class FileHeld:
    """What the file alone said of the things the journal may change in place."""
    undone: list                      # each label row's undone time
    excluded: set
    settings: object
    snapshots: set                    # tags
    window: dict
    names: list                       # the categories' names


@dataclass
class LoadedSession:
    state: SessionState               # file + journal; state.last_seq: the newest event seen
    counts: FileCounts                # what the file alone holds
    in_file: FileHeld
    warnings: list = field(default_factory=list)   # one line each, naming the file
    journal_records: int = 0          # records applied from the journal
    journal_damaged: bool = False


def load_session(path, frames: bool = True, arrays: bool = True,
                 strict_journal: bool = False, journal_frames: bool | None = None,
                 journal_arrays: bool | None = None) -> LoadedSession:
    """The session at `path` as every acknowledged change left it. frames=False reads each
    frame's shape only, arrays=False each snapshot's header only (journal_frames and
    journal_arrays, when given, decide it for the journal's records alone). A journal that
    is not a regular file or not ours is a warning (a SessionFormatError with
    strict_journal, for a writer that must not take it over)."""
    path = Path(path)
    jpath = journal_path(path)
    journal_frames = frames if journal_frames is None else journal_frames
    journal_arrays = arrays if journal_arrays is None else journal_arrays
    try:
        scan = read_journal(jpath, frame_pixels=journal_frames)
    except JournalError as exc:
        if strict_journal:
            raise SessionFormatError(f"{exc}; move it away to open the session") from None
        scan = JournalScan(damage=[f"{exc}; ignored"])
    state, counts = read_session_counts(path, frames, arrays)
    held = FileHeld([r.undone for r in state.labels], set(state.excluded), state.settings,
                    set(state.snapshots), dict(state.window), state.spec.names)
    loaded = LoadedSession(state, counts, held, journal_damaged=bool(scan.damage))
    warnings = list(scan.damage)
    where = shown(str(jpath))
    for at, record in enumerate(scan.records):
        try:
            _apply(state, record, journal_frames, journal_arrays)
            loaded.journal_records += 1
        except SessionFormatError as exc:
            loaded.journal_damaged = True
            warnings.append(f"{where}: record {at + 1} skipped: {exc}")
    if len(warnings) > MAX_WARNINGS:
        warnings = warnings[:MAX_WARNINGS] + [f"{where}: and {len(warnings) - MAX_WARNINGS} "
                                              "more damaged records, skipped"]
    loaded.warnings = warnings
    return loaded


def _apply(state: SessionState, record, frames: bool, arrays: bool) -> None:
    if record.kind == FRAME:
        _frame(state, record.body, frames)
    elif record.kind == EVENT:
        _event(state, record.body)
    elif record.kind == SNAPSHOT:
        _snapshot(state, record.body, arrays)
    else:
        raise SessionFormatError(f"unknown record type {record.kind}")


def _frame(state: SessionState, body: bytes, frames: bool) -> None:
    if len(body) < FRAME_HEAD.size:
        raise SessionFormatError("a frame record is too short")
    frame_id, h, w = FRAME_HEAD.unpack_from(body)
    check_frame_shape((h, w, 3), np.uint8, f"frame {frame_id}")
    image = None
    if frames:
        pixels = body[FRAME_HEAD.size:]
        if len(pixels) != h * w * 3:
            raise SessionFormatError(f"frame {frame_id} has {len(pixels)} bytes, {h}x{w} "
                                     f"needs {h * w * 3}")
        image = np.frombuffer(pixels, np.uint8).reshape(h, w, 3).copy()
    state.add_frame(frame_id, h, w, image)


def _event(state: SessionState, body: bytes) -> None:
    if len(body) > MAX_EVENT_BYTES:
        raise SessionFormatError(f"an event of {len(body)} bytes is over the "
                                 f"{MAX_EVENT_BYTES >> 10} KiB limit")
    event = _json(body, "an event")
    if not isinstance(event, dict):
        raise SessionFormatError("an event is not a JSON object")
    seq = event.pop("seq", None)
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise SessionFormatError("an event has no sequence number")
    if seq > state.last_seq:  # older ones are in the file already
        state.apply(event)
        state.last_seq = seq


def _snapshot(state: SessionState, body: bytes, arrays: bool) -> None:
    if len(body) < SNAP_HEAD.size:
        raise SessionFormatError("a snapshot record is too short")
    (head_len,) = SNAP_HEAD.unpack_from(body)
    if head_len > MAX_EVENT_BYTES or SNAP_HEAD.size + head_len > len(body):
        raise SessionFormatError("a snapshot's header is cut short")
    header = _json(body[SNAP_HEAD.size:SNAP_HEAD.size + head_len], "a snapshot header")
    if not isinstance(header, dict):
        raise SessionFormatError("a snapshot header is not a JSON object")
    tag, size = header.get("tag"), header.get("size")
    if not isinstance(tag, str) or isinstance(size, bool) or not isinstance(size, int) \
            or not 0 < size <= MAX_WEIGHTS:
        raise SessionFormatError("a snapshot header lacks its tag or size")
    try:
        check_plain_name(tag, "snapshot tag")
    except ValueError as exc:
        raise SessionFormatError(str(exc)) from None
    data = memoryview(body)[SNAP_HEAD.size + head_len:]
    if len(data) != 8 * size:
        raise SessionFormatError(f"snapshot {tag} is cut short")
    if arrays:
        both = np.frombuffer(data, np.float32)
        weights, velocity = both[:size].copy(), both[size:].copy()
    else:
        weights = velocity = np.zeros(0, np.float32)
    state.snapshots[tag] = snapshot_from_header(header, state, weights, velocity)


def _json(data: bytes, what: str):
    try:
        return json.loads(data)
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise SessionFormatError(f"{what} is not valid JSON ({type(exc).__name__})") from None
