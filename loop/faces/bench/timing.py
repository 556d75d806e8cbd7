"""The one way benchmarks time a call: a warm-up, then the median of repeated calls."""
from __future__ import annotations

import statistics
import time


def median_seconds(call, repeats: int) -> float:
    call()  # warm-up: first launches compile for their work-group size
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
