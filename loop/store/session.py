"""A recorded session: the HDF5 file plus its journal. Every change is appended to the
journal and fsync'ed before the call returns (then it is acknowledged); the HDF5 file takes
everything in when the session is consolidated (on close, or when asked), replaced whole.
Journal events carry a sequence number, and the file records the last one it holds, so a
crash between writing the file and emptying the journal never applies an event twice."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from loop.core.patch import PatchSpec
from loop.core.settings import TrainerSettings
from loop.store.journal import EVENT, FRAME, FRAME_HEAD, SNAP_HEAD, SNAPSHOT, Journal, Record, \
    read_records
from loop.store.records import (LabelRecord, SessionFormatError, SessionState, Snapshot,
                                check_image, label_event, settings_to_json)
from loop.store.session_file import read_session, write_session


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


class SessionStore:
    def __init__(self, path: Path, state: SessionState, journal: Journal, last_seq: int):
        self.path = path
        self.state = state
        self.journal = journal
        self.seq = last_seq

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def create(cls, path, spec: PatchSpec, settings: TrainerSettings) -> "SessionStore":
        path = Path(path)
        if path.exists():
            raise SessionFormatError(f"{path}: exists already (open it to resume)")
        path.parent.mkdir(parents=True, exist_ok=True)
        state = SessionState(spec, settings, time.time())
        state.last_seq = 0
        write_session(state, path)
        return cls(path, state, Journal(journal_path(path)), 0)

    @classmethod
    def open(cls, path) -> "SessionStore":
        path = Path(path)
        if not path.is_file():
            raise SessionFormatError(f"{path}: no such session file")
        state = read_session(path)
        last_seq = state.last_seq
        jpath = journal_path(path)
        good_end = None
        if jpath.exists():
            records, good_end = read_records(jpath)
            for record in records:
                last_seq = max(last_seq, _replay(state, record, last_seq, jpath))
        return cls(path, state, Journal(jpath, good_end), last_seq)

    # -- durable changes ------------------------------------------------------------------
    def _event(self, event: dict) -> Record:
        self.seq += 1
        return Record.event(dict(event, seq=self.seq))

    def add_label(self, frame_id: int, image: np.ndarray, label, when: float | None = None
                  ) -> LabelRecord:
        """Durable when it returns: the frame (the first time) and the label are on disk."""
        record = LabelRecord.of(frame_id, label, time.time() if when is None else when)
        records = []
        if frame_id not in self.state.frames:
            records.append(Record.frame(frame_id, check_image(np.ascontiguousarray(image),
                                                              f"frame {frame_id}")))
        records.append(self._event(label_event(record)))
        self.journal.append(records)
        self.state.frames.setdefault(frame_id, image)
        self.state.labels.append(record)
        return record

    def undo(self, when: float | None = None) -> None:
        event = {"op": "undo", "t": time.time() if when is None else when}
        self.journal.append([self._event(event)])
        self.state.apply(event)

    def set_excluded(self, frame_id: int, excluded: bool) -> None:
        event = {"op": "exclude", "frame": frame_id, "value": bool(excluded)}
        self.journal.append([self._event(event)])
        self.state.apply(event)

    def save_settings(self, settings: TrainerSettings) -> None:
        event = {"op": "settings", "settings": settings_to_json(settings)}
        self.journal.append([self._event(event)])
        self.state.settings = settings

    def log_loss(self, points: list[tuple[int, float]]) -> None:
        if points:
            event = {"op": "loss", "points": [[int(s), float(v)] for s, v in points]}
            self.journal.append([self._event(event)])
            self.state.loss_log.extend(points)

    def save_snapshot(self, snapshot) -> None:
        """A core Snapshot (loop.core.snapshot) into the journal, then the file."""
        header = {"tag": snapshot.tag, "created": snapshot.created, "steps": snapshot.steps,
                  "settings": settings_to_json(snapshot.settings),
                  "label_counts": [int(c) for c in snapshot.label_counts],
                  "size": int(snapshot.weights.size)}
        weights = np.ascontiguousarray(snapshot.weights, np.float32)
        velocity = np.ascontiguousarray(snapshot.velocity, np.float32)
        self.journal.append([Record.snapshot(header, weights.tobytes() + velocity.tobytes())])
        self.state.snapshots[snapshot.tag] = Snapshot(snapshot.tag, header, weights, velocity)

    # -- consolidation --------------------------------------------------------------------
    def consolidate(self) -> None:
        self.state.last_seq = self.seq
        write_session(self.state, self.path)
        self.journal.reset()

    def close(self) -> None:
        self.consolidate()
        self.journal.close()

    def latest_snapshot(self) -> Snapshot | None:
        if not self.state.snapshots:
            return None
        return max(self.state.snapshots.values(), key=lambda s: s.header.get("created", 0))


def _replay(state: SessionState, record: Record, last_seq: int, where: Path) -> int:
    """Applies one journal record not yet in the file; returns its sequence number (or 0)."""
    import json
    if record.kind == FRAME:
        if len(record.body) < FRAME_HEAD.size:
            raise SessionFormatError(f"{where}: a frame record is too short")
        frame_id, h, w = FRAME_HEAD.unpack_from(record.body)
        pixels = record.body[FRAME_HEAD.size:]
        if len(pixels) != h * w * 3:
            raise SessionFormatError(f"{where}: frame {frame_id} has {len(pixels)} bytes, "
                                     f"{h}x{w} needs {h * w * 3}")
        image = np.frombuffer(pixels, np.uint8).reshape(h, w, 3).copy()
        state.frames.setdefault(frame_id, check_image(image, f"{where}: frame {frame_id}"))
        return 0
    if record.kind == EVENT:
        try:
            event = json.loads(record.body)
            seq = int(event.pop("seq"))
        except (ValueError, KeyError, TypeError) as exc:
            raise SessionFormatError(f"{where}: an event is not valid JSON with a sequence "
                                     f"number ({exc})") from exc
        if seq > last_seq:
            state.apply(event)
        return seq
    if record.kind == SNAPSHOT:
        (head_len,) = SNAP_HEAD.unpack_from(record.body)
        header = json.loads(record.body[SNAP_HEAD.size:SNAP_HEAD.size + head_len])
        arrays = np.frombuffer(record.body[SNAP_HEAD.size + head_len:], np.float32)
        size = int(header["size"])
        if arrays.size != 2 * size:
            raise SessionFormatError(f"{where}: snapshot {header.get('tag')} is cut short")
        state.snapshots[str(header["tag"])] = Snapshot(str(header["tag"]), header,
                                                       arrays[:size].copy(), arrays[size:].copy())
        return 0
    raise SessionFormatError(f"{where}: unknown record type {record.kind}")
