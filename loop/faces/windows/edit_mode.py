"""Edit mode: step through the labeled frames, see the current patch's verdict on each (for a
moment after each step, or held with `x`), add, change and erase labels with the live
window's gestures, leave frames out of training (`d`), filter to the frames where the patch
disagrees with its labels (worst first) or to one category's frames. `patchloop replay`
is this mode alone; the live window enters and leaves it with `e`.

The mode stands where the live window's verdict worker stands: the view draws whatever
`latest()` gives, so both windows draw and label through the same code."""
from __future__ import annotations

import time

import pygame

from loop.core.labels import WholeFrameLabel
from loop.faces.windows.key_table import KeyTable, key

VERDICT_SECONDS = 1.0   # how long the verdict shows after stepping to a frame
FILTERS = ("all frames", "disagreeing frames, worst first", "frames of the selected category")


class EditMode:
    source_lost = False
    error = None
    verdict_ms = 0.0
    verdicts_per_second = 0.0
    frozen = False        # a still frame by nature: no "frozen" banner

    def __init__(self, window):
        self.window = window
        self.core = window.core
        self.index = 0
        self.filter = 0
        self.order: list[int] = []
        self.current_verdict = None
        self.verdict_until = 0.0
        self.hold = False
        self.refilter()

    # -- frames ---------------------------------------------------------------------------
    def originals(self):
        return self.core.labeled_frames()

    def current(self):
        if not self.order:
            return None
        wanted = self.order[min(self.index, len(self.order) - 1)]
        return next((f for f in self.originals() if f.frame_id == wanted), None)

    def latest(self):
        frame = self.current()
        if frame is None or self.current_verdict is None:
            return None
        return frame.image, self.current_verdict

    def _disagreement(self, frame) -> float:
        labeled = frame.label_map >= 0
        if not labeled.any():
            return 0.0
        predicted = self.core.verdict_on_features(frame.features).argmax(axis=0)
        return float((predicted[labeled] != frame.label_map[labeled]).mean())

    def refilter(self) -> None:
        frames = self.originals()
        if self.filter == 1:
            scored = [(self._disagreement(f), f.frame_id) for f in frames]
            self.order = [i for d, i in sorted(scored, reverse=True) if d > 0]
        elif self.filter == 2:
            c = self.window.state.selected
            self.order = [f.frame_id for f in frames if (f.label_map == c).any()]
        else:
            self.order = sorted(f.frame_id for f in frames)
        self.index = 0
        self.window.say(f"{FILTERS[self.filter]}: {len(self.order)}")
        self.show()

    def show(self) -> None:
        """The current frame's verdict, computed now, shown for a moment."""
        frame = self.current()
        self.current_verdict = None if frame is None else self.core.verdict_for_labeled(frame)
        self.verdict_until = time.monotonic() + VERDICT_SECONDS

    # -- each frame of the window ---------------------------------------------------------
    def update(self, state) -> None:
        state.show_verdict = self.hold or time.monotonic() < self.verdict_until
        if self.core.trainer.settings.training and self.current_verdict is not None \
                and self.core.weights_version != self.current_verdict.weights_version:
            self.show()

    def footer(self) -> str:
        frame = self.current()
        if frame is None:
            return ""
        return f"frame {self.index + 1}/{len(self.order)} (id {frame.frame_id})" + \
            ("  LEFT OUT of training" if frame.excluded else "")

    def empty_note(self) -> str:
        if not self.originals():
            return "no labeled frames yet: label a frame first"
        return f"no frame matches the filter '{FILTERS[self.filter]}': f shows the next one"

    # -- what the keys do -----------------------------------------------------------------
    def step_by(self, step: int) -> None:
        if self.order:
            self.index = (self.index + step) % len(self.order)
            self.show()

    def toggle_hold(self) -> None:
        self.hold = not self.hold

    def raw_frame(self) -> None:
        self.hold, self.verdict_until = False, 0.0

    def leave_out(self) -> None:
        frame = self.current()
        if frame is None:
            return
        excluded = not frame.excluded
        self.window.labels.exclude(frame.frame_id, excluded)
        self.window.say("left out of training (d to restore)" if excluded else "back in training")

    def next_filter(self) -> None:
        self.filter = (self.filter + 1) % len(FILTERS)
        self.refilter()

    def whole_frame_background(self) -> None:
        frame = self.current()
        if frame is not None:
            self.window.labels.label(frame.frame_id, WholeFrameLabel(0))
            self.window.say("whole frame labeled background")
            self.show()


EDIT_KEYS = KeyTable([
    key("Left / Right", "previous / next labeled frame (held: repeats)",
        (pygame.K_LEFT, pygame.K_RIGHT),
        lambda w, e: w.edit.step_by(1 if e.key == pygame.K_RIGHT else -1)),
    key("x", "hold the verdict on / off", (pygame.K_x,), lambda w, e: w.edit.toggle_hold()),
    key("space", "the raw frame", (pygame.K_SPACE,), lambda w, e: w.edit.raw_frame()),
    key("f", "filter: " + " / ".join(FILTERS), (pygame.K_f,), lambda w, e: w.edit.next_filter()),
    key("d", "leave the frame out of training / back in", (pygame.K_d,),
        lambda w, e: w.edit.leave_out()),
    key("b", "the whole frame is background", (pygame.K_b,),
        lambda w, e: w.edit.whole_frame_background()),
])
