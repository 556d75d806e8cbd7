"""The click the user is waiting on: the cell under it should show its category.

Why the trainer follows it: after the first step, a newly labeled frame is one of dozens of
labeled frames and their tilt-shift copies, drawn into a batch at random (about one step in
four once 30 clicks are made). Most clicks turn within the first three steps, but about one
in ten needed 11-25 steps, most of them steps that did not hold the clicked frame, and on a
live device those steps come at the verdicts' pace: those clicks took 0.5-1.1 s to show
(`bench loop`, demo scene). So the clicked frame goes first in the next LEAD_STEPS batches
and until the cell shows the category the steps go before the verdicts; the step's own
forward pass over that frame, wherever it is in the batch, says when the cell has turned, at
no extra cost (a patch that trains on windows: the frame's window is centred on the cell
while it is awaited)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loop.core.labels import LabelDisc, LabeledFrame, cell_under

# Steps a click is followed for at most: a cell that has not turned by then (labels that
# contradict each other, a cell the patch cannot tell apart) goes back to the usual pace.
FOLLOW_STEPS = 40
# Batches the clicked frame leads. Measured on the demo (hypercolumn, alternating clicks,
# step by step, demo scenes 0-23; scenes 0-5 for the steps): leading until the cell turned
# (up to 40) took the steps a click needs to show from a p95 of 14 to 7, but the largest
# fall of the accuracy curve after 90% from a median of 0.045 to 0.062 (worse on 18 scenes
# of 24): the newest labels pulled too hard. Three batches: p95 8 steps, median fall 0.049.
LEAD_STEPS = 3


@dataclass
class AwaitedClick:
    frame_id: int
    row: int
    col: int
    category: int
    steps_left: int = FOLLOW_STEPS
    leads_left: int = LEAD_STEPS

    @classmethod
    def of(cls, frame: LabeledFrame, label) -> "AwaitedClick | None":
        """The cell under a click's centre, or None for labels that point at no one cell
        (a whole-frame label, an erase)."""
        if not isinstance(label, LabelDisc) or label.category < 0 or frame.label_map is None:
            return None
        row, col = cell_under(label.x, label.y, *frame.label_map.shape, *frame.image.shape[:2])
        if int(frame.label_map[row, col]) != label.category:
            return None
        return cls(frame.frame_id, row, col, label.category)

    def still_labeled(self, frame: LabeledFrame) -> bool:
        """Whether the frame still teaches the category there (an undo or a later label
        over it ends the wait)."""
        return (not frame.excluded and frame.label_map is not None
                and int(frame.label_map[self.row, self.col]) == self.category)

    def shown(self, logits: np.ndarray, at: tuple[int, int] = (0, 0)) -> bool:
        """Whether the frame's logits or probabilities (K, h, w) put the category first at
        the cell (a step's own pass, or the verdicts' weights on the stored input); `at`:
        (top, left) of the window of the frame they cover (a pixels patch trains on
        windows)."""
        return int(np.argmax(logits[:, self.row - at[0], self.col - at[1]])) == self.category
