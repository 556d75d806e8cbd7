"""The live window: point the camera, see the verdict, click the mistakes.

One loop in fixed phases (tick, events, update, draw, flip). Events become core calls;
verdicts come from a worker thread and training from the core's trainer thread, so the
window never waits on the device."""
from __future__ import annotations

import os
import time
from dataclasses import replace

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402  (after the banner is silenced)

from loop.core.labels import ERASE, LabelDisc, WholeFrameLabel
from loop.errors import UserError
from loop.faces.live_view import HELP, MIN_WINDOW, LiveView, ViewState
from loop.faces.overlays import VIEWS
from loop.faces.verdict_worker import VerdictWorker

FPS = 60
MESSAGE_SECONDS = 3.0
MIN_BRUSH, MAX_BRUSH = 2, 120


def _fitting_window() -> tuple[int, int]:
    """Four fifths of the screen, never below 800x600: the window follows the screen."""
    info = pygame.display.Info()
    width, height = info.current_w, info.current_h
    if width <= 0 or height <= 0:
        return MIN_WINDOW
    return max(MIN_WINDOW[0], int(width * 0.8)), max(MIN_WINDOW[1], int(height * 0.8))


class LiveApp:
    def __init__(self, core, source, note: str | None = None, window=None,
                 frame_size=(320, 240), link=None, snap_dir="snaps"):
        pygame.display.init()  # not pygame.init(): no audio device is needed
        pygame.font.init()
        pygame.display.set_caption("Patchloop: click where the patch is wrong")
        self.screen = pygame.display.set_mode(window or _fitting_window(), pygame.RESIZABLE)
        self.view = LiveView(self.screen, (frame_size[1], frame_size[0]))
        self.core = core
        self.worker = VerdictWorker(core, source)
        # The session file (when there is one): labels go through it to be made durable.
        self.link = link
        self.labels = link or core
        self.state = ViewState(selected=1 if core.spec.outputs > 1 else 0)
        self.clock = pygame.time.Clock()
        self.snap_dir = snap_dir
        self.running = True
        self._drag_button = None
        self._last_label_at = None
        self.frames_drawn = 0
        if note:
            self.say(note)

    def say(self, message: str) -> None:
        self.state.message = message
        self.state.message_until = time.monotonic() + MESSAGE_SECONDS

    # -- the loop -------------------------------------------------------------------------
    def run(self, max_frames: int | None = None, screenshot: str | None = None,
            autoclick: bool = False) -> None:
        self.worker.start()
        self.core.start()
        clicker = None
        if autoclick:
            from loop.faces.autoclick import AutoClicker
            clicker = AutoClicker(self)
        try:
            while self.running and (max_frames is None or self.frames_drawn < max_frames):
                if clicker is not None:
                    clicker.tick()
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
        self.view.draw(self.state, self.core, self.worker, self.worker.latest(), time.monotonic(),
                       self.link, self.footer(), self.help_lines(), self.empty_note())
        self.draw_over()
        pygame.display.flip()
        self.frames_drawn += 1

    def footer(self) -> str:
        """A line under the frame (the replay window's frame counter); none here."""
        return ""

    def draw_over(self) -> None:
        """The draw hook: what a window adds over the view before the frame's one flip."""

    def help_lines(self) -> list[tuple[str, str]]:
        """The keys and gestures of this window, as the help page lists them."""
        return HELP

    def empty_note(self) -> str:
        """What the frame area says while there is no frame to show."""
        return "waiting for the first frame..."

    def close(self) -> None:
        self.worker.stop()
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
        elif event.type == pygame.KEYDOWN:
            self._key(event)
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
        latest = self.worker.latest()
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

    def snap(self, category: int) -> None:
        """The `c` key: the current frame into the snap folder (map_clsloc.txt layout) under
        `category`, ready for `patchloop train`; written by a thread, not the window's."""
        latest = self.worker.latest()
        if latest is None:
            return
        from loop.store.snap import snap_frame
        c = self.core.spec.categories[category]
        frame = latest[0]

        def write():
            try:
                self.say(f"snapped as {c.name}: {snap_frame(self.snap_dir, frame, c.tag, c.name)}")
            except OSError as exc:
                self.say(f"snap failed: {exc}")

        import threading
        self.say("snapping...")
        threading.Thread(target=write, name="patchloop-snap", daemon=True).start()

    def _export(self) -> None:
        """The `e` key: the patch as it is now, as a plugin beside the session file; written
        by a thread of its own, so the window does not wait on the disk."""
        if self.link is None:
            self.say("no session file: start with --session to export beside it")
            return
        snapshot = self.labels.snapshot()
        session = self.link.store.path
        out = session.with_name(f"{session.stem}-{snapshot.tag}.specialneurons")
        base_spec = self.core.base.spec if self.core.base is not None else None

        def write():
            from loop.faces.export import export_snapshot
            try:
                export_snapshot(self.core.spec, snapshot.weights, out, snapshot.tag, base_spec)
                self.say(f"exported to {out}")
            except (OSError, ValueError) as exc:
                self.say(f"export failed: {exc}")

        import threading
        self.say("exporting...")  # before the thread: its own message must come last
        threading.Thread(target=write, name="patchloop-export", daemon=True).start()

    def _key(self, event) -> None:
        key, core, state = event.key, self.core, self.state
        trainer = core.trainer
        ctrl = event.mod & pygame.KMOD_CTRL
        if key == pygame.K_ESCAPE:
            self.running = False
        elif key in (pygame.K_h, pygame.K_F1):
            state.show_help = not state.show_help
        elif key == pygame.K_TAB:
            state.selected = (state.selected + 1) % core.spec.outputs
        elif pygame.K_1 <= key <= pygame.K_9 and key - pygame.K_1 < core.spec.outputs:
            state.selected = key - pygame.K_1
        elif key == pygame.K_UP:
            self.labels.change_settings(trainer.settings.faster())
        elif key == pygame.K_DOWN:
            self.labels.change_settings(trainer.settings.slower())
        elif key == pygame.K_RIGHT:
            self.labels.change_settings(trainer.settings.more_decay())
        elif key == pygame.K_LEFT:
            self.labels.change_settings(trainer.settings.less_decay())
        elif key == pygame.K_t:
            on = not trainer.settings.training
            self.labels.change_settings(replace(trainer.settings, training=on))
            self.say(f"training {'on' if on else 'off'}")
        elif key == pygame.K_n:
            new_only = not trainer.settings.new_only
            self.labels.change_settings(replace(trainer.settings, new_only=new_only))
            self.say("training on new labels only" if new_only else "training on all labels")
        elif key == pygame.K_u or (key == pygame.K_z and ctrl):
            self.say("undone" if self.labels.undo() else "nothing to undo")
        elif key == pygame.K_b:
            latest = self.worker.latest()
            if latest is not None:
                self.labels.label(latest[1].frame_id, WholeFrameLabel(0))
                self.say("whole frame labeled background")
        elif key == pygame.K_SPACE:
            self.worker.frozen = not self.worker.frozen
            self.say("frozen (space to go on)" if self.worker.frozen else "live")
        elif key == pygame.K_x:
            state.show_verdict = not state.show_verdict
        elif key == pygame.K_v:
            state.view = (state.view + 1) % len(VIEWS)
            self.say(f"view: {VIEWS[state.view]}")
        elif key == pygame.K_m:
            state.smooth = not state.smooth
            self.say("smooth verdict" if state.smooth else "blocky cells")
        elif key == pygame.K_l:
            state.show_labels = not state.show_labels
        elif key in (pygame.K_RIGHTBRACKET, pygame.K_LEFTBRACKET):
            more = key == pygame.K_RIGHTBRACKET
            settings = trainer.settings.bigger_batch() if more else trainer.settings.smaller_batch()
            self.labels.change_settings(settings)
            self.say(f"batch {settings.batch_size}")
        elif key in (pygame.K_PERIOD, pygame.K_COMMA):
            more = key == pygame.K_PERIOD
            settings = trainer.settings.more_momentum() if more else trainer.settings.less_momentum()
            self.labels.change_settings(settings)
            self.say(f"momentum {settings.momentum:.2f}")
        elif key == pygame.K_s:
            snapshot = self.labels.snapshot()
            state.snapshots.append(snapshot)
            self.say(f"snapshot {snapshot.tag} taken")
        elif key == pygame.K_e:
            self._export()
        elif key == pygame.K_c:
            self.snap(state.selected)
