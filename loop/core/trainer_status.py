"""What the trainer tells the faces: steps, the newest loss, steps per second as of now, the
effective learning rate, counts of its automatic actions, and the notices that apply now
(each keyed by its reason, removed when the reason goes away)."""
from __future__ import annotations

import logging
import threading
import time
from collections import deque

LOG = logging.getLogger(__name__)
LOSS_LOG_LENGTH = 2000
RATE_WINDOW = 2.0  # seconds of steps that make the steps/s figure


class TrainerStatus:
    def __init__(self):
        self.steps = 0
        self.last_loss = float("nan")
        self.losses: list = []          # (step, loss), the newest LOSS_LOG_LENGTH
        self.learning_rate = float("nan")  # what the last step used (setting x backoff)
        self.grad_norm = float("nan")   # the last step's gradient norm before clipping
        self.restores = 0               # steps undone because they diverged
        self.rate_changes = 0           # automatic learning-rate changes, down and back up
        self.recoveries = 0             # times the trainer got itself out of no progress
        self.training_now = False       # the last attempt trained (False: idle or waiting)
        self._notices: dict[str, str] = {}
        self._step_times: deque = deque()
        self._lock = threading.Lock()

    # -- written by the trainer -----------------------------------------------------------
    def record(self, loss: float) -> None:
        with self._lock:
            self.steps += 1
            self.last_loss = loss
            self.losses.append((self.steps, loss))
            del self.losses[:-LOSS_LOG_LENGTH]
            self._step_times.append(time.monotonic())

    def notice(self, reason: str, text: str | None) -> None:
        """Show `text` for `reason`, or withdraw the reason's notice with None."""
        with self._lock:
            if text is None:
                self._notices.pop(reason, None)
            else:
                if self._notices.get(reason) != text:
                    LOG.info(text)   # the trainer is a background thread: its log keeps them
                self._notices[reason] = text

    # -- read by anyone -------------------------------------------------------------------
    @property
    def notices(self) -> list[str]:
        with self._lock:
            return list(self._notices.values())

    def has_notice(self, reason: str) -> bool:
        with self._lock:
            return reason in self._notices

    @property
    def steps_per_second(self) -> float:
        """Steps finished in the last RATE_WINDOW seconds, per second: 0 when nothing trains."""
        now = time.monotonic()
        with self._lock:
            while self._step_times and now - self._step_times[0] > RATE_WINDOW:
                self._step_times.popleft()
            count = len(self._step_times)
        return count / RATE_WINDOW if count > 1 else 0.0
