"""Notices when training on the labels makes no progress: the smoothed loss has not improved
for a long stretch of steps while it is still near what a patch guessing at random scores.
A patch that fits its labels settles far below that level, so a long plateau there means
the trainer is stuck (momentum in a bad direction, a collapsed patch), not finished."""
from __future__ import annotations

import math

PATIENCE = 300       # steps without improvement before the trainer acts
SMOOTHING = 0.05     # weight of the newest loss in the moving average
IMPROVEMENT = 0.02   # a relative drop of the average this large counts as progress
CHANCE_SHARE = 0.7   # "still near chance": the average is above this share of ln(categories)


class ProgressWatch:
    def __init__(self, categories: int, patience: int = PATIENCE):
        self.stuck_loss = CHANCE_SHARE * math.log(max(2, categories))
        self.patience = patience
        self.average: float | None = None
        self.best: float | None = None
        self.since_best = 0

    def observe(self, loss: float) -> bool:
        """Feed one kept step's loss; True when the trainer should recover now."""
        self.average = loss if self.average is None else \
            (1 - SMOOTHING) * self.average + SMOOTHING * loss
        if self.best is None or self.average < self.best * (1 - IMPROVEMENT):
            self.best = self.average
            self.since_best = 0
            return False
        self.since_best += 1
        if self.since_best >= self.patience and self.average > self.stuck_loss:
            self.since_best = 0
            self.best = self.average
            return True
        return False

    @property
    def improving(self) -> bool:
        """The average improved within the last few dozen steps."""
        return self.since_best < 50
