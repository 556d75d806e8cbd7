"""LoopCore: the headless heart of Patchloop. Frames go in, verdicts come out; labels go in,
the online trainer learns from them. The window, the benchmarks and the tests all drive the
product through this class:

    core = LoopCore(spec, base=BaseNetwork(device, load_base(path)))
    verdict = core.observe(frame)                    # uint8 RGB (H, W, 3)
    core.label(verdict.frame_id, LabelDisc(x, y, radius, category))
    core.start()                                     # the trainer thread; core.close() ends
"""
from __future__ import annotations

import math
import threading
from dataclasses import replace

import numpy as np

from loop.core.augment import AugmentRanges, CopyMaker
from loop.core.awaited_click import AwaitedClick
from loop.core.labels import ERASE, LabelDisc, LabeledFrame
from loop.core.labels_book import LabelsBook
from loop.core.categories import grown_dense, grown_model, renamed, with_category
from loop.core.patch import PIXELS_INPUT, PatchSpec
from loop.core.patch_arch import patch_arch
from loop.core.frame_pipeline import BASE_INPUT, FramePipelines, RecentFrames
from loop.core.patch_weights import PatchWeights
from loop.core.pixel_maps import PixelMaps
from loop.core.receptive_field import map_size, patch_cell_field
from loop.core.settings import TrainerSettings, default_settings
from loop.core.snapshot import load_dense, restore_snapshot, take_snapshot
from loop.core.trainer import OnlineTrainer
from loop.core.verdict import Verdict, base_top, frame_verdict
from patchloop_kernels.runtime import Device



class LoopCore:
    def __init__(self, spec: PatchSpec, base=None, device: Device | None = None,
                 base_input: tuple[int, int] = BASE_INPUT,
                 settings: TrainerSettings | None = None, initial_weights: dict | None = None):
        self.device = device or (base.device if base is not None else Device.default())
        self.spec = spec
        self.base = base
        if spec.topology == "head" and base is None:
            raise ValueError("a 'head' patch needs a base network")
        self.base_input = tuple(base_input)
        self.queue = self.device.queue
        arch = patch_arch(spec, base.spec if base is not None else None)
        if spec.topology == "head":
            feature_size = map_size(base.spec, arch.input_layer, *self.base_input)
        else:
            feature_size = PIXELS_INPUT
        self.model = PatchWeights(self.device, spec, arch, feature_size, initial_weights)
        self.book = LabelsBook(self.model.cells)
        # The trainer reads the book's frames under its lock.
        self.frames, self.frames_lock = self.book.frames, self.book.lock
        self.device_turn = threading.Lock()
        self.trainer = OnlineTrainer(self.model, self.frames, self.frames_lock,
                                     settings or default_settings(spec.fine_tune, spec.topology),
                                     spec.seed, self.device_turn)
        self.pipelines = FramePipelines(self)
        self.recent = RecentFrames()   # observed frames a click may still label
        self.pixel_maps = PixelMaps(self.device)
        # Verdicts on stored features and the spread to pixels reuse one set of buffers: one
        # caller at a time. The window's verdict thread (a frozen frame) and a benchmark's or
        # a test's own thread (held-out scoring, a click's flip) may call them together; two
        # at once read each other's results, and PoCL crashed on it.
        self._stored_plans = threading.RLock()
        self.receptive = patch_cell_field(base, self.model.arch, spec.topology)
        self.copies = CopyMaker(self.book, spec.seed, self.model.cells)
        self.trainer.verdict_on_features = self.verdict_on_features
        self.trainer.augmenter = lambda: self.copies.make_one(self.features,
                                                               self.trainer.settings.flips)

    # -- verdicts -------------------------------------------------------------------------
    def observe(self, frame: np.ndarray, frame_id: int | None = None,
                classes: bool = True) -> Verdict:
        """Run the base and the patch on one uint8 RGB frame; remember it for labeling.
        classes=False: the base's classes only where a trigger needs them (the verdict's
        `base_top` is empty otherwise), and a patch on a tap runs the base only that far
        (a third of a 240x320 frame's base time; the window reads the classes every few
        frames, for its panel)."""
        frame = _check_frame(frame)
        self.trainer.pacer.let_urgent_steps_go()
        with self.device_turn:
            pending, best, triggered, version = self._run_verdict(frame, classes)
        self.trainer.pacer.verdict_done()
        # Read back and judged with the device given up: a training step may run meanwhile.
        if triggered:
            probabilities, pixels = pending.probabilities, pending.pixels
        else:
            # Background everywhere, with certainty: the refined map of such cells is the
            # same, so it is made here rather than on the device.
            k = pending.verdict_shape[0]
            probabilities = np.zeros(pending.verdict_shape, np.float32)
            probabilities[0] = 1.0
            pixels = np.zeros((k,) + frame.shape[:2], np.float32)
            pixels[0] = 1.0
        frame_id = self.recent.keep(frame, pending.features, frame_id)
        category, confidence = frame_verdict(probabilities, self.spec.threshold, self.spec.pooling)
        return Verdict(frame_id, probabilities, category, confidence, triggered, best,
                       self.receptive_frame(frame.shape[:2]), version, frame.shape[:2], pixels)

    def waiting_for_frame(self) -> None:
        """The verdicts wait for their source's next frame (a camera between frames): the
        trainer may take the device meanwhile, for a step that ends before the frame comes."""
        self.trainer.pacer.frame_awaited()

    def frame_arrived(self) -> None:
        """The verdicts have their next frame, after a wait or at once."""
        self.trainer.pacer.frame_arrived()

    def _run_verdict(self, frame: np.ndarray, classes: bool):
        """The frame through the base and the patch on the device, waited for once: (the
        reads, the base's top classes (empty unless asked for or a trigger needs them),
        whether the patch's triggers fired, the weights' version)."""
        pipeline = self.pipelines.get(frame.shape)
        needs_base = self.spec.topology == "head" or bool(self.spec.triggers)
        version = self.model.refresh_inference(self.queue)   # (the newest, ahead of the base)
        pipeline.run(frame, self.queue, needs_base)
        reads_classes = pipeline.base_plan is not None and needs_base
        best: tuple = ()
        if reads_classes and self.spec.triggers:   # whether the patch runs depends on them
            best = base_top(pipeline.base_plan.read_probabilities(self.queue), self.base.classes)
        triggered = self.spec.is_triggered([t[0] for t in best])
        pending = pipeline.enqueue_verdict(self.queue, patch=triggered)
        if reads_classes and classes and not self.spec.triggers:   # (waits for all of it)
            best = base_top(pipeline.base_plan.read_probabilities(self.queue), self.base.classes)
        pending.wait()
        return pending, best, triggered, version

    def verdict_on_features(self, features: np.ndarray) -> np.ndarray:
        """The current patch's per-cell probabilities (K, h, w) for stored features (a held
        frame, a labeled frame, an evaluation frame): no base pass. Any thread."""
        with self._stored_plans:
            feature_input, inference = self.pipelines.on_features()
            self.model.refresh_inference(self.queue)
            feature_input.write(features[None], self.queue, wait=False)
            inference.enqueue(self.queue)
            return inference.read(self.queue)

    def verdict_for_labeled(self, frame: LabeledFrame) -> Verdict:
        """The current patch's verdict on a labeled frame (replay, edit mode): no base pass,
        so no trigger check either."""
        probabilities = self.verdict_on_features(frame.features)
        category, confidence = frame_verdict(probabilities, self.spec.threshold, self.spec.pooling)
        return Verdict(frame.frame_id, probabilities, category, confidence, True, (),
                       self.receptive_frame(frame.image.shape[:2]), self.model.version,
                       frame.image.shape[:2],
                       self.pixel_probabilities(probabilities, frame.image))

    def pixel_probabilities(self, probabilities: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """Per-cell probabilities (K, h, w) of a frame (H, W, 3) spread over its pixels
        (K, H, W) and refined by its edges, on the device: what the window shows and the
        benchmark scores. Any thread."""
        with self._stored_plans:
            return self.pixel_maps.spread(probabilities, frame, self.queue)

    @property
    def weights_version(self) -> int:
        """Which published weights are newest (bumped by every kept training step)."""
        return self.model.version

    def verdict_again(self, verdict: Verdict) -> Verdict:
        """The same frame's verdict under the newest weights, from its kept features (no
        base pass): a frozen frame (stop-N-show) shows what training does to it. The old
        verdict comes back when the frame is no longer held. Verdict thread only."""
        kept = self._kept(verdict.frame_id)
        if kept is None or not verdict.triggered:
            return verdict
        image, features = kept
        probabilities = self.verdict_on_features(features)
        category, confidence = frame_verdict(probabilities, self.spec.threshold, self.spec.pooling)
        return replace(verdict, probabilities=probabilities, category=category,
                       confidence=confidence, weights_version=self.model.version,
                       pixels=self.pixel_probabilities(probabilities, image))

    def features_of(self, frame_id: int) -> np.ndarray | None:
        """The patch input kept for an observed or labeled frame."""
        kept = self._kept(frame_id)
        return None if kept is None else kept[1]

    def _kept(self, frame_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(image, patch input) of an observed or labeled frame still kept, else None."""
        held = self.recent.get(frame_id)
        return held if held is not None else self.book.image_and_features(frame_id)

    def features(self, frame: np.ndarray) -> np.ndarray:
        """The patch input (C, h, w) for a frame, without running the patch."""
        frame = _check_frame(frame)
        with self.device_turn:
            pipeline = self.pipelines.get(frame.shape, features_only=True)
            pipeline.run(frame, self.queue, True)
            return pipeline.features.read_into(pipeline.features_np, self.queue)[0].copy()

    def receptive_frame(self, frame_hw) -> tuple[int, int]:
        """(height, width) of one cell's receptive field in frame pixels."""
        size, _ = self.receptive
        in_h, in_w = self.base_input if self.spec.topology == "head" else PIXELS_INPUT
        return (round(size * frame_hw[0] / in_h), round(size * frame_hw[1] / in_w))

    # -- labels ---------------------------------------------------------------------------
    def label(self, frame_id: int, label) -> LabeledFrame:
        """Add a label (LabelDisc or WholeFrameLabel) to an observed or labeled frame."""
        category = getattr(label, "category", None)
        if category is not None and category != ERASE and not 0 <= category < self.spec.outputs:
            raise ValueError(f"category {category} does not exist (the patch has "
                             f"{self.spec.outputs})")
        if isinstance(label, LabelDisc) and not (
                all(math.isfinite(v) for v in (label.x, label.y, label.radius))
                and label.radius >= 0):
            raise ValueError(f"a click needs a finite centre and a finite radius of 0 or more, "
                             f"not ({label.x}, {label.y}) radius {label.radius}")

        frame = self.book.add(frame_id, label, lambda: self.recent.held(frame_id))
        self.trainer.notify_labels(frame_id, AwaitedClick.of(frame, label))
        return frame

    def resume(self, images: dict, labels: list, excluded: set) -> None:
        """Take back a recorded session's frames and active labels, in the order they were
        made (so undo goes on where it stopped). Features are computed once per frame."""
        by_frame: dict[int, LabeledFrame] = {}
        for frame_id, label in labels:
            if frame_id not in by_frame:
                image = _check_frame(images[frame_id])
                by_frame[frame_id] = LabeledFrame(frame_id, image, self.features(image),
                                                  excluded=frame_id in excluded,
                                                  cells=self.model.cells)
            by_frame[frame_id].labels.append(label)
        self.book.take_back(list(by_frame.values()), [frame_id for frame_id, _ in labels])
        if images:
            self.recent.ids_from(max(images) + 1)
        self.trainer.notify_labels(next(iter(by_frame), 0))

    def undo(self) -> bool:
        """Remove the newest label; False when there is none."""
        if not self.book.undo():
            return False
        self.trainer.restart_settled_average()
        return True

    def exclude(self, frame_id: int, excluded: bool = True) -> None:
        """Leave a labeled frame out of training (kept, with its labels), or take it back."""
        self.book.exclude(frame_id, excluded)
        self.trainer.restart_settled_average()   # (what training reads changed, as by an undo)

    # -- categories -----------------------------------------------------------------------
    def rename_category(self, index: int, name: str) -> PatchSpec:
        """A new name for category `index` (ValueError for a name that cannot be one)."""
        spec = renamed(self.spec, index, name)
        self.spec = self.model.spec = spec
        return spec

    def add_category(self, name: str) -> PatchSpec:
        """A new category, trained from the next labels on: the patch's last layer grows by
        one output that starts quiet, every trained weight kept (see core.categories)."""
        spec = with_category(self.spec, name)
        self._grow(spec)
        return spec

    def _grow(self, spec: PatchSpec) -> None:
        """The patch rebuilt with more outputs (core.categories.grown_model), the trainer
        stopped meanwhile and the device plans of the old one dropped."""
        running = self.trainer.running
        self.trainer.stop()
        with self.device_turn:
            self.model = grown_model(self.model, spec, self.base, self.queue)
            self.spec = spec
            self.trainer.use_model(self.model)
            self.pipelines.clear()
        if running:
            self.trainer.start()

    def load_saved_weights(self, weights: np.ndarray, velocity: np.ndarray | None = None):
        """A snapshot's dense weights (and momentum) into the patch. A snapshot saved before
        the newest categories were added has fewer outputs: it is grown to fit."""
        if np.asarray(weights).size != self.model.layout.dense_size:
            weights, velocity = grown_dense(self.model, self.base, np.asarray(weights, np.float32),
                                            velocity)
        load_dense(self, weights, velocity)
        self.trainer.restart_settled_average()

    def labeled_frames(self) -> list:
        """The frames the user labeled (not their tilt-shift copies), oldest first: edit
        mode steps through these."""
        return self.book.labeled_frames()

    def labels_of(self, frame_id: int) -> list:
        """The labels made on a frame, oldest first (a copy; empty when it has none)."""
        return self.book.labels_of(frame_id)

    def label_counts(self) -> np.ndarray:
        """Labeled cells per category over the user's frames (copies not counted)."""
        return self.book.counts(self.spec.outputs)

    # -- snapshots ------------------------------------------------------------------------
    def snapshot(self):
        """A full snapshot (weights, momentum, settings, categories, label counts)."""
        return take_snapshot(self)

    def restore(self, snapshot) -> None:
        restore_snapshot(self, snapshot)

    # -- training -------------------------------------------------------------------------
    def change_settings(self, settings: TrainerSettings) -> TrainerSettings:
        """The user's new trainer settings (hotkeys, fields); they take effect at the next
        step and are never changed behind the user's back."""
        self.trainer.apply(settings)
        return settings

    def set_augmentation(self, ranges: AugmentRanges, flips: bool) -> None:
        """How far rand-tilt-shift copies may differ, and whether they may be mirrored."""
        self.copies.ranges = ranges
        self.trainer.update(flips=flips)

    def train_turns(self, turns: int) -> tuple[list, int]:
        """`turns` of the trainer taken on the caller's thread, with no pacing (a step-by-step
        simulation; the trainer thread must not run): (the losses of the steps that counted,
        the steps thrown away)."""
        trainer = self.trainer
        if trainer.running:
            raise RuntimeError("the trainer thread is running: stop it to train step by step")
        trainer.pace_with_verdicts(False)
        losses, failed = [], 0
        for _ in range(turns):
            before, restores = trainer.status.steps, trainer.status.restores
            trainer.turn()
            if trainer.status.steps > before:
                losses.append(float(trainer.status.last_loss))
            failed += trainer.status.restores - restores
        return losses, failed

    def train_step_plan(self, batch: int, whole_input: bool = False):
        """(a training step's device plan at this batch, a queue of its own): what a
        benchmark times apart from the trainer (it does not touch the trainer's state). The
        trainer's own step shape (a pixels patch's windows), or with `whole_input` a step on
        whole inputs."""
        shape = self.model.feature_shape if whole_input else self.trainer.step_shape
        return self.model.make_train_step(batch, shape), self.device.new_queue()

    def start(self) -> None:
        self.trainer.start()

    def close(self) -> None:
        self.trainer.stop()


def _check_frame(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"a frame must be uint8 RGB (H, W, 3), not {frame.dtype} {frame.shape}")
    if min(frame.shape[:2]) < 16:
        raise ValueError(f"frame {frame.shape[1]}x{frame.shape[0]} is too small")
    return np.ascontiguousarray(frame)
