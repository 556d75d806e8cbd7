"""Simulated labeling policies: the ways real people click, for the step-driven runner
(loop/demo/policy_run.py). Each policy looks at one frame at a time (its truth and the
patch's verdict), says which labels it makes there and how many training steps pass after
each, and which frame it looks at next.

Time is counted in trainer steps: in the live window the trainer takes about 10 steps a
second while verdicts flow, so "5 s" is 50 steps, and the demo's 30 frames a second make
3 frames a step. Every policy is deterministic given its seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loop.core.labels import LabelDisc, WholeFrameLabel
from loop.demo.annotator import Click, SimulatedAnnotator, click_inside, regions
from loop.demo.metrics import cell_truth, upsample_cells
from loop.demo.scene import DemoScene

FRAMES_PER_STEP = 3   # 30 demo frames a second over ~10 trainer steps a second
PAUSE = 10            # steps between clicks where a policy does not say otherwise (~1 s)
IDLE_STEPS = 10       # steps the user waits when there is nothing to click


@dataclass(frozen=True)
class Look:
    """What the user sees on one frame: the truth and the patch's best category per cell,
    and which categories have labels so far (the window's panel says so)."""

    truth: np.ndarray   # int (H, W): index into the scene's categories
    cells: np.ndarray   # int (h, w): the verdict's cell categories
    labeled: tuple = ()  # categories with labels

    @property
    def predicted(self) -> np.ndarray:
        """int (H, W): the cell categories spread over the frame's pixels."""
        return upsample_cells(self.cells, *self.truth.shape)

    @property
    def cells_right(self) -> bool:
        """Every cell shows its true category (what a user checks on a frozen frame)."""
        return bool((cell_truth(self.truth, *self.cells.shape) == self.cells).all())


@dataclass(frozen=True)
class Move:
    """One label the user makes, then the training steps that pass before the next."""

    label: LabelDisc | WholeFrameLabel
    steps: int
    truthful: bool = True     # False: the category is not the truth under it
    take_back: bool = False   # the user notices the mistake and undoes it after the steps


def disc(click: Click, category: int | None = None) -> LabelDisc:
    return LabelDisc(click.x, click.y, click.radius,
                     click.category if category is None else category)


def label_click(core, frame_id: int, click: Click) -> bool:
    """The click labeled on its frame; False when the frame has left the core's window of
    held frames (the simulated user looked at a verdict the core no longer holds)."""
    try:
        core.label(frame_id, disc(click))
    except KeyError:
        return False
    return True


class Policy:
    """What every simulated user shares: a turn per frame, the video's pace, the annotator's
    region logic. A policy says its `moves` on a frame, and may say where it looks next."""

    name = ""
    pause = PAUSE

    def __init__(self, seed: int = 0, categories: int = 3, radius: int = 12):
        self.rng = np.random.default_rng(seed)
        self.categories = categories
        self.radius = radius
        self.annotator = SimulatedAnnotator(radius)
        self.clicks = 0            # labels made so far, mistakes included
        self.last_steps = PAUSE    # steps after the newest move: how far the video went on

    def turn(self, look: Look) -> list[Move]:
        """The labels made on this frame, in order (none when there is nothing to click)."""
        moves = self.moves(look)
        self.clicks += len(moves)
        self.last_steps = moves[-1].steps if moves else IDLE_STEPS
        return moves

    def next_frame(self, scene: DemoScene, index: int) -> int:
        """The frame the user looks at next: the video played on while the trainer trained."""
        return index + max(1, FRAMES_PER_STEP * self.last_steps)

    def moves(self, look: Look) -> list[Move]:
        raise NotImplementedError

    # -- helpers for the policies below ---------------------------------------------------
    def reference_click(self, look: Look) -> Click | None:
        """The reference user's click: the largest wrong region, background and objects in
        turn, and a category with no labels while the trainer waits for a second one."""
        return self.annotator.click(look.truth, look.predicted, look.labeled)

    def alternate(self, look: Look) -> list[Move]:
        click = self.reference_click(look)
        return [] if click is None else [Move(disc(click), self.pause)]

    def click_on(self, look: Look, categories) -> Click | None:
        """The largest wrong region of the given categories, else their largest region at
        all (a user still clicks it), else None (none of them in view)."""
        wanted = np.isin(look.truth, list(categories))
        for mask in (wanted & (look.truth != look.predicted), wanted):
            found = regions(mask, look.truth)
            if found:
                return click_inside(found[0], self.radius)
        return None

    def wrong_category(self, truth: int) -> int:
        return int((truth + 1 + self.rng.integers(self.categories - 1)) % self.categories)


class Alternating(Policy):
    """The careful user of loop/demo/annotator.py, the reference: the largest wrong region,
    background and objects in turn, a second (10 steps) between clicks."""

    name = "alternating"

    def moves(self, look):
        return self.alternate(look)


class Streaks(Policy):
    """One category for 5 clicks, then the next (ball, box, background, ...), with long and
    uneven idle training between clicks (30, 100, 300 steps: 3 s to 30 s). A category out of
    view is waited for."""

    name = "streaks"
    order = (1, 2, 0)
    streak = 5
    pauses = (30, 100, 300)

    def moves(self, look):
        category = self.order[(self.clicks // self.streak) % len(self.order)]
        click = self.click_on(look, [category])
        if click is None:
            return []
        return [Move(disc(click), self.pauses[self.clicks % len(self.pauses)])]


class Burst(Policy):
    """10 clicks within a second (consecutive frames, 1 step between), then 5 s idle."""

    name = "burst"
    burst = 10
    idle = 50

    def moves(self, look):
        click = self.reference_click(look)
        if click is None:
            return []
        last_of_burst = (self.clicks + 1) % self.burst == 0
        return [Move(disc(click), self.idle if last_of_burst else 1)]

    def next_frame(self, scene, index):
        return index + 1 if self.last_steps == 1 else super().next_frame(scene, index)


class Slow(Alternating):
    """The reference user, but one click every 5 s (50 steps)."""

    name = "slow"
    pause = 50


class Undo(Policy):
    """Every 4th click is a mistake (a wrong category on the region), trained on for 3 steps,
    then undone and followed by the right click on the same frame."""

    name = "undo"
    every = 4
    noticed_after = 3  # steps

    def moves(self, look):
        click = self.reference_click(look)
        if click is None:
            return []
        right = Move(disc(click), self.pause)
        if (self.clicks + 1) % self.every:
            return [right]
        wrong = disc(click, self.wrong_category(click.category))
        return [Move(wrong, self.noticed_after, truthful=False, take_back=True), right]


class Noisy(Policy):
    """One click in ten carries a wrong category, and stays."""

    name = "noisy"
    error_rate = 0.1

    def moves(self, look):
        click = self.reference_click(look)
        if click is None:
            return []
        if self.rng.random() < self.error_rate:
            return [Move(disc(click, self.wrong_category(click.category)), self.pause,
                         truthful=False)]
        return [Move(disc(click), self.pause)]


class BackgroundFirst(Policy):
    """Background only for the first 8 clicks, then objects and background alternating."""

    name = "background_first"
    background_clicks = 8

    def moves(self, look):
        if self.clicks >= self.background_clicks:
            return self.alternate(look)
        click = self.click_on(look, [0])
        self.annotator.last_category = 0  # so that the first alternating click is an object
        return [] if click is None else [Move(disc(click), self.pause)]


class WholeFrame(Policy):
    """4 object clicks, then the `b` key (the whole frame is background) once the objects are
    out of view: on the first frame without object pixels in the next 10 s of video, else
    the one with the fewest (as a user who moved the object away would). Then alternating.
    The demo's objects leave the view slowly: within one second they are never gone."""

    name = "whole_frame"
    object_clicks = 4
    search = 300  # frames: 10 s

    def moves(self, look):
        if self.clicks < self.object_clicks:
            click = self.click_on(look, range(1, self.categories))
            return [] if click is None else [Move(disc(click), self.pause)]
        if self.clicks == self.object_clicks:
            self.annotator.last_category = 0
            return [Move(WholeFrameLabel(0), self.pause, truthful=not look.truth.any())]
        return self.alternate(look)

    def next_frame(self, scene, index):
        start = super().next_frame(scene, index)
        if self.clicks != self.object_clicks:
            return start
        candidates = range(start, start + self.search)
        return candidates[int(np.argmin([(scene.frame(i).truth > 0).sum() for i in candidates]))]


class Frozen(Policy):
    """Stop-N-show: freeze a frame and click on it until its verdict is right or 5 clicks,
    then let the video run on 40 frames and freeze again."""

    name = "frozen"
    per_frame = 5
    run_on = 40  # frames

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_this_frame = 0

    def moves(self, look):
        if look.cells_right:
            self.on_this_frame = self.per_frame
            return []
        self.on_this_frame += 1
        return self.alternate(look)

    def next_frame(self, scene, index):
        if 0 < self.on_this_frame < self.per_frame:
            return index
        self.on_this_frame = 0
        return index + self.run_on


POLICIES = {p.name: p for p in (Alternating, Streaks, Burst, Slow, Undo, Noisy, BackgroundFirst,
                                WholeFrame, Frozen)}
