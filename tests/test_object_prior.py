"""The object prior: where the labels leave a cell undecided, the verdict takes the categories
other than background to be `object_prior` times likelier (a logit adjustment in the loss),
and the weights carry it, so every reader of the patch draws the same verdict."""
import numpy as np
import pytest

from loop.core.labels import LabelDisc
from loop.core.patch import PatchSpec
from loop.core.settings import TrainerSettings
from loop.demo.scene import DemoScene
from loop.store.records import SessionFormatError, settings_from_json
from test_core import ball_frame, make_core


def undecided_odds(base_network, prior: float) -> float:
    """Ball over background odds at a cell labeled ball on one copy of a frame and background
    on another (the same features both times), after training to rest."""
    # With momentum the contradicting labels' balance settles within 200 steps (plain SGD
    # creeps towards it over 1000s); the balance, not the optimizer, is under test.
    core = make_core(base_network, object_prior=prior, augment=False, momentum=0.9,
                     learning_rate=0.005, max_grad_norm=20.0)
    frame, x, y = ball_frame(DemoScene(seed=3))
    first, second = core.observe(frame.image), core.observe(frame.image)
    core.label(first.frame_id, LabelDisc(x, y, 1, 1))
    core.label(second.frame_id, LabelDisc(x, y, 1, 0))
    core.train_turns(200)
    p = core.observe(frame.image).probabilities
    cy, cx = int(y * p.shape[1] / 240), int(x * p.shape[2] / 320)
    return float(p[1, cy, cx] / p[0, cy, cx])


@pytest.mark.parametrize("prior", [1.0, 3.0])
def test_an_undecided_cell_leans_by_the_prior(base_network, prior):
    odds = undecided_odds(base_network, prior)
    assert prior / 1.1 < odds < prior * 1.1, f"odds {odds:.2f} with prior {prior}"


def test_a_classifier_from_folders_has_no_background_to_lean_from(base_network):
    """A folder-trained classifier's category 0 is a class like the others: no offsets."""
    core = make_core(base_network)
    spec = PatchSpec("classes", core.spec.categories, pooling="mean")
    assert core.trainer.logit_offsets_for(spec, TrainerSettings()).tolist() == [0, 0, 0]
    offsets = core.trainer.logit_offsets_for(core.spec, TrainerSettings(object_prior=4.0))
    assert offsets[0] == 0 and np.allclose(offsets[1:], -np.log(4.0))


@pytest.mark.parametrize("value", [0.5, 0.0, -3, 21, float("nan"), float("inf"), "3", None, True])
def test_a_saved_object_prior_out_of_range_is_refused(value):
    with pytest.raises(SessionFormatError):
        settings_from_json({"object_prior": value})


def test_sessions_saved_before_the_prior_take_the_default():
    assert settings_from_json({"learning_rate": 0.01}).object_prior == TrainerSettings().object_prior
