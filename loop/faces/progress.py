"""Progress of long jobs on stderr: a bar redrawn in place on a terminal; redirected to a file
or a pipe, one plain line when a stage ends (no carriage returns in a log)."""
from __future__ import annotations

import sys
import time

WIDTH = 28


class ProgressBar:
    def __init__(self, title: str, total: int, stream=None):
        self.title, self.total = title, max(1, total)
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty())

    def update(self, done: int, extra: str = "") -> None:
        if not self.live:
            return
        fraction = min(1.0, done / self.total)
        filled = int(WIDTH * fraction)
        pace = _pace(done, time.perf_counter() - self.start)
        self.stream.write(f"\r{self.title} [{'#' * filled}{'.' * (WIDTH - filled)}] "
                          f"{100 * fraction:3.0f}% {pace:>9} {extra}   ")
        self.stream.flush()

    def done(self, extra: str = "") -> float:
        """Ends the stage (the bar's line, or its one plain line); returns items per second."""
        seconds = time.perf_counter() - self.start
        rate = self.total / max(1e-9, seconds)
        if self.live:
            self.update(self.total, extra)
            self.stream.write("\n")
        else:
            self.stream.write(f"{self.title}: {self.total} in {seconds:.1f} s "
                              f"({_pace(self.total, seconds)}) {extra}".rstrip() + "\n")
        self.stream.flush()
        return rate


def _pace(done: int, seconds: float) -> str:
    """Items per second, or seconds per item when that reads better (slow items)."""
    if done <= 0:
        return "-"
    rate = done / max(1e-9, seconds)
    return f"{rate:.1f}/s" if rate >= 1.0 else f"{seconds / done:.1f} s each"
