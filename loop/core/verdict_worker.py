"""Verdicts off the UI thread: a worker takes the newest frame from the source (read ahead
while the previous one was judged: frame_ahead.py), runs the core on it, and leaves
(frame, verdict) for the window to draw. The window never waits on
the device. A source that knows the truth of its frames (the demo scene) lets a `judge`
score each verdict for the window's accuracy plot."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

from loop.core.engine import LoopCore
from loop.core.frame_ahead import FrameAhead

LOG = logging.getLogger(__name__)
RETRY_SECONDS = 0.05
# Verdicts between two reads of the base's classes (no trigger needing them every frame):
# the panel names the base's best class, and five times a second reads as live, while
# stopping the base at the patch's tap on the other frames saves a third of its time.
CLASSES_EVERY = 6
ACCURACY_LOG = 300  # verdicts scored against ground truth, kept for the plot


class VerdictWorker:
    def __init__(self, core: LoopCore, source, judge=None):
        self.core = core
        self.source = source
        self.judge = judge           # judge(verdict, truth) -> accuracy, for sources with truth
        self._lock = threading.Lock()
        self._latest = None          # (frame, verdict)
        self._latest_truth = None    # the source's ground truth for that frame, if it has one
        self.verdicts = 0            # verdicts made since start
        self.verdict_times: list[float] = []  # seconds each of the newest verdicts took
        self.frozen = False          # stop-N-show: keep the current frame and its verdict
        self.source_lost = False
        self.error: str | None = None
        self.verdicts_per_second = 0.0
        self.verdict_ms = 0.0
        self._times: list[float] = []
        # (time, balanced accuracy) of verdicts on frames with ground truth (the demo): each
        # frame is new to the patch when judged, so this is held-out accuracy.
        self.accuracy_log: list[tuple[float, float]] = []
        self._base_top: tuple = ()   # the base's classes as last read
        self._since_classes = CLASSES_EVERY
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="patchloop-verdicts", daemon=True)
        self._ahead: FrameAhead | None = None   # reads the next frame during a verdict

    def start(self) -> None:
        if self._ahead is not None:
            raise RuntimeError("the verdict worker is already started")
        self._ahead = FrameAhead(self.source)
        self._thread.start()

    def stop(self) -> bool:
        """Stops the threads (a window closed before it started has none to wait for); True
        when both have ended."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        ended = self._ahead.stop() if self._ahead is not None else True
        return ended and not self._thread.is_alive()

    def latest(self):
        with self._lock:
            return self._latest

    def latest_with_truth(self):
        """(frame, verdict, truth) of the newest verdict; truth is None without one."""
        with self._lock:
            return None if self._latest is None else self._latest + (self._latest_truth,)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.frozen:
                self._refresh_frozen()
                time.sleep(RETRY_SECONDS)
                continue
            if not self._ahead.has_frame:
                self.core.waiting_for_frame()   # the device is free until the frame comes
            try:
                taken = self._ahead.take(timeout=RETRY_SECONDS)
            except Exception as exc:  # a camera or file that broke: said, and read again
                self._show(f"reading the picture failed: {exc}")
                taken = (None, None)
            if taken is None:   # a source slower than that (a camera between frames)
                continue
            frame, truth = taken
            if frame is None:
                self.source_lost = True
                time.sleep(RETRY_SECONDS)
                continue
            self.source_lost = False
            self.core.frame_arrived()
            start = time.perf_counter()
            try:
                verdict = self.core.observe(frame, classes=self._classes_due())
                verdict = self._with_classes(verdict)
            except Exception as exc:  # shown in the window; the loop and the labels go on
                self._show(f"verdict failed: {exc}")
                time.sleep(RETRY_SECONDS)
                continue
            seconds = time.perf_counter() - start
            self.error = None   # working again: the message is withdrawn
            self.verdict_ms = seconds * 1e3
            self.verdict_times = self.verdict_times[-999:] + [seconds]
            with self._lock:
                if self.frozen:  # frozen while this frame was on the device: keep what
                    continue     # the user saw when freezing
                self._latest = (frame, verdict)
                self._latest_truth = truth
                self.verdicts += 1
            self._score(verdict, truth)
            now = time.monotonic()
            self._times = [t for t in self._times if now - t < 2.0] + [now]
            if len(self._times) > 1:
                self.verdicts_per_second = (len(self._times) - 1) / (self._times[-1] - self._times[0])

    def _classes_due(self) -> bool:
        self._since_classes += 1
        return self._since_classes >= CLASSES_EVERY

    def _with_classes(self, verdict):
        """The verdict with the base's classes as last read, for the panel."""
        if verdict.base_top:
            self._since_classes, self._base_top = 0, verdict.base_top
            return verdict
        return replace(verdict, base_top=self._base_top) if self._base_top else verdict

    def _refresh_frozen(self) -> None:
        """Stop-N-show: the held frame's verdict follows the weights as training goes on,
        so a click on a still frame is seen to take effect."""
        latest = self.latest()
        if latest is None or latest[1].weights_version == self.core.weights_version:
            return
        try:
            verdict = self.core.verdict_again(latest[1])
        except Exception as exc:  # shown in the window; the loop and the labels go on
            self._show(f"verdict failed: {exc}")
            return
        self.error = None   # working again: the message is withdrawn
        with self._lock:
            if self.frozen and self._latest is latest:
                self._latest = (latest[0], verdict)

    def _show(self, message: str) -> None:
        """What the window shows, logged once when it appears (this is a background thread)."""
        if message != self.error:
            LOG.warning(message)
        self.error = message

    def _score(self, verdict, truth) -> None:
        if truth is None or self.judge is None:
            return
        self.accuracy_log.append((time.monotonic(), self.judge(verdict, truth)))
        del self.accuracy_log[:-ACCURACY_LOG]
