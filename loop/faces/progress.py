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
        rate = done / max(1e-9, time.perf_counter() - self.start)
        self.stream.write(f"\r{self.title} [{'#' * filled}{'.' * (WIDTH - filled)}] "
                          f"{100 * fraction:3.0f}% {rate:6.1f}/s {extra}   ")
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
                              f"({rate:.1f}/s) {extra}".rstrip() + "\n")
        self.stream.flush()
        return rate
