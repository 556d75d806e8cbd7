"""The help page a window draws over itself: every key of its key table and what it does,
in as many columns as the window's height needs (a short window would cut the list off),
each description wrapped to its column."""
from __future__ import annotations

import pygame

from loop.faces.windows.text_wrap import wrap_to_width

LINE = 20      # pixels: a line's height
KEY_GAP = 16   # pixels between a key and what it does
MARGIN = 24
MAX_COLUMNS = 3
KEY_COLOUR, BOX, EDGE = (255, 220, 120), (10, 10, 20), (200, 200, 200)


def draw_help_page(view, lines) -> None:
    """On `view`'s screen with its font and text(): `lines` of (key, what it does)."""
    box, placed, key_width = help_layout(view, lines)
    pygame.draw.rect(view.screen, BOX, box)
    pygame.draw.rect(view.screen, EDGE, box, 1)
    for key, x, y, wrapped in placed:
        view.text(key, (box.x + 14 + x, box.y + 12 + y), KEY_COLOUR)
        for i, line in enumerate(wrapped):
            view.text(line, (box.x + 14 + x + key_width, box.y + 12 + y + LINE * i))


def help_layout(view, lines):
    """(the page's box, where each line goes, the keys' column width) on `view`'s screen."""
    width = view.screen.get_width() - 2 * MARGIN
    height = view.screen.get_height() - 2 * MARGIN - 24
    key_width = max([view.font.size(key)[0] for key, _ in lines] or [0]) + KEY_GAP
    for columns in range(1, MAX_COLUMNS + 1):
        placed = place_in_columns(lines, view.font, width // columns, height, columns, key_width)
        if placed is not None:
            break
    used = max([y + LINE * len(wrapped) for _, _, y, wrapped in placed] or [0])
    return pygame.Rect(MARGIN, MARGIN, width, 24 + used), placed, key_width


def place_in_columns(lines, font, column_width: int, height: int, columns: int,
                     key_width: int):
    """[(key, x, y, description lines)] filling `columns` columns top to bottom, the keys
    `key_width` wide; None when they need more than `columns` (with MAX_COLUMNS the last one
    runs on)."""
    placed, column, y = [], 0, 0
    for key, what in lines:
        wrapped = wrap_to_width(what, font, max(60, column_width - key_width - 24))
        if y and y + LINE * len(wrapped) > height:
            if column + 1 < columns:
                column, y = column + 1, 0
            elif columns < MAX_COLUMNS:
                return None
        placed.append((key, column * column_width, y, wrapped))
        y += LINE * len(wrapped)
    return placed
