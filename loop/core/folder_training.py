"""Training a patch from a folder of labeled images (the Neural Patches way) on the same core
the live window uses: each image becomes a labeled frame whose every cell is its category.

Features come from the frozen base once per image and per tilt-shift copy, shard by shard
(`extract_shard`, on this machine or a cluster's worker), into a feature store on disk laid
out by an `ExtractionPlan`. Training streams from the store: a pool of rows (a bounded
number of bytes, whatever the folder's size) becomes the core's labeled frames, the online
trainer's steps sample their batches from it (with its class weights and divergence guard),
and the next pool of a shuffled pass replaces it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loop.core.augment import AugmentRanges, augment
from loop.core.engine import LoopCore
from loop.core.labels import LabeledFrame, WholeFrameLabel

SHARD_ITEMS = 16         # images per shard: the unit of extraction, commit and retry
POOL_BYTES = 128 << 20   # features held in memory for training at a time


class ExtractionCancelled(Exception):
    """Raised by a progress callback to stop feature extraction (the user cancelled)."""


@dataclass(frozen=True)
class AugmentSettings:
    """How the tilt-shift copies are made: copy j of image i from a generator seeded by
    (seed, i, j), so a copy is the same on any machine, in any order."""

    copies: int = 0
    ranges: AugmentRanges = AugmentRanges()
    flips: bool = False
    seed: int = 0


@dataclass(frozen=True)
class ExtractionPlan:
    """The feature store's rows: each training image followed by its copies, then the
    held-out images; shards of `shard_items` images in that order, each a run of rows."""

    train_items: tuple   # (path, category index)
    held_items: tuple
    augment: AugmentSettings
    shard_items: int = SHARD_ITEMS

    @property
    def items(self) -> tuple:
        return self.train_items + self.held_items

    def rows_of(self, item: int) -> range:
        per = 1 + self.augment.copies
        if item < len(self.train_items):
            return range(item * per, (item + 1) * per)
        first = len(self.train_items) * per + item - len(self.train_items)
        return range(first, first + 1)

    @property
    def total_rows(self) -> int:
        return self.rows_of(len(self.items) - 1).stop if self.items else 0

    @property
    def shard_count(self) -> int:
        return -(-len(self.items) // self.shard_items)

    def shard_images(self, shard: int) -> range:
        return range(shard * self.shard_items,
                     min(len(self.items), (shard + 1) * self.shard_items))

    def shard_rows(self, shard: int) -> range:
        images = self.shard_images(shard)
        return range(self.rows_of(images.start).start, self.rows_of(images.stop - 1).stop)

    def row_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """int32 category, int32 image index and int8 copy number (0: the image) per row."""
        category = np.empty(self.total_rows, np.int32)
        item = np.empty(self.total_rows, np.int32)
        copy = np.empty(self.total_rows, np.int8)
        for i, (_, c) in enumerate(self.items):
            rows = self.rows_of(i)
            category[rows.start:rows.stop], item[rows.start:rows.stop] = c, i
            copy[rows.start:rows.stop] = np.arange(len(rows))
        return category, item, copy


@dataclass
class ShardFeatures:
    shard: int
    features: np.ndarray   # float32 (rows, C, h, w): the shard's rows in plan order
    readable: np.ndarray   # uint8 (rows,): 0 where the image could not be read (zeros)


def copy_image(image: np.ndarray, item: int, copy: int, category: int,
               settings: AugmentSettings) -> np.ndarray:
    """Tilt-shift copy `copy` (1, 2, ...) of image `item`: the same wherever it is made."""
    rng = np.random.default_rng([settings.seed, item, copy])
    return augment(image, [WholeFrameLabel(category)], rng, settings.flips, settings.ranges)[0]


def extract_shard(core: LoopCore, plan: ExtractionPlan, shard: int, images: list) -> ShardFeatures:
    """The features of one shard's rows, on `core`'s base (the OpenCL kernels); `images`
    holds each of its images (uint8 RGB at the base's input size, decoded by the store), or
    None for one that could not be read."""
    rows = plan.shard_rows(shard)
    features = np.zeros((len(rows),) + core.model.feature_shape, np.float32)
    readable = np.zeros(len(rows), np.uint8)
    for item, image in zip(plan.shard_images(shard), images):
        if image is None:
            continue
        category = plan.items[item][1]
        for row in plan.rows_of(item):
            copy = row - plan.rows_of(item).start
            shown = image if copy == 0 else copy_image(image, item, copy, category, plan.augment)
            features[row - rows.start] = core.features(shown)
            readable[row - rows.start] = 1
    return ShardFeatures(shard, features, readable)


class FolderTraining:
    """Training and held-out evaluation streamed from a filled feature store (`rows`:
    read_rows(sorted row indices) -> float32 (n, C, h, w), and `readable`, uint8 per row)."""

    def __init__(self, core: LoopCore, plan: ExtractionPlan, rows, load_image,
                 pool_bytes: int = POOL_BYTES):
        self.core, self.plan, self.rows = core, plan, rows
        self.load_image = load_image   # (path, (height, width)) -> uint8 RGB, or None
        self.category, self.item, self.copy = plan.row_table()
        readable = np.asarray(rows.readable, bool)
        n_train = plan.rows_of(len(plan.train_items)).start if plan.held_items else \
            plan.total_rows
        is_train = np.arange(plan.total_rows) < n_train
        self.train_rows = np.flatnonzero(readable & is_train)
        self.held_rows = np.flatnonzero(readable & ~is_train)
        self.images = int((readable & is_train & (self.copy == 0)).sum())  # readable originals
        self.unreadable = [str(plan.items[i][0]) for i in
                           np.flatnonzero(~readable & (self.copy == 0))]
        row_bytes = int(np.prod(core.model.feature_shape)) * 4
        self.pool_rows = max(core.trainer.settings.batch_size, pool_bytes // row_bytes)
        self.snapshots: list = []   # full snapshots taken along the way (stop-N-show)
        self._order = np.random.default_rng(core.spec.seed)
        self._pending: list[np.ndarray] = []
        self._steps_left = 0
        self._blank = np.broadcast_to(np.zeros((1, 1, 1), np.uint8), core.base_input + (3,))

    def steps_per_epoch(self) -> int:
        batch = self.core.trainer.settings.batch_size
        return max(1, -(-self.images // batch))

    def step(self) -> bool:
        """One training step on the current pool, moving to the next pool (and at the end of
        a pass, a new shuffled pass) when this one has had its share of steps."""
        if self._steps_left <= 0:
            self._next_pool()
        self._steps_left -= 1
        return self.core.trainer.step()

    def _next_pool(self) -> None:
        if not self._pending:
            order = self._order.permutation(self.train_rows)
            self._pending = [order[i:i + self.pool_rows]
                             for i in range(0, len(order), self.pool_rows)][::-1]
        pool = np.sort(self._pending.pop())
        share = len(pool) / max(1, len(self.train_rows))
        self._steps_left = max(1, round(self.steps_per_epoch() * share))
        frames = [self._frame(row, features) for row, features in
                  zip(pool, self._read(pool))]
        with self.core.frames_lock:
            self.core.frames[:] = frames

    def _frame(self, row: int, features: np.ndarray) -> LabeledFrame:
        """A pool row as the trainer's labeled frame: the image itself is not kept (a blank
        of its size carries the label's geometry); picture_of brings it back to be shown."""
        item, copy = int(self.item[row]), int(self.copy[row])
        frame = LabeledFrame(item + 1 if copy == 0 else -(row + 1), self._blank, features,
                             [WholeFrameLabel(int(self.category[row]))],
                             augmented_from=None if copy == 0 else item + 1,
                             cells=self.core.model.cells)
        frame.relabel()
        return frame

    def _read(self, rows: np.ndarray):
        for start in range(0, len(rows), self.pool_rows):
            yield from self.rows.read_rows(rows[start:start + self.pool_rows])

    def picture_of(self, frame: LabeledFrame) -> np.ndarray | None:
        """What a pool frame shows: its image read again from the folder (a copy made
        again), or None when the file can no longer be read."""
        row = self.plan.rows_of(frame.frame_id - 1).start if frame.frame_id > 0 \
            else -frame.frame_id - 1
        item, copy = int(self.item[row]), int(self.copy[row])
        image = self.load_image(self.plan.items[item][0], self.core.base_input)
        if image is None or copy == 0:
            return image
        return copy_image(image, item, copy, int(self.category[row]), self.plan.augment)

    def training_images(self):
        """(frame id, image) of each readable training image, read again from the folder
        one at a time (the session's frames); one gone since its features were taken comes
        back grey, so that its label keeps its frame."""
        for row in self.train_rows[self.copy[self.train_rows] == 0]:
            item = int(self.item[row])
            image = self.load_image(self.plan.items[item][0], self.core.base_input)
            yield item + 1, np.full(self.core.base_input + (3,), 128, np.uint8) \
                if image is None else image

    def predict(self, features: np.ndarray) -> tuple[int, np.ndarray]:
        probabilities = self.core.verdict_on_features(features)
        means = probabilities.reshape(probabilities.shape[0], -1).mean(axis=1)
        return int(means.argmax()), means

    def held_verdicts(self):
        """(true category, predicted category, image path) of each held-out image."""
        for row, features in zip(self.held_rows, self._read(self.held_rows)):
            yield (int(self.category[row]), self.predict(features)[0],
                   str(self.plan.items[int(self.item[row])][0]))

    def held_out_accuracy(self) -> float:
        if not len(self.held_rows):
            return float("nan")
        return sum(truth == said for truth, said, _ in self.held_verdicts()) / len(self.held_rows)

    def train_accuracy(self, limit: int = 64) -> float:
        with self.core.frames_lock:
            frames = [f for f in self.core.frames if f.augmented_from is None][:limit]
        right = sum(self.predict(f.features)[0] == f.label_map.max() for f in frames)
        return right / max(1, len(frames))
