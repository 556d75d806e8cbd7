"""A line of text typed into a window (a category's name): printable characters, Backspace,
Enter to take it, Esc to drop it. The window draws the prompt and the text from its state."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pygame

MAX_TEXT = 100


@dataclass
class TextEntry:
    prompt: str
    take: Callable[[str], None]     # called with the text on Enter; ValueError: said, kept open
    text: str = ""
    error: str = ""

    def key(self, event) -> bool:
        """Handles one KEYDOWN; False once the entry is finished (taken or dropped)."""
        if event.key == pygame.K_ESCAPE:
            return False
        if event.key in (pygame.K_RETURN, pygame.K_KP_ENTER):
            try:
                self.take(self.text.strip())
            except ValueError as exc:
                self.error = str(exc)
                return True
            return False
        if event.key == pygame.K_BACKSPACE:
            self.text = self.text[:-1]
        else:
            typed = getattr(event, "unicode", "")
            if typed and typed.isprintable() and len(self.text) < MAX_TEXT:
                self.text += typed
        self.error = ""
        return True
