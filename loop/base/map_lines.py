"""The lines of a `map_clsloc.txt` file, one reader for the base's class list and a data
folder's category map: `<tag> <index> <name>` (a data folder's line may end with `trigger`),
blank lines and `#` comments skipped, each line checked (the tag, the index, the name by the
caller's rule, a tag or index seen before). A bad line is a one-line problem naming the
file and the line; the caller decides whether the first one stops it or all are listed."""
from __future__ import annotations

import re
from dataclasses import dataclass

TAG = re.compile(r"n[0-9]{1,18}")
INDEX = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True)
class MapLine:
    tag: str
    index: int
    name: str
    number: int            # the line's number in the file, from 1
    trigger: bool = False  # a trigger-only category (data folders)


def map_lines(text: str, where: str, name_ok, name_rule: str, triggers: bool = False):
    """Yields a MapLine per good line, and a problem (str) per bad one."""
    tags: dict[str, int] = {}
    indices: dict[int, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        at = f"{where}:{number}"
        parts = line.split()
        trigger = triggers and len(parts) == 4 and parts[3] == "trigger"
        if len(parts) != 3 and not trigger:
            optional = " (and optionally 'trigger')" if triggers else ""
            yield f"{at}: expected 'tag index name'{optional}, the name without spaces; " \
                  f"found {' '.join(parts)!r:.80}"
            continue
        tag, index, name = parts[:3]
        if not TAG.fullmatch(tag):
            yield f"{at}: tag {tag!r:.40} is not 'n' followed by digits"
        elif not INDEX.fullmatch(index):
            yield f"{at}: index {index!r:.40} is not a whole number >= 0"
        elif not name_ok(name):
            yield f"{at}: name {name!r:.60} {name_rule}"
        elif tag in tags:
            yield f"{at}: tag {tag} repeats line {tags[tag]}"
        elif int(index) in indices:
            yield f"{at}: index {index} repeats line {indices[int(index)]}"
        else:
            tags[tag], indices[int(index)] = number, number
            yield MapLine(tag, int(index), name, number, trigger)
