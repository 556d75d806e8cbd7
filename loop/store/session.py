"""The one owner of a session being written: every change (label, undo, exclusion, settings,
loss points, snapshot) is a named call here that appends it to the journal, fsync'ed, and
only then applies it: when the call returns the change is acknowledged and survives kill -9.
Windows and commands only call these; readers use session_loader and never come here.

A store holds the session's lock from open to close (a second writer is refused, naming the
holder). Every COMMIT_FRAMES new frames (or COMMIT_BYTES of journal), on close, and on
opening a session whose journal holds anything, the changes are appended to the file in
place (session_file: single-writer mode, the commit record last) and the journal is emptied:
the journal stays a short tail and memory holds only frames not yet in the file. Journal
events carry sequence numbers and the file records the newest it holds, so a crash between
appending and emptying the journal never applies an event twice.

A file that cannot be appended to (a version 1 or 2 file, or one whose append a kill
interrupted) is rebuilt whole from what it holds plus the journal. Temporary files a killed
writer left are removed by the next one to take the lock."""
from __future__ import annotations

import os
import time
from itertools import chain
from pathlib import Path

import numpy as np

from loop.core.patch import PatchSpec
from loop.core.settings import TrainerSettings
from loop.core.snapshot import Snapshot
from loop.store.frame_shelf import FrameShelf
from loop.store.journal import JournalError, JournalWriter, Record
from loop.store.records import (MAX_LOSS_POINTS, LabelRecord, SessionFormatError,
                                SessionState, check_image, check_label, frame_factor,
                                label_event, scale_label, settings_to_json, shrink_frame,
                                categories_from_json, snapshot_header, stored_snapshot,
                                window_from_json)
from loop.safe_files import shown
from loop.store.session_file import VERSION, FileCounts, append, create_file
from loop.store.session_loader import load_session
from loop.store.session_pending import (PendingChanges, drop_old_arrays, load_all_arrays,
                                        load_latest_arrays)
from loop.store.session_read import read_frames
from loop.store.session_lock import SessionLock
from loop.store.session_paths import journal_path, path_error, refuse_existing, \
    remove_leftovers, remove_session_files

COMMIT_FRAMES = 32
COMMIT_BYTES = 32 << 20
LOSS_POINTS_PER_EVENT = 10_000


class SessionStore:
    def __init__(self, path: Path, state: SessionState, counts: FileCounts,
                 lock: SessionLock, warnings: list | None = None):
        self.path = path
        self.state = state
        self.counts = counts          # what the file holds
        self.journal: JournalWriter | None = None
        self.lock = lock
        self.seq = state.last_seq
        self.warnings = warnings or []
        self.commit_error: str | None = None   # the last append that failed (retried later)
        self.pending = PendingChanges()   # journaled changes the file does not hold yet
        self.created = False          # made by this store (not an existing session opened)
        state.frames = FrameShelf(path, state.frame_shapes, dict(state.frames))

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def create(cls, path, spec: PatchSpec, settings: TrainerSettings,
               holder: str = "patchloop") -> "SessionStore":
        """A new, empty session with its journal; refused when anything is at either path."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise path_error(path, exc) from exc
        with SessionLock.opening(path, holder) as lock:
            refuse_existing(path)
            remove_leftovers(path)
            state = SessionState(spec, settings, time.time())
            store = cls(path, state, create_file(path, state, []), lock)
            store.journal = JournalWriter.create(journal_path(path))
            store.created = True
        return store

    @classmethod
    def open(cls, path, holder: str = "patchloop") -> "SessionStore":
        """An existing session, to write on: locked, read with its journal (damage skipped,
        with warnings), the journal's changes appended to the file first."""
        path = Path(path)
        if not os.path.lexists(path):
            raise SessionFormatError(f"{shown(str(path))}: no such session file")
        with SessionLock.opening(path, holder) as lock:
            remove_leftovers(path)
            loaded = load_session(path, frames=False, arrays=False, strict_journal=True,
                                  journal_frames=True, journal_arrays=True)
            store = cls(path, loaded.state, loaded.counts, lock, loaded.warnings)
            store.pending = PendingChanges.since(loaded.state, loaded.in_file)
            jpath = journal_path(path)
            if loaded.counts.version < VERSION:
                store._rebuild()
            elif loaded.journal_records or loaded.journal_damaged:
                store._append()
            exists = os.path.lexists(jpath)
            store.journal = JournalWriter.take_over(jpath) if exists else \
                JournalWriter.create(jpath)
            load_latest_arrays(path, store.state, store.counts)
        return store

    @classmethod
    def write_new(cls, path, state: SessionState, frames=None,
                  holder: str = "patchloop") -> None:
        """A whole session written at once (training, merging): under the lock, into a
        temporary file moved into place, so a kill leaves no session or a whole one.
        `frames`: (id, image) in order, read one at a time (default: the state's)."""
        path = Path(path)
        lock = SessionLock.take(path, holder)
        try:
            refuse_existing(path)
            remove_leftovers(path)
            create_file(path, state, state.frames.items() if frames is None else frames)
        except OSError as exc:
            raise path_error(path, exc) from exc
        finally:
            lock.release()

    # -- durable changes ------------------------------------------------------------------
    def add_label(self, frame_id: int, image: np.ndarray, label, when: float | None = None
                  ) -> LabelRecord:
        """Durable when it returns: the frame (the first time) and the label are on disk.
        A frame over MAX_SIDE pixels is kept shrunk to fit, the label scaled with it."""
        image = np.asarray(image)
        if image.ndim != 3:
            check_image(image, f"frame {frame_id}")
        factor = frame_factor(image.shape)
        record = check_label(LabelRecord.of(frame_id, scale_label(label, factor),
                                            time.time() if when is None else when),
                             self.state.spec.outputs)
        records = []
        if frame_id not in self.state.frame_shapes:
            small = check_image(np.ascontiguousarray(shrink_frame(image, factor)),
                                f"frame {frame_id}")
            records.append(Record.frame(frame_id, small))
        self._append_event(records, label_event(record))
        if records:
            self.state.add_frame(frame_id, small.shape[0], small.shape[1], small)
        self.state.labels.append(record)
        self._maybe_commit()
        return record

    def undo(self, when: float | None = None) -> bool:
        """Undoes the newest standing label; False when there is none."""
        index = self.state.last_active()
        if index is None:
            return False
        event = {"op": "undo", "label": index, "t": time.time() if when is None else when}
        self._append_event([], event)
        self.state.apply(event)
        if index < self.counts.labels:
            self.pending.undone[index] = event["t"]
        return True

    def set_excluded(self, frame_id: int, excluded: bool) -> None:
        event = {"op": "exclude", "frame": int(frame_id), "value": bool(excluded)}
        self._append_event([], event)
        self.state.apply(event)
        self.pending.excluded[int(frame_id)] = bool(excluded)

    def save_settings(self, settings: TrainerSettings) -> None:
        event = {"op": "settings", "settings": settings_to_json(settings)}
        self._append_event([], event)
        self.state.settings = settings
        self.pending.settings_changed = True

    def save_window(self, prefs: dict) -> None:
        """The window's brush, category and view, for the next time the session opens."""
        prefs = window_from_json(prefs)  # refused before the journal if malformed
        self._append_event([], {"op": "window", "prefs": prefs})
        self.state.window = prefs
        self.pending.settings_changed = True

    def save_categories(self, names: list[str]) -> None:
        """The category names after a rename or an added category (the first ones keep
        their tags: labels keep their meaning)."""
        spec = categories_from_json(self.state.spec, names)  # refused before the journal
        self._append_event([], {"op": "categories", "names": spec.names})
        self.state.spec = spec
        self.pending.settings_changed = True

    def log_loss(self, points: list[tuple[int, float]]) -> None:
        """Kept up to MAX_LOSS_POINTS in all (the log is for looking back, not training)."""
        points = points[:max(0, MAX_LOSS_POINTS - len(self.state.loss_log))]
        for start in range(0, len(points), LOSS_POINTS_PER_EVENT):
            part = [[int(s), float(v)] for s, v in points[start:start + LOSS_POINTS_PER_EVENT]]
            self._append_event([], {"op": "loss", "points": part})
            self.state.loss_log.extend((s, v) for s, v in part)

    def save_snapshot(self, snapshot) -> None:
        """A core Snapshot (loop.core.snapshot) into the journal, then the state."""
        stored = stored_snapshot(snapshot)
        self._append_records([Record.snapshot(snapshot_header(stored), stored.weights.tobytes()
                                              + stored.velocity.tobytes())])
        self.state.snapshots[stored.tag] = stored
        self.pending.snapshot_saved(stored.tag)
        self._maybe_commit()

    def _append_event(self, records: list[Record], event: dict) -> None:
        self._append_records(records + [Record.event(dict(event, seq=self.seq + 1))])
        self.seq += 1

    def _append_records(self, records: list[Record]) -> None:
        try:
            self.journal.append(records)
        except JournalError as exc:
            raise SessionFormatError(f"{shown(str(self.path))}: {exc}") from None

    # -- into the file --------------------------------------------------------------------
    def consolidate(self) -> None:
        """Everything journaled goes into the file; then the journal is emptied."""
        self._append()
        self.journal.reset()

    def _maybe_commit(self) -> None:
        """An append now and then keeps the journal short. The change that triggered it is
        acknowledged already: a failed append is kept for later, never raised."""
        pending = len(self.state.frame_shapes) - len(self.counts.frame_rows)
        if pending < COMMIT_FRAMES and self.journal.end < COMMIT_BYTES:
            return
        try:
            self.consolidate()
            self.commit_error = None
        except (OSError, SessionFormatError) as exc:
            self.commit_error = f"{shown(str(self.path))}: {getattr(exc, 'strerror', 0) or exc}"

    def _append(self) -> None:
        change = self.pending.append_of(self.state, self.counts, self.seq)
        counts = self.counts.copy()
        try:
            append(self.path, counts, change)
        except OSError as exc:
            if "already open for write" not in str(exc):
                raise
            self._rebuild()  # a kill interrupted an earlier append: the file is marked
            return
        self._appended(counts)

    def _rebuild(self) -> None:
        """The whole file written anew (from its consistent part and what is in memory),
        moved over the old one."""
        load_all_arrays(self.path, self.state)
        pending = self.state.frames.pending
        in_file = set(self.counts.frame_rows) if self.counts.version == VERSION else \
            {i for i in self.state.frame_shapes if i not in pending}
        old = read_frames(self.path, in_file)
        new = ((i, pending[i]) for i in self.state.frame_shapes if i not in in_file)
        self.state.last_seq = self.seq
        self._appended(create_file(self.path, self.state, chain(old, new), replace=True))

    def _appended(self, counts: FileCounts) -> None:
        """The file now holds everything: memory lets go of frames and old arrays."""
        self.counts = counts
        self.state.frames.pending.clear()
        self.pending = PendingChanges()
        drop_old_arrays(self.state)

    # -- reading frames back, closing -----------------------------------------------------
    def frames(self, ids) -> dict:
        """{id: image} of these frames (from memory or the file, read once)."""
        return self.state.frames.read(ids)

    def close(self) -> None:
        """Appends what is left and lets the session go. If that fails (a full disk) the
        journal still holds every change; the error is raised after the lock is released."""
        try:
            self.consolidate()
        finally:
            self.release()

    def discard(self) -> bool:
        """A session this store created and nothing was labeled in (no frame, no label) is
        removed with its journal, under the lock, so an aborted run leaves nothing behind;
        False (and the session kept, closed) otherwise."""
        if not self.created or self.state.labels or self.state.frame_shapes:
            self.close()
            return False
        try:
            self.journal.close()
            self.journal = None
            remove_session_files(self.path)
        finally:
            self.release()
        return True

    def release(self) -> None:
        """Lets the session go without appending (the journal keeps every change)."""
        if self.journal is not None:
            self.journal.close()
        self.lock.release()

    def latest_snapshot(self) -> Snapshot | None:
        return self.state.latest_snapshot()
