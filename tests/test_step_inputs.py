"""A step's batch is padded to the batch size with unlabeled entries: the same step on the
frames there are, with one device plan for every batch (loop/core/step_inputs.py)."""
import numpy as np

from loop.core.labels import LabelDisc, LabeledFrame
from loop.core.patch import Category, PatchSpec
from loop.core.patch_arch import patch_arch
from loop.core.patch_weights import PatchWeights
from loop.core.step_inputs import PADDED_BATCH_MAX, planned_batch, step_inputs
from tests.closeness import assert_close

CATEGORIES = (Category("n0", 0, "background"), Category("n1", 1, "a"), Category("n2", 2, "b"))


def _frames(rng, count, shape=(5, 9, 11)):
    frames = []
    for i in range(count):
        discs = [LabelDisc(float(rng.uniform(0, 44)), float(rng.uniform(0, 36)), 6.0,
                           int(rng.integers(0, 3))) for _ in range(3)]
        frame = LabeledFrame(i, np.zeros((36, 44, 3), np.uint8),
                             rng.standard_normal(shape).astype(np.float32), discs)
        frame.relabel()
        frames.append(frame)
    return frames


def test_the_planned_batch_is_the_batch_size_until_padding_costs_too_much():
    assert [planned_batch(n, 16) for n in (1, 5, 16)] == [16, 16, 16]
    assert planned_batch(40, 16) == 40
    big = PADDED_BATCH_MAX + 1
    assert [planned_batch(n, big) for n in (1, 7, big)] == [1, 7, big]


def test_padding_is_unlabeled_and_keeps_every_frame_in_order():
    rng = np.random.default_rng(0)
    for count in range(1, 9):
        frames = _frames(rng, count)
        features, labels, corners = step_inputs(frames, 8)
        assert corners == [(0, 0)] * 8
        assert features.shape == (8, 5, 9, 11) and labels.shape == (8, 9, 11)
        for i, frame in enumerate(frames):
            assert np.array_equal(features[i], frame.features)
            assert np.array_equal(labels[i], frame.label_map)
        assert (labels[count:] == -1).all() and not features[count:].any()


def _step(device, features, labels):
    spec = PatchSpec("p", CATEGORIES, topology="pixels", hidden=4, seed=2)
    arch = patch_arch(spec)
    model = PatchWeights(device, spec, arch, features.shape[2:])
    step = model.make_train_step(len(features), features.shape[1:])
    queue = device.new_queue()
    result = step.run(queue, features, labels, np.array([0.5, 1.5, 1.0], np.float32),
                      0.0, 0.0, 0.0)
    grads = np.empty(model.layout.dense_size, np.float32)
    model.grads.flat.read_into(grads, queue)
    return result.loss, grads


def test_a_padded_step_is_the_step_on_the_frames_there_are(device):
    rng = np.random.default_rng(1)
    frames = _frames(rng, 3, shape=(3, 20, 24))
    loss, grads = _step(device, *step_inputs(frames, 3)[:2])
    padded_loss, padded_grads = _step(device, *step_inputs(frames, 8)[:2])
    assert abs(loss - padded_loss) <= 1e-5 * max(1.0, abs(loss))
    assert_close(padded_grads, grads, rtol=1e-4, atol=1e-6 * float(np.abs(grads).max()))


def test_warming_a_plan_up_changes_no_weight_and_no_velocity(device):
    for loss in ("cross_entropy", "squared_error"):
        categories = CATEGORIES if loss == "cross_entropy" else CATEGORIES[:2]
        spec = PatchSpec("p", categories, topology="pixels", hidden=4, seed=3, loss=loss)
        model = PatchWeights(device, spec, patch_arch(spec), (20, 24))
        queue = device.new_queue()
        rng = np.random.default_rng(0)
        velocity = rng.standard_normal(model.layout.size).astype(np.float32)
        model.velocity.flat.write(velocity, queue)
        before = model.training.flat.numpy(queue)
        model.make_train_step(4).warm_up(queue)
        assert np.array_equal(model.training.flat.numpy(queue), before)
        assert np.array_equal(model.velocity.flat.numpy(queue), velocity)
