"""The next frame is read while the current one is judged (loop/core/frame_ahead.py): one
frame ahead and no more, each frame with its own truth, a failed read handed over, a stale
frame dropped; the verdict worker ends the reader; a source closed during a read is
released by that read (loop/faces/sources.py)."""
import os
import sys
import threading
import time

import numpy as np
import pytest

import loop.core.frame_ahead as frame_ahead
from loop.core.frame_ahead import FrameAhead
from loop.faces.sources import ReleasedAfterRead


class CountingSource:
    """Frame i is an array filled with i, its truth i too; `fail_at` reads raise."""

    def __init__(self, fail_at=(), seconds=0.0):
        self.reads = 0
        self.fail_at = set(fail_at)
        self.seconds = seconds
        self.threads = set()
        self._last = None

    def read(self):
        self.threads.add(threading.current_thread().name)
        i = self.reads
        self._last = i   # (before the read ends: a truth asked for late would be the wrong one)
        time.sleep(self.seconds)
        self.reads += 1
        if i in self.fail_at:
            raise OSError(f"read {i} broke")
        return np.full((2, 3, 3), i % 256, np.uint8)

    def last_truth(self):
        return self._last


def test_each_frame_comes_with_its_own_truth_in_order():
    ahead = FrameAhead(CountingSource(seconds=0.001))
    try:
        for i in range(200):
            frame, truth = ahead.take(timeout=5)
            assert truth == i and (frame == i % 256).all()
    finally:
        ahead.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities: Linux")
def test_the_reader_gives_way_to_the_verdicts_threads():
    ahead = FrameAhead(CountingSource(seconds=0.001))
    try:
        ahead.take(timeout=5)
        ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert os.getpriority(os.PRIO_PROCESS, ahead.reader_thread_id) == \
            min(19, ours + frame_ahead.READER_NICENESS)
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == ours
    finally:
        ahead.stop()


def _until(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    return condition()


def test_one_frame_is_read_ahead_while_the_last_is_judged_and_no_more():
    source = CountingSource()
    ahead = FrameAhead(source)
    try:
        for taken in range(1, 6):
            ahead.take(timeout=5)
            # Judging the frame: the next one is read meanwhile, and no other.
            assert _until(lambda: source.reads == taken + 1)
            time.sleep(0.05)
            assert source.reads == taken + 1, "one frame ahead, not more"
        assert source.threads == {"patchloop-frames"}
    finally:
        ahead.stop()


def test_the_frame_is_ready_when_the_verdict_wants_it():
    source = CountingSource(seconds=0.3)
    ahead = FrameAhead(source)
    try:
        ahead.take(timeout=5)
        assert _until(lambda: source.reads == 2)   # read during the verdict (0.3 s)
        started = time.perf_counter()
        ahead.take(timeout=5)
        assert time.perf_counter() - started < 0.15, "read during the verdict, not after it"
    finally:
        ahead.stop()


def test_a_read_that_failed_is_raised_to_the_taker_and_reading_goes_on():
    ahead = FrameAhead(CountingSource(fail_at={1, 2}))
    try:
        assert ahead.take(timeout=5)[1] == 0
        for broken in (1, 2):
            with pytest.raises(OSError, match=f"read {broken} broke"):
                ahead.take(timeout=5)
        assert ahead.take(timeout=5)[1] == 3
    finally:
        ahead.stop()


def test_a_slow_source_times_out_and_a_stopped_one_gives_nothing():
    ahead = FrameAhead(CountingSource(seconds=0.5))
    assert ahead.take(timeout=0.05) is None
    started = time.perf_counter()
    ahead.stop()
    assert ahead.take(timeout=5) is None and time.perf_counter() - started < 2


def test_a_frame_that_waited_too_long_is_dropped_for_a_new_one(monkeypatch):
    monkeypatch.setattr(frame_ahead, "STALE_SECONDS", 0.1)
    source = CountingSource()
    ahead = FrameAhead(source)
    try:
        assert ahead.take(timeout=5)[1] == 0
        time.sleep(0.3)   # frozen on stop-N-show: frame 1 waited
        assert ahead.take(timeout=5)[1] == 2, "the frame read before the freeze is dropped"
        assert ahead.take(timeout=5)[1] == 3
    finally:
        ahead.stop()


class Unplugged(BaseException):
    pass


def test_a_reader_that_died_is_said_not_waited_for():
    class Dying(CountingSource):
        def read(self):
            raise Unplugged()

    ahead = FrameAhead(Dying())
    with pytest.raises(RuntimeError, match="reading frames has stopped"):
        ahead.take(timeout=5)
    assert ahead.stop()


def test_the_verdict_worker_ends_its_reader_and_starts_once(device):
    from loop.core.engine import LoopCore
    from loop.core.patch import PatchSpec, categories_from_names
    from loop.core.verdict_worker import VerdictWorker
    from loop.faces.sources import DemoSource

    def readers():
        return sum(t.name == "patchloop-frames" for t in threading.enumerate())

    spec = PatchSpec("w", categories_from_names(["background", "thing"]), topology="pixels",
                     hidden=4)
    core = LoopCore(spec, device=device)
    before = readers()
    worker = VerdictWorker(core, DemoSource(seed=1))
    try:
        worker.start()
        assert readers() == before + 1
        with pytest.raises(RuntimeError, match="already started"):
            worker.start()
        assert readers() == before + 1, "a second start reads nothing"
        assert _until(lambda: worker.verdicts >= 2, 60)
    finally:
        assert worker.stop()
        core.close()
    assert readers() == before


class BlockingCapture(ReleasedAfterRead):
    """A capture whose read blocks until let go (a camera unplugged mid-read)."""

    def __init__(self):
        super().__init__()
        self.inside, self.go = threading.Event(), threading.Event()
        self.released = 0
        self.reads = 0

    def _grab(self):
        self.reads += 1
        self.inside.set()
        self.go.wait(5)
        return True, np.zeros((2, 2, 3), np.uint8)

    def _frame(self, ok, bgr):
        return bgr

    def _release(self):
        self.released += 1


def test_a_source_closed_during_a_read_is_released_by_that_read():
    capture = BlockingCapture()
    got = []
    reader = threading.Thread(target=lambda: got.append(capture.read()))
    reader.start()
    assert capture.inside.wait(5)
    capture.close()
    assert capture.released == 0, "never released under a read"
    capture.go.set()
    reader.join(5)
    assert got == [None] and capture.released == 1
    assert capture.read() is None and capture.reads == 1, "a closed source is not read"
    capture.close()
    assert capture.released == 1


def test_a_source_closed_between_reads_is_released_at_once():
    capture = BlockingCapture()
    capture.go.set()
    assert capture.read() is not None
    capture.close()
    assert capture.released == 1 and capture.read() is None
