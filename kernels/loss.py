"""Launchers for loss.cl: masked losses over label maps, the loss left on the device."""
from __future__ import annotations

import numpy as np

from .runtime import Device, Launch, Plan, Tensor


class _MaskedLoss(Plan):
    """Per-cell pass, reduction, gradient scaling. `loss` (1 float) and `dlogits` stay on the
    device so the trainer reads the loss without an extra wait."""

    def _finish(self, device: Device, cells: int) -> None:
        self.cell_loss = Tensor.empty(device, (cells,))
        self.cell_weight = Tensor.empty(device, (cells,))
        self.loss = Tensor.empty(device, (1,))
        self.scale = Tensor.empty(device, (1,))

    def _reduce(self, device: Device, cells: int) -> None:
        self.add(Launch.prepare(device, "loss", "loss_reduce", (1,), None,
                                [self.loss, self.scale, self.cell_loss, self.cell_weight, cells]))
        self.add(Launch.prepare(device, "loss", "loss_scale_gradient",
                                (-(-self.dlogits.size // 16),), None,
                                [self.dlogits, self.scale, self.dlogits.size]))


class WeightedCrossEntropy(_MaskedLoss):
    """Mean of w[y] * -log softmax(logits + offsets)[y] over labeled cells, weighted by w[y].
    logits (N, C, H, W) float, labels (N, H, W) int32 with -1 = unlabeled, weights (C,),
    logit offsets (C,) (logit adjustment, in the loss only; zeros when not given)."""

    def __init__(self, device: Device, logits: Tensor, labels: Tensor, class_weights: Tensor,
                 logit_offsets: Tensor | None = None):
        super().__init__()
        n, c, h, w = logits.shape
        if labels.shape != (n, h, w) or labels.dtype != np.int32:
            raise ValueError(f"labels must be int32 {(n, h, w)}, not {labels.dtype} {labels.shape}")
        if class_weights.shape != (c,):
            raise ValueError(f"class weights must have shape ({c},), not {class_weights.shape}")
        if logit_offsets is None:
            logit_offsets = Tensor.from_numpy(device, np.zeros(c, np.float32))
        if logit_offsets.shape != (c,):
            raise ValueError(f"logit offsets must have shape ({c},), not {logit_offsets.shape}")
        self.logit_offsets = logit_offsets
        self._finish(device, n * h * w)
        self.dlogits = Tensor.empty(device, logits.shape)
        blocks = -(-h * w // 8)
        self.add(Launch.prepare(device, "loss", "cross_entropy_cells", (blocks, n),
                                (min(blocks, 64), 1),
                                [self.dlogits, self.cell_loss, self.cell_weight, logits, labels,
                                 class_weights, logit_offsets, c, h * w]))
        self._reduce(device, n * h * w)


class MaskedSquaredError(_MaskedLoss):
    """The masked squared-error loss: sum((p - t)^2 |t|) / sum(|t|), targets in {-1, 0, +1}, 0 = unlabeled.
    prediction (N, 1, H, W), targets float (N, H, W)."""

    def __init__(self, device: Device, prediction: Tensor, targets: Tensor):
        super().__init__()
        n, c, h, w = prediction.shape
        if c != 1 or targets.size != n * h * w:
            raise ValueError(f"masked squared error wants one channel and (N, H, W) targets, "
                             f"not {prediction.shape} and {targets.shape}")
        self._finish(device, n * h * w)
        self.dlogits = Tensor.empty(device, prediction.shape)
        self.add(Launch.prepare(device, "loss", "masked_squared_error_cells", (n * h * w,), None,
                                [self.dlogits, self.cell_loss, self.cell_weight, prediction,
                                 targets, n * h * w]))
        self._reduce(device, n * h * w)
