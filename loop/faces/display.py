"""Whether a window can be shown here, asked before a window command opens its source or
its session. On Linux without a display server, SDL falls back to its offscreen driver
without a word: the window would run unseen until killed."""
from __future__ import annotations

import os
import sys

from loop.errors import UserError

# SDL video drivers that need a display server named by DISPLAY or WAYLAND_DISPLAY.
SERVER_DRIVERS = {"x11", "wayland"}


def require_display(headless_option: str) -> None:
    """UserError where no window can be shown: DISPLAY and WAYLAND_DISPLAY both unset, and
    SDL_VIDEODRIVER unset or naming only x11/wayland (dummy or offscreen is a headless run
    asked for; kmsdrm and others draw without a server). `headless_option` is the command's
    way to run without a window, named in the message."""
    if sys.platform in ("win32", "darwin"):
        return
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    drivers = {d.strip().lower() for d in os.environ.get("SDL_VIDEODRIVER", "").split(",")}
    if drivers - SERVER_DRIVERS - {""}:
        return
    raise UserError("no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY "
                    f"is set): run it in a desktop session, or pass {headless_option} for a "
                    "headless run")
