"""A training-data folder the Neural Patches way: `map_clsloc.txt` at the root (one category
a line: tag `n<integer>`, index, space-less name; the file's order sets the output neurons),
images anywhere below it named `<tag>_<anything>.<ext>` (regular files: a symbolic link
planted in the folder is reported, never followed). A line may end with the word `trigger`:
a trigger-only category (a base synset on which the patch runs; it has no images and is
never an output, like a super-category that only decides when a patch runs). Every problem
is collected, with its file and line, before any training starts."""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from loop.base.map_lines import map_lines
from loop.core.patch import TAG_PATTERN, plain_category_name
from loop.errors import UserError
from loop.store.images import MAX_IMAGE_BYTES
from loop.safe_files import open_no_follow, read_input, shown

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
MAX_MAP_BYTES = 1 << 20


@dataclass(frozen=True)
class FolderCategory:
    tag: str
    index: int      # as written in the map
    name: str
    line: int
    trigger: bool = False  # trigger-only: never an output, has no images


@dataclass
class DataFolder:
    root: Path
    categories: list = field(default_factory=list)     # FolderCategory, in file order
    images: list = field(default_factory=list)         # (path, position in categories)
    problems: list = field(default_factory=list)       # "file:line: what is wrong"
    triggers: list = field(default_factory=list)       # FolderCategory, trigger-only

    def counts(self) -> list[int]:
        counts = [0] * len(self.categories)
        for _, category in self.images:
            counts[category] += 1
        return counts


def _read_map(root: Path, folder: DataFolder) -> None:
    path = root / "map_clsloc.txt"
    if not os.path.lexists(path):
        folder.problems.append(f"{_shown(path)}: missing (the folder needs a map_clsloc.txt "
                               "at its root)")
        return
    try:
        text = read_input(path, MAX_MAP_BYTES, "category map").decode("utf-8", "replace")
    except UserError as exc:
        folder.problems.append(str(exc))
        return
    parse_map(text, _shown(path), folder)


def parse_map(text: str, where: str, folder: DataFolder) -> None:
    """The map's lines into folder.categories and folder.triggers; each bad line a problem
    naming `where` and the line."""
    for line in map_lines(text, where, plain_category_name, "cannot name a folder (no '/', "
                          "'\\' or control characters, at most 100 characters)", triggers=True):
        if isinstance(line, str):
            folder.problems.append(line)
        else:
            kept = FolderCategory(line.tag, line.index, line.name, line.number, line.trigger)
            (folder.triggers if line.trigger else folder.categories).append(kept)


def _shown(path: Path) -> str:
    return shown(os.fsdecode(path))


def scan_folder(root) -> DataFolder:
    """The map and the images below `root`; nothing is opened but the map (a FIFO named
    like an image is reported, never read)."""
    root = Path(root)
    folder = DataFolder(root)
    if not root.is_dir():
        folder.problems.append(f"{_shown(root)}: no such folder")
        return folder
    _read_map(root, folder)
    map_at = _shown(root / "map_clsloc.txt")
    position = {c.tag: i for i, c in enumerate(folder.categories)}
    trigger_tags = {c.tag for c in folder.triggers}
    # rglob does not descend into linked folders: a link loop cannot make this endless.
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        tag = path.name.split("_", 1)[0]
        if path.is_symlink():
            folder.problems.append(f"{_shown(path)}: a symbolic link, not followed (copy the "
                                   "image into the folder)")
        elif not path.is_file():
            folder.problems.append(f"{_shown(path)}: not a regular file")
        elif "_" not in path.name or not TAG_PATTERN.match(tag):
            folder.problems.append(f"{_shown(path)}: the name does not start with a tag and "
                                   "'_' (e.g. n01_photo.jpg)")
        elif tag in trigger_tags:
            folder.problems.append(f"{_shown(path)}: tag {tag} is a trigger-only category, "
                                   "which takes no images")
        elif tag not in position:
            folder.problems.append(f"{_shown(path)}: tag {tag} is not in map_clsloc.txt")
        else:
            folder.images.append((path, position[tag]))
    for category, count in zip(folder.categories, folder.counts()):
        if count == 0:
            folder.problems.append(f"{map_at}:{category.line}: category {category.tag} "
                                   f"({category.name}) has no images")
    if len(folder.categories) == 1:
        folder.problems.append(f"{map_at}: one category; a patch needs two")
    return folder


def held_out_split(images: list, fraction: float, seed: int) -> tuple[list, list]:
    """(training, held out): stratified, the same for the same seed; a category with two or
    more images keeps at least one for each side."""
    rng = random.Random(seed)
    by_category: dict[int, list] = {}
    for item in images:
        by_category.setdefault(item[1], []).append(item)
    train, held = [], []
    for category in sorted(by_category):
        items = sorted(by_category[category], key=lambda item: str(item[0]))
        rng.shuffle(items)
        n_held = 0 if len(items) < 2 or fraction <= 0 else \
            min(len(items) - 1, max(1, round(len(items) * fraction)))
        held += items[:n_held]
        train += items[n_held:]
    return train, held


def read_image_bytes(path) -> bytes:
    """An image file's bytes, opened without following a link (one planted after the scan
    included), a regular file of at most MAX_IMAGE_BYTES; UserError naming it otherwise."""
    try:
        fd = open_no_follow(path, os.O_RDONLY)
    except OSError as exc:
        raise UserError(f"{_shown(Path(path))}: cannot open the image: "
                        f"{exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise UserError(f"{_shown(Path(path))}: over the {MAX_IMAGE_BYTES}-byte limit for "
                        "an image")
    return data
