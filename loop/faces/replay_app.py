"""`patchloop replay SESSION.h5`: edit mode. Step through the labeled frames,
see the current patch's verdict on each (for a moment, or held with `x`), add, change and
erase labels with the live window's gestures, leave frames out of training (`d`), and train
while editing (`t`). Filters show only frames where the patch disagrees with its labels
(worst first) or frames of one category. Edits are made durable like live labels."""
from __future__ import annotations

import time
from dataclasses import replace

from loop.faces.live_app import LiveApp
from loop.faces.live_view import HELP

VERDICT_SECONDS = 1.0   # how long the verdict shows after stepping to a frame
FILTERS = ("all frames", "disagreeing frames, worst first", "frames of the selected category")
# Replay's own keys, then the live window's gestures that edit labels the same way here.
REPLAY_HELP = [
    ("Left / Right", "previous / next labeled frame (held: repeats)"),
    ("x", "hold the verdict on / off"),
    ("space", "the raw frame"),
    ("f", "filter: " + " / ".join(FILTERS)),
    ("d", "leave the frame out of training / back in"),
    ("t", "train while editing on / off"),
] + [entry for entry in HELP if entry[0] in (
    "left click / drag", "right click / drag", "middle click", "scroll wheel", "1-9, Tab",
    "b", "u, Ctrl+Z", "Up / Down", "v", "m", "l", "s", "e", "h, F1")] + [
    ("Esc", "quit (everything is saved)"),
]


class ReplaySource:
    """Stands in for the verdict worker: the replayed frame and its verdict."""

    source_lost = False
    error = None
    verdict_ms = 0.0
    verdicts_per_second = 0.0

    def __init__(self, app: "ReplayApp"):
        self.app = app
        self.frozen = True

    def latest(self):
        frame = self.app.current()
        if frame is None:
            return None
        return frame.image, self.app.current_verdict

    def start(self):
        pass

    def stop(self):
        pass


class ReplayApp(LiveApp):
    def __init__(self, core, link, note=None):
        first = next(iter(core.frames), None)
        size = (first.image.shape[1], first.image.shape[0]) if first else (320, 240)
        super().__init__(core, source=None, note=note, frame_size=size, link=link)
        self.worker = ReplaySource(self)
        self.index = 0
        self.filter = 0
        self.order: list[int] = []
        self.current_verdict = None
        self.verdict_until = 0.0
        self.hold = False
        # Edit first; `t` trains while editing.
        self.core.change_settings(replace(self.core.trainer.settings, training=False))
        self._refilter()
        import pygame
        pygame.key.set_repeat(300, 60)  # held Left/Right steps on

    # -- frames ---------------------------------------------------------------------------
    def originals(self):
        with self.core.frames_lock:
            return [f for f in self.core.frames if f.augmented_from is None]

    def current(self):
        frames = {f.frame_id: f for f in self.originals()}
        if not self.order:
            return None
        return frames.get(self.order[min(self.index, len(self.order) - 1)])

    def _disagreement(self, frame) -> float:
        labeled = frame.label_map >= 0
        if not labeled.any():
            return 0.0
        predicted = self.core.verdict_on_features(frame.features).argmax(axis=0)
        return float((predicted[labeled] != frame.label_map[labeled]).mean())

    def _refilter(self) -> None:
        frames = self.originals()
        if self.filter == 1:
            scored = [(self._disagreement(f), f.frame_id) for f in frames]
            self.order = [i for d, i in sorted(scored, reverse=True) if d > 0]
        elif self.filter == 2:
            c = self.state.selected
            self.order = [f.frame_id for f in frames if (f.label_map == c).any()]
        else:
            self.order = sorted(f.frame_id for f in frames)
        self.index = 0
        self.say(f"{FILTERS[self.filter]}: {len(self.order)}")
        self._show()

    def _show(self) -> None:
        frame = self.current()
        self.current_verdict = None if frame is None else self.core.verdict_for_labeled(frame)
        self.verdict_until = time.monotonic() + VERDICT_SECONDS

    # -- the loop -------------------------------------------------------------------------
    def step(self) -> None:
        # The verdict shows for a moment after each step, or all the time while held.
        self.state.show_verdict = self.hold or time.monotonic() < self.verdict_until
        if self.core.trainer.settings.training and self.current_verdict is not None \
                and self.core.weights_version != self.current_verdict.weights_version:
            self._show()
        super().step()

    def help_lines(self) -> list[tuple[str, str]]:
        return REPLAY_HELP

    def empty_note(self) -> str:
        if not self.originals():
            return "this session has no labeled frames yet"
        return f"no frame matches the filter '{FILTERS[self.filter]}': f shows the next one"

    def footer(self) -> str:
        frame = self.current()
        if frame is None:
            return ""
        return f"frame {self.index + 1}/{len(self.order)} (id {frame.frame_id})" + \
            ("  LEFT OUT of training" if frame.excluded else "")

    def handle(self, event) -> None:
        import pygame
        if event.type == pygame.KEYDOWN and event.key in (pygame.K_LEFT, pygame.K_RIGHT):
            if self.order:
                step = 1 if event.key == pygame.K_RIGHT else -1
                self.index = (self.index + step) % len(self.order)
                self._show()
            return
        if event.type == pygame.KEYDOWN and event.key == pygame.K_x:
            self.hold = not self.hold
            return
        if event.type == pygame.KEYDOWN and event.key == pygame.K_SPACE:
            self.hold, self.verdict_until = False, 0.0  # the raw frame
            return
        if event.type == pygame.KEYDOWN and event.key == pygame.K_d:
            frame = self.current()
            if frame is not None:
                self.exclude(frame, not frame.excluded)
            return
        if event.type == pygame.KEYDOWN and event.key == pygame.K_f:
            self.filter = (self.filter + 1) % len(FILTERS)
            self._refilter()
            return
        if event.type == pygame.KEYDOWN and event.key == pygame.K_b:
            frame = self.current()
            if frame is not None:
                from loop.core.labels import WholeFrameLabel
                self.labels.label(frame.frame_id, WholeFrameLabel(0))
                self._show()
            return
        super().handle(event)
        if event.type == pygame.MOUSEBUTTONDOWN or (event.type == pygame.KEYDOWN
                                                    and event.key in (pygame.K_u, pygame.K_z)):
            self._show()

    def exclude(self, frame, excluded: bool) -> None:
        self.core.exclude(frame.frame_id, excluded)
        if self.link is not None:
            self.link.exclude(frame.frame_id, excluded)
        self.say("left out of training (d to restore)" if excluded else "back in training")
