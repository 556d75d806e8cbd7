"""The step-driven runner: a simulated labeling policy (loop/demo/policies.py) drives the
headless core on the demo video, one frame and one label at a time, with the trainer's
steps taken here on this thread between labels. No threads and no clock decide anything,
so a run is the same every time for the same seed.

A turn: the user looks at a frame (a fresh verdict, or the frozen frame's verdict again),
makes the policy's labels on it, each followed by its training steps (and an undo when the
policy takes a mistake back), then the video plays on to the frame the policy looks at
next. Held-out balanced accuracy is measured every EVALUATE_EVERY clicks and at the end.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from loop.core.engine import LoopCore
from loop.demo.curves import clicks_to
from loop.demo.held_out import HeldOutSet
from loop.demo.policies import IDLE_STEPS, Look, Move, Policy
from loop.demo.scene import DemoFrame, DemoScene

EVALUATE_EVERY = 2      # clicks
LOOKS_PER_CLICK = 4     # a run gives up after this many looks per wanted click
STUCK_ACCURACY = 0.75   # the reference user passes 0.9 within 40 clicks; this is far below
MIN_GAIN = 0.02         # held-out accuracy above the start's that counts as learning
MIN_PAUSE = 3           # steps: a pause this long shows whether the loss falls


@dataclass
class Labeled:
    """One label the runner made."""

    click: int                     # its number in the run, from 1
    frame: int                     # the demo frame's index
    move: Move
    counts: np.ndarray             # core.label_counts() right after it
    counts_after_undo: np.ndarray | None = None  # after the undo, when the move took it back
    losses: list = field(default_factory=list)  # of the steps that trained after it
    failed_steps: int = 0          # steps after it that the trainer threw away (diverged)


@dataclass
class PolicyRun:
    policy: str
    clicks: int = 0
    accuracy_by_clicks: list = field(default_factory=list)  # (clicks, balanced accuracy)
    pixel_accuracy_by_clicks: list = field(default_factory=list)  # the same, per pixel
    labels: list = field(default_factory=list)     # Labeled, in order
    steps: int = 0
    restores: int = 0        # divergence restores of the last good weights
    rate_changes: int = 0    # learning-rate changes the trainer made by itself
    recoveries: int = 0      # the trainer's recoveries from no progress
    learning_rate: float = 0.0  # what the last step used (the user's rate x the backoff)
    false_regions_per_frame: float = 0.0  # at the end, on the held-out frames
    pixel_recall: dict = field(default_factory=dict)  # at the end: category name -> recall
    seconds: float = 0.0
    stuck: list = field(default_factory=list)      # why the run counts as stuck; [] if not

    @property
    def final_accuracy(self) -> float:
        return self.accuracy_by_clicks[-1][1]

    def clicks_to(self, goal: float) -> int | None:
        return clicks_to(self.accuracy_by_clicks, goal)


def run_policy(core: LoopCore, scene: DemoScene, policy: Policy, clicks: int,
               step_scale: float = 1.0, held_out: HeldOutSet | None = None,
               stuck_below: float = STUCK_ACCURACY, scored_when_shown: bool = False) -> PolicyRun:
    """`clicks` labels by `policy` from the scene's first frame on (a turn is finished, so
    the undo policy may end one click over). `step_scale` scales every pause (at least one
    step stays): under 1 for quick runs, over 1 for a faster device; the video still plays at
    the policy's own pace. `scored_when_shown`: each scored click is scored as soon as the
    trainer has answered it (its cell shown, caught up with), before the rest of its pause,
    where the real-time run scores; otherwise at the end of the pause. A run that ends below
    `stuck_below` counts as stuck."""
    started = time.perf_counter()
    held_out = held_out or HeldOutSet(core, scene)

    run = PolicyRun(policy.name)

    def evaluate() -> None:
        cell, pixel = held_out.scores(core)
        run.accuracy_by_clicks.append((run.clicks, cell))
        run.pixel_accuracy_by_clicks.append((run.clicks, pixel))

    evaluate()

    def scaled(steps: int) -> int:
        return max(1, round(steps * step_scale))

    index, frame_id, frozen = 0, None, False
    for _ in range(LOOKS_PER_CLICK * clicks):
        if run.clicks >= clicks:
            break
        frame_id, look = _look(core, scene.frame(index), frame_id if frozen else None)
        moves = policy.turn(look)
        if not moves:
            core.train_turns(scaled(IDLE_STEPS))
        for move in moves:
            core.label(frame_id, move.label)
            run.clicks += 1
            made = Labeled(run.clicks, index, move, core.label_counts())
            due = run.clicks % EVALUATE_EVERY == 0
            steps = scaled(move.steps)
            if scored_when_shown and due and not move.take_back:
                taken = _answer(core, steps, made)
                evaluate()
                due = False
                # (After the last click the run ends once it has shown, as in real time.)
                steps = 0 if run.clicks >= clicks else steps - taken
            losses, failed = core.train_turns(steps)
            made.losses += losses
            made.failed_steps += failed
            if move.take_back:
                core.undo()
                made.counts_after_undo = core.label_counts()
            run.labels.append(made)
            if due:
                evaluate()
        next_index = policy.next_frame(scene, index)
        frozen, index = next_index == index, next_index
    if run.accuracy_by_clicks[-1][0] != run.clicks:
        evaluate()
    run.false_regions_per_frame, run.pixel_recall = held_out.final_figures(core)
    _read_status(core, run)
    run.stuck = stuck_reasons(run, bool(core.label_counts().sum()), stuck_below)
    run.seconds = time.perf_counter() - started
    return run


def _answer(core: LoopCore, limit: int, made: Labeled) -> int:
    """The steps that answer the newest label, one at a time until the trainer no longer
    answers a click, at most `limit` of them; how many ran. Their losses go to `made`."""
    taken = 0
    while taken < limit and core.trainer.answers_a_click:
        losses, failed = core.train_turns(1)
        made.losses += losses
        made.failed_steps += failed
        taken += 1
    return taken


def _look(core: LoopCore, frame: DemoFrame, frozen_id: int | None) -> tuple[int, Look]:
    """(the frame's id in the core, what the user sees): a fresh verdict, or on a frozen
    frame the current patch's verdict on it again."""
    if frozen_id is None:
        verdict = core.observe(frame.image)
        frame_id, probabilities = verdict.frame_id, verdict.probabilities
    else:
        frame_id = frozen_id
        probabilities = core.verdict_on_features(core.features_of(frame_id))
    labeled = tuple(int(c) for c in np.flatnonzero(core.label_counts()))
    return frame_id, Look(frame.truth, probabilities.argmax(axis=0), labeled)


def _read_status(core: LoopCore, run: PolicyRun) -> None:
    status = core.trainer.status
    run.steps = status.steps
    run.restores = status.restores
    run.rate_changes = status.rate_changes
    run.recoveries = status.recoveries
    run.learning_rate = status.learning_rate


def stuck_reasons(run: PolicyRun, labeled: bool, floor: float = STUCK_ACCURACY) -> list[str]:
    """Why a run with labels counts as stuck: it ends far below what the reference user
    reaches, its accuracy never rose over the untrained patch's, or its training loss did
    not fall. [] when none holds (or there are no labels to learn from)."""
    if not labeled:
        return []
    reasons = []
    start, final = run.accuracy_by_clicks[0][1], run.final_accuracy
    if final < floor:
        reasons.append(f"balanced accuracy {final:.3f} after {run.clicks} clicks is below "
                       f"{floor}")
    if max(a for _, a in run.accuracy_by_clicks[1:]) < start + MIN_GAIN:
        reasons.append(f"balanced accuracy never rose above the start's {start:.3f}")
    later = run.labels[len(run.labels) // 2:]
    kept, failed = sum(len(m.losses) for m in later), sum(m.failed_steps for m in later)
    if failed > kept:
        reasons.append(f"{failed} of {failed + kept} training steps from click "
                       f"{later[0].click} on were thrown away (diverged)")
    pauses = [m.losses for m in later if len(m.losses) >= MIN_PAUSE]
    falling = sum(p[-1] < p[0] for p in pauses)
    if pauses and falling < len(pauses) / 2:
        reasons.append(f"the training loss fell in only {falling} of {len(pauses)} pauses "
                       f"from click {later[0].click} on")
    return reasons
