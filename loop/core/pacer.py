"""Taking turns with the verdicts on one device."""
from __future__ import annotations

import math
import statistics
import threading
import time
from collections import deque
from contextlib import contextmanager, nullcontext


class Pacer:
    """Keeps verdicts flowing while training: when verdicts are coming (the live window),
    the trainer takes one step per `verdicts_per_step` verdicts, so a step never holds the
    device for two frames in a row; when none are coming it trains flat out.

    A long step (fine-tuning: about 0.12 s on two CPU cores) changes both numbers. No
    verdict can finish while a step holds the device, so the stream counts as flowing for
    FLOWING seconds plus the last step's length (with FLOWING alone, every step longer
    than it made the stream look stopped, and the trainer ran back to back: 2 verdicts/s).
    And a step then takes as many verdicts as keep MIN_VERDICT_RATE while training.

    A source that makes the verdicts wait for its frames (a camera) leaves the device idle
    between them, and a step also goes into such a gap when it fits in what is usually
    left of it. Counting verdicts alone, a 30 frames/s camera held training to 15 steps/s
    and a 15 frames/s one to 7.5, with the two cores idle much of the time (a verdict of a
    240x320 frame takes 17-20 ms there). A step that fits delays no frame's verdict past
    the next frame, so the verdicts keep the camera's rate."""

    FLOWING = 0.25  # seconds: verdicts closer together than this count as a live stream
    # Verdicts per second the window keeps while training, however long a step is: below
    # about 15 the picture stops looking live.
    MIN_VERDICT_RATE = 15.0
    # Urgent steps (the ones answering a click) go before the verdicts waiting for the
    # device, when steps are this short: the picture then stops for a few hundredths of a
    # second, not for a long step. A verdict never waits longer than URGENT_WAIT for them.
    URGENT_LIMIT, URGENT_WAIT = 0.05, 0.25
    # Waits for the source's frames remembered (none: 0 s) to judge the usual gap by: a
    # camera's gap changes with the verdict's length, so only the newest few count.
    GAPS_KEPT = 9

    def __init__(self, verdicts_per_step: int = 2):
        self.verdicts_per_step = verdicts_per_step
        self._done = 0
        self._last = 0.0
        self._at_last_step = 0
        self._step_seconds = 0.0
        self._urgent = 0
        # Whether the trainer's next step is urgent too: a verdict waits through the gap
        # between two urgent steps as well. (Waiting only while one ran, a verdict took the
        # device in every gap, so urgent steps alternated with verdicts: on a slow machine
        # 60-80 ms a step instead of 30-40, and the slowest clicks' answers 0.6-1 s.)
        self._urgent_ahead = False
        self._released = False
        self._frame_wait_began: float | None = None   # when the verdicts began to wait
        self._gaps: deque = deque(maxlen=self.GAPS_KEPT)   # seconds they waited, per frame
        self._changed = threading.Condition()

    def verdict_done(self) -> None:
        with self._changed:
            self._done += 1
            self._last = time.monotonic()
            self._changed.notify_all()

    @property
    def paced(self) -> bool:
        """Whether steps take turns with verdicts (False: a step-by-step simulation)."""
        return self.verdicts_per_step > 0

    def step_took(self, seconds: float) -> None:
        """How long the trainer's last step held the device."""
        with self._changed:
            self._step_seconds = max(0.0, seconds)

    def verdicts_wanted(self) -> int:
        """Verdicts a step waits for while the stream flows."""
        if not self.paced:
            return 0
        return max(self.verdicts_per_step,
                   math.ceil(self._step_seconds * self.MIN_VERDICT_RATE - 1e-9))

    @property
    def steps_are_short(self) -> bool:
        """Whether steps take at most URGENT_LIMIT: short enough to go before the verdicts
        for a while without stopping the picture."""
        return self._step_seconds <= self.URGENT_LIMIT

    def urgent_step(self):
        """A context for a step the user waits for (the first ones after a click): verdicts
        let it have the device first, when steps are short."""
        if not self.paced or not self.steps_are_short:
            return nullcontext()
        return self._urgent_turn()

    @contextmanager
    def _urgent_turn(self):
        with self._changed:
            self._urgent += 1
        try:
            yield
        finally:
            with self._changed:
                self._urgent -= 1
                self._changed.notify_all()

    def urgent_ahead(self, ahead: bool) -> None:
        """Whether the trainer's next step answers a click (it says so after each step, and
        when a label comes)."""
        with self._changed:
            self._urgent_ahead = ahead
            self._changed.notify_all()

    @property
    def holds_verdicts(self) -> bool:
        """Whether a verdict now waits for urgent steps: one runs, or the next one is urgent
        (live, with short steps)."""
        return bool(self._urgent) or (self._urgent_ahead and self.paced and self.steps_are_short)

    def let_urgent_steps_go(self) -> None:
        """Before a verdict takes the device: urgent steps running or next go first."""
        with self._changed:
            deadline = time.monotonic() + self.URGENT_WAIT
            while self.holds_verdicts and time.monotonic() < deadline:
                self._changed.wait(max(0.0, deadline - time.monotonic()))

    def frame_awaited(self) -> None:
        """The verdicts wait for the source's next frame (a camera between two frames): the
        device is free until it comes."""
        with self._changed:
            if self._frame_wait_began is None:
                self._frame_wait_began = time.monotonic()
                self._changed.notify_all()

    def frame_arrived(self) -> None:
        """The verdicts have their next frame (after a wait, or at once: a gap of 0 s)."""
        with self._changed:
            began, self._frame_wait_began = self._frame_wait_began, None
            self._gaps.append(0.0 if began is None else time.monotonic() - began)

    def fits_the_gap(self, seconds: float) -> bool:
        """Whether the verdicts wait for a frame and work of `seconds` on the device ends
        before the frame usually comes (the median of the newest waits)."""
        with self._changed:
            began = self._frame_wait_began
            if began is None or not self._gaps:
                return False
            return seconds <= statistics.median(self._gaps) - (time.monotonic() - began)

    def release(self) -> None:
        """A step waiting for its turn goes now (the user just labeled: no waiting)."""
        with self._changed:
            self._released = True
            self._changed.notify_all()

    def wait_turn(self) -> bool:
        """Waits for the trainer's next step to have its turn: its share of the verdicts,
        or a gap the source leaves that it fits in. True for a turn in a gap: it is taken
        beside the share, whose count of verdicts goes on (so the share's turns still come
        when the gaps are too short for what is due then: a copy, see the trainer)."""
        with self._changed:
            wanted = self.verdicts_wanted()
            flowing = self.FLOWING + self._step_seconds
            while (not self._released and time.monotonic() - self._last < flowing
                   and self._done - self._at_last_step < wanted):
                if self.fits_the_gap(self._step_seconds):
                    return True
                self._changed.wait(flowing)
            self._released = False
            self._at_last_step = self._done
            return False
