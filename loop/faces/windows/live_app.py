"""The live window: point the camera, see the verdict, click the mistakes; `e` steps back
through the labeled frames (edit mode) without leaving it. `patchloop replay` is this window
in edit mode alone.

One loop in fixed phases (tick, events, update, draw, one flip). Keys go through the key
table of the mode the window is in (the help page is that table); events become core
calls; verdicts come from a worker thread and training from the core's trainer thread, so
the window never waits on the device."""
from __future__ import annotations

import os
import time
from dataclasses import replace

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402  (after the banner is silenced)

from loop.core.labels import ERASE, LabelDisc, WholeFrameLabel
from loop.errors import UserError
from loop.faces.windows.edit_mode import EditMode
from loop.faces.windows.live_keys import edit_keys, live_keys
from loop.faces.windows.live_view import MIN_WINDOW, LiveView, ViewState
from loop.faces.windows.window_prefs import PrefsKeeper, with_window_prefs
from loop.faces.windows.text_entry import TextEntry
from loop.faces.windows.window_files import export_in_background, snap_in_background
from loop.core.verdict_worker import VerdictWorker
from loop.demo.metrics import verdict_accuracy

FPS = 60
MESSAGE_SECONDS = 3.0
MIN_BRUSH, MAX_BRUSH = 2, 120
FIRST_FRAME_SECONDS = 120.0  # a bounded run (screenshots) counts its frames from the first
                             # one shown, and waits this long for it (kernels compile first)
SHOWN_TAIL = 150   # frames: a demonstration run freezes its last frame this long before it ends   # window settings are saved once they stop changing this long


def _fitting_window() -> tuple[int, int]:
    """Four fifths of the screen, never below 800x600: the window follows the screen."""
    info = pygame.display.Info()
    width, height = info.current_w, info.current_h
    if width <= 0 or height <= 0:
        return MIN_WINDOW
    return max(MIN_WINDOW[0], int(width * 0.8)), max(MIN_WINDOW[1], int(height * 0.8))


class LiveApp:
    def __init__(self, core, source, note: str | None = None, window=None,
                 frame_size=(320, 240), link=None, snap_dir="snaps", edit_only: bool = False):
        pygame.display.init()  # not pygame.init(): no audio device is needed
        pygame.font.init()
        pygame.display.set_caption("Patchloop: click where the patch is wrong")
        self.screen = pygame.display.set_mode(window or _fitting_window(), pygame.RESIZABLE)
        self.view = LiveView(self.screen, (frame_size[1], frame_size[0]))
        self.core = core
        self.worker = VerdictWorker(core, source, verdict_accuracy) if source is not None \
            else None
        # The session file (when there is one): labels go through it to be made durable.
        self.link = link
        self.labels = link or core
        state = ViewState(selected=1 if core.spec.outputs > 1 else 0)
        prefs = link.window_prefs() if link is not None else {}
        self.state = with_window_prefs(state, prefs, core.spec.outputs, (MIN_BRUSH, MAX_BRUSH))
        self.prefs = PrefsKeeper(link, self.state)
        self.clock = pygame.time.Clock()
        self.snap_dir = snap_dir
        self.running = True
        self._drag_button = None
        self._last_label_at = None
        self.frames_shown = 0   # frames drawn with a frame and its verdict on them
        self._drawn = (None, None)  # (where from, (frame, verdict)) as last drawn
        self.edit_only = edit_only
        self.edit: EditMode | None = None
        self.entry: TextEntry | None = None   # a name being typed
        self._live_shows_verdict = self.state.show_verdict
        if note:
            self.say(note)
        if edit_only:
            self.enter_edit()

    def say(self, message: str) -> None:
        self.state.message = message
        self.state.message_until = time.monotonic() + MESSAGE_SECONDS

    @property
    def shown(self):
        """What the frame area shows: edit mode's frame, or the live worker's."""
        return self.edit if self.edit is not None else self.worker

    def keys(self):
        return edit_keys(inside_live=not self.edit_only) if self.edit is not None else live_keys()

    # -- the loop -------------------------------------------------------------------------
    def run(self, max_frames: int | None = None, screenshot: str | None = None,
            autoclick: bool = False) -> None:
        if self.worker is not None:
            self.worker.start()
        self.core.start()
        clicker = None
        if autoclick:
            from loop.faces.windows.autoclick import AutoClicker
            clicker = AutoClicker(self)
        started = time.monotonic()
        try:
            while self.running and (max_frames is None or self.frames_shown < max_frames):
                if not self.frames_shown and time.monotonic() - started > FIRST_FRAME_SECONDS:
                    raise UserError(f"no frame came from the source within "
                                    f"{FIRST_FRAME_SECONDS:.0f} s")
                if clicker is not None:
                    clicker.tick()
                    if max_frames is not None and self.frames_shown == max_frames - SHOWN_TAIL \
                            and not self.worker.frozen:
                        self.freeze()  # the last clicks land on the frame the picture shows
                self.step()
            if screenshot:
                try:
                    pygame.image.save(self.screen, screenshot)
                except pygame.error as exc:  # a full disk, or the folder went meanwhile
                    raise UserError(f"{screenshot}: cannot save the screenshot: {exc}") from exc
        finally:
            self.close()

    def step(self) -> None:
        self.clock.tick(FPS)
        for event in pygame.event.get():
            self.handle(event)
        if self.edit is not None:
            self.edit.update(self.state)
        self._keep_prefs()
        shown = self.shown
        latest = shown.latest()
        # Clicks in the next step land on this frame, the one the user saw, even when the
        # verdict thread has a newer one meanwhile (a drag would spread over frames).
        self._drawn = (shown, latest)
        self.view.draw(self.state, self.core, shown, latest, time.monotonic(),
                       self.link, self.footer(), self.help_lines(), self.empty_note())
        pygame.display.flip()
        self.frames_shown += latest is not None

    def footer(self) -> str:
        """A line under the frame: edit mode's frame counter."""
        return self.edit.footer() if self.edit is not None else ""

    def help_lines(self) -> list[tuple[str, str]]:
        """The keys and gestures of the mode the window is in: its key table."""
        return self.keys().help_lines()

    def empty_note(self) -> str:
        """What the frame area says while there is no frame to show."""
        return self.edit.empty_note() if self.edit is not None else \
            "waiting for the first frame..."

    def _keep_prefs(self, now: bool = False) -> None:
        """The view as live mode has it (edit mode turns the verdict on and off itself)."""
        self.prefs.keep(self.state if self.edit is None else
                        _with_live_verdict(self.state, self._live_shows_verdict), now)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self._keep_prefs(now=True)
        self.core.close()
        if self.link is not None:
            self.link.close()
        pygame.display.quit()

    # -- events ---------------------------------------------------------------------------
    def handle(self, event) -> None:
        if event.type == pygame.QUIT:
            self.running = False
        elif event.type == pygame.VIDEORESIZE:
            size = (max(MIN_WINDOW[0], event.w), max(MIN_WINDOW[1], event.h))
            self.screen = pygame.display.set_mode(size, pygame.RESIZABLE)
            self.view.relayout(self.screen, self.view.frame_rect.size[::-1])
        elif event.type == pygame.KEYDOWN and self.entry is not None:
            if not self.entry.key(event):
                self.entry = None
            self._show_entry()
        elif event.type == pygame.KEYDOWN:
            self.keys().handle(self, event)
        elif event.type == pygame.MOUSEWHEEL:
            self.state.brush = max(MIN_BRUSH, min(MAX_BRUSH, self.state.brush + 2 * event.y))
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button in (1, 2, 3):
            self._drag_button = event.button
            self.state.mouse = event.pos
            self._label_at(event.pos, event.button)
        elif event.type == pygame.MOUSEBUTTONUP:
            self._drag_button = None
            self._last_label_at = None
        elif event.type == pygame.MOUSEMOTION:
            self.state.mouse = event.pos
            if self._drag_button is not None and self._moved_enough(event.pos):
                self._label_at(event.pos, self._drag_button)

    def _moved_enough(self, pos) -> bool:
        if self._last_label_at is None:
            return True
        dx, dy = pos[0] - self._last_label_at[0], pos[1] - self._last_label_at[1]
        return dx * dx + dy * dy >= (self.state.brush * 0.75) ** 2

    def _label_at(self, pos, button) -> None:
        drawn_from, latest = self._drawn
        if drawn_from is not self.shown or latest is None:  # nothing drawn from there yet
            latest = self.shown.latest()
            self._drawn = (self.shown, latest)
        if latest is None or not self.view.frame_rect.collidepoint(pos):
            return
        verdict = latest[1]
        scale = self.view.frame_scale(verdict)
        x, y = (pos[0] - self.view.frame_rect.x) / scale, (pos[1] - self.view.frame_rect.y) / scale
        category = {1: self.state.selected, 3: 0, 2: ERASE}[button]
        try:
            self.labels.label(verdict.frame_id, LabelDisc(x, y, self.state.brush, category))
        except (KeyError, ValueError) as exc:
            self.say(str(exc))
            return
        self._last_label_at = pos
        if self.edit is not None:
            self.edit.show()

    # -- what the keys do (the key tables in live_keys call these) ------------------------
    def quit(self) -> None:
        self.running = False

    def select(self, category: int) -> None:
        self.state.selected = category

    def undo(self) -> None:
        self.say("undone" if self.labels.undo() else "nothing to undo")
        if self.edit is not None:
            self.edit.show()

    def whole_frame_background(self) -> None:
        latest = self.worker.latest()
        if latest is not None:
            self.labels.label(latest[1].frame_id, WholeFrameLabel(0))
            self.say("whole frame labeled background")

    def freeze(self) -> None:
        self.worker.frozen = not self.worker.frozen
        self.say("frozen (space to go on)" if self.worker.frozen else "live")

    def ask_new_category(self) -> None:
        def take(name):
            spec = self.labels.add_category(name)
            self.select(spec.outputs - 1)
            self.say(f"category {spec.outputs} {name} added: label it with a left click")
        self.entry = TextEntry("name of the new category", take)
        self._show_entry()

    def ask_rename(self) -> None:
        index = self.state.selected
        old = self.core.spec.categories[index].name

        def take(name):
            self.labels.rename_category(index, name)
            self.say(f"category {index + 1} is now {name}")
        self.entry = TextEntry(f"new name of category {index + 1} ({old})", take, text=old)
        self._show_entry()

    def _show_entry(self) -> None:
        entry = self.entry
        self.state.entry = None if entry is None else (entry.prompt, entry.text, entry.error)

    def take_snapshot(self) -> None:
        snapshot = self.labels.snapshot()
        self.state.snapshots.append(snapshot)
        self.say(f"snapshot {snapshot.tag} taken")

    def enter_edit(self) -> None:
        """Edit mode over the labeled frames; the live source keeps running behind it."""
        self._live_shows_verdict = self.state.show_verdict
        self.edit = EditMode(self)
        pygame.key.set_repeat(300, 60)  # held Left/Right steps on

    def leave_edit(self) -> None:
        self.edit = None
        self.state.show_verdict = self._live_shows_verdict
        pygame.key.set_repeat()
        self.say("live")

    def snap(self, category: int) -> None:
        """The `c` key: the current frame into the snap folder, under `category`."""
        latest = self.worker.latest()
        if latest is not None:
            snap_in_background(self.say, self.snap_dir, latest[0],
                               self.core.spec.categories[category])

    def export(self) -> None:
        """Ctrl+E: the patch as it is now, as a plugin beside the session file."""
        if self.link is None:
            self.say("no session file: start with --session to export beside it")
            return
        base_spec = self.core.base.spec if self.core.base is not None else None
        export_in_background(self.say, self.core.spec, self.labels.snapshot(),
                             self.link.store.path, base_spec)


def _with_live_verdict(state: ViewState, shows_verdict: bool) -> ViewState:
    """The state as live mode has it (edit mode turns the verdict on and off by itself)."""
    return replace(state, show_verdict=shows_verdict)
