"""The online trainer: a thread of its own, with its own OpenCL queue, that keeps training
the patch on the labeled frames and publishes consistent weights for the verdicts.

Minibatches put frames with new labels first, then frames for the categories still
missing, then past frames at random (batch_choice.py).

A step is kept unless it diverged: the loss, a weight or a gradient stopped being finite, or
the step made its own batch's loss much worse. A large loss alone (new or contradicting
labels) is trained on, not refused: the gradient-norm clip inside the step bounds how far it
moves the weights. A diverged step is undone and the next attempt runs at a lower rate on
another batch, climbing back to the user's own rate as steps succeed (RateBackoff). A long
stretch with no progress makes the trainer recover by itself (ProgressWatch). Until two
categories have labels it does not train: one category's labels alone would teach the patch
that everything is that category, with certainty.
"""
from __future__ import annotations

import logging
import random
import statistics
import threading
import time
from collections import deque
from contextlib import nullcontext
from dataclasses import replace

import numpy as np

from loop.core.awaited_click import AwaitedClick
from loop.core.batch_choice import choose_batch
from loop.core.labels import LabeledFrame, balanced_class_weights, label_counts
from loop.core.pacer import Pacer
from loop.core.progress_watch import PATIENCE, ProgressWatch
from loop.core.rate_backoff import RateBackoff
from loop.core.settings import TrainerSettings
from loop.core.divergence import divergence
from loop.core.input_standardization import STAT_FRAMES, channel_statistics
from loop.core.step_inputs import planned_batch, step_inputs
from loop.core.train_step import TrainStep
from loop.core.train_windows import train_windows
from loop.core.trainer_notices import rate_notice, waiting_notice

LOG = logging.getLogger(__name__)
from loop.core.trainer_status import TrainerStatus

IDLE_WAIT = 0.05  # seconds the thread sleeps when there is nothing to train on
AUGMENT_EVERY = 4  # training steps between two rand-tilt-shift copies
# Steps right after a new label that do not wait for verdicts (and go before them: Pacer),
# whether or not it points at a cell the trainer can follow (awaited_click.py; a followed
# click's steps stay urgent until its cell shows). With the following, 3 rather than 8:
# `bench loop` (demo, scenes 0-2, alternating runs) gave 30.6-41.1 verdicts/s and a
# click-to-flip p95 within 400 ms on 13 runs of 15, against 29.7-36.9 and 2 of 6 beside it.
BURST_STEPS = 3
# A step whose loss is this far above the recent median is checked again after it ran: did
# it make its own batch worse? (Most steps are not suspect, so most pay nothing extra.)
SUSPECT_FACTOR, SUSPECT_FLOOR = 2.0, 1.0
RECENT_LOSSES = 20
# Steady verdicts (the `steady` setting): each step moves the verdicts' weights this far
# towards the trained ones, an average over the last few steps. On the demo (step by step,
# scenes 0-2, 111-113 clicks, held-out accuracy after every step): the first and second
# step after a click fell by more than 0.02 after 13 and 9 clicks, by up to 0.36, with the
# newest weights; at 0.35 after 2 and 0, by at most 0.023 (0.3: 0 and 0; 0.5: 4 and 2, up to
# 0.16). 0.05 (the rate before) lagged a click by about 20 steps.
STEADY_RATE = 0.35
# Between clicks (no click waiting to show, nor catching up with one), the average moves
# more slowly, over the last dozen steps or so: these steps only consolidate the labels,
# and each still jitters the trained weights (a category's held-out recall wandered by 0.02
# and more from one click to the next on a settled patch). The next click's steps go back to
# STEADY_RATE, so it shows as soon as before. `bench loop`, the demo scene: the largest drop
# after 90% over 0.02 in 2 runs of 17 (4 of 15 at STEADY_RATE every step, in turn), the final
# under 0.97 in 2 (4); 0.07 left clicks unflipped after 3 s in 5 runs of 6.
SETTLED_STEADY_RATE = 0.12
# ...and never faster than the mean of the settled steps since the click: the n-th moves the
# average 1/n of the way once that is under 12%. The steps between two clicks depend on the
# device (7-9 on a 2-core CPU, about 18 on an H200), and at 12% a step the verdicts followed
# only the last eight or so; on a fast device they followed the jitter again. Step by step,
# the alternating user with twice the steps between clicks (scenes 0-11): the largest drop
# after 90% over 0.02 in 3 runs of 12 against 7, mean final 0.982 against 0.981. With the
# usual 10 steps a click it never applies. SETTLED_FLOOR bounds the mean to about the last
# 20 steps, so a long pause still shows what it learns: the user who clicks every 50 steps
# (scenes 0-2) ended at 0.974 / 0.985 / 0.990 with it, 0.969 / 0.976 with no bound, 0.978 /
# 0.988 / 0.991 at 12% a step.
SETTLED_FLOOR = 0.05
# With steady verdicts, the steps after the one that shows an awaited click go before the
# verdicts for this many more steps, so the averaged weights catch up at the steps' pace
# (as those steps do not wait for the verdicts, the click shows sooner). `bench loop`, scenes
# 0-2, two runs each: 2 steps kept 30.9-39.4 verdicts/s (click-to-flip p95 176-352 ms); 3
# fell under 30 verdicts/s in 4 runs of 17 for no quicker flip; with none, p95 was 311 and
# 358 ms in two runs on scene 2 (145-317 with 2 or 3 in the same round).
CATCH_UP_STEPS = 2
# After them the verdicts' own weights are asked (a pass of the averaged patch over the
# clicked frame: well under a millisecond): a click they do not show yet is followed again
# (its frame leads a batch, its steps go first) until they do, within its FOLLOW_STEPS.
# Before, the pace went back to one step per two verdicts there, and the trained weights
# often turned such a cell back meanwhile: `bench loop` (seeds 0-5, two runs each) had a
# click-to-flip p95 over 400 ms in 2 runs of 12 (1014 and 542 ms); in three runs timing each
# click, 4 of 117 took 0.37-0.68 s or did not show within 3 s, each shown by the trained
# weights first (three within 3 steps); a catch-up that only went on longer left a cell
# unshown 37 steps later. Now: p95 78-202 ms in 12 runs of 12.


class OnlineTrainer:
    """Trains `model` (a PatchWeights) on `frames` (the core's LabeledFrame list, guarded by
    `frames_lock`)."""

    def __init__(self, model, frames: list[LabeledFrame], frames_lock: threading.Lock,
                 settings: TrainerSettings | None = None, seed: int = 0,
                 device_turn: threading.Lock | None = None):
        self.model = model
        self.frames = frames
        self.frames_lock = frames_lock
        self._settings = settings or TrainerSettings()
        self._settings_lock = threading.Lock()
        self.status = TrainerStatus()
        self.backoff = RateBackoff()
        self.watch = ProgressWatch(model.spec.outputs)
        self._stuck_in_a_row = 0
        self._kept_on_fresh = 0  # kept steps since the weights were fresh (warm_up_steps)
        self._standardized_on = 0  # labeled frames the input statistics were last taken on
        self._recent_losses: deque = deque(maxlen=RECENT_LOSSES)
        self.queue = model.device.new_queue()
        # Held while a step runs on the device; the verdicts hold it too, so the two take
        # turns instead of splitting the cores and both running slow.
        self.device_turn = device_turn or threading.Lock()
        self.pacer = Pacer()
        self._burst = 0  # steps left that skip the pacer: a new label is trained on at once
        self._catch_up = 0  # steps left that skip it while steady verdicts catch up (above)
        self._settled_steps = 0  # kept steps since the newest label that answer no click
        # Bumped by every restart of that count: a step that ran across a restart (a label
        # came meanwhile) is not counted in the new one.
        self._settle_epoch = 0
        self._steps: dict[int, TrainStep] = {}
        self._fresh: list[int] = []  # frame ids with labels not yet trained on, newest last
        self._awaited: AwaitedClick | None = None  # the click whose cell has not turned yet
        # The click the trained weights show and the verdicts' average may not yet (above).
        self._catching: AwaitedClick | None = None
        self._new_only_since = 0.0
        self._rng = random.Random(seed)
        self.windows = train_windows(model.arch, model.feature_shape, seed)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Makes one augmented copy of a labeled frame (set by the core); returns False when
        # there is nothing left to copy.
        self.augmenter = None
        self._copy_owed = False      # a copy is due (turn)
        self._copy_seconds = 0.0     # how long the last one took
        self._stepped_in_gap = False  # the newest step's turn was a gap the source left
        # The per-cell probabilities (K, h, w) of the verdicts' weights on a frame's stored
        # features (set by the core): whether a caught-up click shows. None: not checked.
        self.verdict_on_features = None
        self.last_batch: list = []  # the frames of the newest step (windows show them)
        # Why the trainer's thread stopped by itself (a device error), else None: shown in the
        # window's notices and ended benchmarks, which would otherwise wait on a dead thread.
        self.failure: str | None = None

    # -- settings -------------------------------------------------------------------------
    @property
    def settings(self) -> TrainerSettings:
        with self._settings_lock:
            return self._settings

    def update(self, **changes) -> TrainerSettings:
        """Change settings while running; returns the new ones (ValueError on bad values)."""
        with self._settings_lock:
            new = replace(self._settings, **changes)
            if new.new_only and not self._settings.new_only:
                self._new_only_since = time.monotonic()
            self._settings = new
        self._wake.set()
        return new

    def apply(self, settings: TrainerSettings) -> None:
        with self._settings_lock:
            if settings.new_only and not self._settings.new_only:
                self._new_only_since = time.monotonic()
            self._settings = settings
        self.restart_settled_average()   # (steady verdicts may have just been turned on)
        self._wake.set()

    def restart_settled_average(self) -> None:
        """The labels, the weights or the settings changed: the verdicts' average between
        clicks starts again at SETTLED_STEADY_RATE, not at the slow end of a long pause."""
        with self.frames_lock:
            self._settled_steps = 0
            self._settle_epoch += 1

    def notify_labels(self, frame_id: int, awaited: AwaitedClick | None = None) -> None:
        """A frame got new labels: train on it first. `awaited`: the clicked cell the user
        now waits to see turn (awaited_click.py): the frame leads the next batches, and the
        steps go before the verdicts until the cell has turned."""
        with self.frames_lock:
            if frame_id in self._fresh:
                self._fresh.remove(frame_id)
            self._fresh.append(frame_id)
            self._burst = BURST_STEPS
            self._awaited = awaited
            self._catching = None
            self._settled_steps = 0
            self._settle_epoch += 1
        if self.running:   # (with no trainer thread no step is coming: no verdict waits)
            self.pacer.urgent_ahead(True)
        self.pacer.release()
        self._wake.set()

    @property
    def awaited(self) -> AwaitedClick | None:
        """The click whose cell has not shown its category yet, while the trainer follows it."""
        return self._awaited

    # -- thread ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def use_model(self, model) -> None:
        """Train another model from the next step (the patch grew a category); the trainer
        must be stopped. Its step plans are the old model's: they go."""
        if self.running:
            raise RuntimeError("stop the trainer before it changes models")
        self.model = model
        self._steps.clear()
        self._standardized_on = 0
        self.windows = train_windows(model.arch, model.feature_shape, model.spec.seed)
        self.watch = ProgressWatch(model.spec.outputs)
        self.restart_settled_average()

    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self.failure = None
        self.status.notice("failure", None)
        self._thread = threading.Thread(target=self._loop, name="patchloop-trainer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join()
            self._thread = None
        self.pacer.urgent_ahead(False)   # no step is coming: verdicts need not wait

    def _loop(self) -> None:
        try:
            # The step's plan, built and run once before the first click waits for it
            # (building one takes 0.1-0.5 s, its first run more than later ones). Only the
            # run takes the device from the verdicts.
            step = self._train_step(planned_batch(1, self.settings.batch_size))
            with self.device_turn:
                step.warm_up(self.queue)
            while not self._stop.is_set():
                if not self.turn():
                    self._wake.wait(IDLE_WAIT)
                    self._wake.clear()
        except Exception as exc:  # a device that refuses the step: said, never a silent stop
            LOG.exception("the trainer's thread stopped")   # the stack, for a bug report
            self.failure = f"training stopped: {type(exc).__name__}: {exc}"
            self.status.notice("failure", self.failure)
            self.pacer.urgent_ahead(False)   # no step is coming: verdicts must not wait

    def turn(self) -> bool:
        """One turn of the trainer's thread, callable on any thread when it is not running (a
        step-by-step simulation): a step, and a rand-tilt-shift copy every AUGMENT_EVERY
        steps or when there was nothing to train. False when it had nothing to do."""
        trained = self.step()
        copied = False
        # Live, not while a click's first steps run: a copy runs the base (tens of ms on a
        # CPU) and the user is waiting for the clicked cells to turn; it is made a few steps
        # later. (Step by step, where time is not counted, copies come as always.)
        waiting = trained and self._urgent() and self.pacer.paced
        copying = self.augmenter is not None and self.settings.augment and not waiting
        if copying and (not trained or self.status.steps % AUGMENT_EVERY == 0):
            self._copy_owed = True
        # A step taken in a camera's gap leaves the copy due after it for a turn it fits in
        # (a base pass is longer than a CPU's gap between two frames, and a copy there held
        # the next frame's verdict up), or for the next step of the verdicts' share.
        if copying and self._copy_owed and (
                not self._stepped_in_gap or self.pacer.fits_the_gap(self._copy_seconds)):
            started = time.perf_counter()
            copied = self.augmenter()
            if copied:   # (nothing to copy is answered at once: no measure of a copy)
                self._copy_seconds = time.perf_counter() - started
            self._copy_owed = False
        return trained or copied

    def pace_with_verdicts(self, on: bool) -> None:
        """Whether a step waits for verdicts to have their turn on the device (the live
        window: on). Off where nothing else shares the device (simulations, benchmarks)."""
        self.pacer = Pacer() if on else Pacer(verdicts_per_step=0)

    # -- one step -------------------------------------------------------------------------
    def _batch(self, settings: TrainerSettings) -> tuple[list[LabeledFrame], np.ndarray]:
        """The next minibatch and the labeled cells per category among the usable frames."""
        with self.frames_lock:
            usable = self._usable_frames()
            if settings.new_only:
                usable = [f for f in usable if f.added_at >= self._new_only_since]
            counts = label_counts(usable, self.model.spec.outputs)
            if not usable or (counts > 0).sum() < 2:
                return [], counts
            chosen = choose_batch(usable, self._fresh + self._awaited_ids(usable),
                                  settings.batch_size, self._rng)
            taken = {f.frame_id for f in chosen}
            self._fresh = [i for i in self._fresh if i not in taken]
            return chosen, counts

    def _usable_frames(self) -> list[LabeledFrame]:
        """The frames a step may train on: labeled and not excluded. Under the frames lock."""
        return [f for f in self.frames if not f.excluded and f.labeled_cells > 0]

    def _awaited_ids(self, usable: list[LabeledFrame]) -> list[int]:
        """[the awaited click's frame id] while it leads batches (it then goes first), else
        []; ends the wait when its label is gone. Called under the frames lock."""
        awaited = self._awaited
        if awaited is None:
            return []
        frame = next((f for f in usable if f.frame_id == awaited.frame_id), None)
        if frame is None or not awaited.still_labeled(frame) or awaited.steps_left <= 0:
            self._awaited = None
            return []
        if awaited.leads_left <= 0 or awaited.frame_id in self._fresh:
            return []
        return [awaited.frame_id]

    @property
    def goes_before_verdicts(self) -> bool:
        """Whether the next step goes before the verdicts waiting for the device."""
        return self._urgent()

    def _urgent(self) -> bool:
        """Whether the next step goes before the verdicts: the first BURST_STEPS after a
        label, then while the awaited click has not shown and while steady verdicts catch
        up with it (CATCH_UP_STEPS), if steps are short (a pixels patch's long steps would
        stop the picture for as long as the wait lasts: on the demo 7 verdicts/s instead of
        17-24)."""
        return self._burst > 0 or (self.answers_a_click and self.pacer.steps_are_short)

    @property
    def answers_a_click(self) -> bool:
        """Whether the next step answers a click: one of the first BURST_STEPS after a label,
        a step while the awaited click has not shown, or one catching up with it until the
        verdicts' weights have been asked (however long steps take)."""
        return (self._burst > 0 or self._awaited is not None or self._catch_up > 0
                or self._catching is not None)

    def _follow_awaited(self, step: TrainStep, awaited: AwaitedClick, frames: list,
                        corners: list[tuple[int, int]]) -> None:
        """After a step: has the awaited cell turned in the step's own forward pass over its
        frame (at its place in the batch; on windows, in the one centred on it: `corners`,
        each entry's (top, left))? No extra pass is run."""
        awaited.steps_left -= 1
        index = next((i for i, f in enumerate(frames) if f.frame_id == awaited.frame_id), None)
        if index == 0:
            awaited.leads_left -= 1
        # One output per cell (squared error) has no category to put first.
        if index is not None and (step.squared_error or awaited.shown(
                step.frame_logits(self.queue, index), corners[index])):
            with self.frames_lock:
                if self._awaited is awaited:
                    self._awaited = None
                    steady = self.settings.steady and not step.squared_error
                    self._catch_up = CATCH_UP_STEPS if steady else 0
                    self._catching = awaited if steady else None

    def _catch_up_until_shown(self) -> None:
        """After the last catch-up step: do the verdicts' weights show the caught-up click?
        If not (and it is still labeled, within its FOLLOW_STEPS), it is followed again.
        (The verdicts wait meanwhile: the step before said a click was being answered, so
        this pass does not queue behind one.)"""
        with self.frames_lock:
            catching = self._catching
            if catching is None or self._catch_up > 0:
                return
            frame = next((f for f in self.frames if f.frame_id == catching.frame_id), None)
            asked = frame is not None and catching.still_labeled(frame) \
                and catching.steps_left > 0 and self.verdict_on_features is not None
            features = frame.features if asked else None
        shown = not asked or catching.shown(self.verdict_on_features(features))
        with self.frames_lock:
            if self._catching is not catching:   # a new click meanwhile
                return
            self._catching = None
            if not shown and self._awaited is None:
                # The average lags further, or the trained weights turned the cell back: the
                # clicked frame leads a batch again, and the click is followed as before.
                catching.leads_left = max(catching.leads_left, 1)
                self._awaited = catching
        self.pacer.urgent_ahead(self.answers_a_click)

    @staticmethod
    def logit_offsets_for(spec, settings: TrainerSettings) -> np.ndarray:
        """The loss's logit offsets: -log(object prior) on every category but background
        (0), for patches that find things in a frame ("detect" pooling; a folder-trained
        classifier's category 0 is a class like the others).

        Why: people click inside objects and on the background around them, so the cells
        along an object's edge are taught background and seldom the object: the verdict drew
        objects a few pixels small (on the demo 96% of the missed object pixels lay within 4
        px of the edge). Training softmax(logits - log K) on the labels makes the patch's own
        softmax favour the other categories K:1 where it is unsure (logit adjustment), the
        same in the live verdict, a plugin and `apply`, as the weights carry it."""
        offsets = np.zeros(spec.outputs, np.float32)
        if spec.pooling == "detect":
            offsets[1:] = -np.log(settings.object_prior)
        return offsets

    @staticmethod
    def _average_rate(settings: TrainerSettings, answers_a_click: bool,
                      settled_steps: int) -> float | None:
        """How far a kept step moves the verdicts' weights towards the trained ones: None for
        all the way (steady verdicts off); STEADY_RATE for a step that answers a click (the
        first steps after a label, those until its cell shows and those that catch up with
        it); between clicks SETTLED_STEADY_RATE, and from the ninth settled step on 1/n for
        the n-th (the mean of the settled steps so far), down to SETTLED_FLOOR."""
        if not settings.steady:
            return None
        if answers_a_click:
            return STEADY_RATE
        return max(SETTLED_FLOOR, min(SETTLED_STEADY_RATE, 1.0 / max(1, settled_steps)))

    @staticmethod
    def _consolidation_share(settings: TrainerSettings, answers_a_click: bool,
                             settled_before: int) -> float:
        """The share of the rate for a step that no awaited click waits on: the settings'
        consolidation_rate; from the consolidation_steps-th settled step since the newest
        label on, K/n of it for the n-th (`settled_before` + 1; docs/trainer.md, "Settling
        between clicks")."""
        share = settings.consolidation_rate
        if answers_a_click or not settings.consolidation_steps:
            return share
        return share * min(1.0, settings.consolidation_steps / (settled_before + 1))

    def _class_weights(self, settings: TrainerSettings, counts: np.ndarray) -> np.ndarray:
        if not settings.balance_classes:
            return np.ones(len(counts), np.float32)
        weights = balanced_class_weights(counts)
        return np.where(weights > 0, weights, 1.0).astype(np.float32)

    @property
    def step_shape(self) -> tuple[int, ...]:
        """One input of a training step: the patch's input, or the window a step cuts."""
        shape = self.model.feature_shape
        return shape if self.windows is None else self.windows.shape(shape)

    def _train_step(self, batch: int) -> TrainStep:
        if batch not in self._steps:
            self._steps[batch] = self.model.make_train_step(batch, self.step_shape)
        return self._steps[batch]

    def step(self) -> bool:
        """One training step if there is anything to train; False when idle."""
        settings = self.settings
        self._stepped_in_gap = False
        frames, counts = self._batch(settings) if settings.training else ([], None)
        self._say_what_is_missing(counts, settings)
        self.status.training_now = bool(frames)
        if not frames:
            self.pacer.urgent_ahead(False)
            return False
        self._standardize_if_due(settings)
        urgent = self._urgent()
        if not urgent:
            # cut short by a new label (notify_labels)
            self._stepped_in_gap = self.pacer.wait_turn()
            if self._urgent():       # a click came meanwhile: this step trains on it
                urgent, self._stepped_in_gap = True, False
                frames, counts = self._batch(settings)
                if not frames:
                    self.pacer.urgent_ahead(False)
                    return False
        with self.frames_lock:   # (read together: a label resets them all)
            answers_a_click, epoch = self.answers_a_click, self._settle_epoch
            settled_before = self._settled_steps
        if urgent:
            self._burst = max(0, self._burst - 1)
        self._catch_up = max(0, self._catch_up - 1)
        catching = self._catching
        if catching is not None:   # (its steps count against its FOLLOW_STEPS too)
            catching.steps_left -= 1
        self.last_batch = frames
        awaited = self._awaited
        centred = None if awaited is None else (awaited.frame_id, awaited.row, awaited.col)
        features, labels, corners = step_inputs(frames, settings.batch_size, self.windows,
                                                centred)
        step = self._train_step(len(features))
        class_weights = self._class_weights(settings, counts)
        warm_up = min(1.0, (self._kept_on_fresh + 1) / max(1, settings.warm_up_steps))
        share = 1.0 if awaited is not None else self._consolidation_share(
            settings, answers_a_click, settled_before)
        rate = settings.learning_rate * self.backoff.factor * warm_up * share
        with self.pacer.urgent_step() if urgent else nullcontext(), self.device_turn:
            started = time.perf_counter()
            result = step.run(self.queue, features, labels, class_weights, rate,
                              settings.momentum, settings.weight_decay,
                              self.logit_offsets_for(self.model.spec, settings),
                              settings.max_grad_norm)
            after = step.loss_now(self.queue) if result.finite and self._suspect(result.loss) \
                else None
            self.pacer.step_took(time.perf_counter() - started)
        if result.finite and awaited is not None:
            self._follow_awaited(step, awaited, frames, corners)
        # (Whether steps are short enough to go first is the pacer's to judge, on the newest
        # step's length.)
        self.pacer.urgent_ahead(self.answers_a_click)
        reason = divergence(result, None if self.backoff.must_keep else after)
        if reason is not None:
            self._undo_step(reason, settings)
            return True
        with self.frames_lock:   # (notify_labels resets it under the same lock)
            if not answers_a_click and epoch == self._settle_epoch:
                self._settled_steps += 1
            settled = self._settled_steps
        self.model.publish(self.queue, self._average_rate(settings, answers_a_click, settled))
        self._catch_up_until_shown()
        self._kept_on_fresh += 1
        self.status.learning_rate, self.status.grad_norm = rate, result.grad_norm
        self.status.record(result.loss)
        self._recent_losses.append(result.loss)
        if self.backoff.succeeded():
            self.status.rate_changes += 1
        self._show_rate(settings)
        self._watch_progress(result.loss, settings)
        return True

    def _standardize_if_due(self, settings: TrainerSettings) -> None:
        """Take the input statistics of the labeled frames (not their tilt-shift copies)
        before the first step, and again, between clicks, once those frames have doubled,
        up to STAT_FRAMES (input_standardization.py). Switched off, back to the raw features
        (the patch computes what it did)."""
        if self.model.standardization is None:
            return
        if not settings.standardize_inputs:
            if self._standardized_on:
                channels = self.model.feature_shape[0]
                with self.device_turn:
                    self.model.standardize(np.zeros(channels), np.ones(channels), self.queue)
                self._standardized_on = 0
            return
        if self._standardized_on >= STAT_FRAMES or (self._standardized_on and self._urgent()):
            return   # (taken again on a later step: not while a click waits for its answer)
        with self.frames_lock:
            originals = [f for f in self._usable_frames() if f.augmented_from is None]
            if not originals or len(originals) < 2 * self._standardized_on:
                return
            features = [f.features for f in originals[-STAT_FRAMES:]]
        mean, spread = channel_statistics(features)
        with self.device_turn:
            self.model.standardize(mean, spread, self.queue)
        self._standardized_on = len(originals)

    def _suspect(self, loss: float) -> bool:
        if not np.isfinite(loss):
            return False
        typical = statistics.median(self._recent_losses) if self._recent_losses else 0.0
        return loss > max(SUSPECT_FLOOR, SUSPECT_FACTOR * typical)

    def _undo_step(self, reason: str, settings: TrainerSettings) -> None:
        self.model.restore_last_good(self.queue)
        self.status.restores += 1
        if self.backoff.diverged(reason):
            self.status.rate_changes += 1
        self._show_rate(settings)

    def _show_rate(self, settings: TrainerSettings) -> None:
        self.status.notice("rate", rate_notice(settings.learning_rate, self.backoff))

    def _watch_progress(self, loss: float, settings: TrainerSettings) -> None:
        if not self.watch.observe(loss):
            if self.watch.since_best == 0:
                self._stuck_in_a_row = 0
                self.status.notice("recovered", None)
            return
        self.status.recoveries += 1
        self._stuck_in_a_row += 1
        with self.device_turn:
            if self._stuck_in_a_row == 1:
                self.model.clear_momentum(self.queue)
                if self.backoff.reset():
                    self.status.rate_changes += 1
                self.restart_settled_average()   # (the rate back in full between clicks too)
                cleared = "momentum cleared, " if settings.momentum > 0 else ""
                text = (f"no progress in {PATIENCE} steps: {cleared}learning rate back at "
                        f"your {settings.learning_rate:.2g}")
            else:
                self.model.start_afresh(self.model.spec.seed + self.status.recoveries,
                                        self.queue)
                self._kept_on_fresh = 0
                self.restart_settled_average()
                text = (f"still no progress after {PATIENCE} more steps: the patch starts "
                        "again from fresh weights (your labels are all kept)")
        self._show_rate(settings)
        self.status.notice("recovered", text)

    def _say_what_is_missing(self, counts, settings: TrainerSettings) -> None:
        self.status.notice("categories", waiting_notice(counts, self.model.spec.categories,
                                                        settings.new_only))
