"""The simulated annotator at the live window: it looks at the verdict, picks the largest
wrong region against the demo's ground truth, and posts real mouse events for it, so the
window is driven exactly as a user drives it (for screenshots and demonstrations)."""
from __future__ import annotations

import time

import numpy as np
import pygame

from loop.demo.annotator import SimulatedAnnotator
from loop.demo.metrics import upsample_cells

CLICK_SECONDS = 0.5


class AutoClicker:
    def __init__(self, app):
        self.app = app
        self.annotator = SimulatedAnnotator()
        self.last = 0.0
        self.clicks = 0

    def tick(self) -> None:
        now = time.monotonic()
        latest = self.app.worker.latest_with_truth()
        if latest is None or now - self.last < CLICK_SECONDS:
            return
        frame, verdict, truth = latest   # the truth of that very frame
        if truth is None or truth.shape != frame.shape[:2]:
            return
        labeled = tuple(int(c) for c in np.flatnonzero(self.app.core.label_counts()))
        click = self.annotator.click(truth, upsample_cells(verdict.cell_categories, *truth.shape),
                                     labeled)
        if click is None:
            return
        rect = self.app.view.frame_rect
        scale = rect.width / frame.shape[1]
        pos = (int(rect.x + click.x * scale), int(rect.y + click.y * scale))
        if click.category:
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_1 + click.category,
                                                 mod=0))
        button = 1 if click.category else 3
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=button, pos=pos))
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, button=button, pos=pos))
        self.last = now
        self.clicks += 1
