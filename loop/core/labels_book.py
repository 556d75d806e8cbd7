"""The labels book: every frame the user labeled with its labels, the order they were made
in (for undo), which frames are left out of training, and the rand-tilt-shift copies of
labeled frames. One lock guards it: the window labels, the trainer reads batches and
makes copies, each on its own thread."""
from __future__ import annotations

import threading
import time

import numpy as np

from loop.core.labels import LabeledFrame, label_counts

AUGMENTED_COPIES = 4  # rand-tilt-shift copies kept per labeled frame


class LabelsBook:
    def __init__(self, cells: tuple[int, int]):
        self.frames: list[LabeledFrame] = []   # the trainer reads these under `lock`
        self.lock = threading.Lock()
        self.cells = cells                      # (h, w) of a label map
        self._history: list[tuple[int, int]] = []  # (frame_id, label count before)

    # -- labels ---------------------------------------------------------------------------
    def add(self, frame_id: int, label, held) -> LabeledFrame:
        """`label` on frame `frame_id`; `held()` gives (image, features) of a frame not
        labeled before (KeyError when it is no longer held)."""
        with self.lock:
            frame = self._find(frame_id)
            if frame is None:
                image, features = held()
                frame = LabeledFrame(frame_id, image, features, cells=self.cells)
                self.frames.append(frame)
            self._history.append((frame_id, len(frame.labels)))
            self._drop_copies(frame_id)
            frame.labels.append(label)
            frame.added_at = time.monotonic()
            frame.relabel()
        return frame

    def take_back(self, frames: list[LabeledFrame], order: list[int]) -> None:
        """A recorded session's frames (their labels in place) and the frame of each label
        in the order they were made, so undo goes on where it stopped."""
        counts: dict[int, int] = {}
        for frame_id in order:
            self._history.append((frame_id, counts.get(frame_id, 0)))
            counts[frame_id] = counts.get(frame_id, 0) + 1
        with self.lock:
            for frame in frames:
                frame.relabel()
                self.frames.append(frame)

    def undo(self) -> bool:
        """Remove the newest label; False when there is none."""
        with self.lock:
            if not self._history:
                return False
            frame_id, count = self._history.pop()
            frame = self._find(frame_id)
            self._drop_copies(frame_id)
            del frame.labels[count:]
            frame.relabel()
            if not frame.labels:
                self.frames.remove(frame)
        return True

    def exclude(self, frame_id: int, excluded: bool) -> None:
        with self.lock:
            for frame in self.frames:
                if frame.frame_id == frame_id or frame.augmented_from == frame_id:
                    frame.excluded = excluded

    # -- reading --------------------------------------------------------------------------
    def labeled_frames(self) -> list[LabeledFrame]:
        with self.lock:
            return [f for f in self.frames if f.augmented_from is None]

    def labels_of(self, frame_id: int) -> list:
        with self.lock:
            frame = self._find(frame_id)
            return [] if frame is None else list(frame.labels)

    def features_of(self, frame_id: int) -> np.ndarray | None:
        kept = self.image_and_features(frame_id)
        return None if kept is None else kept[1]

    def image_and_features(self, frame_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        with self.lock:
            frame = self._find(frame_id)
        return None if frame is None else (frame.image, frame.features)

    def counts(self, outputs: int) -> np.ndarray:
        """Labeled cells per category over the user's frames (copies not counted)."""
        with self.lock:
            return label_counts([f for f in self.frames if f.augmented_from is None], outputs)

    # -- rand-tilt-shift copies -----------------------------------------------------------
    def wanting_copies(self, rng) -> tuple[LabeledFrame, list] | None:
        """(frame, its labels now) of a labeled frame with fewer than its share of copies,
        chosen at random; None when every frame has its copies."""
        with self.lock:
            originals = [f for f in self.frames if f.augmented_from is None and not f.excluded
                         and f.labels]
            copies: dict[int, int] = {}
            for f in self.frames:
                if f.augmented_from is not None:
                    copies[f.augmented_from] = copies.get(f.augmented_from, 0) + 1
            wanting = [f for f in originals if copies.get(f.frame_id, 0) < AUGMENTED_COPIES]
            if not wanting:
                return None
            source = wanting[int(rng.integers(len(wanting)))]
            return source, list(source.labels)

    def add_copy(self, copy: LabeledFrame, source: LabeledFrame, labels: list) -> None:
        """A copy made from `source` when it had `labels`; dropped if they changed since."""
        with self.lock:
            if source in self.frames and source.labels == labels:
                self.frames.append(copy)

    def _find(self, frame_id: int) -> LabeledFrame | None:
        return next((f for f in self.frames if f.frame_id == frame_id), None)

    def _drop_copies(self, frame_id: int) -> None:
        """Caller holds the lock: the original's labels changed, its copies are stale."""
        self.frames[:] = [f for f in self.frames if f.augmented_from != frame_id]
