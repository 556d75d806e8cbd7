"""What a session holds, in memory: the patch definition, settings, frames, the label edit
history, exclusions, snapshots and the loss log; and how journal events change it. Every
event is checked as it is applied (a label needs a known frame, a known kind and category,
finite coordinates): a bad one is a SessionFormatError and leaves the state unchanged."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from loop.core.labels import ERASE, LabelDisc, WholeFrameLabel
from loop.core.categories import with_names
from loop.core.patch import HEAD_HIDDEN, PIXELS_HIDDEN, Category, PatchSpec
from loop.core.settings import MOMENTUM_STEPPING, TrainerSettings
from loop.core.snapshot import Snapshot

MIN_SIDE, MAX_SIDE = 16, 4096
MAX_LABELS = 1_000_000     # a label a second for 11 days; 41 bytes each in the file
MAX_FRAMES = 200_000
MAX_COORDINATE = 1e6       # frame pixels; frames are at most MAX_SIDE a side
MAX_LOSS_POINTS = 1_000_000
MAX_WINDOW_PREFS = 16
LABEL_KINDS = ("disc", "whole")


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
class SessionState:
    spec: PatchSpec
    settings: TrainerSettings
    created: float
    frames: dict = field(default_factory=dict)      # frame id -> uint8 RGB image (when read)
    frame_shapes: dict = field(default_factory=dict)  # frame id -> (height, width), always
    labels: list = field(default_factory=list)      # LabelRecord, in order
    excluded: set = field(default_factory=set)      # frame ids left out of training
    snapshots: dict = field(default_factory=dict)   # tag -> Snapshot
    loss_log: list = field(default_factory=list)    # (step, loss)
    last_seq: int = 0   # the newest journal event this state holds
    window: dict = field(default_factory=dict)  # the window's brush, category and view

    def add_frame(self, frame_id: int, height: int, width: int, image=None) -> None:
        if frame_id not in self.frame_shapes and len(self.frame_shapes) >= MAX_FRAMES:
            raise SessionFormatError(f"more than {MAX_FRAMES} frames")
        self.frame_shapes.setdefault(frame_id, (height, width))
        if image is not None:
            self.frames.setdefault(frame_id, image)

    def apply(self, event: dict) -> None:
        """One journal event; a malformed one is a SessionFormatError and changes nothing."""
        try:
            op = event["op"]
            if op == "label":
                self._add_label(LabelRecord(int(event["frame"]), str(event["kind"]),
                                            float(event["x"]), float(event["y"]),
                                            float(event["r"]), int(event["category"]),
                                            float(event["t"])))
            elif op == "undo":
                self._undo(event.get("label"), float(event["t"]))
            elif op == "exclude":
                frame_id = int(event["frame"])
                (self.excluded.add if event["value"] else self.excluded.discard)(frame_id)
            elif op == "settings":
                self.settings = settings_from_json(event["settings"])
            elif op == "window":
                self.window = window_from_json(event["prefs"])
            elif op == "categories":
                self.spec = categories_from_json(self.spec, event["names"])
            elif op == "loss":
                points = [(int(s), float(v)) for s, v in event["points"]]
                if len(self.loss_log) + len(points) > MAX_LOSS_POINTS:
                    raise SessionFormatError(f"more than {MAX_LOSS_POINTS} loss points")
                self.loss_log.extend(points)
            else:
                raise KeyError(op)
        except SessionFormatError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise SessionFormatError(f"event {_brief(event)} is not understood "
                                     f"({type(exc).__name__}: {_brief(exc)})") from exc

    def _add_label(self, record: "LabelRecord") -> None:
        check_label(record, self.spec.outputs)
        if record.frame_id not in self.frame_shapes:
            raise SessionFormatError(f"a label refers to frame {record.frame_id}, which the "
                                     "session does not hold")
        if len(self.labels) >= MAX_LABELS:
            raise SessionFormatError(f"more than {MAX_LABELS} labels")
        self.labels.append(record)

    def _undo(self, index, when: float) -> None:
        """Undo names the label it undoes (so applying it twice changes nothing); events of
        older journals do not, and undo the newest standing label."""
        if index is None:
            active = [i for i, r in enumerate(self.labels) if r.active]
            if active:
                self.labels[active[-1]].undone = when
            return
        index = int(index)
        if not 0 <= index < len(self.labels):
            raise SessionFormatError(f"undo of label {index}, which does not exist")
        if self.labels[index].active:
            self.labels[index].undone = when

    def last_active(self) -> int | None:
        return next((i for i in range(len(self.labels) - 1, -1, -1) if self.labels[i].active),
                    None)

    def latest_snapshot(self) -> "Snapshot | None":
        if not self.snapshots:
            return None
        return max(self.snapshots.values(), key=lambda s: s.created)

    def active_count(self) -> int:
        return sum(r.active for r in self.labels)

    def active_labels(self) -> dict[int, list]:
        """frame id -> its active labels, in order."""
        out: dict[int, list] = {}
        for r in self.labels:
            if r.active:
                out.setdefault(r.frame_id, []).append(r.label())
        return out


def check_label(record: LabelRecord, outputs: int) -> LabelRecord:
    """A label fit to keep: a known kind, a category of the patch (or the eraser) and finite
    coordinates; SessionFormatError otherwise."""
    coordinates = (record.x, record.y, record.radius)
    if record.kind not in LABEL_KINDS:
        raise SessionFormatError(f"label kind {_brief(record.kind)} is unknown")
    if not (0 <= record.category < outputs or record.category == ERASE):
        raise SessionFormatError(f"label category {record.category} is not one of the "
                                 f"patch's {outputs}")
    if (not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in coordinates)
            or record.radius < 0 or not math.isfinite(record.time)):
        raise SessionFormatError(f"label on frame {record.frame_id} has coordinates that are "
                                 "not finite numbers")
    if not (math.isnan(record.undone) or math.isfinite(record.undone)):
        raise SessionFormatError(f"label on frame {record.frame_id} has a bad undo time")
    return record


def frame_factor(shape) -> int:
    """The smallest whole factor that brings a frame within MAX_SIDE pixels a side: a
    session keeps every label, on a frame it can store (1 for frames that fit)."""
    return max(-(-int(shape[0]) // MAX_SIDE), -(-int(shape[1]) // MAX_SIDE), 1)


def shrink_frame(image: np.ndarray, factor: int) -> np.ndarray:
    """Block averages of factor x factor pixels, one band at a time (no full-size float
    copy of a frame that may be huge)."""
    if factor == 1:
        return image
    check_frame_shape((MIN_SIDE, MIN_SIDE) + image.shape[2:], image.dtype, "a frame")
    small_h, small_w = image.shape[0] // factor, image.shape[1] // factor
    small = np.empty((small_h, small_w, 3), np.uint8)
    for row in range(small_h):
        band = image[row * factor:(row + 1) * factor, :small_w * factor]
        small[row] = np.rint(band.reshape(factor, small_w, factor, 3).mean(axis=(0, 2)))
    return small


def scale_label(label, factor: int):
    if factor == 1 or not isinstance(label, LabelDisc):
        return label
    return LabelDisc(label.x / factor, label.y / factor, label.radius / factor, label.category)


def stored_snapshot(snapshot: Snapshot) -> Snapshot:
    """A snapshot as a session keeps it: its arrays contiguous float32."""
    return replace(snapshot, weights=np.ascontiguousarray(snapshot.weights, np.float32),
                   velocity=np.ascontiguousarray(snapshot.velocity, np.float32))


def snapshot_header(snapshot: Snapshot) -> dict:
    """What a session file or journal stores of a snapshot besides its arrays (JSON)."""
    return {"tag": snapshot.tag, "created": snapshot.created, "steps": snapshot.steps,
            "settings": settings_to_json(snapshot.settings),
            "label_counts": [int(c) for c in snapshot.label_counts],
            "size": int(snapshot.weights.size)}


def snapshot_from_header(header: dict, state: "SessionState", weights: np.ndarray,
                         velocity: np.ndarray) -> Snapshot:
    """A stored snapshot back (its patch: the session's; a field an older or damaged header
    lacks: a default, or the session's settings). SessionFormatError on a wrong type."""
    try:
        created = header.get("created", 0.0)
        if isinstance(created, bool) or not isinstance(created, (int, float)) \
                or not math.isfinite(created):
            raise ValueError("no creation time")
        steps = header.get("steps", 0)
        settings = settings_from_json(header["settings"]) if "settings" in header \
            else state.settings
        counts = np.array(header.get("label_counts", []), np.int64).ravel()
        return Snapshot(str(header["tag"]), float(created), state.spec, weights, velocity,
                        settings, counts, int(steps))
    except SessionFormatError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise SessionFormatError(f"snapshot {_brief(header.get('tag'))}: {exc}") from None


def _brief(value, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def label_event(record: LabelRecord) -> dict:
    return {"op": "label", "frame": record.frame_id, "kind": record.kind, "x": record.x,
            "y": record.y, "r": record.radius, "category": record.category, "t": record.time}


def spec_to_json(spec: PatchSpec) -> dict:
    return {"name": spec.name, "categories": [[c.tag, c.index, c.name] for c in spec.categories],
            "triggers": list(spec.triggers), "topology": spec.topology, "tap": spec.tap,
            "threshold": spec.threshold, "seed": spec.seed, "description": spec.description,
            "base_name": spec.base_name, "base_hash": spec.base_hash, "pooling": spec.pooling,
            "loss": spec.loss, "fine_tune": spec.fine_tune, "hidden": spec.hidden}


def spec_from_json(data: dict) -> PatchSpec:
    try:
        return PatchSpec(str(data["name"]),
                         tuple(Category(str(t), int(i), str(n)) for t, i, n in data["categories"]),
                         tuple(str(t) for t in data["triggers"]), str(data["topology"]),
                         str(data["tap"]), float(data["threshold"]), int(data["seed"]),
                         str(data["description"]), str(data["base_name"]), str(data["base_hash"]),
                         str(data.get("pooling", "detect")), str(data.get("loss", "cross_entropy")),
                         _whole(data.get("fine_tune", 0)), _whole(data.get("hidden", _older_hidden(data))))
    except (KeyError, TypeError, ValueError) as exc:
        raise SessionFormatError(f"patch definition is not valid ({exc})") from exc


def _older_hidden(data: dict) -> int:
    """The hidden width of a patch saved before widths were written: the one every patch of
    its topology had then."""
    return PIXELS_HIDDEN if data.get("topology") == "pixels" else HEAD_HIDDEN


def _whole(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    return value


def settings_to_json(settings: TrainerSettings) -> dict:
    return asdict(settings)


def settings_from_json(data: dict) -> TrainerSettings:
    try:
        known = {k: data[k] for k in TrainerSettings.__dataclass_fields__ if k in data}
        # A session saved before these were settings trains on as it did.
        known = {**MOMENTUM_STEPPING, **known}
        return TrainerSettings(**known)
    except (TypeError, ValueError) as exc:
        raise SessionFormatError(f"trainer settings are not valid ({exc})") from exc


def categories_from_json(spec: PatchSpec, names) -> PatchSpec:
    """The patch with its saved category names: renamed, or with categories added since
    it was made (the first ones keep their tags, so labels keep their meaning)."""
    try:
        return with_names(spec, names)
    except ValueError as exc:
        raise SessionFormatError(f"the saved categories do not fit the patch ({exc})") from None


def window_from_json(data) -> dict:
    """The window's saved view (a few named numbers and switches); the window itself decides
    which still fit. Anything else is refused."""
    if not isinstance(data, dict) or len(data) > MAX_WINDOW_PREFS:
        raise SessionFormatError("the window's saved view is not a small JSON object")
    for name, value in data.items():
        plain = isinstance(value, (bool, int)) or (isinstance(value, float)
                                                   and math.isfinite(value))
        if not isinstance(name, str) or len(name) > 32 or not plain:
            raise SessionFormatError(f"the window's saved view holds {_brief(name)}")
    return dict(data)


def check_image(image: np.ndarray, what: str) -> np.ndarray:
    check_frame_shape(image.shape, image.dtype, what)
    return image


def check_frame_shape(shape, dtype, what: str) -> None:
    if (dtype != np.uint8 or len(shape) != 3 or shape[2] != 3
            or not MIN_SIDE <= shape[0] <= MAX_SIDE or not MIN_SIDE <= shape[1] <= MAX_SIDE):
        raise SessionFormatError(f"{what}: not a uint8 RGB frame between {MIN_SIDE} and "
                                 f"{MAX_SIDE} px ({dtype} {tuple(shape)})")
