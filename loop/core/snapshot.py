"""Full snapshots of a patch: weights, optimizer state, settings, categories and label
counts, tagged with a time-based hash."""
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
    weights: np.ndarray       # float32, every tensor back to back (w0, b0, w1, ...): the
    velocity: np.ndarray      # same on every device; velocity is SGD's momentum, alike
    settings: TrainerSettings
    label_counts: np.ndarray  # labeled cells per category when taken
    steps: int                # training steps taken when taken


def take_snapshot(core) -> Snapshot:
    state = core.model.state(core.queue)
    layout = core.model.layout
    weights, velocity = layout.dense(state["weights"]), layout.dense(state["velocity"])
    now = time.time()
    return Snapshot(time_tag(weights.tobytes(), now), now, core.spec, weights, velocity,
                    core.trainer.settings, core.label_counts(), core.trainer.status.steps)


def restore_snapshot(core, snapshot: Snapshot) -> None:
    """Weights, momentum and settings back as they were. The categories and topology must
    be the core's: a snapshot of another patch is refused."""
    mine, theirs = core.spec, snapshot.spec
    if (mine.categories, mine.topology, mine.tap, mine.fine_tune) != \
            (theirs.categories, theirs.topology, theirs.tap, theirs.fine_tune):
        raise ValueError(f"snapshot {snapshot.tag} is of patch {theirs.name!r} "
                         f"({theirs.topology}, {len(theirs.categories)} categories), "
                         f"not of this one")
    load_dense(core, snapshot.weights, snapshot.velocity)
    core.trainer.apply(snapshot.settings)


def load_dense(core, weights: np.ndarray, velocity: np.ndarray | None = None) -> None:
    """Weights (and momentum) in the dense, device-independent order into the core."""
    layout = core.model.layout
    try:
        flat = layout.from_dense(weights)
        moments = layout.from_dense(velocity) if velocity is not None else np.zeros_like(flat)
    except ValueError as exc:
        raise ValueError(f"the weights do not fit this patch: {exc}") from exc
    core.model.load_state({"weights": flat, "velocity": moments}, core.queue)
