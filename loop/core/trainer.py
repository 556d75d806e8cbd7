"""The online trainer: a thread of its own, with its own OpenCL queue, that keeps training
the patch on the labeled frames and publishes consistent weights for the verdicts.

Minibatches put frames with new labels first, then past frames at random. A non-finite
loss, weight or gradient restores the last good weights and halves the learning rate.
"""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np

from loop.core.labels import LabeledFrame, balanced_class_weights, label_counts
from loop.core.settings import TrainerSettings
from loop.core.train_step import TrainStep

LOSS_LOG_LENGTH = 2000
# A weighted mean cross-entropy this high means probabilities of e^-50 on labeled cells:
# the step has blown up even if every number is still finite.
DIVERGED_LOSS = 50.0
IDLE_WAIT = 0.05  # seconds the thread sleeps when there is nothing to train on
AUGMENT_EVERY = 4  # training steps between two rand-tilt-shift copies
BURST_STEPS = 3    # steps right after a new label that do not wait for verdicts


@dataclass
class TrainerStatus:
    steps: int = 0
    last_loss: float = float("nan")
    steps_per_second: float = 0.0
    losses: list = field(default_factory=list)    # (step, loss), the newest LOSS_LOG_LENGTH
    messages: list = field(default_factory=list)  # what the trainer wants the user to know


class Pacer:
    """Keeps verdicts flowing while training: when verdicts are coming (the live window),
    the trainer takes one step per `verdicts_per_step` verdicts, so a step never holds the
    device for two frames in a row; when none are coming it trains flat out."""

    FLOWING = 0.25  # seconds: verdicts closer together than this count as a live stream

    def __init__(self, verdicts_per_step: int = 2):
        self.verdicts_per_step = verdicts_per_step
        self._done = 0
        self._last = 0.0
        self._at_last_step = 0
        self._changed = threading.Condition()

    def verdict_done(self) -> None:
        with self._changed:
            self._done += 1
            self._last = time.monotonic()
            self._changed.notify_all()

    def wait_turn(self) -> None:
        with self._changed:
            while (time.monotonic() - self._last < self.FLOWING
                   and self._done - self._at_last_step < self.verdicts_per_step):
                self._changed.wait(self.FLOWING)
            self._at_last_step = self._done


class OnlineTrainer:
    """Trains `model` (a PatchModel) on `frames` (the core's LabeledFrame list, guarded by
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
        self.queue = model.device.new_queue()
        # Held while a step runs on the device; the verdicts hold it too, so the two take
        # turns instead of splitting the cores and both running slow.
        self.device_turn = device_turn or threading.Lock()
        self.pacer = Pacer()
        self._burst = 0  # steps left that skip the pacer: a new label is trained on at once
        self._steps: dict[int, TrainStep] = {}
        self._fresh: list[int] = []  # frame ids with labels not yet trained on, newest last
        self._new_only_since = 0.0
        self._rng = random.Random(seed)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._step_times: list[float] = []
        # Makes one augmented copy of a labeled frame (set by the core); returns False when
        # there is nothing left to copy.
        self.augmenter = None
        self.last_batch: list = []  # the frames of the newest step (windows show them)

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
        self._wake.set()

    def notify_labels(self, frame_id: int) -> None:
        """A frame got new labels: train on it first."""
        with self.frames_lock:
            if frame_id in self._fresh:
                self._fresh.remove(frame_id)
            self._fresh.append(frame_id)
            self._burst = BURST_STEPS
        self._wake.set()

    # -- thread ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="patchloop-trainer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            trained = self.step()
            copied = False
            if self.augmenter is not None and self.settings.augment and (
                    not trained or self.status.steps % AUGMENT_EVERY == 0):
                copied = self.augmenter()
            if not trained and not copied:
                self._wake.wait(IDLE_WAIT)
                self._wake.clear()

    # -- one step -------------------------------------------------------------------------
    def _batch(self, settings: TrainerSettings) -> list[LabeledFrame]:
        with self.frames_lock:
            usable = [f for f in self.frames if not f.excluded and f.labeled_cells > 0]
            if settings.new_only:
                usable = [f for f in usable if f.added_at >= self._new_only_since]
            if not usable:
                return []
            by_id = {f.frame_id: f for f in usable}
            size = min(settings.batch_size, len(usable))
            chosen = [by_id[i] for i in reversed(self._fresh) if i in by_id][:size]
            self._fresh = [i for i in self._fresh if i not in {f.frame_id for f in chosen}]
            rest = [f for f in usable if f not in chosen]
            chosen += self._rng.sample(rest, min(size - len(chosen), len(rest)))
            return chosen

    def _class_weights(self, settings: TrainerSettings) -> np.ndarray:
        k = self.model.spec.outputs
        if not settings.balance_classes:
            return np.ones(k, np.float32)
        with self.frames_lock:
            counts = label_counts(self.frames, k)
        weights = balanced_class_weights(counts)
        return np.where(weights > 0, weights, 1.0).astype(np.float32)

    def _train_step(self, batch: int) -> TrainStep:
        if batch not in self._steps:
            self._steps[batch] = self.model.make_train_step(batch)
        return self._steps[batch]

    def step(self) -> bool:
        """One training step if there is anything to train; False when idle."""
        settings = self.settings
        if not settings.training:
            return False
        frames = self._batch(settings)
        if not frames:
            return False
        self.last_batch = frames
        step = self._train_step(len(frames))
        features = np.stack([f.features for f in frames])
        labels = np.stack([f.label_map for f in frames]).astype(np.int32)
        class_weights = self._class_weights(settings)
        if self._burst > 0:
            self._burst -= 1
        else:
            self.pacer.wait_turn()
        with self.device_turn:
            start = time.perf_counter()
            loss, finite = step.run(self.queue, features, labels, class_weights,
                                    settings.learning_rate, settings.momentum,
                                    settings.weight_decay)
        if finite and np.isfinite(loss) and loss < DIVERGED_LOSS:
            self.model.publish(self.queue)
            self._record(loss, time.perf_counter() - start)
        else:
            self.model.restore_last_good(self.queue)
            halved = self.update(learning_rate=max(1e-6, settings.learning_rate / 2))
            self.status.messages.append(
                f"training diverged (loss {loss}); restored the last good weights and halved "
                f"the learning rate to {halved.learning_rate:.2g}")
        return True

    def _record(self, loss: float, seconds: float) -> None:
        status = self.status
        status.steps += 1
        status.last_loss = loss
        status.losses.append((status.steps, loss))
        del status.losses[:-LOSS_LOG_LENGTH]
        now = time.monotonic()
        self._step_times.append(now)
        self._step_times = [t for t in self._step_times if now - t <= 2.0]
        if len(self._step_times) > 1:
            span = self._step_times[-1] - self._step_times[0]
            status.steps_per_second = (len(self._step_times) - 1) / span if span > 0 else 0.0
