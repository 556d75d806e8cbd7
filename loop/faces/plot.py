"""Line charts with axes and numbers: the tick values of an axis (shared by the PNG drawn
with OpenCV and the training window's graphs drawn with pygame), and the PNG itself (no
plotting library needed for one curve)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from loop.errors import UserError
from loop.store.images import write_png
from loop.safe_files import shown

WIDTH, HEIGHT, MARGIN = 640, 400, 50


@dataclass(frozen=True)
class Axis:
    """An axis from lo to hi (log10 of the values on a log axis) and its labeled ticks."""

    lo: float
    hi: float
    ticks: tuple[float, ...]   # values (not their logs), inside [lo, hi]
    log: bool = False

    def fraction(self, value) -> np.ndarray:
        """Where values sit along the axis: 0 at lo, 1 at hi."""
        value = np.asarray(value, np.float64)
        shown_value = np.log10(np.maximum(value, 1e-12)) if self.log else value
        return (shown_value - self.lo) / (self.hi - self.lo)


def value_axis(values, log: bool = False, fixed: tuple[float, float] | None = None,
               count: int = 4) -> Axis:
    """The axis that holds `values` (or the fixed range), with about `count` round ticks:
    1, 2 or 5 times a power of ten apart; on a log axis, 1, 2 and 5 times powers of ten."""
    values = np.asarray([v for v in values if np.isfinite(v) and (v > 0 or not log)],
                        np.float64)
    if fixed is not None:
        lo, hi = fixed
    elif values.size:
        lo, hi = float(values.min()), float(values.max())
    else:
        lo, hi = (0.1, 1.0) if log else (0.0, 1.0)
    if log:
        lo, hi = math.log10(max(lo, 1e-12)), math.log10(max(hi, 1e-12))
        hi = max(hi, lo + 0.1)
        ticks = _log_ticks(lo, hi)
        if len(ticks) < 2:
            # A narrow range between two round values (losses from 1.56 to 1.99) would show
            # no number at all: the axis reaches out to the round values around it.
            rounds = _log_ticks(math.floor(lo), math.ceil(hi) + 1)
            lo = math.log10(max([t for t in rounds if math.log10(t) <= lo + 1e-12],
                                default=10.0 ** lo))
            hi = math.log10(min([t for t in rounds if math.log10(t) >= hi - 1e-12],
                                default=10.0 ** hi))
            ticks = _log_ticks(lo, hi)
        if len(ticks) > count + 2:
            ticks = tuple(t for t in ticks if round(t / 10 ** math.floor(math.log10(t))) == 1) \
                or ticks[::len(ticks) // count]
        return Axis(lo, hi, ticks, True)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = tuple(round(first + i * step, 12) for i in range(count + 2)
                  if first + i * step <= hi + 1e-9 * step)
    return Axis(lo, hi, ticks, False)


def _log_ticks(lo: float, hi: float) -> tuple[float, ...]:
    """1, 2 and 5 times powers of ten whose logs lie in [lo, hi]."""
    return tuple(m * 10.0 ** e for e in range(math.floor(lo), math.ceil(hi) + 1)
                 for m in (1, 2, 5) if lo - 1e-12 <= math.log10(m) + e <= hi + 1e-12)


def tick_label(value: float) -> str:
    return f"{value:.3g}"


def plot_accuracy(points, path: str, title: str = "held-out balanced accuracy") -> None:
    """points: [(clicks, accuracy in [0, 1]), ...] -> a PNG at path; UserError naming the
    path when it cannot be written."""
    image = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    points = [(x, y) for x, y in points if np.isfinite(x) and np.isfinite(y)]
    max_x = max(1, max((p[0] for p in points), default=1))
    x_axis = value_axis([0, max_x])

    def to_px(x, y):
        return (int(MARGIN + x_axis.fraction(x) * (WIDTH - 2 * MARGIN)),
                int(HEIGHT - MARGIN - y * (HEIGHT - 2 * MARGIN)))

    cv2.rectangle(image, to_px(0, 0), to_px(max_x, 1), (0, 0, 0), 1)
    for level in (0.5, 0.9, 0.95):
        cv2.line(image, to_px(0, level), to_px(max_x, level), (200, 200, 200), 1)
        cv2.putText(image, f"{level:.2f}", (5, to_px(0, level)[1] + 4),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1)
    for tick in x_axis.ticks:
        x, y = to_px(tick, 0)
        cv2.line(image, (x, y), (x, y + 4), (0, 0, 0), 1)
        cv2.putText(image, tick_label(tick), (x - 8, y + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (90, 90, 90), 1)
    if points:
        pts = np.array([to_px(x, y) for x, y in points], np.int32)
        cv2.polylines(image, [pts], False, (200, 60, 30), 2)
    cv2.putText(image, title, (MARGIN, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
    cv2.putText(image, "clicks", (WIDTH // 2 - 20, HEIGHT - 10),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    try:  # through a temporary file in the folder; a plot of the same name is replaced
        write_png(path, cv2.cvtColor(image, cv2.COLOR_BGR2RGB), replace=True)
    except OSError as exc:
        raise UserError(f"{shown(path)}: cannot write the plot ({exc.strerror or exc})") \
            from None
