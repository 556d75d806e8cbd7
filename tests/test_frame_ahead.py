"""The next frame is read while the current one is judged (loop/core/frame_ahead.py): one
frame ahead and no more, each frame with its own truth, a failed read handed over."""
import threading
import time

import numpy as np
import pytest

from loop.core.frame_ahead import FrameAhead


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
        time.sleep(self.seconds)
        i = self.reads
        self.reads += 1
        if i in self.fail_at:
            raise OSError(f"read {i} broke")
        self._last = i
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


def test_one_frame_is_read_ahead_while_the_last_is_judged_and_no_more():
    source = CountingSource()
    ahead = FrameAhead(source)
    try:
        for taken in range(1, 6):
            ahead.take(timeout=5)
            time.sleep(0.1)   # judging the frame: the next one is read meanwhile
            assert source.reads == taken + 1, "one frame ahead, not more"
        assert source.threads == {"patchloop-frames"}
    finally:
        ahead.stop()


def test_the_frame_is_ready_when_the_verdict_wants_it():
    source = CountingSource(seconds=0.05)
    ahead = FrameAhead(source)
    try:
        ahead.take(timeout=5)
        time.sleep(0.1)   # a verdict longer than a read
        started = time.perf_counter()
        ahead.take(timeout=5)
        assert time.perf_counter() - started < 0.05, "read during the verdict, not after it"
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
