"""How counts and lists read in text for people: "1 frame", "2 frames", "0, 1 and 2"."""
from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and the noun, plural unless n is 1 (`plural` for nouns not made with an s)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def listed(items) -> str:
    """Items joined as a sentence would: "a", "a and b", "a, b and c"; "" for none."""
    names = [str(i) for i in items]
    return " and ".join(filter(None, [", ".join(names[:-1]), "".join(names[-1:])]))
