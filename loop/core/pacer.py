"""Taking turns with the verdicts on one device."""
from __future__ import annotations

import threading
import time


class Pacer:
    """Keeps verdicts flowing while training: when verdicts are coming (the live window),
    the trainer takes one step per `verdicts_per_step` verdicts, so a step never holds the
    device for two frames in a row; when none are coming it trains flat out."""

    FLOWING = 0.25  # seconds: verdicts closer together than this count as a live stream

    def __init__(self, verdicts_per_step: int = 2):
        self.verdicts_per_step = verdicts_per_step
        self._done = 0
        self._last = 0.0
        self._at_last_step = 0
        self._changed = threading.Condition()

    def verdict_done(self) -> None:
        with self._changed:
            self._done += 1
            self._last = time.monotonic()
            self._changed.notify_all()

    def wait_turn(self) -> None:
        with self._changed:
            while (time.monotonic() - self._last < self.FLOWING
                   and self._done - self._at_last_step < self.verdicts_per_step):
                self._changed.wait(self.FLOWING)
            self._at_last_step = self._done
