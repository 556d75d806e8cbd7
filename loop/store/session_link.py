"""The window's link to its session: every label goes to the core at once (training starts
on it) and to a writer thread that makes it durable through the session store; the window
shows how many are held on disk and how many wait.

A full disk or an unwritable folder is shown, the changes stay in memory and the writer
tries again until the disk takes them. A change the store refuses outright (it cannot ever
be written) is shown and named, and the writer goes on with the next one: the thread never
dies. Closing waits at most CLOSE_SECONDS for the disk; whatever it still did not take is
named in `failure` (the face reports it and exits 2), never waited on forever."""
from __future__ import annotations

import logging
import queue
import threading

from loop.store.session import SessionStore

LOG = logging.getLogger(__name__)
RETRY_SECONDS = 1.0
CLOSE_SECONDS = 20.0


class SessionLink:
    def __init__(self, core, store: SessionStore):
        self.core = core
        self.store = store
        self.jobs: queue.Queue = queue.Queue()
        self.held = len([r for r in store.state.labels if r.active])
        self.waiting = 0
        self.error: str | None = None    # shown in the window while it lasts
        self.lost: list[str] = []        # changes never written, named
        self.failure: str | None = None  # after close: one line naming what was lost
        self.warning: str | None = None  # after close: a problem that lost nothing
        self.discarded = False           # after close: a new session nothing was labeled in
        self._labels_made = 0
        self._give_up = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._write, name="patchloop-session", daemon=True)
        self._thread.start()

    # -- what the window calls ------------------------------------------------------------
    def label(self, frame_id: int, label) -> None:
        frame = self.core.label(frame_id, label)
        self._labels_made += 1
        image = frame.image
        self._submit(lambda: self.store.add_label(frame_id, image, label),
                     f"the label on frame {frame_id}", counts=True)

    def undo(self) -> bool:
        if not self.core.undo():
            return False
        self._submit(self.store.undo, "an undo", undo=True)
        return True

    def exclude(self, frame_id: int, excluded: bool) -> None:
        self.core.exclude(frame_id, excluded)
        self._submit(lambda: self.store.set_excluded(frame_id, excluded),
                     f"leaving frame {frame_id} {'out' if excluded else 'in'}")

    def change_settings(self, settings):
        """The user's new trainer settings, at once for the trainer and kept in the session,
        so that a resumed session trains as it was left."""
        self.core.change_settings(settings)
        self._submit(lambda: self.store.save_settings(settings), "the trainer settings")
        return settings

    def rename_category(self, index: int, name: str):
        spec = self.core.rename_category(index, name)
        self._submit(lambda: self.store.save_categories(spec.names), "the category names")
        return spec

    def add_category(self, name: str):
        spec = self.core.add_category(name)
        self._submit(lambda: self.store.save_categories(spec.names), "the new category")
        return spec

    def window_prefs(self) -> dict:
        """The window's view as the session last kept it (empty for a new session)."""
        return dict(self.store.state.window)

    def save_window_prefs(self, prefs: dict) -> None:
        self._submit(lambda: self.store.save_window(prefs), "the window's view")

    def snapshot(self):
        snapshot = self.core.snapshot()
        self._submit(lambda: self.store.save_snapshot(snapshot), f"snapshot {snapshot.tag}")
        return snapshot

    def close(self, seconds: float | None = None) -> None:
        """Everything waiting is written (for at most `seconds`), a last snapshot taken, the
        file consolidated. What could not be written is named in `failure`."""
        seconds = CLOSE_SECONDS if seconds is None else seconds
        if self.store.created and self._labels_made == 0:
            self._discard(seconds)
            return
        self.snapshot()
        losses = list(self.core.trainer.status.losses)
        self._submit(lambda: self.store.log_loss(losses), "the loss log")
        self.jobs.put(None)  # the writer stops after the jobs before it
        self._thread.join(seconds)
        if self._thread.is_alive():
            self._give_up.set()
            self._thread.join(RETRY_SECONDS + 1.0)
        if self._thread.is_alive():  # stuck inside a write: count everything still queued
            self._drain(f"the disk did not answer within {seconds:.0f} s")
        try:
            if self._thread.is_alive():
                self.store.release()
            else:
                self.store.close()
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or exc
            self.warning = (f"{self.store.path}: not consolidated ({why}); every saved "
                            "change is kept in its journal and read from there")
        if self.lost:
            self.failure = _lost_line(self.store.path, self.lost)

    def _discard(self, seconds: float) -> None:
        """Nothing was labeled in a session this run created: it is not kept."""
        self.jobs.put(None)
        self._thread.join(seconds)
        try:
            self.discarded = self.store.discard()
        except OSError as exc:
            self.warning = f"{self.store.path}: an empty session could not be removed " \
                           f"({getattr(exc, 'strerror', None) or exc})"

    # -- the writer -----------------------------------------------------------------------
    def _submit(self, job, what: str, counts: bool = False, undo: bool = False) -> None:
        with self._lock:
            self.waiting += 1
        self.jobs.put((job, what, counts, undo))

    def _write(self) -> None:
        while True:
            item = self.jobs.get()
            if item is None:
                return
            job, what, counts, undo = item
            done = self._run(job, what)
            with self._lock:
                self.waiting -= 1
                if done and counts:
                    self.held += 1
                elif done and undo:
                    self.held -= 1
            if self._give_up.is_set():
                self._drain("the disk did not take it")
                return

    def _run(self, job, what: str) -> bool:
        """True once the job is durable; False when it never can be (or we gave up)."""
        while True:
            try:
                job()
                problem = self.store.commit_error  # acknowledged; the file takes it later
                self._show(None if problem is None else
                           f"{problem}; every label is safe in the session's journal")
                return True
            except OSError as exc:  # disk full, folder gone or read-only: keep, retry
                self._show(f"cannot save to {self.store.path}: {exc.strerror or exc}; "
                           "labels are kept in memory")
                if self._give_up.wait(RETRY_SECONDS):
                    self.lost.append(f"{what} ({exc.strerror or exc})")
                    return False
            except Exception as exc:  # refused for good: say so, name it, go on
                self._show(f"{what} could not be saved: {exc}")
                self.lost.append(f"{what} ({exc})")
                return False

    def _show(self, message: str | None) -> None:
        """The problem the window shows (None: none now), logged once when it appears: the
        writer is a background thread, and a log outlives the window."""
        if message is not None and message != self.error:
            LOG.warning(message)
        self.error = message

    def _drain(self, why: str) -> None:
        while True:
            try:
                item = self.jobs.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self.lost.append(f"{item[1]} ({why})")
                with self._lock:
                    self.waiting -= 1


def _lost_line(path, lost: list[str]) -> str:
    shown_items = "; ".join(lost[:5]) + (f"; and {len(lost) - 5} more" if len(lost) > 5 else "")
    return f"{path}: {len(lost)} changes could not be saved and are lost: {shown_items}"
