"""What of the live window's view a session keeps (brush, category, view), so that a resumed
session opens as it was left: read back checked, and saved once changes settle."""
from __future__ import annotations

import time

from loop.faces.windows.overlays import VIEWS

SETTLE_SECONDS = 1.0   # the view is saved once it stops changing this long

# What of the view a session keeps, so that it reopens as it was left.
PREFS = ("selected", "brush", "view", "smooth", "show_labels", "show_verdict")


def window_prefs(state) -> dict:
    """The kept fields of a ViewState."""
    return {name: getattr(state, name) for name in PREFS}


def with_window_prefs(state, prefs: dict, outputs: int, brush_range):
    """`state` with the saved prefs that still fit (a category the patch has, a brush in
    range, a view that exists); anything else keeps its default."""
    fits = {
        "selected": lambda v: isinstance(v, int) and 0 <= v < outputs,
        "brush": lambda v: isinstance(v, int) and brush_range[0] <= v <= brush_range[1],
        "view": lambda v: isinstance(v, int) and 0 <= v < len(VIEWS),
    }
    for name in PREFS:
        value = prefs.get(name)
        if isinstance(value, bool) and name not in fits:
            setattr(state, name, value)
        elif name in fits and not isinstance(value, bool) and fits[name](value):
            setattr(state, name, value)
    return state


class PrefsKeeper:
    """Saves the view to the session (through its link) once it settles: a wheel spin is
    one write, not fifty."""

    def __init__(self, link, state):
        self.link = link
        self.saved = window_prefs(state)
        self.changed_at = None

    def keep(self, state, now: bool = False) -> None:
        if self.link is None:
            return
        prefs = window_prefs(state)
        if prefs == self.saved:
            self.changed_at = None
            return
        moment = time.monotonic()
        if self.changed_at is None:
            self.changed_at = moment
        if now or moment - self.changed_at >= SETTLE_SECONDS:
            self.link.save_window_prefs(prefs)
            self.saved, self.changed_at = prefs, None
