"""The live trainer's optimizer: plain SGD at a high rate with a gradient-norm limit, a rate
that ramps up over the first steps on fresh weights and is halved once a click has shown, and
weights that stop moving once the labels are learned (momentum kept moving them:
docs/trainer.md, "Plain SGD")."""
import math
from dataclasses import replace

import numpy as np
import pytest

from loop.core.labels import LabelDisc
from loop.core.settings import (FINE_TUNE_DEFAULTS, MOMENTUM_STEPPING, TrainerSettings,
                                default_settings)
from loop.demo.scene import DemoScene
from loop.store.records import SessionFormatError, settings_from_json
from test_core import ball_frame, make_core


def labeled_core(base_network, **settings):
    """A core with a ball click and a background click on one demo frame."""
    core = make_core(base_network, **settings)
    frame, x, y = ball_frame(DemoScene(seed=3))
    verdict = core.observe(frame.image)
    core.label(verdict.frame_id, LabelDisc(x, y, 12, 1))
    core.label(verdict.frame_id, LabelDisc(20, 20, 12, 0))
    return core


def weights_now(core) -> np.ndarray:
    return core.model.state(core.trainer.queue)["weights"].astype(np.float64)


def test_a_new_patch_trains_with_plain_sgd_and_a_fine_tuned_one_with_momentum():
    plain = default_settings(0)
    assert plain.momentum == 0.0 and plain.learning_rate == TrainerSettings().learning_rate
    # Between clicks both topologies step at 0.05; a head answers a click at 0.15 (its first
    # layer reads standardised features), a pixels patch at 0.1.
    pixels = default_settings(0, "pixels", batch_size=8)
    assert (pixels.learning_rate, pixels.consolidation_rate, pixels.batch_size) == (0.1, 0.5, 8)
    for settings in (plain, pixels):
        assert settings.learning_rate * settings.consolidation_rate == pytest.approx(0.05)
    assert plain.learning_rate == 0.15 and plain.standardize_inputs
    # Steady verdicts for a live head; a pixels patch's long steps and fine-tuning keep the
    # newest weights.
    assert plain.steady and not pixels.steady and not default_settings(2).steady
    assert default_settings(2, batch_size=4) == replace(FINE_TUNE_DEFAULTS, batch_size=4)
    assert default_settings(3) == FINE_TUNE_DEFAULTS
    assert FINE_TUNE_DEFAULTS.momentum == 0.9 and FINE_TUNE_DEFAULTS.max_grad_norm > plain.max_grad_norm


@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, math.inf, 1e9, True, "5", None])
def test_a_gradient_norm_limit_must_be_a_positive_number(value):
    with pytest.raises((ValueError, TypeError)):
        TrainerSettings(max_grad_norm=value)
    with pytest.raises(SessionFormatError):
        settings_from_json({"max_grad_norm": value})


@pytest.mark.parametrize("value", [0.0, -0.5, 1.5, math.nan, True, "0.5", None])
def test_a_consolidation_rate_must_be_a_share_of_the_rate(value):
    with pytest.raises((ValueError, TypeError)):
        TrainerSettings(consolidation_rate=value)
    with pytest.raises(SessionFormatError):
        settings_from_json({"consolidation_rate": value})


@pytest.mark.parametrize("field", ["warm_up_steps", "consolidation_steps"])
@pytest.mark.parametrize("value", [-1, 1.5, 10 ** 9, True, "4", None])
def test_step_counts_must_be_whole_numbers_in_range(field, value):
    with pytest.raises((ValueError, TypeError)):
        TrainerSettings(**{field: value})
    with pytest.raises(SessionFormatError):
        settings_from_json({field: value})


def test_a_session_saved_before_these_settings_trains_on_as_it_did():
    older = settings_from_json({"learning_rate": 0.005, "momentum": 0.9})
    assert older.max_grad_norm == MOMENTUM_STEPPING["max_grad_norm"]
    assert older.consolidation_rate == MOMENTUM_STEPPING["consolidation_rate"] == 1.0
    assert older.warm_up_steps == MOMENTUM_STEPPING["warm_up_steps"] == 0
    assert not older.steady, "its verdicts read the newest weights, as they did"
    assert older.consolidation_steps == 0, "its steps between clicks keep one rate"
    assert settings_from_json({"consolidation_steps": 6}).consolidation_steps == 6
    newer = settings_from_json({"max_grad_norm": 7.5, "consolidation_rate": 0.25,
                                "warm_up_steps": 2})
    assert (newer.max_grad_norm, newer.consolidation_rate, newer.warm_up_steps) == (7.5, 0.25, 2)
    # Saved before standardised inputs (plain SGD already): the raw features, as it trained.
    assert older.standardize_inputs is False and newer.standardize_inputs is False
    assert settings_from_json({"standardize_inputs": True}).standardize_inputs is True
    assert TrainerSettings().standardize_inputs is True, "a new live patch standardises"
    with pytest.raises(SessionFormatError):
        settings_from_json({"standardize_inputs": 1})


def test_the_first_steps_on_fresh_weights_ramp_the_rate_and_none_is_undone(base_network):
    core = labeled_core(base_network, consolidation_rate=1.0)
    rate, ramp = core.trainer.settings.learning_rate, core.trainer.settings.warm_up_steps
    assert ramp == 4
    seen = []
    for _ in range(ramp + 2):
        assert core.trainer.step()
        seen.append(core.trainer.status.learning_rate)
    expected = [rate * min(1.0, (i + 1) / ramp) for i in range(ramp + 2)]
    assert np.allclose(seen, expected), seen
    assert core.trainer.status.restores == 0, "no first step overshoots its own batch"
    core.close()


def test_steps_that_answer_a_click_run_at_the_full_rate_and_later_ones_at_the_share(
        base_network):
    core = labeled_core(base_network, consolidation_steps=0)   # (settling: the test below)
    settings = core.trainer.settings
    for _ in range(30):
        core.trainer.step()
    assert core.trainer.awaited is None, "the clicks have shown"
    assert core.trainer.status.learning_rate == pytest.approx(
        settings.learning_rate * settings.consolidation_rate)
    frame, x, y = ball_frame(DemoScene(seed=3))
    verdict = core.observe(frame.image)
    core.label(verdict.frame_id, LabelDisc(x, y, 6, 1))
    assert core.trainer.awaited is not None
    assert core.trainer.step()
    assert core.trainer.status.learning_rate == pytest.approx(settings.learning_rate)
    for _ in range(40):
        if core.trainer.awaited is None:
            break
        core.trainer.step()
    assert core.trainer.step() and core.trainer.status.learning_rate == pytest.approx(
        settings.learning_rate * settings.consolidation_rate), "the click has shown"
    core.close()


def settled_rates(core, count: int) -> list[float]:
    """The rates of the next `count` steps, taken once no click waits on the trainer."""
    for _ in range(60):
        if not core.trainer.answers_a_click:
            break
        assert core.trainer.step()
    assert not core.trainer.answers_a_click, "the clicks have shown and been caught up with"
    rates = []
    for _ in range(count):
        assert core.trainer.step()
        rates.append(core.trainer.status.learning_rate)
    return rates


def test_steps_between_clicks_settle_from_the_kth_on_and_a_label_gives_the_rate_back(
        base_network):
    core = labeled_core(base_network)
    settings = core.trainer.settings
    share, k = settings.learning_rate * settings.consolidation_rate, settings.consolidation_steps
    assert k == 8 and default_settings(0, "pixels").consolidation_steps == 0
    assert default_settings(2).consolidation_steps == 0, "fine-tuning keeps one rate"
    expected = [share * min(1.0, k / n) for n in range(1, 13)]
    assert np.allclose(settled_rates(core, 12), expected)
    # A new label: its steps at the full rate, then the settled steps start again at the share.
    frame, x, y = ball_frame(DemoScene(seed=3))
    verdict = core.observe(frame.image)
    core.label(verdict.frame_id, LabelDisc(x, y, 6, 1))
    assert core.trainer.step()
    assert core.trainer.status.learning_rate == pytest.approx(settings.learning_rate)
    assert np.allclose(settled_rates(core, 6), expected[:6])
    # An undo changes the labels too: the rate comes back; so does leaving a frame out.
    assert core.undo()
    assert np.allclose(settled_rates(core, 10), expected[:10])
    core.exclude(verdict.frame_id, True)
    assert np.allclose(settled_rates(core, 10), expected[:10])
    # A settings change (any of them) gives the rate back as well.
    core.change_settings(replace(settings, batch_size=8))
    assert np.allclose(settled_rates(core, 10), expected[:10])
    core.close()


def test_a_step_scales_a_gradient_over_the_limit_down_to_it(base_network):
    """With momentum 0 and no decay a step moves the weights by exactly rate x limit when
    the gradient's norm is over the limit (on raw features and without steady verdicts,
    where the weights it moves are the ones published)."""
    limit, rate = 0.01, 0.1
    core = labeled_core(base_network, learning_rate=rate, weight_decay=0.0, max_grad_norm=limit,
                        consolidation_rate=1.0, standardize_inputs=False, steady=False)
    for _ in range(core.trainer.settings.warm_up_steps):   # past the ramp
        core.trainer.step()
    before = weights_now(core)
    assert core.trainer.step()
    moved = np.linalg.norm(weights_now(core) - before)
    assert core.trainer.status.grad_norm > limit
    assert moved == pytest.approx(rate * limit, rel=1e-3)
    core.close()


def test_learned_labels_leave_plain_sgd_weights_nearly_still_but_momentum_coasting(base_network):
    """Once the labels are learned, the next 10 steps move plain SGD's weights far less than
    momentum's, whose velocity from the first steps keeps pushing the same way. (On raw
    features, where momentum's rate of 0.005 was set.)"""
    moved = {}
    for name, settings in (("plain", {}),
                           ("momentum", dict(learning_rate=0.005, momentum=0.9))):
        # (One rate between clicks for both: the optimizers alone are compared.)
        core = labeled_core(base_network, augment=False, standardize_inputs=False,
                            consolidation_steps=0, **settings)
        for _ in range(12):
            core.trainer.step()
        assert core.trainer.status.last_loss < 0.05, f"{name} learned the two clicks"
        before = weights_now(core)
        for _ in range(10):
            core.trainer.step()
        moved[name] = np.linalg.norm(weights_now(core) - before)
        core.close()
    assert moved["plain"] < 0.5 * moved["momentum"], moved


def test_no_progress_without_momentum_says_nothing_of_momentum(base_network):
    from loop.core.progress_watch import ProgressWatch
    core = labeled_core(base_network, learning_rate=1e-6)
    core.trainer.watch = ProgressWatch(3, patience=5)
    for _ in range(200):
        core.trainer.step()
        if core.trainer.status.recoveries:
            break
    notices = core.trainer.status.notices
    assert any("no progress" in n and "learning rate back" in n for n in notices), notices
    assert not any("momentum" in n for n in notices), notices
    core.close()
