"""Held-out balanced accuracy: how well a patch does on demo frames far from the ones the
user clicks on, scored per output cell against the truth at the cell's centre."""
from __future__ import annotations

from loop.core.engine import LoopCore
from loop.demo.metrics import balanced_accuracy, cell_truth
from loop.demo.scene import DemoScene

HELD_OUT = 24  # frames


class HeldOutSet:
    """The frames' patch inputs, computed once with `core`'s base (frozen, so they serve any
    core on the same base), and their truth per cell."""

    def __init__(self, core: LoopCore, scene: DemoScene, count: int = HELD_OUT):
        frames = scene.held_out(count)
        self.features = [core.features(f.image) for f in frames]
        grid = self.features[0].shape[1:]
        self.truths = [cell_truth(f.truth, *grid) for f in frames]

    def accuracy(self, core: LoopCore) -> float:
        """The balanced accuracy of `core`'s current patch on these frames."""
        predictions = [core.verdict_on_features(f).argmax(axis=0) for f in self.features]
        return balanced_accuracy(self.truths, predictions, core.spec.outputs)
