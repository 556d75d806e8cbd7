"""The trainer's own, temporary cut of the learning rate after a step that diverged.

The user's setting is never touched: the trainer trains at `setting * factor`, halves the
factor after each restore (so the attempt after a restore is never the identical step) and
doubles it back after every run of successful steps until it is 1 again. At the floor a
finite step is kept even if it made its batch worse (`must_keep`): repeating one undone
step for ever is the lock-up this exists to prevent."""
from __future__ import annotations

MIN_FACTOR = 1.0 / 1024  # ten restores in a row (a rate of 1.0 set by hand needed seven)
CLIMB_AFTER = 10        # successful steps in a row before the factor doubles back


class RateBackoff:
    def __init__(self):
        self.factor = 1.0
        self.reason = ""
        self._good_steps = 0

    def diverged(self, reason: str) -> bool:
        """A step was undone; returns True when the factor changed."""
        self.reason = reason
        self._good_steps = 0
        old = self.factor
        self.factor = max(MIN_FACTOR, self.factor / 2)
        return self.factor != old

    def succeeded(self) -> bool:
        """A step was kept; returns True when the factor changed (climbed back)."""
        if self.factor >= 1.0:
            return False
        self._good_steps += 1
        if self._good_steps < CLIMB_AFTER:
            return False
        self._good_steps = 0
        self.factor = min(1.0, self.factor * 2)
        if self.factor >= 1.0:
            self.reason = ""
        return True

    def reset(self) -> bool:
        """Back to the user's own rate at once; True when that is a change."""
        changed = self.factor != 1.0
        self.factor, self.reason, self._good_steps = 1.0, "", 0
        return changed

    @property
    def must_keep(self) -> bool:
        """At the floor: the next finite step is kept whatever it does to its batch's loss."""
        return self.factor <= MIN_FACTOR

    @property
    def active(self) -> bool:
        return self.factor < 1.0
