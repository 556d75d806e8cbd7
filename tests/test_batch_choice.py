"""A training batch: new labels first, every labeled category in it, no frame twice."""
import random

import numpy as np

from loop.core.batch_choice import choose_batch
from loop.core.labels import ERASE, LabelDisc, LabeledFrame, label_counts


def _frame(frame_id: int, categories) -> LabeledFrame:
    discs = [LabelDisc(8 + 12 * i, 8 + 12 * i, 3, c) for i, c in enumerate(categories)]
    frame = LabeledFrame(frame_id, np.zeros((64, 64, 3), np.uint8),
                         np.zeros((4, 8, 8), np.float32), discs)
    frame.relabel()
    return frame


def test_random_frame_sets_give_batches_with_every_category_and_the_new_frames_first():
    rng = np.random.default_rng(0)
    for trial in range(400):
        k = int(rng.integers(2, 6))
        frames = [_frame(i, rng.choice(k, int(rng.integers(1, 3)), replace=False).tolist())
                  for i in range(int(rng.integers(1, 40)))]
        picked = min(len(frames), int(rng.integers(0, 4)))
        fresh = [int(i) for i in rng.choice(len(frames), picked, replace=False)]
        size = int(rng.integers(1, 20))
        batch = choose_batch(frames, fresh, size, random.Random(trial))
        ids = [f.frame_id for f in batch]
        assert len(ids) == len(set(ids)) == min(size, len(frames))
        assert ids[:len(fresh)] == list(reversed(fresh))[:size]
        labeled = set().union(*(f.categories for f in frames))
        held = set().union(*(f.categories for f in batch))
        if size >= len(fresh) + len(labeled):
            assert held == labeled, (trial, held, labeled)


def test_a_category_labeled_on_one_frame_of_many_is_in_every_batch():
    frames = [_frame(i, [0, 1]) for i in range(60)] + [_frame(60, [2])]
    rng = random.Random(1)
    assert all(any(f.frame_id == 60 for f in choose_batch(frames, [], 16, rng))
               for _ in range(200))


def test_categories_follow_the_labels():
    frame = _frame(1, [0, 2])
    assert frame.categories == {0, 2}
    frame.labels.append(LabelDisc(40, 40, 3, 1))
    frame.relabel()
    assert frame.categories == {0, 1, 2}


def test_cell_counts_follow_the_labels_and_match_a_fresh_count():
    rng = np.random.default_rng(3)
    for trial in range(200):
        frame = _frame(trial, rng.choice(4, int(rng.integers(1, 4)), replace=False).tolist())
        for _ in range(int(rng.integers(0, 4))):   # more clicks, erasures among them
            x, y, radius = (float(v) for v in rng.uniform(0, [64, 64, 20]))
            frame.labels.append(LabelDisc(x, y, radius, int(rng.choice([ERASE, 0, 1, 2, 4]))))
            frame.relabel()
        labeled = frame.label_map[frame.label_map >= 0]
        categories = int(rng.integers(1, 6))
        assert frame.labeled_cells == labeled.size
        assert np.array_equal(label_counts([frame], categories),
                              np.bincount(labeled, minlength=categories)[:categories])
