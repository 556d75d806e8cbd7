"""A one-line progress bar on stderr (the terminal face of long jobs)."""
from __future__ import annotations

import sys
import time

WIDTH = 28


class ProgressBar:
    def __init__(self, title: str, total: int, stream=None):
        self.title, self.total = title, max(1, total)
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()

    def update(self, done: int, extra: str = "") -> None:
        fraction = min(1.0, done / self.total)
        filled = int(WIDTH * fraction)
        rate = done / max(1e-9, time.perf_counter() - self.start)
        self.stream.write(f"\r{self.title} [{'#' * filled}{'.' * (WIDTH - filled)}] "
                          f"{100 * fraction:3.0f}% {rate:6.1f}/s {extra}   ")
        self.stream.flush()

    def done(self, extra: str = "") -> float:
        """Ends the line; returns the items per second."""
        seconds = time.perf_counter() - self.start
        self.update(self.total, extra)
        self.stream.write("\n")
        return self.total / max(1e-9, seconds)
