"""A small line chart drawn with OpenCV (no plotting library needed for one curve)."""
from __future__ import annotations

import cv2
import numpy as np

from loop.errors import UserError
from loop.store.images import write_png
from loop.store.safe_files import shown

WIDTH, HEIGHT, MARGIN = 640, 400, 50


def plot_accuracy(points, path: str, title: str = "held-out balanced accuracy") -> None:
    """points: [(clicks, accuracy in [0, 1]), ...] -> a PNG at path; UserError naming the
    path when it cannot be written."""
    image = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    points = [(x, y) for x, y in points if np.isfinite(x) and np.isfinite(y)]
    max_x = max(1, max((p[0] for p in points), default=1))

    def to_px(x, y):
        return (int(MARGIN + x / max_x * (WIDTH - 2 * MARGIN)),
                int(HEIGHT - MARGIN - y * (HEIGHT - 2 * MARGIN)))

    cv2.rectangle(image, to_px(0, 0), to_px(max_x, 1), (0, 0, 0), 1)
    for level in (0.5, 0.9, 0.95):
        cv2.line(image, to_px(0, level), to_px(max_x, level), (200, 200, 200), 1)
        cv2.putText(image, f"{level:.2f}", (5, to_px(0, level)[1] + 4),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1)
    if points:
        pts = np.array([to_px(x, y) for x, y in points], np.int32)
        cv2.polylines(image, [pts], False, (200, 60, 30), 2)
    cv2.putText(image, title, (MARGIN, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
    cv2.putText(image, f"clicks (0..{max_x})", (WIDTH // 2 - 40, HEIGHT - 15),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    try:  # through a temporary file in the folder; a plot of the same name is replaced
        write_png(path, cv2.cvtColor(image, cv2.COLOR_BGR2RGB), replace=True)
    except OSError as exc:
        raise UserError(f"{shown(path)}: cannot write the plot ({exc.strerror or exc})") \
            from None
