"""Pixels patches and heads train on windows around their labels
(loop/core/train_windows.py): the windows' gradient is the whole input's for the labels a
window keeps, windows lie inside the input, keep every label they can and only those, and
the trainer steps on them."""
import numpy as np
import pytest

from loop.core.engine import LoopCore
from loop.core.labels import LabelDisc
from loop.core.patch import Category, PatchSpec
from loop.core.patch_arch import PatchArch, patch_arch
from loop.core.patch_layers import head_layers
from loop.core.patch_weights import PatchWeights
from loop.core.train_windows import HEAD_WINDOW, WINDOW, TrainWindows, train_windows
from tests.closeness import assert_close

CATEGORIES = (Category("n0", 0, "background"), Category("n1", 1, "thing"))


def _pixels(hidden=4, seed=0):
    return PatchSpec("w", CATEGORIES, topology="pixels", hidden=hidden, seed=seed)


def _head(channels=6, hidden=4, seed=0):
    """A head on a base map of `channels` (1x1, 3x3, 1x1: a receptive field of 3 cells)."""
    spec = PatchSpec("w", CATEGORIES, topology="head", hidden=hidden, seed=seed)
    return spec, PatchArch(tuple(head_layers(channels, 2, hidden)), (None,) * 3, "tap")


def _gradients(device, spec, arch, features, labels):
    """The flat gradient of one step on (features, labels); the step runs at rate 0."""
    model = PatchWeights(device, spec, arch, features.shape[2:])
    step = model.make_train_step(len(features), features.shape[1:])
    queue = device.new_queue()
    result = step.run(queue, features, labels, np.ones(2, np.float32), 0.0, 0.0, 0.0)
    assert result.finite
    grads = np.empty(model.layout.dense_size, np.float32)
    model.grads.flat.read_into(grads, queue)
    return grads, result.loss


@pytest.mark.parametrize("topology", ["pixels", "head"])
@pytest.mark.parametrize("trial", range(4))
def test_a_window_step_is_the_whole_frames_step_on_the_labels_it_keeps(device, trial,
                                                                         topology):
    rng = np.random.default_rng(trial)
    if topology == "pixels":
        spec = _pixels(seed=trial)
        arch = patch_arch(spec)
        h, w = int(rng.integers(40, 56)), int(rng.integers(40, 60))
        window = (int(rng.integers(30, 38)), int(rng.integers(30, 38)))
        margin = 14
    else:
        spec, arch = _head(int(rng.integers(3, 9)), seed=trial)
        h, w = int(rng.integers(14, 30)), int(rng.integers(14, 40))
        window = (int(rng.integers(4, 13)), int(rng.integers(4, 13)))
        if trial == 3:   # a window taller than the map: its rows are the map's own
            window = (h + 2, window[1])
        margin = 1
    windows = TrainWindows(window, margin)
    batch = 2
    features = rng.standard_normal((batch, arch.input_channels, h, w)).astype(np.float32)
    label_maps = rng.integers(-1, 2, (batch, h, w)).astype(np.int32)
    cut_features, cut_labels, kept = [], [], np.full((batch, h, w), -1, np.int32)
    for n in range(batch):
        # Each corner case: at the frame's border (padding is the frame's) and inside it.
        wh, ww = min(h, window[0]), min(w, window[1])
        top = [0, h - wh, int(rng.integers(1, max(2, h - wh)))][(trial + n) % 3]
        left = [0, w - ww, int(rng.integers(1, max(2, w - ww)))][(trial + 2 * n) % 3]
        top, left = min(top, h - wh), min(left, w - ww)
        f, lab = windows.cut_at(features[n], label_maps[n], top, left)
        cut_features.append(f)
        cut_labels.append(lab)
        kept[n, top:top + wh, left:left + ww] = lab
    assert (kept >= 0).sum() > 0
    whole, whole_loss = _gradients(device, spec, arch, features, kept)
    cut, cut_loss = _gradients(device, spec, arch, np.stack(cut_features),
                               np.stack(cut_labels))
    assert abs(whole_loss - cut_loss) <= 1e-4 * max(1.0, abs(whole_loss))
    assert_close(cut, whole, rtol=2e-3, atol=1e-5 * float(np.abs(whole).max()))


def test_windows_lie_inside_the_frame_and_keep_exactly_the_labels_whose_field_they_hold():
    rng = np.random.default_rng(7)
    for _ in range(300):
        h, w = int(rng.integers(8, 90)), int(rng.integers(8, 90))
        margin = int(rng.integers(0, 6))
        window = (int(rng.integers(2 * margin + 1, 60)), int(rng.integers(2 * margin + 1, 60)))
        windows = TrainWindows(window, margin, seed=int(rng.integers(1000)))
        label_map = np.where(rng.random((h, w)) < rng.random() * 0.2,
                             rng.integers(0, 3, (h, w)), -1).astype(np.int32)
        features = rng.standard_normal((2, h, w)).astype(np.float32)
        top, left = windows.place(label_map)
        wh, ww = min(h, window[0]), min(w, window[1])
        assert 0 <= top <= h - wh and 0 <= left <= w - ww
        f, labels = windows.cut_at(features, label_map, top, left)
        assert f.shape == (2, wh, ww) and labels.shape == (wh, ww)
        assert np.array_equal(f, features[:, top:top + wh, left:left + ww])
        inside = label_map[top:top + wh, left:left + ww]
        keep = labels >= 0
        assert np.array_equal(labels[keep], inside[keep])
        ys, xs = np.mgrid[top:top + wh, left:left + ww]
        # A label is kept where its field [y - margin, y + margin] lies in the window, or
        # runs past a window side that is the frame's border.
        holds_y = (((ys - margin >= top) | (top == 0))
                   & ((ys + margin < top + wh) | (top + wh == h)))
        holds_x = (((xs - margin >= left) | (left == 0))
                   & ((xs + margin < left + ww) | (left + ww == w)))
        assert np.array_equal(keep, (inside >= 0) & holds_y & holds_x)
        if (label_map >= 0).any():
            assert keep.any(), "the picked label itself is always kept"


def test_every_label_is_picked_in_time():
    windows = TrainWindows((20, 20), 4, seed=3)
    label_map = np.full((60, 90), -1, np.int32)
    spots = [(2, 3), (30, 45), (57, 88), (10, 80)]
    for y, x in spots:
        label_map[y, x] = 1
    held = set()
    for _ in range(200):
        top, left = windows.place(label_map)
        _, labels = windows.cut_at(np.zeros((1, 60, 90), np.float32), label_map, top, left)
        inside = [s for s in spots if top <= s[0] < top + 20 and left <= s[1] < left + 20]
        assert len(inside) == 1 and (labels >= 0).sum() == 1, "one far-apart label a window"
        held.update(inside)
    assert held == set(spots)


def test_too_small_a_window_for_the_margin_is_refused():
    with pytest.raises(ValueError):
        TrainWindows((28, 40), 14)


def test_pixels_patches_and_heads_on_larger_inputs_train_on_windows(device):
    arch = patch_arch(_pixels())
    assert train_windows(arch, (3, 120, 160)).shape((3, 120, 160)) == (3,) + WINDOW
    assert train_windows(arch, (3,) + WINDOW) is None
    _, head = _head(152)
    windows = train_windows(head, (152, 30, 40))
    assert windows.shape((152, 30, 40)) == (152,) + HEAD_WINDOW and windows.margin == 1
    assert train_windows(head, (152, 24, 40)).shape((152, 24, 40)) == (152, 16, 16)
    # A window of most of the map (the stride-16 map's 15x16 of 15x20) saves little.
    assert train_windows(head, (152, 15, 20)) is None
    assert train_windows(head, (152,) + HEAD_WINDOW) is None


def test_a_fine_tuned_head_trains_on_whole_maps(device, base_network):
    spec = PatchSpec("w", CATEGORIES, tap="stride16", fine_tune=1)
    arch = patch_arch(spec, base_network.spec)
    assert arch.tuned and train_windows(arch, (arch.input_channels, 30, 40)) is None


def test_the_pixels_trainer_steps_on_windows_and_learns(device):
    core = LoopCore(_pixels(hidden=8), device=device)
    try:
        assert core.trainer.step_shape == (3,) + WINDOW
        rng = np.random.default_rng(0)
        frame = (rng.random((240, 320, 3)) * 60).astype(np.uint8)
        frame[:, 160:] += 150   # the right half is the thing
        frame_id = core.observe(frame).frame_id
        core.label(frame_id, LabelDisc(60, 120, 40, 0))
        core.label(frame_id, LabelDisc(260, 120, 40, 1))
        losses, failed = core.train_turns(40)
        assert failed == 0 and len(losses) == 40
        assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    finally:
        core.close()


def test_a_lone_frames_windows_take_its_categories_in_turn():
    class Frame:
        def __init__(self, label_map):
            self.label_map = label_map
            self.features = np.zeros((1,) + label_map.shape, np.float32)
            self.categories = frozenset(np.unique(label_map[label_map >= 0]).tolist())

    label_map = np.full((100, 140), -1, np.int32)
    label_map[5:9, 5:9] = 0
    label_map[50:52, 70:72] = 1
    label_map[90:99, 120:139] = 2
    windows = TrainWindows((30, 30), 4, seed=1)
    for _ in range(20):
        _, labels, _ = windows.batch([Frame(label_map)], 6)
        held = [set(np.unique(w[w >= 0]).tolist()) for w in labels]
        assert all(len(h) == 1 for h in held), "the three regions lie a window apart"
        firsts = [h.pop() for h in held]
        assert sorted(firsts[:3]) == [0, 1, 2] and firsts[3:] == firsts[:3]


class _Frame:
    def __init__(self, frame_id, label_map):
        self.frame_id = frame_id
        self.label_map = label_map
        self.features = np.zeros((1,) + label_map.shape, np.float32)
        self.categories = frozenset(np.unique(label_map[label_map >= 0]).tolist())


def test_a_frame_chosen_for_a_rare_category_gives_that_category_a_window():
    """The batch chooser adds a frame for each category a batch would lack: its window must
    hold that category, not the frame's other one (a rare category then missed half the
    steps)."""
    background = np.full((30, 40), -1, np.int32)
    background[2:6, 2:6] = 0
    mixed = np.full((30, 40), -1, np.int32)
    mixed[1:4, 1:4] = 0
    mixed[25:28, 35:38] = 1   # a window apart from its background
    windows = TrainWindows((16, 16), 1, seed=5)
    for trial in range(100):
        frames = [_Frame(i, background) for i in range(10)]
        frames.insert(trial % 11, _Frame(99, mixed))
        _, labels, _ = windows.batch(frames, 16)
        assert (labels == 1).any(), "the rare category is in the batch's windows"


def test_only_the_awaited_frames_first_window_is_centred_on_its_cell():
    label_map = np.full((60, 80), -1, np.int32)
    label_map[30:33, 40:43] = 1
    label_map[0:3, 0:3] = 0
    label_map[57:60, 77:80] = 0
    windows = TrainWindows((16, 16), 1, seed=2)
    centre = windows.around(label_map, 31, 41)
    for _ in range(20):
        _, labels, corners = windows.batch([_Frame(7, label_map)], 6, (7, 31, 41))
        assert corners[0] == centre and labels[0, 31 - centre[0], 41 - centre[1]] == 1
        assert any(corner != centre for corner in corners[1:]), "later windows take turns"
