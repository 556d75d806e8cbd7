"""Training in the gaps a camera leaves (loop/core/pacer.py): while the verdicts wait for the
source's next frame, a step that fits in what is usually left of the wait goes at once,
instead of waiting for its share of verdicts (a 30 frames/s camera held training to 15
steps/s with the device idle). A step longer than the gap, or a source that usually has
its frame ready (the demo read as fast as it is judged), changes nothing."""
import threading
import time

import numpy as np
import pytest

from loop.cli import main
from loop.core.labels import LabelDisc
from loop.core.pacer import Pacer
from loop.core.verdict_worker import VerdictWorker
from loop.demo.scene import DemoScene
from loop.faces.sources import DemoSource
from test_core import ball_frame, make_core

GAP = 0.3   # seconds the test's camera keeps the verdicts waiting: far above a thread's wake-up


def camera_pacer(gap: float, step: float) -> Pacer:
    """A pacer whose verdicts have waited `gap` for each of their last frames, whose last
    step took `step`, with a live stream flowing (one verdict so far)."""
    pacer = Pacer(verdicts_per_step=2)
    pacer.FLOWING = 5.0   # a slow CI machine must not end the stream during the test
    for _ in range(3):
        pacer.frame_awaited()
        time.sleep(gap)
        pacer.frame_arrived()
    pacer.step_took(step)
    pacer.verdict_done()
    return pacer


def trainer_waiting(pacer: Pacer) -> threading.Event:
    """A trainer's thread waiting for its turn; the event is set when it gets it."""
    released = threading.Event()

    def trainer():
        pacer.wait_turn()
        released.set()

    threading.Thread(target=trainer, daemon=True).start()
    return released


def test_a_step_goes_into_the_gap_while_the_verdicts_wait_for_a_frame():
    pacer = camera_pacer(GAP, step=0.01)
    released = trainer_waiting(pacer)
    assert not released.wait(0.05), "one verdict is not a step's turn, and no frame is awaited"
    pacer.frame_awaited()
    assert released.wait(GAP / 2), "the verdicts wait for a frame: a short step goes now"


def test_a_step_longer_than_the_gap_waits_for_its_verdicts():
    pacer = camera_pacer(GAP, step=2 * GAP)
    released = trainer_waiting(pacer)
    pacer.frame_awaited()
    assert not released.wait(0.1), "the step would hold the next frame's verdict up"
    for _ in range(pacer.verdicts_wanted()):
        pacer.verdict_done()
    assert released.wait(2.0), "its share of verdicts lets it go, as before"


def test_a_source_that_has_its_frames_ready_leaves_no_gap():
    pacer = camera_pacer(0.0, step=0.01)
    for _ in range(Pacer.GAPS_KEPT):   # frames there at once, as the demo's are
        pacer.frame_arrived()
    released = trainer_waiting(pacer)
    pacer.frame_awaited()   # an odd wait (the reader was late once) is no usual gap
    assert not released.wait(0.1)
    pacer.verdict_done()
    assert released.wait(2.0)


def test_the_verdict_worker_says_when_it_waits_for_a_frame():
    """The worker tells the core each wait for the source, and each frame it gets."""
    calls, frame_comes = [], threading.Event()

    class Core:   # records what the worker tells it; judges nothing
        weights_version = 0

        def waiting_for_frame(self):
            calls.append("waiting")

        def frame_arrived(self):
            calls.append("arrived")

        def observe(self, frame, classes=False):
            calls.append("observed")
            raise RuntimeError("no verdicts in this test")

    class Camera:
        def read(self):
            frame_comes.wait(10)
            frame_comes.clear()
            return np.zeros((240, 320, 3), np.uint8)

    worker = VerdictWorker(Core(), Camera())
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while "waiting" not in calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls[:1] == ["waiting"], "no frame was ready: the worker waits for the camera"
        frame_comes.set()
        while "observed" not in calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls[1:3] == ["arrived", "observed"]
    finally:
        frame_comes.set()
        worker.stop()


def test_the_trainer_steps_between_a_slow_cameras_frames(base_network):
    """Live, with the demo read like a camera at 5 frames a second: once the click has
    shown, more steps than verdicts. Counting verdicts alone gave one step per two. (At 10
    frames a second a loaded CI machine left gaps too short for more than about one step.)"""
    core = make_core(base_network)
    frame, x, y = ball_frame(DemoScene(seed=2))
    worker = VerdictWorker(core, DemoSource(seed=2, fps=5.0, like_a_camera=True))
    worker.start()
    core.start()
    try:
        labeled = core.observe(frame.image)
        core.label(labeled.frame_id, LabelDisc(x, y, 10, 1))
        core.label(labeled.frame_id, LabelDisc(20, 20, 10, 0))
        deadline = time.monotonic() + 60
        while (core.trainer.answers_a_click or core.trainer.status.steps < 20) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not core.trainer.answers_a_click, "the click was never answered"
        steps, verdicts = core.trainer.status.steps, worker.verdicts
        while worker.verdicts < verdicts + 15 and time.monotonic() < deadline:
            time.sleep(0.05)
        steps, verdicts = core.trainer.status.steps - steps, worker.verdicts - verdicts
    finally:
        worker.stop()
        core.close()
    assert verdicts >= 15, "the verdicts stopped"
    assert steps > verdicts, f"{steps} steps beside {verdicts} verdicts"


def test_the_demo_read_like_a_camera_gives_each_frame_once():
    camera, plain = DemoSource(seed=1, fps=40.0, like_a_camera=True), DemoSource(seed=1, fps=0.001)
    seen = []
    for _ in range(5):
        camera.read()
        seen.append(camera.last.index)
    assert seen == sorted(set(seen)), f"frames {seen}: one came twice"
    plain.read()
    first = plain.last.index
    plain.read()
    assert plain.last.index == first, "read at once, the plain demo gives the scene as it is now"


@pytest.mark.parametrize("value", ["0", "0.5", "-1", "nan", "inf", "241", "x"])
def test_a_camera_rate_out_of_range_is_one_line(capsys, value):
    with pytest.raises(SystemExit) as stopped:
        main(["bench", "live", f"--camera-fps={value}"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"frame rate {value!r}" in err[0]
