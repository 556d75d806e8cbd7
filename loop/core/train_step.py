"""One training step of a patch on the device, for a fixed batch shape: upload the batch,
forward, class-weighted masked loss, backward, SGD with momentum and decay, NaN/Inf check.
Everything is enqueued on the trainer's own queue and waited for once."""
from __future__ import annotations

import numpy as np

from loop.core.patch_net import PatchBackward, PatchForward
from patchloop_kernels.flat import FlatTensors
from patchloop_kernels.loss import MaskedSquaredError, WeightedCrossEntropy
from patchloop_kernels.optim import NonfiniteCount, SgdStep
from patchloop_kernels.runtime import Device, Tensor


# Fine-tuned base layers learn at a tenth of the patch's rate and without weight decay:
# they start from good weights, which decay would pull towards zero.
TUNED_RATE = 0.1


class TrainStep:
    def __init__(self, device: Device, arch, params: FlatTensors, grads: FlatTensors,
                 velocity: FlatTensors, batch: int, feature_shape: tuple[int, int, int],
                 loss: str = "cross_entropy"):
        self.batch = batch
        layers = list(arch.layers)
        self.features = Tensor.empty(device, (batch,) + tuple(feature_shape))
        self.forward = PatchForward(device, layers, params, self.features, arch.residuals)
        n, k, h, w = self.forward.logits.shape
        self.squared_error = loss == "squared_error"
        if self.squared_error:
            # The seed's targets: +1 for the category, -1 for background, 0 unlabeled.
            self.labels = Tensor.empty(device, (n, h, w))
            self.class_weights = Tensor.empty(device, (2,))
            self.loss = MaskedSquaredError(device, self.forward.logits, self.labels)
        else:
            self.labels = Tensor.empty(device, (n, h, w), np.int32)
            self.class_weights = Tensor.empty(device, (k,))
            self.loss = WeightedCrossEntropy(device, self.forward.logits, self.labels,
                                             self.class_weights)
        self.backward = PatchBackward(device, layers, params, grads, self.forward,
                                      self.loss.dlogits, arch.residuals)
        self.tuned_sgd = None
        if arch.tuned:
            flats = (params, grads, velocity)
            head = [f.span(f"w{arch.tuned}", f"b{len(layers) - 1}") for f in flats]
            tuned = [f.span("w0", f"b{arch.tuned - 1}") for f in flats]
            self.sgd, self.tuned_sgd = SgdStep(device, *head), SgdStep(device, *tuned)
        else:
            self.sgd = SgdStep(device, params.flat, grads.flat, velocity.flat)
        self.check = NonfiniteCount(device, params.flat, grads.flat)
        self.label_shape = (n, h, w)
        self._loss_np = np.zeros(1, np.float32)
        self._bad_np = np.zeros(1, np.int32)

    def run(self, queue, features: np.ndarray, labels: np.ndarray, class_weights: np.ndarray,
            learning_rate: float, momentum: float, weight_decay: float) -> tuple[float, bool]:
        """Returns (loss, finite). On a non-finite result the caller restores good weights."""
        self.features.write(features, queue, wait=False)
        if self.squared_error:
            labels = np.where(labels < 0, 0.0, np.where(labels > 0, 1.0, -1.0)).astype(np.float32)
        self.labels.write(labels, queue, wait=False)
        self.class_weights.write(class_weights, queue, wait=False)
        self.forward.enqueue(queue)
        self.loss.enqueue(queue)
        self.backward.enqueue(queue)
        self.sgd.enqueue(queue, learning_rate, momentum, weight_decay)
        if self.tuned_sgd is not None:
            self.tuned_sgd.enqueue(queue, learning_rate * TUNED_RATE, momentum, 0.0)
        self.check.enqueue(queue)
        self.loss.loss.read_into(self._loss_np, queue)
        self.check.count.read_into(self._bad_np, queue)
        return float(self._loss_np[0]), int(self._bad_np[0]) == 0
