"""Simulated labeling policies: their click choice on synthetic truth and verdicts (no
OpenCL), then a scaled-down run of every policy on the real core: none gets stuck, each
ends near the reference user, and each clicks the way it claims to."""
import json

import numpy as np
import pytest

from loop.cli import main
from loop.core.engine import LoopCore
from loop.core.labels import WholeFrameLabel
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.settings import TrainerSettings
from loop.demo.held_out import HeldOutSet
from loop.demo.policies import (FRAMES_PER_STEP, POLICIES, BackgroundFirst, Burst, Frozen,
                                Look, Noisy, Streaks, Undo, WholeFrame)
from loop.demo.policy_run import run_policy
from loop.demo.scene import DemoScene

# The scaled run: 20 clicks each; pauses as the policies say, but streaks' (30, 100, 300
# steps) at a fifth and slow's (50) at half, so the file stays near 80 s on two cores. At
# half, slow still locked the trainer of before issue 13 (at 0.3 it did not).
CLICKS = 20
STEP_SCALE = {"streaks": 0.2, "slow": 0.5}
# 20 clicks reach less than the bench's 40: measured finals 0.80-0.95 (the reference 0.93).
STUCK_BELOW = 0.65
# Measured: the worst settled accuracy (the mean of the last three evaluations) was 0.153
# below the reference's (noisy, whose wrong labels stay); every other policy within 0.1.
MARGIN = 0.2


# Synthetic looks pass the verdict per pixel: cells of one pixel each.
@pytest.fixture
def two_objects():
    """120 x 160: a ball (900 px) and a larger box (3000 px) on background."""
    truth = np.zeros((120, 160), np.int32)
    truth[10:40, 10:40] = 1
    truth[60:110, 90:150] = 2
    return truth


def _categories(policy, truth, predicted, clicks):
    return [m.label.category for _ in range(clicks) for m in policy.turn(Look(truth, predicted))]


def test_the_reference_user_labels_a_second_category_while_the_trainer_waits(two_objects):
    predicted = np.zeros_like(two_objects)  # untaught: background everywhere
    assert POLICIES["alternating"]().turn(Look(two_objects, predicted))[0].label.category == 2
    waiting = Look(two_objects, predicted, labeled=(2,))  # only box has labels
    assert POLICIES["alternating"]().turn(waiting)[0].label.category == 1
    ball_only = Look(two_objects, two_objects.copy(), labeled=(1,))  # nothing wrong at all
    assert POLICIES["alternating"]().turn(ball_only)[0].label.category == 0, \
        "the largest region of a category without labels: background"


def test_streaks_keep_one_category_for_five_clicks_even_where_it_is_right(two_objects):
    predicted = np.zeros_like(two_objects)
    predicted[two_objects == 1] = 1  # the ball is already right
    policy = Streaks()
    moves = [policy.turn(Look(two_objects, predicted))[0] for _ in range(15)]
    assert [m.label.category for m in moves] == [1] * 5 + [2] * 5 + [0] * 5
    assert [m.steps for m in moves[:6]] == [30, 100, 300] * 2
    ball = moves[0].label
    assert two_objects[ball.y, ball.x] == 1, "a right region of the streak's category is clicked"


def test_streaks_wait_for_a_category_out_of_view():
    truth = np.zeros((60, 80), np.int32)
    truth[10:30, 10:30] = 2  # no ball
    policy = Streaks()
    assert policy.turn(Look(truth, np.zeros_like(truth))) == []
    assert policy.clicks == 0


def test_burst_is_ten_clicks_on_consecutive_frames_then_a_pause(two_objects):
    policy, scene = Burst(), DemoScene(seed=0)
    steps, frames, index = [], [], 0
    for _ in range(20):
        steps += [m.steps for m in policy.turn(Look(two_objects, np.zeros_like(two_objects)))]
        index = policy.next_frame(scene, index)
        frames.append(index)
    assert steps == ([1] * 9 + [50]) * 2
    assert np.diff([0] + frames).tolist() == ([1] * 9 + [50 * FRAMES_PER_STEP]) * 2


def test_undo_makes_every_fourth_click_a_mistake_then_the_right_one(two_objects):
    policy = Undo(seed=3)
    turns = [policy.turn(Look(two_objects, np.zeros_like(two_objects))) for _ in range(7)]
    assert [len(t) for t in turns] == [1, 1, 1, 2, 1, 1, 2]
    wrong, right = turns[3]
    assert wrong.take_back and not wrong.truthful and wrong.steps == 3
    assert (wrong.label.x, wrong.label.y) == (right.label.x, right.label.y)
    assert wrong.label.category != right.label.category
    assert two_objects[right.label.y, right.label.x] == right.label.category


def test_noisy_lies_about_one_click_in_ten_the_same_way_each_time(two_objects):
    def lies(seed):
        policy = Noisy(seed=seed)
        moves = [m for _ in range(300)
                 for m in policy.turn(Look(two_objects, np.zeros_like(two_objects)))]
        for m in moves:
            assert (two_objects[m.label.y, m.label.x] == m.label.category) == m.truthful
        return [i for i, m in enumerate(moves) if not m.truthful]

    assert 15 <= len(lies(0)) <= 45
    assert lies(0) == lies(0) and lies(0) != lies(1)


def test_background_first_then_objects(two_objects):
    predicted = np.zeros_like(two_objects)  # background all right, both objects wrong
    categories = _categories(BackgroundFirst(), two_objects, predicted, 10)
    assert categories[:8] == [0] * 8 and categories[8] > 0


def test_whole_frame_waits_for_the_objects_to_leave():
    scene, policy, index = DemoScene(seed=0), WholeFrame(), 0
    for _ in range(4):
        frame = scene.frame(index)
        (move,) = policy.turn(Look(frame.truth, np.zeros_like(frame.truth)))
        assert move.label.category > 0
        index = policy.next_frame(scene, index)
    frame = scene.frame(index)
    assert not frame.truth.any(), f"frame {index} still shows an object"
    (move,) = policy.turn(Look(frame.truth, np.zeros_like(frame.truth)))
    assert move.label == WholeFrameLabel(0) and move.truthful


def test_frozen_stays_on_a_frame_until_right_or_five_clicks(two_objects):
    scene, policy = DemoScene(seed=0), Frozen()
    wrong, right = np.zeros_like(two_objects), two_objects.copy()
    frames = []
    for _ in range(6):
        policy.turn(Look(two_objects, wrong))
        frames.append(policy.next_frame(scene, frames[-1] if frames else 0))
    assert frames == [0, 0, 0, 0, 40, 40]
    assert policy.turn(Look(two_objects, right)) == [], "a right verdict is not clicked"
    assert policy.next_frame(scene, 40) == 80


# -- the scaled run on the real core ------------------------------------------------------
def _core(base_network):
    spec = PatchSpec("test", categories_from_names(["background", "ball", "box"]), seed=0)
    return LoopCore(spec, base=base_network, settings=TrainerSettings())


@pytest.fixture(scope="module")
def runs(base_network):
    """name -> (PolicyRun, core), each policy run once, on first use."""
    scene, done, held_out = DemoScene(seed=0), {}, []

    def run(name):
        if name not in done:
            core = _core(base_network)
            if not held_out:
                held_out.append(HeldOutSet(core, scene))
            done[name] = (run_policy(core, scene, POLICIES[name](seed=0), CLICKS,
                                     STEP_SCALE.get(name, 1.0), held_out[0], STUCK_BELOW), core)
        return done[name]
    return run


def _settled(run):
    return float(np.mean([a for _, a in run.accuracy_by_clicks[-3:]]))


@pytest.mark.parametrize("name", list(POLICIES))
def test_no_policy_gets_stuck_or_falls_far_behind(runs, name):
    run, _ = runs(name)
    reference, _ = runs("alternating")
    curve = [(c, round(a, 3)) for c, a in run.accuracy_by_clicks]
    figures = (f"{name}: accuracy by clicks {curve}, {run.steps} steps, restores "
               f"{run.restores}, rate changes {run.rate_changes}, recoveries {run.recoveries}, "
               f"final learning rate {run.learning_rate:.2g}")
    assert run.clicks >= CLICKS
    assert not run.stuck, f"{figures}; stuck: {'; '.join(run.stuck)}"
    assert _settled(run) >= _settled(reference) - MARGIN, (
        f"{figures}; settled {_settled(run):.3f}, the reference {_settled(reference):.3f}")


def _truth_under(scene, made):
    label = made.move.label
    return int(scene.frame(made.frame).truth[int(label.y), int(label.x)])


def test_streaks_run_labels_one_category_per_five_clicks(runs):
    run, _ = runs("streaks")
    categories = [m.move.label.category for m in run.labels]
    assert categories == [(1, 2, 0)[(i // 5) % 3] for i in range(len(categories))]


def test_undo_run_removes_the_mistake(runs):
    run, core = runs("undo")
    scene = DemoScene(seed=0)
    mistakes = [i for i, m in enumerate(run.labels) if m.move.take_back]
    assert len(mistakes) == CLICKS // 4
    for i in mistakes:
        before = run.labels[i - 1].counts
        made = run.labels[i]
        assert _truth_under(scene, made) != made.move.label.category
        assert (made.counts >= before).all() and made.counts.sum() > before.sum()
        assert np.array_equal(made.counts_after_undo, before), "undo left the mistake in"
    kept = [m for m in run.labels if not m.move.take_back]
    assert all(_truth_under(scene, m) == m.move.label.category for m in kept)
    assert np.array_equal(core.label_counts(), run.labels[-1].counts)


def test_noisy_run_keeps_its_wrong_labels(runs):
    run, _ = runs("noisy")
    scene = DemoScene(seed=0)
    wrong = [m for m in run.labels if _truth_under(scene, m) != m.move.label.category]
    assert wrong and all(not m.move.truthful for m in wrong)


def test_burst_background_first_whole_frame_and_frozen_runs_click_as_they_say(runs):
    burst, _ = runs("burst")
    gaps = np.diff([m.frame for m in burst.labels[:10]])
    assert (gaps == 1).all(), f"a burst's frames: {[m.frame for m in burst.labels[:10]]}"
    first, _ = runs("background_first")
    assert [m.move.label.category for m in first.labels[:8]] == [0] * 8
    assert first.labels[8].move.label.category > 0
    whole, _ = runs("whole_frame")
    assert isinstance(whole.labels[4].move.label, WholeFrameLabel)
    assert not DemoScene(seed=0).frame(whole.labels[4].frame).truth.any()
    frozen, _ = runs("frozen")
    per_frame = np.unique([m.frame for m in frozen.labels], return_counts=True)[1]
    assert per_frame.max() <= 5 and per_frame.mean() > 1.5


def test_a_run_is_the_same_every_time(base_network):
    scene = DemoScene(seed=0)

    def once():
        core = _core(base_network)
        return run_policy(core, scene, Burst(seed=0), 6,
                          held_out=HeldOutSet(core, scene, count=4))

    a, b = once(), once()
    assert a.accuracy_by_clicks == b.accuracy_by_clicks
    assert [m.move for m in a.labels] == [m.move for m in b.labels]
    assert [m.losses for m in a.labels] == [m.losses for m in b.labels]


def test_scored_when_shown_scores_a_click_once_answered_before_the_rest_of_its_pause(
        base_network):
    """Where the real-time run scores: each scored click as soon as the trainer no longer
    answers it, the rest of its pause after; the last click ends the run once shown."""
    scene = DemoScene(seed=0)
    seen = {}
    for when in (False, True):
        core = _core(base_network)
        held_out = HeldOutSet(core, scene, count=2)
        scored_at = []
        score = held_out.scores

        def recording(c, score=score, scored_at=scored_at):
            scored_at.append((c.trainer.status.steps, c.trainer.answers_a_click))
            return score(c)
        held_out.scores = recording
        run = run_policy(core, scene, POLICIES["alternating"](seed=0), 4, step_scale=3,
                         held_out=held_out, scored_when_shown=when)
        seen[when] = (scored_at, run.steps, [c for c, _ in run.accuracy_by_clicks])
        core.close()
    (settled, settled_steps, clicks), (shown, shown_steps, shown_clicks) = seen[False], seen[True]
    assert clicks == shown_clicks == [0, 2, 4]
    assert settled[2][0] == settled_steps, "at the end of the last pause"
    assert all(not answering for _, answering in shown[1:]), "scored once shown"
    assert shown[1][0] < settled[1][0] and shown[2][0] == shown_steps < settled_steps
    # Between the two scores: the rest of click 2's pause, click 3's 30 steps, click 4's answer.
    assert shown[2][0] - shown[1][0] > 30, "click 2's pause ran on after it was scored"


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "21", "x"])
def test_a_step_scale_out_of_range_is_one_line(capsys, value):
    with pytest.raises(SystemExit) as stopped:
        main(["bench", "loop", "--policy", "alternating", f"--step-scale={value}"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert f"step scale {value!r}" in err[-1]


def test_bench_loop_policy_json_and_a_bad_name(capsys, base_spec):
    assert main(["bench", "loop", "--policy", "burst", "--clicks", "2", "--json",
                 "--base", str(base_spec.path)]) == 0
    burst = json.loads(capsys.readouterr().out)["policies"]["burst"]
    assert burst["clicks"] == 2 and len(burst["accuracy_by_clicks"]) == 2
    assert [c for c, _ in burst["pixel_accuracy_by_clicks"]] == [0, 2]
    assert all(0 <= a <= 1 for _, a in burst["pixel_accuracy_by_clicks"])
    for key in ("clicks_to_90", "clicks_to_95", "final_balanced_accuracy", "training_steps",
                "divergence_restores", "learning_rate_changes", "stuck_recoveries", "stuck",
                "seconds"):
        assert key in burst
    assert list(burst["final_pixel_recall"]) == ["background", "ball", "box"]
    assert main(["bench", "loop", "--policy", "sloppy"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'sloppy'" in err and "alternating" in err


def test_a_policy_that_trained_no_step_reports_strict_json(capsys, base_spec):
    """background_first's first clicks are one category: no step runs, and the learning rate
    of "the last step" is none (not NaN, which strict JSON readers refuse)."""
    assert main(["bench", "loop", "--policy", "background_first", "--clicks", "2", "--json",
                 "--base", str(base_spec.path)]) == 0
    report = json.loads(capsys.readouterr().out, parse_constant=lambda name: 1 / 0)
    run = report["policies"]["background_first"]
    assert run["training_steps"] == 0 and run["final_learning_rate"] is None
    assert main(["bench", "loop", "--policy", "background_first", "--clicks", "2",
                 "--base", str(base_spec.path)]) == 0
    assert "nan" not in capsys.readouterr().out
