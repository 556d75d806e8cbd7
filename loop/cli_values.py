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


MIN_FRAME_RATE, MAX_FRAME_RATE = 1.0, 240.0


def frame_rate(text: str) -> float:
    """Frames a second of a simulated camera (at least one: its reads wait a frame's time)."""
    return _number_in(text, "frame rate", MIN_FRAME_RATE, MAX_FRAME_RATE, low_included=True)


def _number_in(text: str, what: str, low: float, high: float, low_included: bool) -> float:
    """A number in [low, high] (low_included) or (low, high]; nan and infinities are not."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is not a number") from None
    above_low = value >= low if low_included else value > low
    if not (above_low and value <= high):
        shown = f"{'[' if low_included else '('}{low:g}, {high:g}]"
        raise argparse.ArgumentTypeError(f"{what} {text!r} is outside {shown}")
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
    return _number_in(text, "step scale", 0.0, MAX_STEP_SCALE, low_included=False)
