"""The next frame read while the current one is judged.

A source's `read()` takes time of its own: the demo scene renders a 240x320 frame in about
6 ms (10 ms on two loaded cores), a video decodes one, a camera waits for its next frame.
Read in turn with the verdicts, that time was added to every verdict (`bench loop`: 6 s of
a 28 s run in the verdict thread, reading). Here a thread of its own reads frame k + 1
while the device judges frame k, and hands each frame over with the truth the source knew
for it (the demo's), so the two can never be paired wrongly.

One frame is read ahead, never more: a source that does not wait (the demo, a video) is
read once per verdict, as before, not as fast as a thread can spin. A frame that waited
longer than STALE_SECONDS (the window was frozen on stop-N-show meanwhile) is dropped for a
new one: the picture must not jump back to the moment the freeze began.

The reader runs at a lower priority than the verdicts (Linux): on two cores the device's
threads take both while a verdict runs, and a reader of equal priority took a share of them
from every kernel (a verdict 20.6-26.1 ms beside the demo's renderer against 18.1-24.2
alone; 19.2-22.9 with the renderer at niceness +10, six rounds each). It needs the cores
only between verdicts' kernels, and has a whole verdict's time to read one frame."""
from __future__ import annotations

import logging
import os
import sys
import threading
import time

LOG = logging.getLogger(__name__)

STALE_SECONDS = 0.5
READER_NICENESS = 10   # added to the process's: the reader yields the cores to the device's


def lower_this_threads_priority(by: int = READER_NICENESS) -> None:
    """This thread gives way to the process's others when cores are short (Linux, where a
    thread's id names it to setpriority; elsewhere, and where refused, nothing changes)."""
    if not sys.platform.startswith("linux") or by <= 0:
        return
    try:
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + by))
    except OSError as exc:
        LOG.debug("the frame reader keeps its priority: %s", exc)


class FrameAhead:
    def __init__(self, source):
        self.source = source
        self._changed = threading.Condition()
        self._ready = None        # (frame, truth, exception, read at) not yet taken
        self._wanted = True       # the reader should read the next frame
        self._stopped = False
        self._ended = False       # the reader's thread has returned, whatever the reason
        self._death = ""          # why it returned without being stopped
        self._thread = threading.Thread(target=self._run, name="patchloop-frames", daemon=True)
        self._thread.start()

    def take(self, timeout: float | None = None):
        """(frame, truth) of the frame read ahead, waiting for it (None on timeout or once
        stopped), and the reading of the next one begins. A frame is None while the source
        has none (a camera that went away); a read that raised raises here, and so does a
        reader that has died."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not self._changed.wait_for(
                        lambda: self._ready is not None or self._stopped or self._ended, left):
                    return None
                if self._stopped:
                    return None
                if self._ready is None:
                    raise RuntimeError(f"the thread reading frames has stopped{self._death}")
                (frame, truth, error, read_at), self._ready = self._ready, None
                self._wanted = True
                self._changed.notify_all()
                if time.monotonic() - read_at <= STALE_SECONDS or error is not None:
                    break
        if error is not None:
            raise error
        return frame, truth

    @property
    def has_frame(self) -> bool:
        """Whether a frame read ahead waits to be taken: `take` will not wait for the source."""
        with self._changed:
            return self._ready is not None

    def stop(self) -> bool:
        """Stops reading; True when the reader has ended (a read that blocks, a camera
        unplugged, may keep it for longer than the wait here)."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        return not self._thread.is_alive()

    @property
    def reader_thread_id(self) -> int | None:
        """The reading thread's id in the operating system (None before it starts)."""
        return self._thread.native_id

    def _run(self) -> None:
        lower_this_threads_priority()
        try:
            while True:
                with self._changed:
                    self._changed.wait_for(lambda: self._wanted or self._stopped)
                    if self._stopped:
                        return
                    self._wanted = False
                try:
                    frame = self.source.read()
                    truth = getattr(self.source, "last_truth", lambda: None)()
                    read = (frame, truth, None, time.monotonic())
                except Exception as exc:  # handed to the verdict thread, which says it
                    read = (None, None, exc, time.monotonic())
                with self._changed:
                    self._ready = read
                    self._changed.notify_all()
        except BaseException as exc:   # not an error of one read: said, not swallowed
            LOG.exception("reading frames stopped")
            self._death = f": {type(exc).__name__} {exc}".rstrip()
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()
