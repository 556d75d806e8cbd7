"""Training a patch from a folder of labeled images (the Neural Patches way) on the same core
the live window uses: each image becomes a labeled frame whose every cell is its category,
features come from the frozen base once per image (and per augmented copy), and the online
trainer's steps do the rest, with its class weights and divergence guard."""
from __future__ import annotations

import cv2
import numpy as np

from loop.core.engine import AUGMENTED_COPIES, BASE_INPUT, LoopCore
from loop.core.labels import WholeFrameLabel
from loop.errors import UserError


def read_image(path, size=BASE_INPUT) -> np.ndarray:
    """uint8 RGB at the base's input size. The file is read and checked by the store (a
    regular file, its pixel count from its header under the limit, never a path handed to
    OpenCV); a UserError naming the file says why not."""
    from loop.store.images import read_rgb
    rgb = read_rgb(path)
    return cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def load_image(path, size=BASE_INPUT) -> np.ndarray | None:
    """As read_image, or None when the file is not an image that can be read."""
    try:
        return read_image(path, size)
    except UserError:
        return None


class ExtractionCancelled(Exception):
    """Raised by a progress callback to stop feature extraction (the user cancelled)."""


class FolderTraining:
    def __init__(self, core: LoopCore, train_items: list, held_items: list):
        self.core = core
        self.train_items, self.held_items = train_items, held_items
        self.unreadable: list = []
        self.images: dict[int, np.ndarray] = {}
        self.categories: dict[int, int] = {}
        self.paths: dict[int, str] = {}
        self.held: list[tuple[np.ndarray, int, str]] = []   # (features, category, path)
        self.snapshots: list = []   # full snapshots taken along the way (stop-N-show)

    def extract(self, augment_copies: bool, progress=None) -> None:
        """Features for every image: the training ones into the core, the held-out ones
        kept aside, then the rand-tilt-shift copies. `progress(done, total)` is called as it
        goes, counting base passes (copies included)."""
        copies = AUGMENTED_COPIES * len(self.train_items) if augment_copies else 0
        total, done = len(self.train_items) + len(self.held_items) + copies, 0
        labels = []
        for frame_id, (path, category) in enumerate(self.train_items, 1):
            image = load_image(path)
            done += 1
            if image is None:
                self.unreadable.append(str(path))
                continue
            self.images[frame_id], self.categories[frame_id] = image, category
            self.paths[frame_id] = str(path)
            labels.append((frame_id, WholeFrameLabel(category)))
            if progress:
                progress(done, total)
        self.core.resume(self.images, labels, set())
        for path, category in self.held_items:
            image = load_image(path)
            done += 1
            if image is None:
                self.unreadable.append(str(path))
                continue
            self.held.append((self.core.features(image), category, str(path)))
            if progress:
                progress(done, total)
        if augment_copies:
            while self.core._augment_one():
                done += 1
                if progress:
                    progress(min(done, total), total)

    def steps_per_epoch(self) -> int:
        batch = self.core.trainer.settings.batch_size
        return max(1, -(-len(self.images) // batch))

    def predict(self, features: np.ndarray) -> tuple[int, np.ndarray]:
        probabilities = self.core.verdict_on_features(features)
        means = probabilities.reshape(probabilities.shape[0], -1).mean(axis=1)
        return int(means.argmax()), means

    def held_out_accuracy(self) -> float:
        if not self.held:
            return float("nan")
        right = sum(self.predict(f)[0] == c for f, c, _ in self.held)
        return right / len(self.held)

    def train_accuracy(self, limit: int = 64) -> float:
        with self.core.frames_lock:
            frames = [f for f in self.core.frames if f.augmented_from is None][:limit]
        right = sum(self.predict(f.features)[0] == self.categories[f.frame_id] for f in frames)
        return right / max(1, len(frames))
