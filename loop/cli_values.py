"""Command-line values checked as they are parsed: a bad one is argparse's one-line error
(exit code 2) before any work starts."""
from __future__ import annotations

import argparse
import os


def window_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"window size {text!r} is not WxH, e.g. 1280x720")
    if width < 320 or height < 240:
        raise argparse.ArgumentTypeError(f"window size {text!r} is below 320x240")
    return width, height


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} seconds is outside (0, 3600]")
    return value


MAX_FRAME_RATE = 240.0


def frame_rate(text: str) -> float:
    """Frames a second of a simulated camera."""
    return _positive_up_to(text, "frame rate", MAX_FRAME_RATE)


def _positive_up_to(text: str, what: str, most: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is not a number") from None
    if not 0 < value <= most:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is outside (0, {most:g}]")
    return value


def output_file(text: str) -> str:
    """A file to write: its folder must exist, checked before the minutes of work it ends."""
    folder = os.path.dirname(text) or "."
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"{text!r}: there is no folder {folder!r} to write into")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text!r}: the folder {folder!r} is not writable")
    return text


MAX_STEP_SCALE = 20.0


def step_scale(text: str) -> float:
    """How many times the usual training steps pass between two clicks (a faster device)."""
    return _positive_up_to(text, "step scale", MAX_STEP_SCALE)
