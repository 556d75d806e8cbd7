"""The companion view's window: the live window without training or labeling, showing the
plugin's icon when the patch fires."""
from __future__ import annotations

import io

import pygame

from loop.faces.live_app import LiveApp


class ApplyApp(LiveApp):
    def __init__(self, core, source, plugin, note=None, window=None):
        super().__init__(core, source, note, window=window)
        pygame.display.set_caption(f"Patchloop: {plugin.spec.name}")
        self.icon = None
        if plugin.icon is not None:
            try:
                self.icon = pygame.image.load(io.BytesIO(plugin.icon), "icon.png")
            except pygame.error:
                self.say("the plugin's icon could not be decoded")

    def handle(self, event) -> None:
        # A plugin is used, not trained: clicks and training keys do nothing here.
        if event.type in (pygame.MOUSEBUTTONDOWN, pygame.MOUSEMOTION, pygame.MOUSEBUTTONUP):
            return
        if event.type == pygame.KEYDOWN and event.key not in (
                pygame.K_ESCAPE, pygame.K_h, pygame.K_F1, pygame.K_SPACE, pygame.K_x, pygame.K_v):
            return
        super().handle(event)

    def step(self) -> None:
        super().step()
        latest = self.worker.latest()
        if latest is None:
            return
        verdict = latest[1]
        if verdict.triggered and verdict.category != 0:
            rect = self.view.frame_rect
            if self.icon is not None:
                self.screen.blit(self.icon, (rect.right - self.icon.get_width() - 8, rect.y + 8))
            name = self.core.spec.categories[verdict.category].name
            self.view.text(f"FIRED: {name}", (rect.x + 10, rect.bottom - 30), (255, 230, 90),
                           self.view.big)
            pygame.display.flip()
