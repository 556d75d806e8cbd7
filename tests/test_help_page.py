"""The help page fits the window: every key's line lies inside the screen, in more columns
when the window is short, each description wrapped to its column."""
import os

import pygame
import pytest

from loop.faces.windows.help_page import MARGIN, draw_help_page, place_in_columns
from loop.faces.windows.live_keys import edit_keys, live_keys

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


class _View:
    def __init__(self, size):
        pygame.init()
        self.screen = pygame.Surface(size)
        self.font = pygame.font.Font(None, 20)
        self.drawn = []

    def text(self, s, pos, colour=(230, 230, 230)):
        surface = self.font.render(s, True, colour)
        self.drawn.append((s, pygame.Rect(pos, surface.get_size())))
        self.screen.blit(surface, pos)
        return surface.get_height()


@pytest.mark.parametrize("size", [(800, 600), (1000, 560), (1280, 720), (1920, 1080)])
@pytest.mark.parametrize("table", [live_keys, lambda: edit_keys(inside_live=True)])
def test_every_help_line_is_on_the_screen(size, table):
    view = _View(size)
    lines = table().help_lines()
    draw_help_page(view, lines)
    screen = view.screen.get_rect()
    keys = [s for s, _ in view.drawn]
    assert all(key in keys for key, _ in lines), "every key is drawn"
    for text, rect in view.drawn:
        assert screen.contains(rect), f"{text!r} at {rect} is off the {size} window"


def test_a_short_window_takes_two_columns_and_a_tall_one_one():
    view = _View((800, 600))
    lines = live_keys().help_lines()
    height = 600 - 2 * MARGIN - 24
    keys = max(view.font.size(key)[0] for key, _ in lines) + 16
    assert place_in_columns(lines, view.font, 752, height, 1, keys) is None
    two = place_in_columns(lines, view.font, 376, height, 2, keys)
    assert two is not None and len({x for _, x, _, _ in two}) == 2
    tall = place_in_columns(lines, view.font, 1872, 1080 - 2 * MARGIN - 24, 1, keys)
    assert tall is not None and {x for _, x, _, _ in tall} == {0}
