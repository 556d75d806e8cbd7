"""Drawing the live window from state: the frame with the verdict (or a heat map, or the
uncertainty) laid over it and the user's labels on it, the most uncertain region marked,
the brush and receptive field at the mouse, the side panel, the loss plot, the help page.
Drawing only reads state."""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import pygame

from loop.faces.windows.help_page import draw_help_page
from loop.faces.windows.overlays import (PALETTE, VIEWS, heat_image, label_map_at, legend_colours,
                                 most_uncertain_cell, verdict_image, with_labels)
from loop.faces.windows.text_wrap import wrap_to_width

PANEL_WIDTH = 300
STATUS_STRIP = 28   # under the frame: the replay window's frame counter
MIN_WINDOW = (800, 600)
TEXT = (230, 230, 230)
DIM = (150, 150, 150)

@dataclass
class ViewState:
    selected: int = 1
    brush: int = 16              # radius in frame pixels
    show_help: bool = False
    view: int = 0                # index into VIEWS
    smooth: bool = True          # bilinear between cell centres, else the cells' blocks
    show_labels: bool = True
    show_verdict: bool = True
    mouse: tuple[int, int] | None = None
    message: str = ""
    message_until: float = 0.0
    snapshots: list = field(default_factory=list)
    entry: tuple | None = None   # (prompt, text typed, error) while a name is typed


def _same_picture(a: tuple, b: tuple) -> bool:
    """Whether two keys of the frame's picture show the same: the same frame and verdict
    objects (a new verdict is a new object, so is a frozen frame's after training), and
    equal view settings, size and labels."""
    return a[0] is b[0] and a[1] is b[1] and a[2:] == b[2:]


def frame_area(window: tuple[int, int], frame_hw: tuple[int, int]) -> pygame.Rect:
    """Where the frame is drawn: as large as the window allows beside the panel, its aspect
    kept, centred vertically."""
    width = max(1, window[0] - PANEL_WIDTH)
    height = max(1, window[1] - STATUS_STRIP)
    scale = min(width / frame_hw[1], height / frame_hw[0])
    w, h = max(1, int(frame_hw[1] * scale)), max(1, int(frame_hw[0] * scale))
    return pygame.Rect(0, (height - h) // 2, w, h)


class LiveView:
    def __init__(self, screen: pygame.Surface, frame_hw=(240, 320)):
        self.screen = screen
        self.frame_rect = frame_area(screen.get_size(), frame_hw)
        self.font = pygame.font.Font(None, 20)
        self.big = pygame.font.Font(None, 28)
        self.trains = True  # False: a plugin in use (apply): no labels, no trainer to show
        self._composed = None   # (what the frame's picture shows, its surface)

    def relayout(self, screen: pygame.Surface, frame_hw) -> None:
        self.screen = screen
        self.frame_rect = frame_area(screen.get_size(), frame_hw)

    def text(self, s, pos, colour=TEXT, font=None):
        surface = (font or self.font).render(s, True, colour)
        self.screen.blit(surface, pos)
        return surface.get_height()

    def draw(self, state: ViewState, core, worker, latest, now: float, link=None,
             footer: str = "", help_lines=(),
             empty_note: str = "waiting for the first frame...") -> None:
        self.screen.fill((25, 25, 30))
        if latest is not None:
            self.frame_rect = frame_area(self.screen.get_size(), latest[0].shape[:2])
        size = self.frame_rect.size
        if latest is not None:
            frame, verdict = latest
            labels = core.labels_of(verdict.frame_id) if state.show_labels else None
            self.screen.blit(self._frame_surface(state, frame, verdict, size, labels,
                                                 core.spec.outputs), self.frame_rect.topleft)
            if state.show_verdict:
                self._legend(state, core, verdict)
            self._brush(state, verdict)
        if worker.frozen:
            self.text("FROZEN: space goes on", (self.frame_rect.right - 190,
                                                 self.frame_rect.bottom - 26), (120, 220, 255))
        if worker.source_lost or latest is None:
            note = "camera lost: waiting for frames; every label is kept" if worker.source_lost \
                else empty_note
            self.text(note, (self.frame_rect.x + 10, self.frame_rect.bottom - 30), (255, 200, 80),
                      self.big)
        if footer:
            self.text(footer, (10, self.screen.get_height() - 22))
        self._panel(state, core, worker, latest, link)
        if state.message and now < state.message_until:
            self.text(state.message, (self.frame_rect.x + 10, self.frame_rect.y + 8),
                      (255, 255, 120), self.big)
        if state.entry is not None:
            self.entry_box(*state.entry)
        if state.show_help:
            self.help_page(help_lines)

    def _frame_surface(self, state: ViewState, frame, verdict, size, labels, k):
        """The frame as drawn (the verdict or a map over it, the labels on it), composed
        again only when one of them changed: the window draws 60 times a second and a new
        verdict comes 20-40 times, and composing the picture took 12-14 ms of the two cores
        the device's threads need (the window's thread busy 63% of a core, most of it on
        pictures it had drawn already)."""
        key = (frame, verdict, size, state.view, state.selected, state.smooth,
               state.show_verdict, labels, k)
        if self._composed is not None and _same_picture(self._composed[0], key):
            return self._composed[1]
        image = self._picture(state, frame, verdict, size)
        if labels is not None:
            image = with_labels(image, label_map_at(labels, frame.shape[:2], size), k)
        surface = pygame.image.frombytes(image.tobytes(), size, "RGB")
        self._composed = (key, surface)
        return surface

    def _picture(self, state: ViewState, frame, verdict, size) -> np.ndarray:
        if not state.show_verdict:
            return cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
        view = VIEWS[state.view]
        if view == "heat map":
            return heat_image(frame, verdict.probabilities[state.selected], size, state.smooth)
        if view == "uncertainty":
            return heat_image(frame, verdict.uncertainty, size, state.smooth, cv2.COLORMAP_INFERNO)
        return verdict_image(frame, verdict.probabilities, size, state.smooth, verdict.pixels)

    def _legend(self, state: ViewState, core, verdict) -> None:
        """What the colours mean (a scale for the heat map and the uncertainty), and a ring
        on the most uncertain region: where a click helps most."""
        view = VIEWS[state.view]
        if view != "verdict":
            name = core.spec.categories[state.selected].name
            self.scale_bar(f"P({name})" if view == "heat map" else "uncertainty",
                           cv2.COLORMAP_JET if view == "heat map" else cv2.COLORMAP_INFERNO)
        self.mark_uncertain(verdict.uncertainty)

    def scale_bar(self, title: str, colour_map: int) -> None:
        """A heat map's colours from 0 to 1, with its title, at the frame's right edge."""
        rect = self.frame_rect
        bar = pygame.Rect(rect.right - 34, rect.y + 34, 14, min(160, rect.height - 80))
        colours = legend_colours(bar.height, colour_map)
        for i, colour in enumerate(colours[::-1]):
            pygame.draw.line(self.screen, [int(c) for c in colour],
                             (bar.x, bar.y + i), (bar.right - 1, bar.y + i))
        pygame.draw.rect(self.screen, (240, 240, 240), bar, 1)
        self.text(title, (rect.right - 10 - self.font.size(title)[0], rect.y + 12))
        self.text("1", (bar.x - 12, bar.y - 4))
        self.text("0", (bar.x - 12, bar.bottom - 10))

    def mark_uncertain(self, uncertainty) -> None:
        """A ring with '?' on the most uncertain region of the frame."""
        rect = self.frame_rect
        row, column = most_uncertain_cell(uncertainty)
        h, w = uncertainty.shape
        centre = (int(rect.x + (column + 0.5) * rect.width / w),
                  int(rect.y + (row + 0.5) * rect.height / h))
        radius = max(8, int(1.5 * rect.width / w))
        pygame.draw.circle(self.screen, (255, 230, 60), centre, radius, 2)
        self.text("?", (centre[0] - 4, centre[1] - 7), (255, 230, 60), self.big)

    def frame_scale(self, verdict) -> float:
        return self.frame_rect.width / verdict.frame_shape[1]

    def _brush(self, state: ViewState, verdict) -> None:
        if state.mouse is None or not self.frame_rect.collidepoint(state.mouse):
            return
        scale = self.frame_scale(verdict)
        colour = PALETTE[state.selected % len(PALETTE)]
        pygame.draw.circle(self.screen, colour, state.mouse, max(1, int(state.brush * scale)), 2)
        rf_h, rf_w = verdict.receptive_field
        rect = pygame.Rect(0, 0, int(rf_w * scale), int(rf_h * scale))
        rect.center = state.mouse
        # A receptive field larger than the frame is drawn as the part of it inside the
        # frame, a whole box, with its full size written beside the brush.
        box = rect.clip(self.frame_rect)
        pygame.draw.rect(self.screen, (240, 240, 240), box.inflate(-2, -2), 1)
        self.text(f"receptive field {rf_w}x{rf_h} px",
                  (box.x + 6, min(box.bottom, self.frame_rect.bottom) - 20), (240, 240, 240))

    def _panel(self, state, core, worker, latest, link) -> None:
        x = self.frame_rect.right + 12
        y = 10
        settings = core.trainer.settings
        status = core.trainer.status
        if latest is not None:
            verdict = latest[1]
            top = verdict.base_top[0] if verdict.base_top else None
            y += self.text(f"base: {top[1]} {top[2]:.2f}" if top else "base: (not run)", (x, y)) + 2
            y += self.text("patch triggered" if verdict.triggered else "patch not triggered",
                           (x, y), TEXT if verdict.triggered else DIM) + 6
            name = core.spec.categories[verdict.category].name
            y += self.text(f"verdict: {name} {verdict.confidence:.2f}", (x, y), TEXT, self.big) + 8
        if not self.trains:  # a plugin in use: what it says and how fast, nothing to teach
            for c in core.spec.categories:
                pygame.draw.rect(self.screen, PALETTE[c.index % len(PALETTE)], (x, y + 3, 10, 10))
                y += self.text(f"{c.index + 1} {c.name}", (x + 16, y)) + 2
            self.text(f"{worker.verdicts_per_second:.1f} verdicts/s   verdict "
                      f"{worker.verdict_ms:.0f} ms", (x, y + 8))
            self.text("h: help", (x, self.screen.get_height() - 22), DIM)
            return
        counts = core.label_counts()
        for c in core.spec.categories:
            marker = ">" if c.index == state.selected else " "
            colour = PALETTE[c.index % len(PALETTE)]
            pygame.draw.rect(self.screen, colour, (x, y + 3, 10, 10))
            y += self.text(f"{marker} {c.index + 1} {c.name}: {counts[c.index]} cells",
                           (x + 16, y)) + 2
        y += 8
        rate = f"learning rate {settings.learning_rate:.3g}"
        if core.trainer.backoff.active:
            rate += f" (now {settings.learning_rate * core.trainer.backoff.factor:.2g})"
        for line in (f"{rate}   momentum {settings.momentum:.2f}",
                     f"weight decay {settings.weight_decay:.2g}   batch {settings.batch_size}"
                     f"   objects x{settings.object_prior:g}",
                     f"training {'on' if settings.training else 'off'}, "
                     f"{'new labels only' if settings.new_only else 'all labels'}"
                     f"{', steady verdicts' if settings.steady else ''}",
                     f"brush {state.brush} px   {'FROZEN' if worker.frozen else ''}",
                     f"{status.steps_per_second:.1f} steps/s   {worker.verdicts_per_second:.1f} verdicts/s",
                     f"verdict {worker.verdict_ms:.0f} ms   loss {_loss_text(status)}"):
            y += self.text(line, (x, y)) + 2
        if link is not None:
            saved = f"labels on disk: {link.held}" + (f", {link.waiting} waiting" if link.waiting else "")
            y += self.text(saved, (x, y), TEXT if not link.error else (255, 160, 120)) + 2
        self._plot(list(status.losses), pygame.Rect(x, y + 10, PANEL_WIDTH - 30, 90),
                   "training loss", log=True)
        accuracy = list(getattr(worker, "accuracy_log", []))
        if accuracy:
            recent = np.mean([a for _, a in accuracy[-30:]])
            self._plot(accuracy, pygame.Rect(x, y + 110, PANEL_WIDTH - 30, 70),
                       f"accuracy vs ground truth {recent:.2f}", log=False, fixed=(0.0, 1.0))
            y += 80
        messages = status.notices + ([worker.error] if worker.error else []) + \
            ([link.error] if link is not None and link.error else [])
        y += 110
        bottom = self.screen.get_height() - 30
        for message in messages:
            for line in wrap_to_width(message, self.font, PANEL_WIDTH - 24):
                if y > bottom - 18:
                    break
                y += self.text(line, (x, y), (255, 160, 120))
            y += 4
        self.text("h: help", (x, self.screen.get_height() - 22), DIM)

    def _plot(self, points, rect: pygame.Rect, title: str, log: bool, fixed=None) -> None:
        pygame.draw.rect(self.screen, (60, 60, 70), rect, 1)
        self.text(title, (rect.x + 4, rect.y + 2), DIM)
        points = points[-200:]
        if len(points) < 2:
            return
        values = np.array([p[1] for p in points], np.float64)
        if log:
            values = np.log10(np.maximum(values, 1e-6))
        lo, hi = fixed or (values.min(), values.max())
        hi = max(hi, lo + 1e-3)
        xs = rect.x + np.linspace(0, rect.width - 1, len(values))
        ys = rect.bottom - 2 - (values - lo) / (hi - lo) * (rect.height - 18)
        pygame.draw.lines(self.screen, (120, 200, 255), False, list(zip(xs, ys)), 1)

    def entry_box(self, prompt: str, text: str, error: str) -> None:
        box = pygame.Rect(40, self.frame_rect.centery - 50, max(360, self.frame_rect.width - 80),
                          100 if error else 76)
        pygame.draw.rect(self.screen, (10, 10, 20), box)
        pygame.draw.rect(self.screen, (255, 220, 120), box, 1)
        self.text(f"{prompt} (Enter: take, Esc: drop)", (box.x + 12, box.y + 10), DIM)
        self.text(text + "_", (box.x + 12, box.y + 34), TEXT, self.big)
        if error:
            self.text(wrap_to_width(error, self.font, box.width - 24)[0],
                      (box.x + 12, box.y + 72), (255, 160, 120))

    def help_page(self, lines) -> None:
        draw_help_page(self, lines)


def _loss_text(status) -> str:
    """The newest step's loss, marked when nothing is training now (it is then history)."""
    if status.steps == 0:
        return "-"
    loss = f"{status.last_loss:.3g}"
    return loss if status.steps_per_second > 0 else f"{loss} (not training)"
