"""The companion view's window: the live window without training or labeling, showing the
plugin's icon when the patch fires."""
from __future__ import annotations

import io

import pygame

from loop.faces.live_app import LiveApp

APPLY_HELP = [
    ("space", "freeze the frame (stop-N-show)"),
    ("x", "verdict overlay on / off"),
    ("v", "view: verdict / heat map / uncertainty"),
    ("m", "smooth / blocky cells"),
    ("1-9", "the category of the next snap"),
    ("c", "snap the frame into the data folder (the verdict's category, or the one chosen)"),
    ("h, F1", "this help"),
    ("Esc", "quit"),
]


class ApplyApp(LiveApp):
    def __init__(self, core, source, plugin, note=None, window=None, snap_dir="snaps"):
        super().__init__(core, source, note, window=window, snap_dir=snap_dir)
        self.snap_choice = None  # a category picked with 1-9 for the next snap
        pygame.display.set_caption(f"Patchloop: {plugin.spec.name}")
        self.view.trains = False
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
        if event.type == pygame.KEYDOWN and pygame.K_1 <= event.key <= pygame.K_9:
            if event.key - pygame.K_1 < self.core.spec.outputs:
                self.snap_choice = event.key - pygame.K_1
                self.say(f"next snap: {self.core.spec.categories[self.snap_choice].name}")
            return
        if event.type == pygame.KEYDOWN and event.key == pygame.K_c:
            latest = self.worker.latest()
            if latest is not None:
                from loop.store.snap import default_snap_category
                said = latest[1].category
                self.snap(self.snap_choice if self.snap_choice is not None
                          else default_snap_category(self.core.spec, said))
                self.snap_choice = None
            return
        if event.type == pygame.KEYDOWN and event.key not in (
                pygame.K_ESCAPE, pygame.K_h, pygame.K_F1, pygame.K_SPACE, pygame.K_x, pygame.K_v,
                pygame.K_m):
            return
        super().handle(event)

    def help_lines(self) -> list[tuple[str, str]]:
        return APPLY_HELP

    def draw_over(self) -> None:
        """The icon and FIRED while the patch fires, drawn before the frame's only flip (a
        second flip after the view's showed frames without them: a flicker)."""
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
