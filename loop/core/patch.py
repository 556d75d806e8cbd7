"""What a patch is: its categories, trigger categories and topology (no device state here).

Categories follow the map_clsloc.txt form of data folders: a tag `n<integer>`, an index (the output
neuron) and a space-less name. By convention index 0 is the background: the category a
right click teaches and the frame's verdict when nothing else is found.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Whole-string: `$` would also match before a final newline ("n1\n"), and `\d` takes any
# script's digits. A tag ends up in map lines and file names, so it is plain ASCII.
TAG_PATTERN = re.compile(r"\An[0-9]{1,18}\Z")
MAX_CATEGORY_NAME = 100
TOPOLOGIES = ("head", "pixels")
# How cells become the frame's verdict: "detect" (live patches: the best non-background cell
# over the threshold) or "mean" (folder-trained classifiers: the mean over all cells).
POOLINGS = ("detect", "mean")
# The training loss: the class-weighted masked cross-entropy, or the masked squared error on
# one output in [-1, 1] (two-category pixels patches only).
LOSSES = ("cross_entropy", "squared_error")
# A hypercolumn tap: the patch reads the finer map with the coarser one spread over it
# (detail and context per cell), and gives its verdict on the finer map's cells.
HYPERCOLUMNS = {"stride8+16": ("stride8", "stride16")}
# Where a new live patch reads the base unless told: the hypercolumn. On the demo's
# simulated people (9 ways of clicking, 40 clicks) it ended above the stride-16 head in 7 of
# 9, per pixel, and reached 95% in 8 of 9 (stride-16: 4). A patch that fine-tunes the base
# reads one stage: stride16.
LIVE_TAP, FINE_TUNE_TAP = "stride8+16", "stride16"
TAPS = ("stride2", "stride4", "stride8", "stride16", "stride32")   # what a base provides
PATCH_TAPS = TAPS + tuple(HYPERCOLUMNS)                               # what a patch may read
MAX_FINE_TUNE = 32  # a bound for files; the base says how many blocks it really has
PIXELS_INPUT = (120, 160)  # (height, width): 160x120, small enough to train live
# The hidden layers' width. A hypercolumn head sees four times the cells of a stride-16 one:
# at 32 wide its training step costs about a third of 64 wide (34 vs 88 ms at batch 16) and
# it learned as well on the demo (mean final per-pixel accuracy 0.962 vs 0.957, 6 seeds).
HEAD_HIDDEN, HYPERCOLUMN_HIDDEN, PIXELS_HIDDEN = 64, 32, 16
MAX_HIDDEN = 256


@dataclass(frozen=True)
class Category:
    tag: str
    index: int
    name: str

    def __post_init__(self):
        if not isinstance(self.tag, str) or not TAG_PATTERN.match(self.tag):
            raise ValueError(f"category tag {self.tag!r:.40} must be 'n' followed by digits")
        if not isinstance(self.name, str) or not plain_category_name(self.name):
            raise ValueError(f"category name {self.name!r:.60} must be 1 to {MAX_CATEGORY_NAME} "
                             "printable characters without spaces or '/' and '\\' (a snap "
                             "folder is named after it)")


def plain_category_name(name: str) -> bool:
    """A category name can name a folder: no separators, no '.' or '..', nothing a
    terminal would act on."""
    return (0 < len(name) <= MAX_CATEGORY_NAME and name.isprintable() and " " not in name
            and "/" not in name and "\\" not in name and name not in (".", ".."))


@dataclass(frozen=True)
class PatchSpec:
    """A patch's definition. `triggers` are base synsets (or other patches' tags) on which the
    patch runs; with none it always runs. Trigger-only categories are never outputs."""

    name: str
    categories: tuple[Category, ...]
    triggers: tuple[str, ...] = ()
    topology: str = "head"
    tap: str = "stride16"
    threshold: float = 0.5
    seed: int = 0
    description: str = ""
    base_name: str = ""
    base_hash: str = ""
    pooling: str = "detect"
    loss: str = "cross_entropy"
    # Blocks of the base below the tap that the patch trains as its own (0: base frozen).
    fine_tune: int = 0
    # Width of the topology's hidden layers; None: the usual width for the topology and tap.
    hidden: int | None = None

    def __post_init__(self):
        if self.hidden is None:
            object.__setattr__(self, "hidden", default_hidden(self.topology, self.tap))
        if not isinstance(self.hidden, int) or not 1 <= self.hidden <= MAX_HIDDEN:
            raise ValueError(f"hidden width {self.hidden!r:.20} must be 1 to {MAX_HIDDEN}")
        if len(self.categories) < 2:
            raise ValueError(f"patch {self.name!r} needs at least two categories "
                             "(background and one to detect)")
        if [c.index for c in self.categories] != list(range(len(self.categories))):
            raise ValueError(f"patch {self.name!r}: category indices must run 0..{len(self.categories) - 1}")
        tags = [c.tag for c in self.categories]
        if len(set(tags)) != len(tags):
            raise ValueError(f"patch {self.name!r}: category tags repeat")
        if self.topology not in TOPOLOGIES:
            raise ValueError(f"topology {self.topology!r} is not one of {', '.join(TOPOLOGIES)}")
        if self.topology == "head" and self.tap not in PATCH_TAPS:
            raise ValueError(f"tap {self.tap!r} is not one of {', '.join(PATCH_TAPS)}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling {self.pooling!r} is not one of {', '.join(POOLINGS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss {self.loss!r} is not one of {', '.join(LOSSES)}")
        if self.loss == "squared_error" and (self.topology != "pixels" or len(self.categories) != 2):
            raise ValueError("the squared-error loss is for two-category pixels patches")
        if not 0 <= self.fine_tune <= MAX_FINE_TUNE or (self.fine_tune and self.topology != "head"):
            raise ValueError(f"fine-tune {self.fine_tune}: a head patch trains 0 to "
                             f"{MAX_FINE_TUNE} of the base's blocks")
        if self.fine_tune and self.tap in HYPERCOLUMNS:
            raise ValueError(f"tap {self.tap} reads two base stages: it cannot fine-tune the base")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold {self.threshold} must lie between 0 and 1")
        for tag in self.triggers:
            if not TAG_PATTERN.match(tag):
                raise ValueError(f"trigger {tag!r:.40} must be a tag: 'n' followed by digits")

    @property
    def outputs(self) -> int:
        return len(self.categories)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.categories]

    def is_triggered(self, base_top_tags: list[str]) -> bool:
        return not self.triggers or any(tag in self.triggers for tag in base_top_tags)


def live_tap(topology: str = "head", fine_tune: int = 0) -> str:
    """The tap a new live patch reads when none is asked for (a pixels patch reads the frame:
    it keeps the plain default, as every pixels patch before it)."""
    return LIVE_TAP if topology == "head" and not fine_tune else FINE_TUNE_TAP


def default_hidden(topology: str, tap: str) -> int:
    """The hidden layers' width a new patch gets."""
    if topology == "pixels":
        return PIXELS_HIDDEN
    return HYPERCOLUMN_HIDDEN if tap in HYPERCOLUMNS else HEAD_HIDDEN


def categories_from_names(names: list[str]) -> tuple[Category, ...]:
    """Categories for a new patch from names; tags n0, n1, ... in order."""
    return tuple(Category(f"n{i}", i, name) for i, name in enumerate(names))
