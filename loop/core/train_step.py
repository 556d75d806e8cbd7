"""One training step of a patch on the device, for a fixed batch shape: upload the batch,
forward, class-weighted masked loss, backward, gradient-norm clip, SGD with momentum and
decay, NaN/Inf check. Everything is enqueued on the trainer's own queue and waited for once.

The clip bounds how far one hard batch (new or contradicting labels) can move the weights,
so such a batch is trained on, not refused."""
from __future__ import annotations

import numpy as np
import pyopencl as cl

from loop.core.patch_plans import PatchBackward, PatchForward
from loop.core.settings import MOMENTUM_STEPPING
from patchloop_kernels.flat import FlatTensors
from patchloop_kernels.loss import MaskedSquaredError, WeightedCrossEntropy
from patchloop_kernels.optim import GradientClip, NonfiniteCount, SgdStep
from patchloop_kernels.runtime import Device, Tensor
from patchloop_kernels.standardize import ChannelAffine


# Fine-tuned base layers learn at a tenth of the patch's rate and without weight decay:
# they start from good weights, which decay would pull towards zero.
TUNED_RATE = 0.1
# The largest gradient norm a step applies as is unless told (TrainerSettings.max_grad_norm
# tells the trainer's steps). Measured on the demo scene (20 alternating clicks, 10 steps
# each, momentum 0.9): median 0.4, 90th percentile 7, the first steps of a new patch 35-56.
# The cross-entropy's gradient per cell is bounded whatever the loss, so a hard batch's norm
# is of that order too: the clip trims the largest steps without slowing settled training.
MAX_GRAD_NORM = MOMENTUM_STEPPING["max_grad_norm"]


class StepResult:
    """What one step measured: the batch's loss before the step, the gradient norm before
    clipping, and whether every weight and gradient stayed finite."""

    def __init__(self, loss: float, grad_norm: float, finite: bool):
        self.loss, self.grad_norm, self.finite = loss, grad_norm, finite

    def __repr__(self) -> str:
        return f"StepResult(loss={self.loss}, grad_norm={self.grad_norm}, finite={self.finite})"


class TrainStep:
    def __init__(self, device: Device, arch, params: FlatTensors, grads: FlatTensors,
                 velocity: FlatTensors, batch: int, feature_shape: tuple[int, int, int],
                 loss: str = "cross_entropy", standardization=None):
        self.batch = batch
        layers = list(arch.layers)
        self.features = Tensor.empty(device, (batch,) + tuple(feature_shape))
        # The uploaded features standardised in place (input_standardization.py).
        self._standardization = standardization
        self.standardize = None if standardization is None else ChannelAffine(
            device, self.features, standardization.scale, standardization.shift)
        self.forward = PatchForward(device, layers, params, self.features, arch.residuals)
        n, k, h, w = self.forward.logits.shape
        self.squared_error = loss == "squared_error"
        if self.squared_error:
            # Squared-error targets: +1 for the category, -1 for background, 0 unlabeled.
            self.labels = Tensor.empty(device, (n, h, w))
            self.class_weights = Tensor.empty(device, (2,))
            self.loss = MaskedSquaredError(device, self.forward.logits, self.labels)
        else:
            self.labels = Tensor.empty(device, (n, h, w), np.int32)
            self.class_weights = Tensor.empty(device, (k,))
            self.logit_offsets = Tensor.from_numpy(device, np.zeros(k, np.float32))
            self.loss = WeightedCrossEntropy(device, self.forward.logits, self.labels,
                                             self.class_weights, self.logit_offsets)
        self.backward = PatchBackward(device, layers, params, grads, self.forward,
                                      self.loss.dlogits, arch.residuals)
        self.clip = GradientClip(device, grads.flat, MAX_GRAD_NORM)
        self._max_norm = MAX_GRAD_NORM
        factor = self.clip.factor
        self.tuned_sgd = None
        if arch.tuned:
            flats = (params, grads, velocity)
            head = [f.span(f"w{arch.tuned}", f"b{len(layers) - 1}") for f in flats]
            tuned = [f.span("w0", f"b{arch.tuned - 1}") for f in flats]
            self.sgd = SgdStep(device, *head, factor)
            self.tuned_sgd = SgdStep(device, *tuned, factor)
        else:
            self.sgd = SgdStep(device, params.flat, grads.flat, velocity.flat, factor)
        self.check = NonfiniteCount(device, params.flat, grads.flat)
        self.label_shape = (n, h, w)
        self._loss_np = np.zeros(1, np.float32)
        self._bad_np = np.zeros(1, np.int32)
        self._factor_np = np.zeros(2, np.float32)

    def run(self, queue, features: np.ndarray, labels: np.ndarray, class_weights: np.ndarray,
            learning_rate: float, momentum: float, weight_decay: float,
            logit_offsets: np.ndarray | None = None,
            max_grad_norm: float = MAX_GRAD_NORM) -> StepResult:
        """One step. On a non-finite result the caller restores good weights.
        `logit_offsets` (one per category, cross-entropy only) shift the logits in the loss
        alone: see OnlineTrainer's object prior. None keeps the ones the last step used.
        A gradient whose norm is over `max_grad_norm` is scaled down to it."""
        if max_grad_norm != self._max_norm:
            self.clip.set_max_norm(max_grad_norm)
            self._max_norm = max_grad_norm
        self.features.write(features, queue, wait=False)
        if self.standardize is not None and not self._standardization.identity:
            self.standardize.enqueue(queue)   # (raw features: 2.8 ms a batch saved)
        if logit_offsets is not None and not self.squared_error:
            self.logit_offsets.write(np.asarray(logit_offsets, np.float32), queue, wait=False)
        if self.squared_error:
            labels = np.where(labels < 0, 0.0, np.where(labels > 0, 1.0, -1.0)).astype(np.float32)
        self.labels.write(labels, queue, wait=False)
        self.class_weights.write(class_weights, queue, wait=False)
        self.forward.enqueue(queue)
        self.loss.enqueue(queue)
        self.backward.enqueue(queue)
        self.clip.enqueue(queue)
        self.sgd.enqueue(queue, learning_rate, momentum, weight_decay)
        if self.tuned_sgd is not None:
            self.tuned_sgd.enqueue(queue, learning_rate * TUNED_RATE, momentum, 0.0)
        self.check.enqueue(queue)
        # One wait for the three reads: the device is not left idle between them while this
        # thread takes the interpreter back from the verdicts' and the window's threads.
        copies = [self.loss.loss.read_later(self._loss_np, queue),
                  self.clip.factor.read_later(self._factor_np, queue),
                  self.check.count.read_later(self._bad_np, queue)]
        cl.wait_for_events(copies)
        return StepResult(float(self._loss_np[0]), float(self._factor_np[1]),
                          int(self._bad_np[0]) == 0)

    def frame_logits(self, queue, index: int) -> np.ndarray:
        """The newest forward pass's logits (K, h, w) of the batch's frame `index`: the
        step's own (before its update), or `loss_now`'s after it."""
        out = np.empty(self.forward.logits.shape[1:], np.float32)
        return self.forward.logits.read_part_into(out, index * out.size, queue)

    def warm_up(self, queue) -> None:
        """Runs the plan once with no effect: no labels (zero loss, zero gradients), rate 0,
        momentum 1 (the velocity kept as it is). The first launch of each kernel costs
        more (measured: a hypercolumn step's first run 63 ms, later ones 25 ms), and the
        first step is the one a click waits for."""
        features = np.zeros(self.features.shape, np.float32)
        labels = np.full(self.label_shape, -1, np.int32)
        weights = np.ones(self.class_weights.shape, np.float32)
        self.run(queue, features, labels, weights, 0.0, 1.0, 0.0)

    def loss_now(self, queue) -> float:
        """The loss of the batch the last `run` trained on, under the weights as they are now
        (after that step): the check that a step did not make its own batch much worse."""
        self.forward.enqueue(queue)
        self.loss.enqueue(queue)
        self.loss.loss.read_into(self._loss_np, queue)
        return float(self._loss_np[0])
