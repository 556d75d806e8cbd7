"""What folder training ends with, on screen until the user closes it: the held-out
accuracy, the held-out confusion matrix (eval's, rows: truth, columns: verdict), where the
session and the patch snapshots were written, and the graphs. The result is built after the
session is saved, so every path it names is a file that exists."""
from __future__ import annotations

import pygame

from loop.faces.windows.live_view import PALETTE
from loop.faces.train_summary import TrainingResult

BACKGROUND = (25, 25, 30)
TEXT = (230, 230, 230)
DIM = (150, 150, 150)
EMPTY_CELL = (45, 45, 55)
FULL_CELL = (120, 200, 255)
HEADLINE_AT = (20, 16)
ACCURACY_AT = (20, 50)
MATRIX_AT = (150, 120)         # the top-left cell; names sit left of it and above it
MATRIX_SPACE = (400, 260)      # (width, height) the cells may take
FILES_AT = (20, 420)


def cell_size(k: int) -> int:
    return max(8, min(48, MATRIX_SPACE[0] // k, MATRIX_SPACE[1] // k))


def cell_rect(k: int, truth: int, verdict: int) -> pygame.Rect:
    """Where the matrix's cell (truth, verdict) is drawn."""
    size = cell_size(k)
    return pygame.Rect(MATRIX_AT[0] + verdict * size, MATRIX_AT[1] + truth * size,
                       size - 2, size - 2)


def cell_colour(fraction: float) -> tuple[int, int, int]:
    """The cell's shade: the fraction of its row (the truth's images) it holds."""
    return tuple(round(e + (f - e) * fraction) for e, f in zip(EMPTY_CELL, FULL_CELL))


def draw_result(screen, font, big, result: TrainingResult) -> None:
    """The left side of the result screen (the window draws the graphs on the right)."""
    screen.blit(big.render(result.headline(), True, TEXT), HEADLINE_AT)
    screen.blit(big.render(result.accuracy_line(), True, TEXT), ACCURACY_AT)
    if result.confusion is not None:
        _draw_matrix(screen, font, result.confusion)
    y = FILES_AT[1]
    for line in result.file_lines():
        for part in _cut(font, line, 540):
            screen.blit(font.render(part, True, TEXT), (FILES_AT[0], y))
            y += 20


def _draw_matrix(screen, font, report: dict) -> None:
    names, matrix = report["categories"], report["confusion"]
    k = len(names)
    screen.blit(font.render("held-out confusion (rows: truth, columns: verdict)", True, DIM),
                (ACCURACY_AT[0], ACCURACY_AT[1] + 36))
    for t in range(k):
        total = max(1, sum(matrix[t]))
        row = cell_rect(k, t, 0)
        label = font.render(names[t][:14], True, PALETTE[t % len(PALETTE)])
        screen.blit(label, (MATRIX_AT[0] - 6 - label.get_width(), row.centery - 8))
        column = cell_rect(k, 0, t)
        screen.blit(font.render(names[t][:4], True, PALETTE[t % len(PALETTE)]),
                    (column.x + 2, MATRIX_AT[1] - 18))
        for p in range(k):
            rect = cell_rect(k, t, p)
            pygame.draw.rect(screen, cell_colour(matrix[t][p] / total), rect)
            if rect.width >= 20:
                number = font.render(str(matrix[t][p]), True, (0, 0, 0) if matrix[t][p] / total
                                     > 0.5 else TEXT)
                screen.blit(number, number.get_rect(center=rect.center))


def _cut(font, line: str, width: int) -> list[str]:
    """A long line (a path) in pieces that each fit `width` pixels."""
    parts, current = [], ""
    for ch in line:
        if current and font.size(current + ch)[0] > width:
            parts.append(current)
            current = ""
        current += ch
    return parts + [current]
