"""Text broken into lines that fit a width in pixels."""
from __future__ import annotations


def wrap_to_width(text: str, font, width: int) -> list[str]:
    """Lines of whole words that each render no wider than `width` pixels; a word wider than
    that on its own (a long path) is broken across lines, never cut off."""
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if font.size(candidate)[0] <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        while font.size(word)[0] > width and len(word) > 1:
            cut = next(n for n in range(len(word) - 1, 0, -1) if font.size(word[:n])[0] <= width)
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line:
        lines.append(line)
    return lines
