"""The trainer never locks itself up: a first click on one category, contradicting labels, a
rate the user set too high, a stretch with no progress. The user's own learning rate is
never lost, and what the trainer does by itself is shown while it applies."""
import threading
import time

import numpy as np
import pytest

from loop.core.labels import LabelDisc
from loop.core.progress_watch import ProgressWatch
from loop.core.rate_backoff import CLIMB_AFTER, MIN_FACTOR, RateBackoff
from loop.core.settings import TrainerSettings
from loop.demo.scene import DemoScene
from loop.store.session_link import SessionLink
from loop.store.session import SessionStore
from test_core import ball_frame, make_core


@pytest.fixture(scope="module")
def scene():
    return DemoScene(seed=3)


def background_point(frame):
    """A pixel deep inside the background, far from every object."""
    import cv2
    background = np.pad((frame.truth == 0).astype(np.uint8), 1)
    depth = cv2.distanceTransform(background, cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(depth.argmax()), depth.shape)
    return float(x), float(y)


def steps_until(core, condition, limit):
    """Training steps until `condition()` holds; how many it took (None: never)."""
    for n in range(1, limit + 1):
        core.trainer.step()
        if condition():
            return n
    return None


def test_a_first_click_waits_for_a_second_category_then_learns_at_once(base_network, scene):
    """The sequence that locked the trainer: a ball click, a long wait, a background click."""
    core = make_core(base_network)
    frame, x, y = ball_frame(scene)
    verdict = core.observe(frame.image)
    core.label(verdict.frame_id, LabelDisc(x, y, 12, 1))
    for _ in range(30):
        assert not core.trainer.step(), "one category alone is not trained on"
    status = core.trainer.status
    assert any("second category" in n and "'ball'" in n for n in status.notices)
    assert status.steps == 0 and status.steps_per_second == 0.0
    held = core.observe(frame.image)
    assert held.probabilities[1].max() < 0.9, "one category never takes the frame with certainty"

    bx, by = background_point(frame)
    core.label(held.frame_id, LabelDisc(bx, by, 12, 0))

    def both_right():
        now = core.observe(frame.image)
        return now.category_at(x, y) == 1 and now.category_at(bx, by) == 0
    took = steps_until(core, both_right, 20)
    assert took is not None, "the patch follows both labels within 20 steps (well under 2 s)"
    assert not any("second category" in n for n in status.notices), "the notice is withdrawn"
    assert core.trainer.settings.learning_rate == TrainerSettings().learning_rate and status.restores == 0


def test_a_new_category_after_long_training_is_learned_not_refused(base_network, scene):
    """Train long on ball and background, then click a box for the first time: the patch
    has learned that nothing is a box, so the first step's loss is large. The trainer must
    follow it, not undo it or cut the rate for good."""
    core = make_core(base_network)
    frame, x, y = ball_frame(scene)
    bx, by = background_point(frame)
    verdict = core.observe(frame.image)
    core.label(verdict.frame_id, LabelDisc(x, y, 14, 1))
    core.label(verdict.frame_id, LabelDisc(bx, by, 14, 0))
    for _ in range(300):
        core.trainer.step()
    box = next(f for f in (scene.frame(i) for i in range(600, 3000, 7))
               if (f.truth == 2).sum() > 900)
    ys, xs = np.nonzero(box.truth == 2)
    kx, ky = float(np.median(xs)), float(np.median(ys))
    box_verdict = core.observe(box.image)
    assert box_verdict.category_at(kx, ky) != 2
    first = len(core.trainer.status.losses)
    core.label(box_verdict.frame_id, LabelDisc(kx, ky, 10, 2))
    took = steps_until(core, lambda: core.observe(box.image).category_at(kx, ky) == 2, 60)
    assert took is not None, "the new category is learned"
    status = core.trainer.status
    assert status.losses[first][1] > 1.0, "it was a hard batch"
    for _ in range(60):
        core.trainer.step()
    assert core.trainer.backoff.factor == 1.0, "any cut rate is back at the user's setting"
    assert core.trainer.settings.learning_rate == TrainerSettings().learning_rate
    assert not any("cut" in n for n in status.notices)
    assert core.observe(frame.image).category_at(x, y) == 1, "the ball is still a ball"


def test_a_rate_set_too_high_is_cut_shown_and_given_back(base_network, scene):
    core = make_core(base_network, learning_rate=1.0, momentum=0.9)
    frame, x, y = ball_frame(scene)
    bx, by = background_point(frame)
    verdict = core.observe(frame.image)
    core.label(verdict.frame_id, LabelDisc(x, y, 14, 1))
    core.label(verdict.frame_id, LabelDisc(bx, by, 14, 0))
    seen_cut = False
    for _ in range(80):
        core.trainer.step()
        seen_cut |= any("your setting: 1" in n for n in core.trainer.status.notices)
    status = core.trainer.status
    weights = core.model.state(core.queue)["weights"]
    assert np.isfinite(weights).all()
    assert core.trainer.settings.learning_rate == 1.0, "the user's setting is never changed"
    if status.restores:
        assert seen_cut and status.rate_changes >= 1
    after = core.observe(frame.image)
    assert after.category_at(x, y) == 1 and after.category_at(bx, by) == 0


def test_no_progress_is_noticed_and_recovered_from(base_network, scene):
    """A rate too small to move anything keeps the loss near chance: with the watch made
    impatient, the trainer first clears momentum (and says so), then starts the patch
    afresh, keeping the labels."""
    core = make_core(base_network, learning_rate=1e-6, momentum=0.9)
    core.trainer.watch = ProgressWatch(3, patience=5)
    frame, x, y = ball_frame(scene)
    verdict = core.observe(frame.image)
    core.label(verdict.frame_id, LabelDisc(x, y, 14, 1))
    core.label(verdict.frame_id, LabelDisc(20, 20, 14, 0))
    status = core.trainer.status
    assert steps_until(core, lambda: status.recoveries == 1, 200) is not None
    assert any("no progress" in n and "momentum cleared" in n for n in status.notices)
    before = core.model.state(core.queue)["weights"]
    assert steps_until(core, lambda: status.recoveries == 2, 200) is not None
    assert any("fresh weights" in n for n in status.notices)
    assert core.label_counts()[:2].min() > 0, "labels are kept"
    assert not np.array_equal(core.model.state(core.queue)["weights"], before)


def test_steps_per_second_falls_to_zero_when_nothing_trains(base_network, scene):
    core = make_core(base_network)
    frame, x, y = ball_frame(scene)
    verdict = core.observe(frame.image)
    core.label(verdict.frame_id, LabelDisc(x, y, 14, 1))
    core.label(verdict.frame_id, LabelDisc(20, 20, 14, 0))
    for _ in range(10):
        core.trainer.step()
    assert core.trainer.status.steps_per_second > 0
    time.sleep(2.1)
    assert core.trainer.status.steps_per_second == 0.0


def test_rate_backoff_halves_to_a_floor_and_climbs_back():
    backoff = RateBackoff()
    assert not backoff.succeeded() and backoff.factor == 1.0
    changes = sum(backoff.diverged("test") for _ in range(20))
    assert backoff.factor == MIN_FACTOR and changes == 10 and backoff.must_keep
    climbs = 0
    for _ in range(CLIMB_AFTER * 10):
        climbs += backoff.succeeded()
    assert backoff.factor == 1.0 and climbs == 10 and not backoff.active
    backoff.diverged("again")
    assert backoff.reset() and backoff.factor == 1.0


def test_progress_watch_fires_only_on_a_plateau_near_chance():
    near_chance = ProgressWatch(3, patience=50)
    assert not any(near_chance.observe(1.0) for _ in range(49))
    assert any(near_chance.observe(1.0) for _ in range(10))
    settled = ProgressWatch(3, patience=50)
    assert not any(settled.observe(0.05) for _ in range(500)), "a fitted patch is not stuck"
    falling = ProgressWatch(3, patience=50)
    assert not any(falling.observe(2.0 * 0.99 ** i) for i in range(500))


def test_the_users_rate_survives_a_restore_and_a_session_resume(base_network, scene, tmp_path):
    core = make_core(base_network)
    store = SessionStore.create(tmp_path / "s.h5", core.spec, core.trainer.settings)
    link = SessionLink(core, store)
    link.change_settings(core.trainer.settings.slower().slower())
    chosen = core.trainer.settings.learning_rate
    verdict = core.observe(scene.frame(0).image)
    link.label(verdict.frame_id, LabelDisc(50, 50, 20, 1))
    link.label(verdict.frame_id, LabelDisc(250, 200, 20, 0))
    core.trainer.step()
    core.frames[0].features[:, 0, 0] = np.nan  # a poisoned batch: the step is undone
    core.trainer.step()
    assert core.trainer.status.restores == 1
    assert core.trainer.settings.learning_rate == chosen
    link.close()
    assert SessionStore.open(tmp_path / "s.h5").state.settings.learning_rate == chosen


def test_a_trainer_the_device_fails_says_so_and_the_benchmark_ends(base_network, monkeypatch):
    """A device that refuses the step (a GPU refused the groups made for PoCL) stopped the
    trainer's thread without a word: the window went on showing an untrained patch and
    `bench loop` waited out its time limit. The failure is now shown, and ends a benchmark."""
    from loop.faces.sources import DemoSource
    from loop.core.verdict_worker import VerdictWorker
    from loop.faces.bench.loop import stopped_by_failure

    core = make_core(base_network)

    labeled = threading.Event()

    def refused():   # the step a click asks for is refused by the device
        labeled.wait(10)
        raise RuntimeError("clEnqueueNDRangeKernel failed: INVALID_WORK_GROUP_SIZE")
    monkeypatch.setattr(core.trainer, "turn", refused)
    core.trainer.pace_with_verdicts(True)   # as in the window
    core.trainer.pacer.step_took(0.01)
    worker = VerdictWorker(core, DemoSource(seed=3))
    core.start()
    try:
        frame = DemoScene(seed=3).frame(0)
        core.label(core.observe(frame.image).frame_id, LabelDisc(160, 120, 8, 1))
        assert core.trainer.pacer.holds_verdicts, "a click's step is coming: verdicts wait"
        labeled.set()
        deadline = time.monotonic() + 10
        while core.trainer.failure is None and time.monotonic() < deadline:
            time.sleep(0.01)
        expected = ("training stopped: RuntimeError: clEnqueueNDRangeKernel failed: "
                    "INVALID_WORK_GROUP_SIZE")
        assert core.trainer.failure == expected
        assert expected in core.trainer.status.notices
        assert not core.trainer.pacer.holds_verdicts, "no step is coming: verdicts go"
        with pytest.raises(RuntimeError, match="INVALID_WORK_GROUP_SIZE"):
            stopped_by_failure(core, worker, time.perf_counter())
        # Started again (the device answers again): the failure and its notice are gone.
        monkeypatch.undo()
        core.start()
        assert core.trainer.running
        assert core.trainer.failure is None and not core.trainer.status.has_notice("failure")
        stopped_by_failure(core, worker, time.perf_counter())   # nothing to end
    finally:
        core.close()
