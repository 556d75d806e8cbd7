"""What the panel says about the trainer, worded in one place: None while a reason does not
hold (the notice is withdrawn)."""
from __future__ import annotations

import numpy as np


def rate_notice(learning_rate: float, backoff) -> str | None:
    """The learning rate the trainer cut by itself after diverged steps, while it is cut."""
    if not backoff.active:
        return None
    return (f"learning rate cut to {learning_rate * backoff.factor:.2g} (your setting: "
            f"{learning_rate:.2g}) because {backoff.reason}; it climbs back as steps succeed")


def waiting_notice(counts, categories, new_only: bool) -> str | None:
    """Training waits for a second category: said while only one has labels."""
    present = [] if counts is None else np.flatnonzero(counts)
    if len(present) != 1:
        return None
    name = categories[int(present[0])].name
    since = " since 'new labels only' was switched on" if new_only else ""
    return (f"training waits for a second category: only '{name}' has labels{since}; "
            "label another one")
