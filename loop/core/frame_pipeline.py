"""The device path of one frame size: the base (when the patch needs it) up to where the
patch reads it, the patch's input (a tap, a hypercolumn, or the resized frame for a pixels
patch), and the patch's inference. A features-only pipeline stops at the patch's input:
labeled frames, their tilt-shift copies and folder images need nothing more."""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import pyopencl as cl

from loop.core.patch import PIXELS_INPUT
from loop.core.patch_input import PatchInput, deepest_layer
from patchloop_kernels.image import FramePreprocess
from patchloop_kernels.runtime import Tensor
from patchloop_kernels.guided import GuidedSpread

BASE_INPUT = (240, 320)  # (height, width) the base sees: frames are resized to it on the device
PIPELINES_KEPT = 4   # frame shapes whose device plans are kept (each holds a base plan)
RECENT_FRAMES = 16   # observed frames kept so that a click can label the frame it was made on


class FramePipeline:
    def __init__(self, core, frame_shape, features_only: bool = False):
        device = core.device
        self.base_plan = None
        head = core.spec.topology == "head"
        self.patch_input = None
        # How far the base runs for the patch: its deepest tap (the classes, when asked for,
        # run the rest: BaseForward.classify).
        self.tap_layer = deepest_layer(core.model.arch) if head else None
        if core.base is not None and (head or not features_only):
            h, w = core.base_input
            stop = self.tap_layer if features_only else None
            self.base_plan = core.base.plan(h, w, frame_shape, stop)
        if head:
            self.patch_input = PatchInput(device, self.base_plan, core.model.arch)
            self.features = self.patch_input.features
            self.pixels_input = None
        else:
            self.features = Tensor.empty(device, (1, 3) + PIXELS_INPUT)
            self.pixels_input = FramePreprocess(device, frame_shape, self.features, 127.0, 128.0)
        self.patch = None if features_only else core.model.inference_plan(self.features)
        self.features_np = np.empty(self.features.shape, np.float32)
        if self.patch is not None:  # the verdict over the frame's pixels, along its edges
            k = self.patch.probabilities.shape[1]
            self.pixels = Tensor.empty(device, (k,) + tuple(frame_shape[:2]))
            # The frame as the patch's input uploaded it (the base's, or a pixels patch's
            # own), read again as the guide: a verdict always uploads it there.
            uploaded = self.pixels_input.frame if self.pixels_input is not None \
                else self.base_plan.preprocess.frame
            self.spread = GuidedSpread(device, self.patch.probabilities, self.pixels,
                                       frame=uploaded)

    def enqueue_verdict(self, queue, patch: bool = True) -> "PendingVerdict":
        """Enqueue the patch (after `run`), its probabilities spread over the frame and
        refined by its edges (loop/core/pixel_maps.py, from the device buffers the patch
        and its input wrote), and the reads of both maps and of the patch's input into
        fresh arrays, without waiting. patch=False: the input alone (a patch whose
        triggers did not fire). One wait then finds them all: the device never stands idle
        between the reads while this thread takes its turn back (the interpreter's lock,
        which other threads hold meanwhile)."""
        pending = PendingVerdict(np.empty(self.features.shape[1:], np.float32),
                                 self.patch.probabilities.shape[1:])
        pending.read(self.features, pending.features, queue)
        if patch:
            self.patch.enqueue(queue)
            self.spread.enqueue(queue)
            pending.probabilities = np.empty(self.patch.probabilities.shape[1:], np.float32)
            pending.pixels = np.empty(self.pixels.shape, np.float32)
            pending.read(self.patch.probabilities, pending.probabilities, queue)
            pending.read(self.pixels, pending.pixels, queue)
        return pending

    def run(self, frame: np.ndarray, queue, run_base: bool) -> None:
        if self.base_plan is not None and run_base:
            self.base_plan.run(frame, queue, self.tap_layer)
            if self.patch_input is not None:
                self.patch_input.enqueue(queue)
        if self.pixels_input is not None:
            self.pixels_input.upload(frame, queue)
            self.pixels_input.enqueue(queue)


class PendingVerdict:
    """A verdict's reads from the device, enqueued: `wait` before looking at the arrays."""

    def __init__(self, features: np.ndarray, verdict_shape: tuple):
        self.features = features      # the patch's input (C, h, w)
        self.verdict_shape = tuple(verdict_shape)   # (K, h, w): the patch's cells
        self.probabilities = None     # per cell (K, h, w), when the patch ran
        self.pixels = None            # per pixel (K, H, W), when the patch ran
        self._copies = []

    def read(self, tensor: Tensor, out: np.ndarray, queue) -> None:
        self._copies.append(tensor.read_later(out, queue))

    def wait(self) -> None:
        cl.wait_for_events(self._copies)
        self._copies = []


class FramePipelines:
    """The pipelines of the newest few frame shapes, and the patch's inference on stored
    features: a folder of images of many sizes must not hold a base plan (device memory)
    for each. Cleared when the patch changes shape (a category added)."""

    def __init__(self, core):
        self.core = core
        self._kept: OrderedDict[tuple, FramePipeline] = OrderedDict()
        self._on_features = None   # (input tensor, inference plan)

    def get(self, shape, features_only: bool = False) -> FramePipeline:
        key = (shape, features_only)
        if key in self._kept:
            self._kept.move_to_end(key)
        else:
            self._kept[key] = FramePipeline(self.core, shape, features_only)
            while len(self._kept) > PIPELINES_KEPT:
                self._kept.popitem(last=False)
        return self._kept[key]

    def on_features(self):
        """(input tensor, inference plan) for the patch on stored features."""
        if self._on_features is None:
            model = self.core.model
            features = Tensor.empty(self.core.device, (1,) + model.feature_shape)
            self._on_features = (features, model.inference_plan(features))
        return self._on_features

    def clear(self) -> None:
        self._kept.clear()
        self._on_features = None


class RecentFrames:
    """The newest observed frames with their patch inputs, by frame id: a click labels the
    frame it was made on, which the verdict thread may have left behind meanwhile."""

    def __init__(self):
        self._kept: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()   # the verdict thread keeps, the window's labels read
        self._next_id = 1

    def keep(self, frame: np.ndarray, features: np.ndarray, frame_id: int | None) -> int:
        """Keeps a copy of `frame`; returns its id (the next one when None)."""
        with self._lock:
            frame_id = self._next_id if frame_id is None else frame_id
            self._next_id = max(self._next_id, frame_id + 1)
            self._kept[frame_id] = (frame.copy(), features)
            while len(self._kept) > RECENT_FRAMES:
                self._kept.popitem(last=False)
        return frame_id

    def get(self, frame_id: int):
        """(image, features) of a frame still kept, else None."""
        with self._lock:
            return self._kept.get(frame_id)

    def held(self, frame_id: int):
        """(image, features); KeyError when the frame is no longer kept."""
        kept = self.get(frame_id)
        if kept is None:
            raise KeyError(f"frame {frame_id} is no longer held; label a newer frame")
        return kept

    def ids_from(self, first: int) -> None:
        """New frames get ids from `first` on (a resumed session's frames keep theirs)."""
        with self._lock:
            self._next_id = max(self._next_id, first)
