"""When a training step must be undone: a weight, a gradient or the loss stopped being
finite, or the step made its own batch's loss much worse."""
from __future__ import annotations

import numpy as np

from loop.core.train_step import StepResult

# "Much worse": the batch's loss after the step above this factor of the loss before it.
DIVERGED_RISE, DIVERGED_MARGIN = 1.5, 0.1


def divergence(result: StepResult, loss_after: float | None) -> str | None:
    """Why a step must be undone, or None to keep it."""
    if not result.finite or not np.isfinite(result.loss):
        return "a weight or gradient stopped being finite"
    if loss_after is not None and not np.isfinite(loss_after):
        return "the step made the loss non-finite"
    if loss_after is not None and loss_after > DIVERGED_RISE * result.loss + DIVERGED_MARGIN:
        return f"a step raised its batch's loss from {result.loss:.3g} to {loss_after:.3g}"
    return None
