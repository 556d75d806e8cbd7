"""Drawing the companion window from its state: the frame with the selected patch's verdict
laid over it (the live window's overlays: translucent categories, heat map, uncertainty),
each firing patch's icon in the frame's top-right corner and a FIRED line, and a panel
with the base's top class and every patch's answer. Drawing only reads state."""
from __future__ import annotations

import cv2
import numpy as np
import pygame

from loop.faces.windows.live_view import DIM, LiveView, frame_area
from loop.faces.windows.text_wrap import wrap_to_width
from loop.faces.windows.overlays import PALETTE, VIEWS, heat_image, verdict_image

FIRED_COLOUR = (255, 230, 90)
MESSAGE_COLOUR = (255, 255, 120)


def uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """1 minus the margin of the two best categories, per cell (as the live window's)."""
    top2 = np.sort(probabilities, axis=0)[-2:]
    return 1.0 - (top2[1] - top2[0])


class CompanionView:
    def __init__(self, screen: pygame.Surface):
        self.view = LiveView(screen)
        self.frame_rect = self.view.frame_rect

    def draw(self, screen, window, latest, help_lines) -> None:
        self.view.screen = screen
        state = window.state
        screen.fill((25, 25, 30))
        if latest is None:
            self.view.text("waiting for frames...", (10, 10), font=self.view.big)
        else:
            frame, (base_top, results, chain) = latest
            self.frame_rect = frame_area(screen.get_size(), frame.shape[:2])
            self.view.frame_rect = self.frame_rect
            chosen = results[window.selected] if window.selected < len(results) else None
            image = self._picture(state, frame, chosen)
            screen.blit(pygame.image.frombuffer(image.tobytes(), self.frame_rect.size, "RGB"),
                        self.frame_rect.topleft)
            if state.show_verdict and chosen is not None and chosen.probabilities is not None:
                self._legend(state, chosen.probabilities)
            self._fired(window, results)
            self._panel(window, base_top, results, chain)
        if window.frozen:
            self.view.text("FROZEN: space goes on", (self.frame_rect.right - 190,
                                                      self.frame_rect.bottom - 26),
                           (120, 220, 255))
        if window.message:
            for i, line in enumerate(wrap_to_width(window.message, self.view.font,
                                                   screen.get_width() - 20)[:2]):
                self.view.text(line, (10, screen.get_height() - 44 + 20 * i), MESSAGE_COLOUR)
        if state.show_help:
            self.view.help_page(help_lines)

    def _picture(self, state, frame, result) -> np.ndarray:
        size = self.frame_rect.size
        if not state.show_verdict or result is None or result.probabilities is None:
            return cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
        probabilities = result.probabilities
        view = VIEWS[state.view]
        if view == "heat map":  # how sure the patch is that something it knows is there
            return heat_image(frame, 1.0 - probabilities[0], size, state.smooth)
        if view == "uncertainty":
            return heat_image(frame, uncertainty(probabilities), size, state.smooth,
                              cv2.COLORMAP_INFERNO)
        return verdict_image(frame, probabilities, size, state.smooth)

    def _legend(self, state, probabilities) -> None:
        """The heat map's and the uncertainty's scales, as the live window draws them, and the
        ring on the most uncertain region."""
        view = VIEWS[state.view]
        if view == "heat map":
            self.view.scale_bar("P(not background)", cv2.COLORMAP_JET)
        elif view == "uncertainty":
            self.view.scale_bar("uncertainty", cv2.COLORMAP_INFERNO)
        self.view.mark_uncertain(uncertainty(probabilities))

    def _fired(self, window, results) -> None:
        """Icons side by side from the frame's top-right corner; a FIRED line for each."""
        rect = self.frame_rect
        right, line_y = rect.right - 8, rect.bottom - 30
        for result, icon in zip(results, window.icons):
            if not result.fired:
                continue
            if icon is not None:
                right -= icon.get_width()
                self.view.screen.blit(icon, (right, rect.y + 8))
                right -= 6
            self.view.text(f"FIRED: {result.name}: {result.category}", (rect.x + 10, line_y),
                           FIRED_COLOUR, self.view.big)
            line_y -= 26

    def _panel(self, window, base_top, results, chain) -> None:
        x, y = self.frame_rect.right + 12, 10
        text = self.view.text
        top = base_top[0]
        y += text(f"base: {top[1]} {top[2]:.2f}", (x, y)) + 8
        for i, result in enumerate(results):
            colour = PALETTE[(i + 1) % len(PALETTE)]
            if i == window.selected:
                pygame.draw.rect(self.view.screen, colour, (x, y + 3, 10, 10))
            state = "FIRED" if result.fired else ("ran" if result.triggered else "not triggered")
            y += text(f"{result.name}: {state}", (x + 16, y),
                      font=self.view.big if i == window.selected else None) + 2
            detail = f"{result.category} {result.confidence:.2f}" if result.triggered else \
                "waits for its trigger"
            y += text(detail, (x + 16, y), DIM) + 6
        for a, b in chain:
            y += text(f"chain: {a} -> {b}", (x, y), DIM) + 2
        y += 8
        if len(results) > 1:
            y += text(f"overlay: {results[window.selected].name} (Tab: next)", (x, y), DIM) + 2
        text(f"{window.frames_per_second:.1f} frames/s", (x, y))
        text("h: help", (x, self.view.screen.get_height() - 22), DIM)

