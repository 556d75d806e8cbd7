"""What a session holds, in memory: the patch definition, settings, frames, the label edit
history, exclusions, snapshots and the loss log; and how journal events change it."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from loop.core.labels import LabelDisc, WholeFrameLabel
from loop.core.patch import Category, PatchSpec
from loop.core.settings import TrainerSettings

MAX_SIDE = 4096


class SessionFormatError(ValueError):
    """A session file or journal is damaged or not one of ours; the message names it."""


@dataclass
class LabelRecord:
    """One label in the edit history: never overwritten; an undo stamps `undone`."""

    frame_id: int
    kind: str            # "disc" or "whole"
    x: float
    y: float
    radius: float
    category: int
    time: float
    undone: float = math.nan

    @property
    def active(self) -> bool:
        return math.isnan(self.undone)

    def label(self):
        if self.kind == "whole":
            return WholeFrameLabel(self.category)
        return LabelDisc(self.x, self.y, self.radius, self.category)

    @staticmethod
    def of(frame_id: int, label, when: float) -> "LabelRecord":
        if isinstance(label, WholeFrameLabel):
            return LabelRecord(frame_id, "whole", 0.0, 0.0, 0.0, label.category, when)
        return LabelRecord(frame_id, "disc", float(label.x), float(label.y), float(label.radius),
                           int(label.category), when)


@dataclass
class Snapshot:
    tag: str
    header: dict          # created, steps, settings, label_counts
    weights: np.ndarray
    velocity: np.ndarray


@dataclass
class SessionState:
    spec: PatchSpec
    settings: TrainerSettings
    created: float
    frames: dict = field(default_factory=dict)      # frame id -> uint8 RGB image
    labels: list = field(default_factory=list)      # LabelRecord, in order
    excluded: set = field(default_factory=set)      # frame ids left out of training
    snapshots: dict = field(default_factory=dict)   # tag -> Snapshot
    loss_log: list = field(default_factory=list)    # (step, loss)
    last_seq: int = 0   # the newest journal event this state holds

    def apply(self, event: dict) -> None:
        """One journal event. Unknown or malformed events are a format error."""
        try:
            op = event["op"]
            if op == "label":
                self.labels.append(LabelRecord(int(event["frame"]), str(event["kind"]),
                                               float(event["x"]), float(event["y"]),
                                               float(event["r"]), int(event["category"]),
                                               float(event["t"])))
            elif op == "undo":
                active = [r for r in self.labels if r.active]
                if active:
                    active[-1].undone = float(event["t"])
            elif op == "exclude":
                (self.excluded.add if event["value"] else self.excluded.discard)(int(event["frame"]))
            elif op == "settings":
                self.settings = settings_from_json(event["settings"])
            elif op == "loss":
                self.loss_log.extend((int(s), float(v)) for s, v in event["points"])
            else:
                raise KeyError(op)
        except (KeyError, TypeError, ValueError) as exc:
            raise SessionFormatError(f"journal event {event!r} is not understood ({exc})") from exc
        if self.labels and self.labels[-1].kind not in ("disc", "whole"):
            raise SessionFormatError(f"label kind {self.labels[-1].kind!r} is unknown")

    def active_labels(self) -> dict[int, list]:
        """frame id -> its active labels, in order."""
        out: dict[int, list] = {}
        for r in self.labels:
            if r.active:
                out.setdefault(r.frame_id, []).append(r.label())
        return out


def label_event(record: LabelRecord) -> dict:
    return {"op": "label", "frame": record.frame_id, "kind": record.kind, "x": record.x,
            "y": record.y, "r": record.radius, "category": record.category, "t": record.time}


def spec_to_json(spec: PatchSpec) -> dict:
    return {"name": spec.name, "categories": [[c.tag, c.index, c.name] for c in spec.categories],
            "triggers": list(spec.triggers), "topology": spec.topology, "tap": spec.tap,
            "threshold": spec.threshold, "seed": spec.seed, "description": spec.description,
            "base_name": spec.base_name, "base_hash": spec.base_hash, "pooling": spec.pooling,
            "loss": spec.loss, "fine_tune": spec.fine_tune}


def spec_from_json(data: dict) -> PatchSpec:
    try:
        return PatchSpec(str(data["name"]),
                         tuple(Category(str(t), int(i), str(n)) for t, i, n in data["categories"]),
                         tuple(str(t) for t in data["triggers"]), str(data["topology"]),
                         str(data["tap"]), float(data["threshold"]), int(data["seed"]),
                         str(data["description"]), str(data["base_name"]), str(data["base_hash"]),
                         str(data.get("pooling", "detect")), str(data.get("loss", "cross_entropy")),
                         _whole(data.get("fine_tune", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise SessionFormatError(f"patch definition is not valid ({exc})") from exc


def _whole(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    return value


def settings_to_json(settings: TrainerSettings) -> dict:
    return asdict(settings)


def settings_from_json(data: dict) -> TrainerSettings:
    try:
        known = {k: data[k] for k in TrainerSettings.__dataclass_fields__ if k in data}
        return TrainerSettings(**known)
    except (TypeError, ValueError) as exc:
        raise SessionFormatError(f"trainer settings are not valid ({exc})") from exc


def check_image(image: np.ndarray, what: str) -> np.ndarray:
    if (image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3
            or not 16 <= image.shape[0] <= MAX_SIDE or not 16 <= image.shape[1] <= MAX_SIDE):
        raise SessionFormatError(f"{what}: not a uint8 RGB frame between 16 and {MAX_SIDE} px "
                                 f"({image.dtype} {image.shape})")
    return image
