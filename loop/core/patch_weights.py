"""A patch's weights on the device, in the copies that let training and verdicts run at
once without ever seeing half-updated weights:

  training   -- what the trainer's SGD updates in place (its own queue)
  published  -- the last finished step's weights, copied under a lock after each step (or,
                for steady verdicts, their running average)
  inference  -- what verdicts read; refreshed from `published` between frames
  last_good  -- the last weights known finite, restored when training diverges

A head on base features trains its first layer on standardised inputs
(input_standardization.py): `training` and `last_good` hold that layer for standardised
inputs, `published` and `inference` the same function on raw inputs (folded at each
publish), so snapshots, sessions, exports and verdicts read raw-input weights as before.
"""
from __future__ import annotations

import threading

import numpy as np
import pyopencl as cl

from loop.core.input_standardization import Standardization, standardizes
from loop.core.patch import PatchSpec
from loop.core.patch_arch import PatchArch
from loop.core.patch_layers import parameter_layout
from loop.core.patch_plans import PatchForward
from loop.core.train_step import TrainStep
from patchloop_kernels.flat import FlatTensors
from patchloop_kernels.optim import RunningAverage
from patchloop_kernels.runtime import Device, Tensor
from patchloop_kernels.softmax import prepare_score_probabilities, prepare_softmax


def _copy(queue, dst: FlatTensors, src: FlatTensors) -> None:
    cl.enqueue_copy(queue, dst.flat.buffer, src.flat.buffer)


class PatchWeights:
    def __init__(self, device: Device, spec: PatchSpec, arch: PatchArch,
                 feature_size: tuple[int, int], initial: dict | None = None):
        self.device = device
        self.spec = spec
        self.arch = arch
        self.feature_shape = (arch.input_channels,) + tuple(feature_size)
        cells = tuple(feature_size)
        for g in arch.layers:
            cells = g.output_size(*cells)
        self.cells = cells  # (h, w) of the verdict's grid
        self.layers = list(arch.layers)
        self.layout = parameter_layout(device, self.layers)
        flat = self.layout.pack(initial or arch.initial_parameters(spec.seed))
        self.training = FlatTensors(device, self.layout, flat)
        self.published = FlatTensors(device, self.layout, flat)
        self.inference = FlatTensors(device, self.layout, flat)
        self.last_good = FlatTensors(device, self.layout, flat)
        self.grads = FlatTensors(device, self.layout)
        self.velocity = FlatTensors(device, self.layout)
        self.standardization = None
        self._folded = None   # the training weights read on raw inputs (publish's source)
        if standardizes(arch):
            self.standardization = Standardization(device, arch, self.layout)
            self._folded = FlatTensors(device, self.layout, flat)
        self._average = RunningAverage(device, self.published.flat,
                                       (self._folded or self.training).flat)
        # Weights no step has trained yet (a new patch, or one started afresh): taking new
        # input statistics need not keep the function they compute.
        self.fresh = initial is None
        self.version = 0            # bumped by each publish
        self._inference_version = 0
        self._inference_copy = None   # the event of the newest copy into `inference`
        self._lock = threading.Lock()

    # -- trainer side ---------------------------------------------------------------------
    def make_train_step(self, batch: int, input_shape: tuple[int, ...] | None = None) -> TrainStep:
        """A step's plan for `batch` inputs of `input_shape` (default: the patch's input)."""
        return TrainStep(self.device, self.arch, self.training, self.grads, self.velocity,
                         batch, input_shape or self.feature_shape, self.spec.loss,
                         self.standardization)

    def _training_on_raw_inputs(self, queue) -> FlatTensors:
        """The training weights as they read raw inputs (for the verdicts)."""
        if self.standardization is None:
            return self.training
        _copy(queue, self._folded, self.training)
        self.standardization.fold(queue, self._folded, self.training)
        return self._folded

    def publish(self, queue, average_rate: float | None = None) -> None:
        """After a finite step: the training weights become the last good, and the published
        (what verdicts, snapshots and exports read), or with `average_rate` move the published
        that far towards them: a running average of the weights (the training weights keep
        training as they are)."""
        with self._lock:
            self._inference_copied()
            source = self._training_on_raw_inputs(queue)
            if average_rate is None:
                _copy(queue, self.published, source)
            else:
                self._average.enqueue(queue, average_rate)
            _copy(queue, self.last_good, self.training)
            queue.finish()
            self.version += 1
        self.fresh = False

    def standardize(self, mean: np.ndarray, spread: np.ndarray, queue) -> None:
        """Train the first layer on inputs standardised by these statistics from the next
        step on. Trained weights keep the function they compute (the training weights are
        rewritten for the new inputs; the published stay as they are); fresh weights keep
        their values, now read on standardised inputs, and are published so."""
        if self.standardization is None:
            return
        with self._lock:
            self._inference_copied()
            if self.fresh:
                self.standardization.set(mean, spread, queue)
                _copy(queue, self.published, self._training_on_raw_inputs(queue))
                self.version += 1
            else:
                # Between steps the training weights equal the last good ones (a kept step
                # copies them there, an undone one back): one conversion serves both.
                raw = self._training_on_raw_inputs(queue)
                self.standardization.set(mean, spread, queue)
                _copy(queue, self.training, raw)
                self.standardization.fold(queue, self.training, raw, unfold=True)
                _copy(queue, self.last_good, self.training)
            # Velocity is a sum of gradients in the old coordinates.
            self._zero_velocity(queue)
            queue.finish()

    def trained_state(self, queue) -> np.ndarray:
        """A host copy of the training weights as they read raw inputs: what the next
        publish hands the verdicts (without steady verdicts)."""
        with self._lock:
            weights = self._training_on_raw_inputs(queue).flat.numpy(queue)
        return weights

    def restore_last_good(self, queue) -> None:
        with self._lock:
            _copy(queue, self.training, self.last_good)
            self._zero_velocity(queue)
            queue.finish()

    def clear_momentum(self, queue) -> None:
        with self._lock:
            self._zero_velocity(queue)
            queue.finish()

    def start_afresh(self, seed: int, queue) -> None:
        """New initial weights (another seed), published at once; the trainer's way out of a
        patch that no longer learns."""
        weights = self.layout.pack(self.arch.initial_parameters(seed))
        with self._lock:
            self._inference_copied()
            for copy in (self.training, self.last_good):
                copy.flat.write(weights, queue)
            self._zero_velocity(queue)
            raw = self._training_on_raw_inputs(queue)
            for copy in (self.published, self.inference):
                _copy(queue, copy, raw)
            queue.finish()
            self.version += 1
        self.fresh = True

    def _zero_velocity(self, queue) -> None:
        cl.enqueue_fill_buffer(queue, self.velocity.flat.buffer, np.float32(0), 0,
                               self.velocity.flat.nbytes)

    # -- verdict side ---------------------------------------------------------------------
    def inference_plan(self, features: Tensor) -> "PatchInference":
        return PatchInference(self, features)

    def refresh_inference(self, queue) -> int:
        """Take the newest published weights for the next verdict (enqueued on the verdict's
        queue, ahead of it); returns their version. Nothing waits here: a publish finishes
        its writes before it counts a new version, and the next write of the published or
        inference weights waits for this copy first (`_inference_copied`). (Waiting here
        left the device idle until this thread had the interpreter back, before every
        verdict after a step.)"""
        if self.version != self._inference_version:
            with self._lock:
                self._inference_copy = cl.enqueue_copy(queue, self.inference.flat.buffer,
                                                       self.published.flat.buffer)
                self._inference_version = self.version
        return self._inference_version

    def _inference_copied(self) -> None:
        """Before the published or inference weights are written (under the lock): the
        verdicts' newest copy of them has been made."""
        if self._inference_copy is not None:
            self._inference_copy.wait()
            self._inference_copy = None

    # -- snapshots ------------------------------------------------------------------------
    def state(self, queue) -> dict[str, np.ndarray]:
        """Host copies of the published weights and the optimizer's velocity."""
        with self._lock:
            weights = self.published.flat.numpy(queue)
            velocity = self.velocity.flat.numpy(queue)
        return {"weights": weights, "velocity": velocity}

    def load_state(self, state: dict[str, np.ndarray], queue) -> None:
        weights = np.asarray(state["weights"], np.float32)
        velocity = np.asarray(state.get("velocity", np.zeros_like(weights)), np.float32)
        if weights.shape != (self.layout.size,) or velocity.shape != weights.shape:
            raise ValueError(f"snapshot holds {weights.size} weights; this patch has "
                             f"{self.layout.size}")
        with self._lock:
            self._inference_copied()
            for copy in (self.training, self.published, self.inference, self.last_good):
                copy.flat.write(weights, queue)
            if self.standardization is not None:   # the training copies read standardised
                _copy(queue, self._folded, self.published)
                self.standardization.fold(queue, self.training, self._folded, unfold=True)
                _copy(queue, self.last_good, self.training)
            self.velocity.flat.write(velocity, queue)
            queue.finish()
            self.version += 1
        self.fresh = False

    def weights(self, queue) -> dict[str, np.ndarray]:
        """The published weights by layer name (w0, b0, ...), for export and tests."""
        return self.layout.unpack(self.state(queue)["weights"])


class PatchInference:
    """The patch's forward at batch 1 on the verdict queue, with softmax per cell."""

    def __init__(self, model: PatchWeights, features: Tensor):
        self.forward = PatchForward(model.device, model.layers, model.inference, features,
                                    model.arch.residuals)
        n, _, h, w = self.forward.logits.shape
        self.probabilities = Tensor.empty(model.device, (n, model.spec.outputs, h, w))
        if model.spec.loss == "squared_error":
            self.softmax = prepare_score_probabilities(model.device, self.probabilities,
                                                       self.forward.logits)
        else:
            self.softmax = prepare_softmax(model.device, self.probabilities, self.forward.logits)
        self._host = np.empty(self.probabilities.shape, np.float32)

    def enqueue(self, queue) -> None:
        self.forward.enqueue(queue)
        self.softmax.enqueue(queue)

    def read(self, queue) -> np.ndarray:
        """float32 (K, h, w), after the queue ran the forward."""
        return self.probabilities.read_into(self._host, queue)[0].copy()
