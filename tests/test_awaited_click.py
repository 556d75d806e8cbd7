"""The click the user waits on: its frame leads every batch, and its steps go before the
verdicts, until the cell under it shows the clicked category (loop/core/awaited_click.py)."""
import numpy as np

from loop.core.awaited_click import FOLLOW_STEPS, LEAD_STEPS, AwaitedClick
from loop.core.engine import LoopCore
from loop.core.labels import ERASE, LabelDisc, LabeledFrame, WholeFrameLabel
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.settings import TrainerSettings
from loop.demo.scene import DemoScene
from test_core import ball_frame, make_core


def labeled_frame(*labels) -> LabeledFrame:
    frame = LabeledFrame(7, np.zeros((240, 320, 3), np.uint8), np.zeros((4, 15, 20), np.float32),
                         list(labels))
    frame.relabel()
    return frame


def test_the_awaited_cell_is_the_one_under_the_click():
    click = LabelDisc(40, 40, 20, 1)
    awaited = AwaitedClick.of(labeled_frame(click), click)
    assert (awaited.frame_id, awaited.row, awaited.col, awaited.category) == (7, 2, 2, 1)
    assert awaited.steps_left == FOLLOW_STEPS
    corner = LabelDisc(319.9, 239.9, 1, 2)
    assert (AwaitedClick.of(labeled_frame(corner), corner).row,
            AwaitedClick.of(labeled_frame(corner), corner).col) == (14, 19)


def test_labels_that_point_at_no_one_cell_are_not_awaited():
    whole, erase = WholeFrameLabel(0), LabelDisc(40, 40, 20, ERASE)
    assert AwaitedClick.of(labeled_frame(whole), whole) is None
    assert AwaitedClick.of(labeled_frame(LabelDisc(40, 40, 20, 1), erase), erase) is None


def test_a_later_label_over_the_cell_ends_the_wait():
    click = LabelDisc(40, 40, 20, 1)
    awaited = AwaitedClick.of(labeled_frame(click), click)
    assert awaited.still_labeled(labeled_frame(click))
    assert not awaited.still_labeled(labeled_frame(click, LabelDisc(40, 40, 5, 0)))


def test_shown_reads_the_category_first_at_the_cell():
    click = LabelDisc(40, 40, 20, 2)
    awaited = AwaitedClick.of(labeled_frame(click), click)
    logits = np.zeros((3, 15, 20), np.float32)
    logits[0] = 1.0
    assert not awaited.shown(logits)
    logits[2, 2, 2] = 2.0
    assert awaited.shown(logits)


def labeled_core(base_network, frames: int = 12, **settings):
    """A core with `frames` frames labeled ball and background, trained a little."""
    core = make_core(base_network, augment=False, **settings)
    scene = DemoScene(seed=3)
    frame, x, y = ball_frame(scene)
    for i in range(frames):
        verdict = core.observe(scene.frame(40 * i + 3).image)
        core.label(verdict.frame_id, LabelDisc(20 + 20 * i, 20, 8, 0))
        if i % 2 == 0:
            core.label(core.observe(frame.image).frame_id, LabelDisc(x, y, 6, 1))
    core.train_turns(30)
    return core, scene


def test_the_clicked_frame_leads_the_next_batches_and_is_followed_until_it_shows(
        base_network):
    # A slow rate, so that the click needs more steps than the frame leads batches for;
    # verdicts from the newest weights (steady ones catch up a few steps later).
    core, scene = labeled_core(base_network, learning_rate=0.01, steady=False)
    image = scene.frame(401).image
    verdict = core.observe(image)
    # A click of the category the patch shows least at a cell: box, never labeled before.
    probabilities = verdict.probabilities
    row, col = np.unravel_index(np.argmin(probabilities[2]), probabilities[2].shape)
    x, y = (col + 0.5) * 320 / probabilities.shape[2], (row + 0.5) * 240 / probabilities.shape[1]
    core.label(verdict.frame_id, LabelDisc(x, y, 1, 2))
    features = core.features_of(verdict.frame_id)
    steps = 0
    while core.trainer.awaited is not None:
        assert steps < FOLLOW_STEPS
        core.train_turns(1)
        if steps < LEAD_STEPS:
            assert core.trainer.last_batch[0].frame_id == verdict.frame_id
        steps += 1
    assert steps > LEAD_STEPS, "the test's click should take more steps than the lead"
    shown = core.verdict_on_features(features)[:, row, col].argmax()
    assert shown == 2, f"the wait ended at step {steps} with category {shown} at the cell"


def _click_least_shown(core, scene, category=2):
    """A click of `category` where the patch shows it least, on a new frame: (verdict, row,
    col)."""
    verdict = core.observe(scene.frame(401).image)
    row, col = np.unravel_index(np.argmin(verdict.probabilities[category]),
                                verdict.probabilities[category].shape)
    h, w = verdict.probabilities.shape[1:]
    core.label(verdict.frame_id, LabelDisc((col + 0.5) * 320 / w, (row + 0.5) * 240 / h,
                                           1, category))
    return verdict, row, col


def test_steady_verdicts_catch_up_with_a_shown_click_before_the_verdicts(base_network):
    """Once the awaited cell shows in the trained weights, at least the next CATCH_UP_STEPS
    steps still go before the verdicts when these read averaged weights (a few steps
    behind), and they go on until the verdicts show the click; with steady verdicts off,
    the trainer goes back to the verdicts' pace at once."""
    from loop.core.trainer import BURST_STEPS, CATCH_UP_STEPS
    for steady in (True, False):
        # A slow rate: the click takes longer than the steps every new label goes first for.
        core, scene = labeled_core(base_network, learning_rate=0.01, steady=steady)
        trainer = core.trainer
        verdict, row, col = _click_least_shown(core, scene)
        steps = 0
        while trainer.awaited is not None:
            assert steps < FOLLOW_STEPS
            trainer.pacer.step_took(0.01)   # timed as short steps: the load must not decide
            assert trainer.goes_before_verdicts
            assert trainer.step()
            steps += 1
        assert steps > BURST_STEPS, "the test's click should outlast a label's first steps"
        ahead = 0
        trainer.pacer.step_took(0.01)
        while trainer.goes_before_verdicts:
            ahead += 1
            assert trainer.step()
            trainer.pacer.step_took(0.01)
            assert steps + ahead <= FOLLOW_STEPS + CATCH_UP_STEPS
        if steady:
            assert ahead >= CATCH_UP_STEPS
        else:
            assert ahead == 0
        shown = core.verdict_on_features(core.features_of(verdict.frame_id))[:, row, col]
        assert shown.argmax() == 2, f"the verdicts show {shown.argmax()} when the steps slow"
        core.close()


class LaggingVerdicts:
    """The core's verdicts on stored features, but with the clicked cell's category held
    last for the first `lag` calls (averaged weights further behind than usual)."""

    def __init__(self, core, row: int, col: int, category: int, lag: int):
        self.core, self.row, self.col, self.category, self.lag = core, row, col, category, lag
        self.calls = 0

    def __call__(self, features):
        probabilities = self.core.verdict_on_features(features)
        self.calls += 1
        if self.calls <= self.lag:
            probabilities[self.category, self.row, self.col] = -1.0
        return probabilities


def test_a_click_the_verdicts_do_not_show_yet_is_followed_again(base_network):
    """After the catch-up steps the verdicts' own weights are asked: while they do not show
    the click, the clicked frame leads a batch again and the steps keep going before the
    verdicts; once they show it, the trainer goes back to the verdicts' pace. A click they
    never show is let go after FOLLOW_STEPS steps in all."""
    from loop.core.trainer import CATCH_UP_STEPS
    for lag, never in ((3, False), (10 ** 6, True)):
        core, scene = labeled_core(base_network, frames=4)
        trainer = core.trainer
        verdict, row, col = _click_least_shown(core, scene)
        lagging = LaggingVerdicts(core, row, col, 2, lag)
        trainer.verdict_on_features = lagging
        steps, led_again = 0, 0
        trainer.pacer.step_took(0.01)   # timed as short steps: the load must not decide
        while trainer.goes_before_verdicts:
            followed_before = trainer.awaited is not None
            assert trainer.step()
            trainer.pacer.step_took(0.01)
            steps += 1
            if lagging.calls and followed_before and \
                    trainer.last_batch[0].frame_id == verdict.frame_id:
                led_again += 1
            assert steps <= FOLLOW_STEPS + CATCH_UP_STEPS + 1
        assert lagging.calls >= (1 if never else lag + 1), "asked until the verdicts show it"
        assert led_again >= 1, "the clicked frame led a batch again"
        assert trainer.awaited is None
        if never:
            assert steps >= FOLLOW_STEPS, "let go only when its steps ran out"
        core.close()


def test_verdicts_wait_through_the_gaps_between_a_clicks_steps(base_network):
    """Live (steps paced with verdicts) and with short steps, a verdict waits while the
    trainer's next step answers a click, not only while one runs: between two such steps the
    device does not go to a verdict. Once the click is answered, or the trainer stops,
    nothing holds the verdicts; with no trainer thread, a label holds none either."""
    core, scene = labeled_core(base_network, learning_rate=0.01, steady=False)
    trainer = core.trainer
    trainer.pace_with_verdicts(True)
    trainer.pacer.step_took(0.01)   # timed as short steps: the load must not decide
    verdict = core.observe(scene.frame(401).image)
    row, col = np.unravel_index(np.argmin(verdict.probabilities[2]),
                                verdict.probabilities[2].shape)
    h, w = verdict.probabilities.shape[1:]
    core.label(verdict.frame_id, LabelDisc((col + 0.5) * 320 / w, (row + 0.5) * 240 / h, 1, 2))
    assert not trainer.running and not trainer.pacer.holds_verdicts, "no step is coming"
    steps = 0
    while True:   # the trainer's turns, taken here one by one
        assert trainer.step()
        trainer.pacer.step_took(0.01)
        steps += 1
        if not trainer.goes_before_verdicts:
            break
        assert trainer.pacer.holds_verdicts, f"between answering steps {steps} and {steps + 1}"
        assert steps <= FOLLOW_STEPS
    assert steps > 1 and not trainer.pacer.holds_verdicts, "answered: the verdicts go"
    core.label(verdict.frame_id, LabelDisc(10, 10, 4, 0))
    assert trainer.step()
    trainer.pacer.step_took(0.01)   # (a loaded machine made that step long: short, as above)
    assert trainer.pacer.holds_verdicts
    core.close()
    assert not trainer.pacer.holds_verdicts, "a stopped trainer holds no verdict back"


def test_an_undo_ends_the_wait(base_network):
    core, scene = labeled_core(base_network, frames=4)
    verdict = core.observe(scene.frame(401).image)
    core.label(verdict.frame_id, LabelDisc(100, 100, 1, 2))
    assert core.trainer.awaited is not None
    core.undo()
    core.train_turns(1)
    assert core.trainer.awaited is None


def test_a_whole_frame_label_is_not_awaited(base_network):
    core, scene = labeled_core(base_network, frames=4)
    verdict = core.observe(scene.frame(401).image)
    core.label(verdict.frame_id, WholeFrameLabel(0))
    assert core.trainer.awaited is None


def test_a_pixels_patch_leads_with_a_window_around_the_click_and_follows_it_after(
        monkeypatch):
    """A pixels patch trains on windows: the clicked frame's window is centred on the cell
    whenever the frame is in a batch while the click is awaited, so the step's own logits
    say when it has turned, after the lead too (the window's logits are the whole frame's
    there: test_train_windows.py)."""
    spec = PatchSpec("w", categories_from_names(["background", "ball", "box"]),
                     topology="pixels", hidden=4, seed=2)
    core = LoopCore(spec, settings=TrainerSettings(augment=False, learning_rate=0.05))
    scene = DemoScene(seed=3)
    for i in range(6):
        verdict = core.observe(scene.frame(40 * i + 3).image)
        core.label(verdict.frame_id, LabelDisc(30 + 40 * i, 40, 10, 0))
        core.label(verdict.frame_id, LabelDisc(30 + 40 * i, 200, 10, 1 + i % 2))
    core.train_turns(10)
    verdict = core.observe(scene.frame(401).image)
    probabilities = verdict.probabilities
    # A cell well inside the frame: its window does not start at the frame's corner.
    middle = probabilities[2, 40:80, 50:110]
    row, col = np.add(np.unravel_index(np.argmin(middle), middle.shape), (40, 50))
    x, y = (col + 0.5) * 320 / probabilities.shape[2], (row + 0.5) * 240 / probabilities.shape[1]
    core.label(verdict.frame_id, LabelDisc(x, y, 6, 2))
    awaited = core.trainer.awaited
    label_map = next(f for f in core.labeled_frames() if f.frame_id == verdict.frame_id).label_map
    centre = core.trainer.windows.around(label_map, awaited.row, awaited.col)
    assert centre[0] > 0 and centre[1] > 0
    looks = []   # (window corner, whether the cell showed) of each look at the cell
    shown = AwaitedClick.shown
    monkeypatch.setattr(AwaitedClick, "shown",
                        lambda self, logits, at=(0, 0): looks.append((at, shown(self, logits, at)))
                        or looks[-1][1])
    steps = 0
    while core.trainer.awaited is not None:
        assert steps < FOLLOW_STEPS
        core.train_turns(1)
        if steps < LEAD_STEPS:
            assert core.trainer.last_batch[0].frame_id == verdict.frame_id
        steps += 1
    assert steps > LEAD_STEPS, "the click should take more steps than the lead"
    assert len(looks) == steps, "the frame is in every batch (fewer frames than the batch)"
    assert all(at == centre for at, _ in looks), "every look through the centred window"
    assert looks[-1][1] and not any(turned for _, turned in looks[:-1])
    core.close()


def test_a_window_around_a_cell_holds_its_label_where_the_logits_are_read():
    from loop.core.train_windows import TrainWindows
    click = LabelDisc(150, 100, 3, 1)
    frame = LabeledFrame(3, np.zeros((240, 320, 3), np.uint8),
                         np.random.default_rng(0).random((2, 120, 160), np.float32), [click])
    frame.relabel()
    awaited = AwaitedClick.of(frame, click)
    windows = TrainWindows((72, 72), 7)
    for row, col in [(awaited.row, awaited.col), (2, 3), (118, 158)]:
        top, left = windows.around(frame.label_map, row, col)
        assert 0 <= top <= 120 - 72 and 0 <= left <= 160 - 72
        assert 0 <= row - top < 72 and 0 <= col - left < 72
    top, left = windows.around(frame.label_map, awaited.row, awaited.col)
    features, labels, corners = windows.batch([frame], 4, (3, awaited.row, awaited.col))
    assert corners[0] == (top, left)
    assert labels[0, awaited.row - top, awaited.col - left] == 1
    assert np.array_equal(features[0], frame.features[:, top:top + 72, left:left + 72])
    logits = np.zeros((2, 72, 72), np.float32)
    logits[1, awaited.row - top, awaited.col - left] = 1.0
    assert awaited.shown(logits, (top, left)) and not awaited.shown(logits, (top + 1, left))


def test_an_undo_while_the_verdicts_catch_up_lets_the_click_go(base_network):
    """A click the verdicts never show, undone once the trained weights have shown it: the
    trainer stops asking and goes back to the verdicts' pace within a step or two."""
    core, scene = labeled_core(base_network, frames=4)
    trainer = core.trainer
    verdict, row, col = _click_least_shown(core, scene)
    lagging = LaggingVerdicts(core, row, col, 2, 10 ** 6)
    trainer.verdict_on_features = lagging
    steps = 0
    while lagging.calls == 0:   # followed until shown, caught up, asked once: not shown
        assert trainer.step()
        trainer.pacer.step_took(0.01)   # timed as short steps: the load must not decide
        steps += 1
        assert steps <= FOLLOW_STEPS
    assert trainer.goes_before_verdicts, "not shown yet: followed again"
    assert core.undo()
    asked = lagging.calls
    for _ in range(3):
        assert trainer.step()
        trainer.pacer.step_took(0.01)
        if not trainer.goes_before_verdicts:
            break
    assert not trainer.goes_before_verdicts and trainer.awaited is None
    assert lagging.calls <= asked + 1, "no more asking for a label that is gone"
    core.close()
