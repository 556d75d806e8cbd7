"""The headless core on the OpenCL path: labels, class weights, the divergence guard,
snapshots, and that clicks move the verdict."""
import time
from dataclasses import replace

import numpy as np
import pytest

from loop.core.engine import LoopCore
from loop.core.labels import (ERASE, UNLABELED, LabelDisc, WholeFrameLabel,
                              balanced_class_weights, rasterize)
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.settings import TrainerSettings
from loop.demo.scene import DemoScene


@pytest.fixture(scope="module")
def scene():
    return DemoScene(seed=3)


def make_core(base_network, **settings):
    spec = PatchSpec("test", categories_from_names(["background", "ball", "box"]), seed=1)
    return LoopCore(spec, base=base_network, settings=TrainerSettings(**settings))


def ball_frame(scene):
    frame = next(f for f in (scene.frame(i) for i in range(0, 600, 5)) if (f.truth == 1).sum() > 900)
    ys, xs = np.nonzero(frame.truth == 1)
    return frame, float(xs.mean()), float(ys.mean())


def test_rasterize_discs_erase_and_whole_frame():
    labels = [LabelDisc(40, 40, 20, 1), LabelDisc(300, 200, 1, 2)]
    cells = rasterize(labels, 15, 20, 240, 320)
    assert cells[2, 2] == 1 and cells[12, 18] == 2, "the cell under a tiny click is labeled"
    assert (cells == UNLABELED).sum() > 280, "everything else stays unlabeled"
    cells = rasterize(labels + [LabelDisc(40, 40, 30, ERASE)], 15, 20, 240, 320)
    assert cells[2, 2] == UNLABELED and cells[12, 18] == 2
    assert (rasterize(labels + [WholeFrameLabel(0)], 15, 20, 240, 320) == 0).all()


def test_class_weights_follow_label_counts():
    weights = balanced_class_weights(np.array([90, 10, 0]))
    assert weights[2] == 0 and weights[1] / weights[0] == pytest.approx(9.0)
    assert weights[:2].mean() == pytest.approx(1.0)


def test_clicks_flip_the_verdict_where_clicked(device, base_network, scene):
    core = make_core(base_network)
    frame, x, y = ball_frame(scene)
    verdict = core.observe(frame.image)
    assert verdict.category_at(x, y) == 0, "an untaught patch says background"
    core.label(verdict.frame_id, LabelDisc(x, y, 10, 1))
    core.label(verdict.frame_id, LabelDisc(15, 15, 12, 0))
    core.label(verdict.frame_id, LabelDisc(300, 220, 12, 0))
    for _ in range(40):
        assert core.trainer.step()
    after = core.observe(frame.image)
    assert after.category_at(x, y) == 1
    assert after.category_at(15, 15) == 0 and after.category_at(300, 220) == 0
    assert after.weights_version > verdict.weights_version
    assert core.trainer.status.last_loss < core.trainer.status.losses[0][1]


def test_undo_removes_the_newest_label(device, base_network, scene):
    core = make_core(base_network)
    verdict = core.observe(scene.frame(0).image)
    core.label(verdict.frame_id, LabelDisc(50, 50, 10, 1))
    core.label(verdict.frame_id, LabelDisc(100, 100, 10, 0))
    assert core.label_counts().sum() >= 2
    assert core.undo() and core.label_counts()[0] == 0
    assert core.undo() and core.label_counts().sum() == 0
    assert not core.undo()


def test_a_nonfinite_step_is_undone_and_the_next_runs_slower(device, base_network, scene):
    core = make_core(base_network, learning_rate=0.01)
    verdict = core.observe(scene.frame(0).image)
    core.label(verdict.frame_id, LabelDisc(50, 50, 20, 1))
    core.label(verdict.frame_id, LabelDisc(250, 200, 20, 0))
    for _ in range(3):
        core.trainer.step()
    good = core.model.state(core.queue)["weights"]
    core.frames[0].features[:, 0, 0] = np.nan  # a poisoned batch
    core.trainer.step()
    status = core.trainer.status
    assert core.trainer.settings.learning_rate == pytest.approx(0.01), "the user's setting stays"
    assert status.restores == 1 and status.rate_changes == 1
    assert core.trainer.backoff.factor == 0.5
    assert any("stopped being finite" in n and "your setting: 0.01" in n for n in status.notices)
    restored = core.model.state(core.queue)["weights"]
    assert np.isfinite(restored).all() and np.array_equal(restored, good)


def test_snapshot_round_trip_gives_identical_verdicts(device, base_network, scene):
    core = make_core(base_network)
    frame, x, y = ball_frame(scene)
    verdict = core.observe(frame.image)
    core.label(verdict.frame_id, LabelDisc(x, y, 10, 1))
    core.label(verdict.frame_id, LabelDisc(15, 15, 12, 0))
    for _ in range(10):
        core.trainer.step()
    snap = core.snapshot()
    before = core.observe(frame.image).probabilities
    core.trainer.update(learning_rate=0.05, momentum=0.5)
    for _ in range(10):
        core.trainer.step()
    assert not np.array_equal(core.observe(frame.image).probabilities, before)
    core.restore(snap)
    assert np.array_equal(core.observe(frame.image).probabilities, before)
    assert core.trainer.settings == snap.settings
    assert snap.tag[:8].isdigit() and len(snap.tag.split("-")[-1]) == 8
    other = LoopCore(PatchSpec("other", categories_from_names(["a", "b"])), base=base_network)
    with pytest.raises(ValueError, match="not of this one"):
        other.restore(snap)


def test_augmented_labels_stay_on_what_they_labeled():
    from loop.core.augment import augment
    image = np.zeros((240, 320, 3), np.uint8)
    image[100:140, 200:240] = 255
    labels = [LabelDisc(220, 120, 8, 1), WholeFrameLabel(0)]
    rng = np.random.default_rng(0)
    for _ in range(20):
        out, moved = augment(image, labels, rng, flips=True)
        disc = next(m for m in moved if isinstance(m, LabelDisc))
        assert out[int(disc.y), int(disc.x)].mean() > 150
        assert any(isinstance(m, WholeFrameLabel) for m in moved)


def test_trainer_thread_makes_augmented_copies(device, base_network, scene):
    core = make_core(base_network)
    verdict = core.observe(scene.frame(0).image)
    core.label(verdict.frame_id, LabelDisc(60, 60, 12, 1))
    core.start()
    import time
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with core.frames_lock:
            if sum(f.augmented_from is not None for f in core.frames) >= 2:
                break
        time.sleep(0.05)
    core.close()
    with core.frames_lock:
        copies = [f for f in core.frames if f.augmented_from == verdict.frame_id]
    assert len(copies) >= 2 and all(c.labeled_cells > 0 for c in copies)
    assert core.label_counts().sum() == core.frames[0].labeled_cells, "copies are not counted"
    core.label(verdict.frame_id, LabelDisc(200, 150, 12, 0))
    assert not any(f.augmented_from is not None for f in core.frames), "stale copies dropped"


def test_squared_error_pixels_patch_learns_and_exports_exactly(device, scene, tmp_path):
    from loop.faces.apply import load_plugin_core
    from loop.store.plugin_export import export_snapshot
    spec = PatchSpec("seed", categories_from_names(["background", "ball"]), topology="pixels",
                     loss="squared_error")
    core = LoopCore(spec, settings=TrainerSettings(learning_rate=0.01))
    assert core.model.layers[-1].c_out == 1, "one score per pixel"
    frame, x, y = ball_frame(scene)
    verdict = core.observe(frame.image)
    assert verdict.probabilities.shape == (2, 120, 160)
    core.label(verdict.frame_id, LabelDisc(x, y, 8, 1))
    core.label(verdict.frame_id, LabelDisc(20, 20, 12, 0))
    core.label(verdict.frame_id, LabelDisc(300, 220, 12, 0))
    for _ in range(60):
        core.trainer.step()
    after = core.observe(frame.image)
    assert after.category_at(x, y) == 1 and after.category_at(20, 20) == 0
    snap = core.snapshot()
    path = export_snapshot(spec, snap.weights, tmp_path / "seed.specialneurons", snap.tag)
    applied, _ = load_plugin_core(str(path))
    assert np.array_equal(applied.observe(frame.image).probabilities, after.probabilities)
    with pytest.raises(ValueError, match="two-category pixels"):
        PatchSpec("bad", categories_from_names(["a", "b", "c"]), topology="pixels",
                  loss="squared_error")


def test_pacer_gives_verdicts_their_turn():
    import threading
    import time
    from loop.core.trainer import Pacer
    pacer = Pacer(verdicts_per_step=2)
    pacer.FLOWING = 5.0  # a slow CI machine must not end the stream between the two verdicts
    start = time.monotonic()
    pacer.wait_turn()  # no verdicts flowing: no wait
    assert time.monotonic() - start < 0.05
    pacer.verdict_done()  # a live stream has started
    released = threading.Event()

    def trainer():
        pacer.wait_turn()
        released.set()

    threading.Thread(target=trainer, daemon=True).start()
    assert not released.wait(0.05), "one verdict is not enough for a step"
    pacer.verdict_done()
    assert released.wait(1.0), "the second verdict lets the step go"


def test_a_long_step_still_leaves_the_verdicts_their_rate():
    import threading
    import time
    from loop.core.pacer import Pacer
    pacer = Pacer(verdicts_per_step=2)
    for seconds, wanted in ((0.0, 2), (0.01, 2), (0.2, 3), (1.0, 15)):
        pacer.step_took(seconds)
        assert pacer.verdicts_wanted() == wanted, seconds
    assert Pacer(verdicts_per_step=0).verdicts_wanted() == 0, "no pacing where none is wanted"
    pacer.verdict_done()
    time.sleep(pacer.FLOWING + 0.05)  # longer than FLOWING, well inside FLOWING + the step
    released = threading.Event()

    def trainer():
        pacer.wait_turn()
        released.set()

    threading.Thread(target=trainer, daemon=True).start()
    assert not released.wait(0.1), "a stream held up by a long step still flows"
    for _ in range(15):
        pacer.verdict_done()
    assert released.wait(2.0), "the verdicts a long step wants let it go"


def test_steady_verdicts_read_a_running_average_of_the_weights(base_network):
    """With `steady` on (a live head's default), each step moves the weights the verdicts
    read towards the trained ones, which keep training as they are: STEADY_RATE of the way
    while the step answers a click, SETTLED_STEADY_RATE between clicks, then 1/n for the
    n-th settled step once that is less; off, they are the trained ones again at the next
    step."""
    from loop.core.trainer import SETTLED_FLOOR, SETTLED_STEADY_RATE, STEADY_RATE
    from test_plugin import trained_core
    core = trained_core(base_network, steps=5)
    model, queue, trainer = core.model, core.queue, core.trainer

    def published():
        return core.snapshot().weights.astype(np.float64)

    def trained():
        return model.layout.dense(model.trained_state(queue)).astype(np.float64)

    def step_moves_by(rate):
        before = published()
        assert trainer.step()
        after, raw = published(), trained()
        assert not np.allclose(after, raw), "the verdicts' weights lag the trained ones"
        assert np.allclose(after, (1 - rate) * before + rate * raw, atol=1e-6)

    assert trainer.settings.steady
    for click in range(2):
        frame = DemoScene(seed=6).frame(120 + click)
        core.label(core.observe(frame.image).frame_id, LabelDisc(160, 120, 8, 0))
        assert trainer.answers_a_click, "a new label's steps answer it"
        for _ in range(40):   # the label's own first steps, and its cell until it shows
            if not trainer.answers_a_click:
                break
            step_moves_by(STEADY_RATE)
        assert not trainer.answers_a_click, "the label's steps should be over by now"
        for _ in range(8):
            step_moves_by(SETTLED_STEADY_RATE)
        for n in range(9, 12 + click):   # then the mean of the settled steps since the click
            step_moves_by(1.0 / n)
    assert core.undo()   # the labels changed: the average starts again at its settled rate
    assert not trainer.answers_a_click
    step_moves_by(SETTLED_STEADY_RATE)
    # A long idle stretch: the mean spans about the last 1 / SETTLED_FLOOR steps.
    assert trainer._average_rate(trainer.settings, False, 1000) == SETTLED_FLOOR
    core.change_settings(replace(trainer.settings, steady=False))
    assert trainer.step()
    assert np.array_equal(published(), trained()), "without steady: the trained weights"
    core.close()


def test_a_clicks_first_steps_go_before_waiting_verdicts_when_steps_are_short():
    import threading
    import time
    from loop.core.pacer import Pacer
    pacer = Pacer(verdicts_per_step=2)
    pacer.step_took(0.01)
    passed = threading.Event()

    def verdict():
        pacer.let_urgent_steps_go()
        passed.set()

    with pacer.urgent_step():
        threading.Thread(target=verdict, daemon=True).start()
        assert not passed.wait(0.1), "the verdict waits for the urgent step"
    assert passed.wait(2.0), "and goes once it is done"
    # Between two urgent steps (the trainer says the next one is urgent too) the verdict
    # waits as well: the gap does not hand the device to it.
    passed.clear()
    pacer.urgent_ahead(True)
    assert pacer.holds_verdicts
    threading.Thread(target=verdict, daemon=True).start()
    assert not passed.wait(0.1), "the verdict waits for the next urgent step"
    pacer.urgent_ahead(False)
    assert passed.wait(2.0), "and goes once no urgent step is ahead"
    pacer.urgent_ahead(True)
    started = time.monotonic()
    pacer.let_urgent_steps_go()   # an urgent step that never comes holds a verdict so long
    assert pacer.URGENT_WAIT - 0.01 <= time.monotonic() - started < pacer.URGENT_WAIT + 1.0
    pacer.step_took(0.2)   # a long step (a pixels patch) never stops the picture for this
    assert not pacer.holds_verdicts
    with pacer.urgent_step():
        started = time.monotonic()
        pacer.let_urgent_steps_go()
        assert time.monotonic() - started < 0.05
    simulation = Pacer(verdicts_per_step=0)
    assert not simulation.paced
    simulation.urgent_ahead(True)
    with simulation.urgent_step():
        simulation.let_urgent_steps_go()   # nothing to wait for step by step
    assert not simulation.holds_verdicts


def test_bench_live_reports_rates_while_training(capsys):
    """The headless live loop of a pixels patch (no base needed): verdicts come while the
    trainer trains, and the report says how fast each went."""
    import json
    from loop.cli import main
    assert main(["bench", "live", "--seconds", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["topology"] == "pixels" and report["trainer_batch"] == 16
    assert report["idle"]["steps_per_second"] == 0 < report["idle"]["verdicts_per_second"]
    assert report["training"]["steps_per_second"] > 0 < report["training"]["verdicts_per_second"]
    assert 0 < report["machine"]["this_process"] <= 1


def test_a_new_label_cuts_a_steps_wait_for_verdicts_short():
    import threading
    from loop.core.pacer import Pacer
    pacer = Pacer(verdicts_per_step=2)
    pacer.FLOWING = 5.0
    pacer.verdict_done()   # a live stream: a step waits for two verdicts
    released = threading.Event()

    def trainer():
        pacer.wait_turn()
        released.set()

    threading.Thread(target=trainer, daemon=True).start()
    assert not released.wait(0.1)
    pacer.release()        # the user labeled: the step goes without its verdicts
    assert released.wait(2.0)


def test_a_verdict_without_classes_stops_the_base_at_the_patch(base_network):
    """observe(classes=False): the same verdict, the base's classes left out unless a
    trigger needs them (then every frame's own)."""
    black, white = (np.full((240, 320, 3), v, np.uint8) for v in (0, 255))
    core = make_core(base_network)
    full, short = core.observe(white), core.observe(white, classes=False)
    assert full.base_top and short.base_top == ()
    assert np.array_equal(full.probabilities, short.probabilities)
    spec = replace(core.spec, triggers=(full.base_top[0][0],))
    triggered = LoopCore(spec, base=base_network)
    tops = [triggered.observe(frame, classes=False).base_top for frame in (black, white)]
    assert tops[1] == full.base_top and tops[0] != tops[1]


def test_the_window_names_the_base_classes_on_every_verdict(base_network):
    """The verdict thread reads the classes every few verdicts and keeps them between."""
    from loop.core.verdict_worker import CLASSES_EVERY, VerdictWorker

    class Frames:
        def __init__(self):
            self.count = 0

        def read(self):
            self.count += 1
            return np.full((240, 320, 3), 0 if self.count == 1 else 255, np.uint8)

    core = make_core(base_network)
    worker = VerdictWorker(core, Frames())
    tops, deadline = [], time.monotonic() + 60
    worker.start()
    try:
        while len(tops) < CLASSES_EVERY + 2 and time.monotonic() < deadline:
            latest = worker.latest()
            if latest is not None and (not tops or latest[1] is not tops[-1][0]):
                tops.append((latest[1], latest[1].base_top))
    finally:
        worker.stop()
        core.close()
    assert all(top for _, top in tops), "a verdict came without the base's classes"
    assert len({top for _, top in tops}) >= 2, "the classes were never read again"


@pytest.mark.parametrize("label", [
    LabelDisc(float("inf"), 10, 5, 1), LabelDisc(10, float("nan"), 5, 1),
    LabelDisc(10, 10, float("inf"), 1), LabelDisc(10, 10, -1, 1), LabelDisc(10, 10, 5, -5),
    LabelDisc(10, 10, 5, 3), WholeFrameLabel(-1), WholeFrameLabel(7)])
def test_a_label_that_cannot_be_one_is_refused_and_changes_nothing(base_network, label):
    core = make_core(base_network)
    verdict = core.observe(np.zeros((240, 320, 3), np.uint8))
    core.label(verdict.frame_id, LabelDisc(10, 10, 5, 1))
    before = core.label_counts().copy()
    with pytest.raises(ValueError):
        core.label(verdict.frame_id, label)
    assert np.array_equal(core.label_counts(), before)
    assert core.trainer.awaited is not None and core.trainer.awaited.category == 1


def test_verdicts_on_stored_features_from_two_threads_each_get_their_own(base_network):
    """The window's verdict thread (a frozen frame) and a benchmark's or test's thread (held-
    out scoring) ask for verdicts on stored features at the same time: each gets the verdict
    and pixel map of its own features (they share buffers; PoCL once crashed on it)."""
    import threading
    from test_plugin import trained_core
    core = trained_core(base_network, steps=3)
    core.trainer.update(training=False)
    frames = core.labeled_frames()[:2]
    features, images = [f.features for f in frames], [f.image for f in frames]
    expected = [core.verdict_on_features(f) for f in features]
    pixels = [core.pixel_probabilities(p, image) for p, image in zip(expected, images)]
    wrong = []

    def ask(i):
        for _ in range(60):
            probabilities = core.verdict_on_features(features[i])
            if not np.allclose(probabilities, expected[i], atol=1e-5) or not np.allclose(
                    core.pixel_probabilities(probabilities, images[i]), pixels[i], atol=1e-5):
                wrong.append(i)

    threads = [threading.Thread(target=ask, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not np.allclose(expected[0], expected[1]), "the two frames' verdicts differ"
    assert wrong == []
    core.close()


def test_a_source_that_raises_is_said_and_read_again(base_network):
    """A camera or file whose read raises (a driver error, a broken stream) stopped the
    verdict thread without a word, leaving the last picture on screen. Now the window says
    so, reads again, and withdraws the message once verdicts come."""
    from loop.core.verdict_worker import VerdictWorker

    class Flaky:
        def __init__(self):
            self.reads = 0

        def read(self):
            self.reads += 1
            if self.reads <= 3:
                raise OSError("the camera answered garbage")
            return np.full((240, 320, 3), 90, np.uint8)

    core = make_core(base_network)
    source = Flaky()
    worker = VerdictWorker(core, source)
    seen = []
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while worker.verdicts < 2 and time.monotonic() < deadline:
            if worker.error:
                seen.append(worker.error)
            time.sleep(0.005)
    finally:
        worker.stop()
        core.close()
    assert source.reads > 3 and worker.verdicts >= 2, "the thread read on after the errors"
    assert "reading the picture failed: the camera answered garbage" in seen
    assert worker.error is None, "verdicts came: the message is withdrawn"
