"""The folder-training window: first the "About" dialog (the last layer is
reconfigured to the patch's categories; Yes starts training), then the images being fed,
the training loss and the held-out accuracy; stop-N-show (space) pauses on the current
image with the patch's inference and offers to save a full snapshot (into the session) and
a patch snapshot (a .specialneurons beside it), both tagged with a time-based hash, or to go
on to the next image. When training ends (or Esc stops it) the result screen stays until the
user closes it: accuracy, confusion matrix, the files written, the graphs."""
from __future__ import annotations

from pathlib import Path

import cv2
import pygame

from loop.core.folder_training import ExtractionCancelled
from loop.faces.windows.live_view import PALETTE
from loop.faces.windows.train_graphs import draw_graph
from loop.faces.windows.train_result import BACKGROUND, draw_result
from loop.faces.train_summary import TrainingResult
from loop.safe_files import check_plain_name, shown

WINDOW = (960, 600)
ABOUT_PANEL = (44, 52, 74)
ABOUT_RECT = pygame.Rect(130, 150, 700, 260)
YES_BUTTON = pygame.Rect(ABOUT_RECT.right - 250, ABOUT_RECT.bottom - 60, 110, 40)
NO_BUTTON = pygame.Rect(ABOUT_RECT.right - 130, ABOUT_RECT.bottom - 60, 110, 40)
LOSS_GRAPH = pygame.Rect(590, 40, 300, 150)
ACCURACY_GRAPH = pygame.Rect(590, 240, 300, 150)
CLOSE_KEYS = (pygame.K_ESCAPE, pygame.K_q)


class TrainWindow:
    def __init__(self, core, job, epochs: int, out_dir: Path, window=WINDOW,
                 about: list[str] | None = None):
        """job: the FolderTraining to run (None until the features are computed: the About
        dialog and the features' progress come first)."""
        pygame.display.init()
        pygame.font.init()
        pygame.display.set_caption(f"Patchloop: training {core.spec.name}")
        self.screen = pygame.display.set_mode(window)
        self.font = pygame.font.Font(None, 22)
        self.big = pygame.font.Font(None, 30)
        self.core, self.job, self.epochs, self.out_dir = core, job, epochs, out_dir
        self.stop_n_show = False
        self.asking = False          # the stop-N-show question is on screen
        self.accuracy: list[tuple[int, float]] = []
        self.message = ""
        self.running = True
        self.closed = False          # the user closed the window: no result screen
        self.saved: list[str] = []
        self.shown = None            # the LabeledFrame on screen, and its picture
        self.picture = None
        self.about = list(about or [])   # shown until the user says Yes (or No: cancelled)
        self.cancelled = False

    # -- before training ------------------------------------------------------------------
    def ask_about(self, max_frames: int | None = None) -> bool:
        """The About dialog alone, before features are computed; True when the user says
        Yes. (With max_frames, False also when it is still open after that many frames.)"""
        clock, frames = pygame.time.Clock(), 0
        while self.about and not self.cancelled:
            if max_frames is not None and frames >= max_frames:
                return False
            clock.tick(30)
            for event in pygame.event.get():
                self.handle(event)
            self.draw()
            pygame.display.flip()
            frames += 1
        return not self.cancelled

    def show_progress(self, done: int, total: int) -> None:
        """Feature extraction's progress; closing the window (or Esc) cancels it."""
        for event in pygame.event.get():
            if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN
                                             and event.key == pygame.K_ESCAPE):
                self.cancelled, self.running = True, False
                raise ExtractionCancelled
        self.screen.fill(BACKGROUND)
        self.text(f"computing features: {done} of {total} base passes", (40, 40), self.big)
        bar = pygame.Rect(40, 90, self.screen.get_width() - 80, 24)
        pygame.draw.rect(self.screen, (60, 60, 70), bar, 1)
        filled = bar.inflate(-4, -4)
        filled.width = int(filled.width * min(1.0, done / max(1, total)))
        pygame.draw.rect(self.screen, (120, 200, 255), filled)
        self.text("Esc: cancel", (40, 130))
        pygame.display.flip()

    # -- the loop -------------------------------------------------------------------------
    def planned_steps(self) -> int:
        return self.job.steps_per_epoch() * self.epochs

    def run(self, max_frames: int | None = None) -> None:
        """Train until the planned steps are done, Esc stops it or the window is closed
        (with max_frames, at most that many frames: the caller, a test, drives it on)."""
        steps_per_epoch, total = self.job.steps_per_epoch(), self.planned_steps()
        clock, frames = pygame.time.Clock(), 0
        while self.running and self.core.trainer.status.steps < total:
            if max_frames is not None and frames >= max_frames:
                return
            clock.tick(60)
            for event in pygame.event.get():
                self.handle(event)
            if self.running and not self.asking and not self.about:
                self.job.step()
                steps = self.core.trainer.status.steps
                if steps % steps_per_epoch == 0:
                    self.accuracy.append((steps, self.job.held_out_accuracy()))
                if self.core.trainer.last_batch:
                    self._show(self.core.trainer.last_batch[0])
                if self.stop_n_show:
                    self.asking = True
            self.draw()
            pygame.display.flip()
            frames += 1

    def show_result(self, result: TrainingResult, max_frames: int | None = None) -> bool:
        """The result screen until Esc, q or closing the window; True when the user closed
        it (False: max_frames ran out first, or the window was closed during training)."""
        clock, frames = pygame.time.Clock(), 0
        while not self.closed:
            if max_frames is not None and frames >= max_frames:
                return False
            clock.tick(30)
            for event in pygame.event.get():
                if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN
                                                 and event.key in CLOSE_KEYS):
                    self.closed = True
            self.screen.fill(BACKGROUND)
            draw_result(self.screen, self.font, self.big, result)
            self._graphs()
            self.text("Esc or q: close", (20, self.screen.get_height() - 26), None,
                      (150, 150, 150))
            pygame.display.flip()
            frames += 1
        return True

    def close(self) -> None:
        pygame.display.quit()

    def _show(self, frame) -> None:
        """The frame stop-N-show would stop on, with its picture read again (the store
        keeps features only)."""
        if self.shown is None or frame.frame_id != self.shown.frame_id:
            self.picture = self.job.picture_of(frame)
        self.shown = frame

    def handle(self, event) -> None:
        if self.about:
            self._about_event(event)
            return
        if event.type == pygame.QUIT:
            self.running, self.closed = False, True
        elif event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE:
            self.running = False
        elif event.type == pygame.KEYDOWN and event.key == pygame.K_SPACE:
            self.stop_n_show = not self.stop_n_show
            if not self.stop_n_show:
                self.asking = False
        elif self.asking and event.type == pygame.KEYDOWN and event.key == pygame.K_y:
            self.save_snapshots()
            self.asking = False
        elif self.asking and event.type == pygame.KEYDOWN and event.key == pygame.K_n:
            self.asking = False  # next image, same question (while stop-N-show is on)

    def _about_event(self, event) -> None:
        """Yes (y, Enter, the button) starts training; No (n, Esc, the button, closing the
        window) cancels before anything is trained."""
        yes_keys, no_keys = (pygame.K_y, pygame.K_RETURN, pygame.K_KP_ENTER), (pygame.K_n, pygame.K_ESCAPE)
        clicked = event.type == pygame.MOUSEBUTTONDOWN and event.button == 1
        if (event.type == pygame.KEYDOWN and event.key in yes_keys) or \
                (clicked and YES_BUTTON.collidepoint(event.pos)):
            self.about = []
        elif event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key in no_keys) \
                or (clicked and NO_BUTTON.collidepoint(event.pos)):
            self.cancelled, self.running = True, False

    def save_snapshots(self) -> None:
        from loop.store.plugin_export import export_snapshot
        snapshot = self.core.snapshot()
        self.job.snapshots.append(snapshot)  # the full snapshot, saved into the session
        base_spec = self.core.base.spec if self.core.base is not None else None
        out = self.out_dir / f"{_file_name(self.core.spec.name)}-{snapshot.tag}.specialneurons"
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            export_snapshot(self.core.spec, snapshot.weights, out, snapshot.tag, base_spec)
        except (OSError, ValueError) as exc:  # a full disk or a folder gone: say so, go on
            self.message = f"snapshot {snapshot.tag} kept; the patch snapshot failed: {exc}"
            return
        self.saved.append(str(out))
        self.message = f"snapshot {snapshot.tag} saved; patch snapshot {shown(out.name)}"

    # -- drawing --------------------------------------------------------------------------
    def draw(self) -> None:
        self.screen.fill(BACKGROUND)
        frame = self.shown
        if frame is not None:
            h, w = self.core.base_input
            size = (560, int(560 * h / w))
            if self.picture is not None:
                image = cv2.resize(self.picture, size, interpolation=cv2.INTER_AREA)
                self.screen.blit(pygame.image.frombuffer(image.tobytes(), size, "RGB"), (10, 10))
            else:
                self.text("(the image can no longer be read)", (14, 20))
            truth = self.core.spec.categories[int(frame.label_map.max())].name
            self.text(f"label: {truth}", (14, size[1] + 16), self.big)
            if self.asking:
                verdict = self.core.verdict_for_labeled(frame)
                said = self.core.spec.categories[verdict.category].name
                colour = PALETTE[verdict.category % len(PALETTE)]
                self.text(f"inference: {said} {verdict.confidence:.2f}", (14, size[1] + 46),
                          self.big, colour)
                self.text("stop-N-show: save a snapshot? y = yes, n = next image, "
                          "space = go on training", (14, size[1] + 80))
        status = self.core.trainer.status
        loss = f"{status.last_loss:.4f}" if status.steps else "none yet"
        planned = f" of {self.planned_steps()}" if self.job is not None else ""
        self.text(f"step {status.steps}{planned}  loss {loss}", (LOSS_GRAPH.x, 14))
        self._graphs()
        self.text("space: stop-N-show   Esc: stop (saves)", (LOSS_GRAPH.x, 440))
        if self.about:
            self._draw_about()
        if self.message:
            self.text(self.message[:70], (14, self.screen.get_height() - 26), None, (255, 255, 120))

    def _draw_about(self) -> None:
        pygame.draw.rect(self.screen, ABOUT_PANEL, ABOUT_RECT)
        pygame.draw.rect(self.screen, (150, 160, 200), ABOUT_RECT, 2)
        self.text("About", (ABOUT_RECT.x + 20, ABOUT_RECT.y + 16), self.big)
        y = ABOUT_RECT.y + 56
        for line in self.about:
            for part in _wrap(line, 80):
                self.text(part, (ABOUT_RECT.x + 20, y))
                y += 22
        self.text("Start training with the last layer reconfigured?",
                  (ABOUT_RECT.x + 20, YES_BUTTON.y + 10))
        for rect, label in ((YES_BUTTON, "Yes (y)"), (NO_BUTTON, "No (n)")):
            pygame.draw.rect(self.screen, (70, 90, 130), rect)
            self.text(label, (rect.x + 22, rect.y + 11))

    def text(self, s, pos, font=None, colour=(230, 230, 230)):
        self.screen.blit((font or self.font).render(s, True, colour), pos)

    def _graphs(self) -> None:
        losses = self.core.trainer.status.losses[-300:]
        draw_graph(self.screen, self.font, LOSS_GRAPH, [s for s, _ in losses],
                   [v for _, v in losses], "training loss", log=True)
        draw_graph(self.screen, self.font, ACCURACY_GRAPH, [s for s, _ in self.accuracy],
                   [a for _, a in self.accuracy], "held-out accuracy", fixed=(0.0, 1.0))


def _file_name(patch_name: str) -> str:
    """The patch's name where it can be part of a file name (it comes from the command
    line or a folder's name), else "patch"."""
    try:
        return check_plain_name(patch_name, "patch name")
    except ValueError:
        return "patch"


def _wrap(line: str, width: int) -> list[str]:
    words, out, current = line.split(), [], ""
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    return out + ([current] if current else [])
