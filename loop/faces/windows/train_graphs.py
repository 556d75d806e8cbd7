"""The training window's graphs (loss, held-out accuracy) drawn with pygame: a framed curve
with its value ticks on the right and its step ticks below, from plot.py's axes."""
from __future__ import annotations

import numpy as np
import pygame

from loop.faces.plot import Axis, tick_label, value_axis

CURVE = (120, 200, 255)
FRAME = (60, 60, 70)
NUMBERS = (150, 150, 150)
TITLE = (230, 230, 230)


def draw_graph(screen, font, rect: pygame.Rect, steps, values, title: str, log: bool = False,
               fixed: tuple[float, float] | None = None) -> None:
    """values against steps in rect; the title inside its top edge, the ticks' numbers
    outside its right and bottom edges. Non-finite values (no held-out images) are left
    out."""
    pygame.draw.rect(screen, FRAME, rect, 1)
    screen.blit(font.render(title, True, TITLE), (rect.x + 4, rect.y + 2))
    kept = [(s, v) for s, v in zip(steps, values) if np.isfinite(v) and (v > 0 or not log)]
    if not kept:
        return
    xs_steps, ys_values = np.array(kept, np.float64).T
    x_axis = value_axis(xs_steps)
    y_axis = value_axis(ys_values, log=log, fixed=fixed)
    plot = pygame.Rect(rect.x + 1, rect.y + 20, rect.width - 2, rect.height - 22)
    xs = plot.x + x_axis.fraction(xs_steps) * (plot.width - 1)
    ys = plot.bottom - 1 - y_axis.fraction(ys_values) * (plot.height - 1)
    if len(kept) > 1:
        pygame.draw.lines(screen, CURVE, False, list(zip(xs, ys)), 1)
    else:  # one epoch's accuracy: a dot
        pygame.draw.circle(screen, CURVE, (int(xs[0]), int(ys[0])), 3)
    _value_ticks(screen, font, plot, y_axis)
    _step_ticks(screen, font, plot, x_axis)


def _value_ticks(screen, font, plot: pygame.Rect, axis: Axis) -> None:
    for tick in axis.ticks:
        y = int(plot.bottom - 1 - axis.fraction(tick) * (plot.height - 1))
        pygame.draw.line(screen, NUMBERS, (plot.right, y), (plot.right + 4, y))
        label = font.render(tick_label(tick), True, NUMBERS)
        screen.blit(label, (plot.right + 7, y - label.get_height() // 2))


def _step_ticks(screen, font, plot: pygame.Rect, axis: Axis) -> None:
    for tick in axis.ticks:
        x = int(plot.x + axis.fraction(tick) * (plot.width - 1))
        pygame.draw.line(screen, NUMBERS, (x, plot.bottom), (x, plot.bottom + 4))
        label = font.render(tick_label(tick), True, NUMBERS)
        screen.blit(label, (x - label.get_width() // 2, plot.bottom + 6))
    name = font.render("step", True, NUMBERS)
    screen.blit(name, (plot.right - name.get_width(), plot.bottom + 22))
