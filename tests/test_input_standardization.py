"""The trainer trains a head's first layer on standardised inputs and hands everything else
the same function on raw inputs (loop/core/input_standardization.py)."""
import numpy as np
import pytest

import loop.core.trainer as trainer_module
from loop.core.input_standardization import (MIN_SPREAD_SHARE, SAMPLE_STRIDE, channel_statistics,
                                             standardizes)
from loop.core.labels import LabelDisc
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.patch_arch import patch_arch
from loop.demo.scene import DemoScene
from test_plain_sgd import labeled_core


def softmax(logits):
    e = np.exp(logits - logits.max(axis=0))
    return e / e.sum(axis=0)


def trained_function(core, features):
    """The training weights' probabilities on raw `features`, through a training step's own
    forward (rate 0 and no labels: nothing moves)."""
    step = core.model.make_train_step(1)
    labels = np.full((1,) + core.model.cells, -1, np.int32)
    k = core.model.spec.outputs
    step.run(core.trainer.queue, features[None], labels, np.ones(k, np.float32), 0.0, 0.0, 0.0)
    return softmax(step.frame_logits(core.trainer.queue, 0))


@pytest.mark.parametrize("seed", range(6))
def test_statistics_per_channel_and_a_floor_for_dead_channels(seed):
    rng = np.random.default_rng(seed)
    c, h, w = int(rng.integers(2, 60)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
    frames = [(rng.standard_normal((c, h, w)) * rng.uniform(0.5, 8, (c, 1, 1))
               + rng.uniform(-9, 9, (c, 1, 1))).astype(np.float32)
              for _ in range(int(rng.integers(1, 6)))]
    dead = int(rng.integers(0, c))
    for f in frames:
        f[dead] = 4.0
    mean, spread = channel_statistics(frames)
    stacked = np.stack(frames).astype(np.float64)[:, :, ::SAMPLE_STRIDE, ::SAMPLE_STRIDE]
    assert np.allclose(mean, stacked.mean(axis=(0, 2, 3)), atol=1e-4)
    direct = stacked.std(axis=(0, 2, 3))
    live = np.arange(c) != dead
    floor = MIN_SPREAD_SHARE * np.median(direct)
    assert np.allclose(spread[live], np.maximum(direct[live], floor), rtol=1e-4)
    assert spread[dead] == pytest.approx(floor, rel=1e-4), "a dead channel is not blown up"


def test_heads_on_base_features_standardize_and_pixels_and_fine_tuned_ones_do_not(base_spec):
    categories = categories_from_names(["background", "ball"])
    for tap in ("stride16", "stride8+16"):
        assert standardizes(patch_arch(PatchSpec("p", categories, tap=tap), base_spec))
    assert not standardizes(patch_arch(PatchSpec("p", categories, topology="pixels")))
    assert not standardizes(patch_arch(PatchSpec("p", categories, fine_tune=1), base_spec))


def test_the_verdict_is_the_trained_function_read_on_raw_features(base_network):
    core = labeled_core(base_network, steady=False)   # (steady verdicts lag the trained)
    for _ in range(6):
        assert core.trainer.step()
    scale = core.model.standardization.scale.numpy()
    assert not np.allclose(scale, 1.0), "the labeled frames' statistics were taken"
    features = core.labeled_frames()[0].features
    assert np.allclose(core.verdict_on_features(features), trained_function(core, features),
                       atol=2e-4)
    core.close()


def test_new_statistics_keep_a_trained_patch_s_function_and_its_saved_weights(base_network):
    core = labeled_core(base_network, steady=False)   # (the saved weights are the trained)
    for _ in range(6):
        core.trainer.step()
    queue, model = core.trainer.queue, core.model
    features = core.labeled_frames()[0].features
    before, saved = trained_function(core, features), model.state(queue)["weights"]
    rng = np.random.default_rng(0)
    channels = features.shape[0]
    model.standardize(rng.uniform(-5, 5, channels), rng.uniform(0.5, 9, channels), queue)
    assert np.allclose(trained_function(core, features), before, atol=2e-4)
    model.publish(queue)
    assert np.allclose(model.state(queue)["weights"], saved, atol=2e-4, rtol=1e-3)
    # Weights loaded from a session or plugin read raw features: they come back unchanged.
    model.load_state({"weights": saved}, queue)
    assert np.allclose(trained_function(core, features), before, atol=2e-4)
    model.publish(queue)
    assert np.allclose(model.state(queue)["weights"], saved, atol=2e-4, rtol=1e-3)
    core.close()


def test_statistics_are_taken_first_and_again_each_time_the_frames_double(base_network,
                                                                           monkeypatch):
    monkeypatch.setattr(trainer_module, "STAT_FRAMES", 4)
    core = labeled_core(base_network, augment=False)
    taken = []
    original = core.model.standardize

    def counting(mean, spread, queue):
        taken.append(len(core.labeled_frames()))
        original(mean, spread, queue)
    monkeypatch.setattr(core.model, "standardize", counting)
    scene, after_click = DemoScene(seed=3), []
    for i in range(7):
        for _ in range(12):
            core.trainer.step()
        frame = scene.frame(40 + 7 * i)
        verdict = core.observe(frame.image)
        core.label(verdict.frame_id, LabelDisc(30, 30, 8, 0))
        core.trainer.step()
        after_click.append(len(taken))
    for _ in range(12):
        core.trainer.step()
    assert taken == [1, 2, 4], taken
    # Not in the first step after the click that doubled the frames (the 2nd, the 4th):
    # the steps that answer a click go before anything else.
    assert after_click == [1, 2, 2, 3, 3, 3, 3], after_click
    core.close()


def test_a_fresh_patch_keeps_its_starting_weights_on_standardised_inputs(base_network):
    """Before any step the statistics are simply taken: the starting weights read the
    standardised inputs as a new patch's would (the published verdict changes with them)."""
    core = labeled_core(base_network)
    model, queue = core.model, core.trainer.queue
    start = model.state(queue)["weights"]
    assert model.fresh
    channels = model.feature_shape[0]
    model.standardize(np.full(channels, 2.0), np.full(channels, 4.0), queue)
    w = model.weights(queue)
    initial = model.layout.unpack(start)
    assert np.allclose(w["w0"], initial["w0"] / 4.0, atol=1e-6)
    assert np.allclose(w["b0"], initial["b0"] - initial["w0"][..., 0, 0].sum(axis=1) * 0.5,
                       atol=1e-4)
    assert np.allclose(w["w1"], initial["w1"])
    core.close()
