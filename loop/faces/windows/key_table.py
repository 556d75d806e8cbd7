"""One table per window mode: the keys it answers, what each does, and the mouse gestures,
from which both the key handling and the help page come. Help can then never list a key
the mode ignores, or miss one it answers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pygame


@dataclass(frozen=True)
class Binding:
    label: str                       # how the help page writes the keys: "Up / Down"
    does: str                        # what the help page says they do
    keys: tuple = ()                 # pygame key codes; none: a mouse gesture, listed only
    act: Callable | None = None      # act(window, event)
    ctrl_keys: tuple = ()            # keys that act only with Ctrl held


def gesture(label: str, does: str) -> Binding:
    """A mouse gesture: the window's mouse handling does it; help lists it."""
    return Binding(label, does)


def key(label: str, does: str, keys, act: Callable, ctrl_keys=()) -> Binding:
    """Keys pressed without Ctrl (`keys`) or with it (`ctrl_keys`)."""
    return Binding(label, does, tuple(keys), act, tuple(ctrl_keys))


class KeyTable:
    def __init__(self, bindings: list[Binding]):
        self.bindings = list(bindings)

    def handle(self, window, event) -> bool:
        """Runs the binding for a KEYDOWN event; False when this table has none for it."""
        ctrl = bool(getattr(event, "mod", 0) & pygame.KMOD_CTRL)
        for binding in self.bindings:
            if binding.act is not None and event.key in (binding.ctrl_keys if ctrl
                                                         else binding.keys):
                binding.act(window, event)
                return True
        return False

    def help_lines(self) -> list[tuple[str, str]]:
        return [(b.label, b.does) for b in self.bindings]

    def __add__(self, other: "KeyTable") -> "KeyTable":
        """This table's bindings first: they win where both answer the same key."""
        return KeyTable(self.bindings + other.bindings)
