"""Full snapshots of a patch: weights, optimizer state, settings, categories and label
counts, tagged with a time-based hash (the seed's "tagged with a time-based hash")."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from loop.core.patch import PatchSpec
from loop.core.settings import TrainerSettings


def time_tag(payload: bytes, when: float | None = None) -> str:
    """`YYYYmmdd-HHMMSS-<8 hex>`: sorts by time, and differs for different contents."""
    when = time.time() if when is None else when
    digest = hashlib.sha256(repr(when).encode() + payload).hexdigest()[:8]
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(when)) + "-" + digest


@dataclass(frozen=True)
class Snapshot:
    tag: str
    created: float
    spec: PatchSpec
    weights: np.ndarray       # flat float32, the patch's parameter layout
    velocity: np.ndarray      # flat float32, SGD momentum state
    settings: TrainerSettings
    label_counts: np.ndarray  # labeled cells per category when taken
    steps: int                # training steps taken when taken


def take_snapshot(core) -> Snapshot:
    state = core.model.state(core.queue)
    now = time.time()
    return Snapshot(time_tag(state["weights"].tobytes(), now), now, core.spec, state["weights"],
                    state["velocity"], core.trainer.settings, core.label_counts(),
                    core.trainer.status.steps)


def restore_snapshot(core, snapshot: Snapshot) -> None:
    """Weights, momentum and settings back as they were. The categories and topology must
    be the core's: a snapshot of another patch is refused."""
    mine, theirs = core.spec, snapshot.spec
    if (mine.categories, mine.topology, mine.tap) != (theirs.categories, theirs.topology, theirs.tap):
        raise ValueError(f"snapshot {snapshot.tag} is of patch {theirs.name!r} "
                         f"({theirs.topology}, {len(theirs.categories)} categories), "
                         f"not of this one")
    core.model.load_state({"weights": snapshot.weights, "velocity": snapshot.velocity}, core.queue)
    core.trainer.apply(snapshot.settings)
