"""Held-out balanced accuracy: how well a patch does on demo frames far from the ones the
user clicks on, scored per output cell against the truth at the cell's centre, and per
pixel: the verdict spread over the frame's pixels (on the device, the map the window draws)
against the truth of every pixel."""
from __future__ import annotations

from loop.core.engine import LoopCore
from loop.demo.metrics import balanced_accuracy, cell_truth, false_regions, recalls
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
        self.pixel_truths = [f.truth for f in frames]
        self.images = [f.image for f in frames]   # the per-pixel verdict follows their edges

    def accuracy(self, core: LoopCore) -> float:
        """The balanced accuracy per cell of `core`'s current patch on these frames."""
        return self.scores(core)[0]

    def false_regions_per_frame(self, core: LoopCore) -> float:
        """Object regions of `core`'s per-pixel verdict where there is no such object, per
        frame (metrics.false_regions)."""
        return self._false_regions(core, self._pixel_verdicts(core))

    def pixel_recalls(self, core: LoopCore) -> dict[str, float | None]:
        """Per category (by name), the share of its held-out pixels `core`'s per-pixel
        verdict gets right: which category a balanced accuracy below 1 comes from."""
        return self._recalls(core, self._pixel_verdicts(core))

    def final_figures(self, core: LoopCore) -> tuple[float, dict[str, float | None]]:
        """(false_regions_per_frame, pixel_recalls) from one pass over the frames."""
        verdicts = self._pixel_verdicts(core)
        return self._false_regions(core, verdicts), self._recalls(core, verdicts)

    def _false_regions(self, core: LoopCore, verdicts: list) -> float:
        found = sum(false_regions(truth, pixels, core.spec.outputs)
                    for truth, pixels in zip(self.pixel_truths, verdicts))
        return found / len(self.features)

    def _recalls(self, core: LoopCore, verdicts: list) -> dict[str, float | None]:
        found = recalls(self.pixel_truths, verdicts, core.spec.outputs)
        return {category.name: None if recall is None else round(recall, 4)
                for category, recall in zip(core.spec.categories, found)}

    def _pixel_verdicts(self, core: LoopCore) -> list:
        """The per-pixel verdict (category per pixel) of `core`'s patch on each frame."""
        return [core.pixel_probabilities(core.verdict_on_features(features), image).argmax(axis=0)
                for features, image in zip(self.features, self.images)]

    def scores(self, core: LoopCore) -> tuple[float, float]:
        """(per cell, per pixel) balanced accuracy of `core`'s current patch."""
        cells, pixels = [], []
        for features, image in zip(self.features, self.images):
            probabilities = core.verdict_on_features(features)
            cells.append(probabilities.argmax(axis=0))
            pixels.append(core.pixel_probabilities(probabilities, image).argmax(axis=0))
        k = core.spec.outputs
        return (balanced_accuracy(self.truths, cells, k),
                balanced_accuracy(self.pixel_truths, pixels, k))
