"""The window's link to its session file: every label goes to the core at once (training
starts on it) and to a writer thread that makes it durable; the window shows how many are
held on disk and how many wait. A full disk or an unwritable folder is reported, the
labels stay in memory, and the writer tries again until the disk takes them."""
from __future__ import annotations

import queue
import threading
import time

from loop.store.session import SessionStore

RETRY_SECONDS = 1.0


class SessionLink:
    def __init__(self, core, store: SessionStore):
        self.core = core
        self.store = store
        self.jobs: queue.Queue = queue.Queue()
        self.held = len([r for r in store.state.labels if r.active])
        self.waiting = 0
        self.error: str | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._write, name="patchloop-session", daemon=True)
        self._thread.start()

    # -- what the window calls ------------------------------------------------------------
    def label(self, frame_id: int, label) -> None:
        frame = self.core.label(frame_id, label)
        image = frame.image
        self._submit(lambda: self.store.add_label(frame_id, image, label), counts=True)

    def undo(self) -> bool:
        if not self.core.undo():
            return False
        self._submit(self.store.undo, counts=False, undo=True)
        return True

    def exclude(self, frame_id: int, excluded: bool) -> None:
        self._submit(lambda: self.store.set_excluded(frame_id, excluded), counts=False)

    def change_settings(self, settings):
        """The user's new trainer settings, at once for the trainer and kept in the session,
        so that a resumed session trains as it was left."""
        self.core.change_settings(settings)
        self._submit(lambda: self.store.save_settings(settings), counts=False)
        return settings

    def snapshot(self):
        snapshot = self.core.snapshot()
        self._submit(lambda: self.store.save_snapshot(snapshot), counts=False)
        return snapshot

    def close(self) -> None:
        """Everything waiting is written, a last snapshot taken, the file consolidated."""
        self.snapshot()
        losses = list(self.core.trainer.status.losses)
        self._submit(lambda: self.store.log_loss(losses), counts=False)
        self._submit(None, counts=False)  # the writer stops after the jobs before it
        self._thread.join()
        self.store.close()

    # -- the writer -----------------------------------------------------------------------
    def _submit(self, job, counts: bool, undo: bool = False) -> None:
        with self._lock:
            self.waiting += 1
        self.jobs.put((job, counts, undo))

    def _write(self) -> None:
        while True:
            job, counts, undo = self.jobs.get()
            if job is None:
                with self._lock:
                    self.waiting -= 1
                return
            while True:
                try:
                    job()
                    break
                except OSError as exc:  # disk full, folder gone or read-only: keep, retry
                    self.error = f"cannot save to {self.store.path}: {exc.strerror or exc}; " \
                                 "labels are kept in memory"
                    time.sleep(RETRY_SECONDS)
            self.error = None
            with self._lock:
                self.waiting -= 1
                if counts:
                    self.held += 1
                elif undo:
                    self.held -= 1
