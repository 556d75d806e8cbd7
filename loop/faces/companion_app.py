"""The companion window for several patches: the frame, the base's top class, and for each
patch whether it ran, what it says and its icon when it fires. `c` snaps the frame into the
data folder under the category the first patch did not say (1-9 picks another). `o` opens
a file chooser in the window to add a plugin, Tab selects a loaded patch and `r` removes it;
the base keeps running throughout."""
from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import cv2
import pygame

from loop.faces.live_app import _fitting_window
from loop.faces.live_view import MIN_WINDOW, frame_area
from loop.store.safe_files import shown
from loop.store.snap import default_snap_category, snap_frame


MAX_CHOICES = 20
MAX_LOOKED_AT = 20_000  # entries looked at for the chooser: a home folder is large


def plugin_files(folder: Path) -> list[Path]:
    """.specialneurons files under a folder, sorted: the first MAX_CHOICES found within
    MAX_LOOKED_AT entries (linked folders are not entered), so the window never stalls."""
    found, looked_at = [], 0
    for where, folders, files in os.walk(folder):
        folders.sort()
        looked_at += len(folders) + len(files)
        found += [Path(where) / name for name in sorted(files)
                  if name.endswith(".specialneurons")]
        if len(found) >= MAX_CHOICES or looked_at >= MAX_LOOKED_AT:
            break
    return sorted(found)[:MAX_CHOICES]


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
        self.selected = 0             # the loaded patch `r` removes
        self.chooser: list | None = None   # plugin files offered by `o`, or None when closed
        self.choice = 0
        self._run_lock = threading.Lock()  # patches change between frames, never during one
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
            with self._run_lock:
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
        if self.chooser is not None and event.type == pygame.KEYDOWN:
            self._chooser_key(event.key)
            return
        if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
            self.running = False
        elif event.type == pygame.KEYDOWN and event.key == pygame.K_o:
            self.chooser = plugin_files(Path.cwd())
            self.choice = 0
        elif event.type == pygame.KEYDOWN and event.key == pygame.K_TAB:
            self.selected = (self.selected + 1) % max(1, len(self.plugins))
        elif event.type == pygame.KEYDOWN and event.key == pygame.K_r:
            self.remove(self.selected)
        elif event.type == pygame.VIDEORESIZE:
            size = (max(MIN_WINDOW[0], event.w), max(MIN_WINDOW[1], event.h))
            self.screen = pygame.display.set_mode(size, pygame.RESIZABLE)
        elif event.type == pygame.KEYDOWN and pygame.K_1 <= event.key <= pygame.K_9:
            self.snap_choice = event.key - pygame.K_1
        elif event.type == pygame.KEYDOWN and event.key == pygame.K_c:
            self.snap()

    def _chooser_key(self, key) -> None:
        if key == pygame.K_ESCAPE:
            self.chooser = None
        elif key == pygame.K_DOWN and self.chooser:
            self.choice = (self.choice + 1) % len(self.chooser)
        elif key == pygame.K_UP and self.chooser:
            self.choice = (self.choice - 1) % len(self.chooser)
        elif key == pygame.K_RETURN and self.chooser:
            path = self.chooser[self.choice]
            self.chooser = None
            self.add(path)

    def _reload(self, plugins) -> bool:
        from loop.core.companion import PatchSetError
        from loop.store.plugin_read import arch_on_base
        base_spec = self.companion.base.spec
        try:
            entries = [(p.spec, p.weights, arch_on_base(p, base_spec)) for p in plugins]
            with self._run_lock:
                self.companion.set_patches(entries)
        except PatchSetError as exc:
            self.message = str(exc)
            return False
        self.plugins = plugins
        self.icons = [self._icon(p) for p in plugins]
        with self._lock:
            self.latest = None
        return True

    def add(self, path) -> None:
        from loop.store.plugin import PluginError
        from loop.store.plugin_read import arch_on_base, read_plugin
        try:
            plugin = read_plugin(path)
        except PluginError as exc:
            self.message = str(exc)
            return
        spec = plugin.spec
        if spec.topology == "head" and spec.base_hash != self.companion.base.hash:
            self.message = f"{shown(str(path))}: refused: made on another base ({spec.base_name})"
            return
        try:
            arch_on_base(plugin, self.companion.base.spec)
        except PluginError as exc:
            self.message = f"{shown(str(path))}: refused: {exc}"
            return
        if self._reload(self.plugins + [plugin]):
            self.message = f"added {spec.name}"

    def remove(self, index: int) -> None:
        if len(self.plugins) <= 1:
            self.message = "the last patch stays (Esc quits)"
            return
        name = self.plugins[index].spec.name
        if self._reload(self.plugins[:index] + self.plugins[index + 1:]):
            self.selected = 0
            self.message = f"removed {name}"

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
        self.snap_choice = None

        def write():  # off the window's thread: the disk may be slow
            try:
                path = snap_frame(self.snap_dir, frame, c.tag, c.name)
                self.message = f"snapped as {c.name}: {shown(str(path))}"
            except (OSError, ValueError) as exc:
                self.message = f"snap failed: {exc}"

        self.message = "snapping..."
        threading.Thread(target=write, name="patchloop-snap", daemon=True).start()

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
        for i, r in enumerate(results):
            state = "FIRED" if r.fired else ("ran" if r.triggered else "not triggered")
            mark = ">" if i == self.selected else " "
            lines.append(f"{mark}{r.name}: {state}, {r.category} {r.confidence:.2f}")
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
        if self.chooser is not None:
            self._draw_chooser()

    def _draw_chooser(self) -> None:
        box = pygame.Rect(40, 40, self.screen.get_width() - 80, 30 + 22 * max(1, len(self.chooser)))
        pygame.draw.rect(self.screen, (10, 10, 20), box)
        pygame.draw.rect(self.screen, (200, 200, 200), box, 1)
        if not self.chooser:
            self.screen.blit(self.font.render("no .specialneurons files here (Esc)", True,
                                              (230, 230, 230)), (box.x + 10, box.y + 10))
        for i, path in enumerate(self.chooser):
            colour = (255, 220, 120) if i == self.choice else (230, 230, 230)
            self.screen.blit(self.font.render(shown(str(path))[-80:], True, colour),
                             (box.x + 10, box.y + 10 + 22 * i))
