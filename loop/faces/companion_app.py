"""The companion window for several patches: the frame, the base's top class, and for each
patch whether it ran, what it says and its icon when it fires. `c` snaps the frame into the
data folder under the category the first patch did not say (1-9 picks another)."""
from __future__ import annotations

import io
import threading
import time

import cv2
import pygame

from loop.faces.live_app import _fitting_window
from loop.faces.live_view import MIN_WINDOW, frame_area
from loop.store.snap import default_snap_category, snap_frame


class CompanionApp:
    def __init__(self, companion, plugins, source, note=None, snap_dir="snaps", window=None):
        pygame.display.init()
        pygame.font.init()
        pygame.display.set_caption("Patchloop companion: " + ", ".join(p.spec.name for p in plugins))
        self.screen = pygame.display.set_mode(window or _fitting_window(), pygame.RESIZABLE)
        self.font = pygame.font.Font(None, 22)
        self.companion, self.plugins, self.source = companion, plugins, source
        self.snap_dir, self.snap_choice = snap_dir, None
        self.icons = [self._icon(p) for p in plugins]
        self.latest = None
        self.message = note or ""
        self.running = True
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, daemon=True, name="patchloop-companion")

    @staticmethod
    def _icon(plugin):
        if plugin.icon is None:
            return None
        try:
            return pygame.image.load(io.BytesIO(plugin.icon), "icon.png")
        except pygame.error:
            return None

    def _work(self) -> None:
        while not self._stop.is_set():
            frame = self.source.read()
            if frame is None:
                time.sleep(0.05)
                continue
            result = self.companion.run(frame)
            with self._lock:
                self.latest = (frame, result)

    def run(self, max_frames: int | None = None) -> None:
        self._thread.start()
        clock, frames = pygame.time.Clock(), 0
        try:
            while self.running and (max_frames is None or frames < max_frames):
                clock.tick(30)
                for event in pygame.event.get():
                    self.handle(event)
                self.draw()
                pygame.display.flip()
                frames += 1
        finally:
            self._stop.set()
            self._thread.join(timeout=5)
            pygame.display.quit()

    def handle(self, event) -> None:
        if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
            self.running = False
        elif event.type == pygame.VIDEORESIZE:
            size = (max(MIN_WINDOW[0], event.w), max(MIN_WINDOW[1], event.h))
            self.screen = pygame.display.set_mode(size, pygame.RESIZABLE)
        elif event.type == pygame.KEYDOWN and pygame.K_1 <= event.key <= pygame.K_9:
            self.snap_choice = event.key - pygame.K_1
        elif event.type == pygame.KEYDOWN and event.key == pygame.K_c:
            self.snap()

    def snap(self) -> None:
        with self._lock:
            latest = self.latest
        if latest is None:
            return
        frame, (_, results, _) = latest
        spec = self.plugins[0].spec
        said = next(i for i, c in enumerate(spec.categories) if c.name == results[0].category)
        category = self.snap_choice if self.snap_choice is not None and \
            self.snap_choice < spec.outputs else default_snap_category(spec, said)
        c = spec.categories[category]
        try:
            self.message = f"snapped as {c.name}: {snap_frame(self.snap_dir, frame, c.tag, c.name)}"
        except OSError as exc:
            self.message = f"snap failed: {exc}"
        self.snap_choice = None

    def draw(self) -> None:
        self.screen.fill((25, 25, 30))
        with self._lock:
            latest = self.latest
        if latest is None:
            self.screen.blit(self.font.render("waiting for frames...", True, (230, 230, 230)), (10, 10))
            return
        frame, (base_top, results, chain) = latest
        rect = frame_area(self.screen.get_size(), frame.shape[:2])
        image = cv2.resize(frame, rect.size, interpolation=cv2.INTER_LINEAR)
        self.screen.blit(pygame.image.frombuffer(image.tobytes(), rect.size, "RGB"), rect.topleft)
        x, y = rect.right + 12, 10
        lines = [f"base: {base_top[0][1]} {base_top[0][2]:.2f}"]
        for r in results:
            state = "FIRED" if r.fired else ("ran" if r.triggered else "not triggered")
            lines.append(f"{r.name}: {state}, {r.category} {r.confidence:.2f}")
        lines += [f"chain: {a} -> {b}" for a, b in chain]
        for line in lines:
            self.screen.blit(self.font.render(line[:44], True, (230, 230, 230)), (x, y))
            y += 22
        icon_x = rect.x + 8
        for r, icon in zip(results, self.icons):
            if r.fired and icon is not None:
                self.screen.blit(icon, (icon_x, rect.y + 8))
                icon_x += icon.get_width() + 6
        if self.message:
            self.screen.blit(self.font.render(self.message[:90], True, (255, 255, 120)),
                             (10, self.screen.get_height() - 24))
