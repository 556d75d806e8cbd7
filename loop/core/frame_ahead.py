"""The next frame read while the current one is judged.

A source's `read()` takes time of its own: the demo scene renders a 240x320 frame in about
6 ms (10 ms on two loaded cores), a video decodes one, a camera waits for its next frame.
Read in turn with the verdicts, that time was added to every verdict (`bench loop`: 6 s of
a 28 s run in the verdict thread, reading). Here a thread of its own reads frame k + 1
while the device judges frame k, and hands each frame over with the truth the source knew
for it (the demo's), so the two can never be paired wrongly.

One frame is read ahead, never more: a source that does not wait (the demo, a video) is
read once per verdict, as before, not as fast as a thread can spin."""
from __future__ import annotations

import threading


class FrameAhead:
    def __init__(self, source):
        self.source = source
        self._changed = threading.Condition()
        self._ready = None        # (frame, truth, exception) read ahead, not yet taken
        self._wanted = True       # the reader should read the next frame
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="patchloop-frames", daemon=True)
        self._thread.start()

    def take(self, timeout: float | None = None):
        """(frame, truth) of the frame read ahead, waiting for it (None on timeout or once
        stopped), and the reading of the next one begins. A frame is None while the source
        has none (a camera that went away); a read that raised raises here."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._ready is not None or self._stopped,
                                          timeout):
                return None
            if self._ready is None or self._stopped:
                return None
            (frame, truth, error), self._ready = self._ready, None
            self._wanted = True
            self._changed.notify_all()
        if error is not None:
            raise error
        return frame, truth

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._wanted or self._stopped)
                if self._stopped:
                    return
                self._wanted = False
            try:
                frame = self.source.read()
                truth = getattr(self.source, "last_truth", lambda: None)()
                read = (frame, truth, None)
            except Exception as exc:  # handed to the verdict thread, which says it
                read = (None, None, exc)
            with self._changed:
                self._ready = read
                self._changed.notify_all()
