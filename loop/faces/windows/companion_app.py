"""`patchloop apply`: the companion window, the same for one plugin or many. The base runs
on every frame and each patch when it is triggered; the selected patch's verdict is laid
over the frame as in the live window (translucent categories, heat map, uncertainty), and
each firing patch shows its icon and a FIRED line. `o` adds a plugin from a file chooser in
the window, Tab selects a patch (its overlay), `r` removes it, `c` snaps the frame into the
data folder under the category the first patch did not say (1-9 picks another); the base
keeps running throughout."""
from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pygame

from loop.faces.windows.companion_view import CompanionView
from loop.faces.windows.key_table import KeyTable, key
from loop.faces.windows.live_app import _fitting_window
from loop.faces.windows.live_view import MIN_WINDOW, ViewState
from loop.faces.windows.overlays import VIEWS
from loop.safe_files import shown
from loop.store.snap import default_snap_category, snap_frame

FPS = 30
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


def _toggle(name):
    def act(w, e):
        setattr(w.state, name, not getattr(w.state, name))
    return act


def _next_view(w, e):
    w.state.view = (w.state.view + 1) % len(VIEWS)
    w.message = f"view: {VIEWS[w.state.view]}"


def _pick_snap_category(w, e):
    w.snap_choice = e.key - pygame.K_1
    w.message = f"next snap: category {w.snap_choice + 1} of {w.plugins[0].spec.name}"


APPLY_KEYS = KeyTable([
    key("space", "freeze the frame (stop-N-show)", (pygame.K_SPACE,), lambda w, e: w.freeze()),
    key("x", "verdict overlay on / off", (pygame.K_x,), _toggle("show_verdict")),
    key("v", "view: verdict / heat map (not background) / uncertainty", (pygame.K_v,),
        _next_view),
    key("m", "smooth / blocky cells", (pygame.K_m,), _toggle("smooth")),
    key("Tab", "select the next patch (its verdict is laid over the frame)", (pygame.K_TAB,),
        lambda w, e: w.select_next()),
    key("o", "add a plugin (a chooser of the .specialneurons files here)", (pygame.K_o,),
        lambda w, e: w.open_chooser()),
    key("r", "remove the selected patch", (pygame.K_r,), lambda w, e: w.remove(w.selected)),
    key("1-9", "the category of the next snap (of the first patch)",
        tuple(range(pygame.K_1, pygame.K_9 + 1)), _pick_snap_category),
    key("c", "snap the frame into the data folder (the first patch's other category, or the "
        "one picked)", (pygame.K_c,), lambda w, e: w.snap()),
    key("h, F1", "this help", (pygame.K_h, pygame.K_F1), _toggle("show_help")),
    key("Esc", "quit", (pygame.K_ESCAPE,), lambda w, e: w.quit()),
])


class CompanionApp:
    def __init__(self, companion, plugins, source, note=None, snap_dir="snaps", window=None):
        pygame.display.init()
        pygame.font.init()
        pygame.display.set_caption("Patchloop: " + ", ".join(p.spec.name for p in plugins))
        self.screen = pygame.display.set_mode(window or _fitting_window(), pygame.RESIZABLE)
        self.view = CompanionView(self.screen)
        self.companion, self.plugins, self.source = companion, plugins, source
        self.snap_dir, self.snap_choice = snap_dir, None
        self.icons = [self._icon(p) for p in plugins]
        self.state = ViewState(selected=0)
        self.latest = None
        self.message = note or ""
        self.selected = 0             # the patch whose verdict is laid over the frame
        self.frozen = False
        self.frames_per_second = 0.0
        self.clock = pygame.time.Clock()
        self.chooser: list | None = None   # plugin files offered by `o`, or None when closed
        self.choice = 0
        self._run_lock = threading.Lock()  # patches change between frames, never during one
        self.running = True
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, daemon=True, name="patchloop-companion")

    def _icon(self, plugin):
        if plugin.icon is None:
            return None
        try:
            return pygame.image.load(io.BytesIO(plugin.icon), "icon.png")
        except pygame.error:
            self.message = f"the icon of {plugin.spec.name} could not be decoded"
            return None

    def _work(self) -> None:
        times = []
        while not self._stop.is_set():
            if self.frozen:  # a still frame: the patches' answers on it do not change
                time.sleep(0.05)
                continue
            frame = self.source.read()
            if frame is None:
                time.sleep(0.05)
                continue
            with self._run_lock:
                result = self.companion.run(frame)
            with self._lock:
                self.latest = (frame, result)
            times = [t for t in times if t > time.monotonic() - 2.0] + [time.monotonic()]
            self.frames_per_second = (len(times) - 1) / max(1e-6, times[-1] - times[0])

    # -- the loop -------------------------------------------------------------------------
    def run(self, max_frames: int | None = None) -> None:
        self._thread.start()
        frames = 0
        try:
            while self.running and (max_frames is None or frames < max_frames):
                self.step()
                frames += 1
        finally:
            self.close()

    def step(self) -> None:
        """One frame of the window: events, draw, one flip."""
        self.clock.tick(FPS)
        for event in pygame.event.get():
            self.handle(event)
        with self._lock:
            latest = self.latest
        self.view.draw(self.screen, self, latest, APPLY_KEYS.help_lines())
        if self.chooser is not None:
            self._draw_chooser()
        pygame.display.flip()

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        pygame.display.quit()

    def handle(self, event) -> None:
        if self.chooser is not None and event.type == pygame.KEYDOWN:
            self._chooser_key(event.key)
        elif event.type == pygame.QUIT:
            self.running = False
        elif event.type == pygame.KEYDOWN:
            APPLY_KEYS.handle(self, event)
        elif event.type == pygame.VIDEORESIZE:
            size = (max(MIN_WINDOW[0], event.w), max(MIN_WINDOW[1], event.h))
            self.screen = pygame.display.set_mode(size, pygame.RESIZABLE)

    # -- what the keys do -----------------------------------------------------------------
    def quit(self) -> None:
        self.running = False

    def freeze(self) -> None:
        self.frozen = not self.frozen
        self.message = "frozen (space to go on)" if self.frozen else "live"

    def select_next(self) -> None:
        self.selected = (self.selected + 1) % max(1, len(self.plugins))
        self.message = f"overlay: {self.plugins[self.selected].spec.name}"

    def open_chooser(self) -> None:
        self.chooser = plugin_files(Path.cwd())
        self.choice = 0

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
        from loop.store.plugin import PluginError
        from loop.store.plugin_fit import fitted_to_base
        try:
            entries = [(p.spec, p.weights, fitted_to_base(p, self.companion.base))
                       for p in plugins]
            with self._run_lock:
                self.companion.set_patches(entries)
        except (PatchSetError, PluginError) as exc:
            self.message = str(exc)
            return False
        self.plugins = plugins
        self.icons = [self._icon(p) for p in plugins]
        with self._lock:
            self.latest = None
        return True

    def add(self, path) -> None:
        from loop.store.plugin import PluginError
        from loop.store.plugin_fit import fitted_to_base
        from loop.store.plugin_read import read_plugin
        try:
            plugin = read_plugin(path)
        except PluginError as exc:
            self.message = str(exc)
            return
        try:
            fitted_to_base(plugin, self.companion.base)
        except PluginError as exc:
            self.message = f"{shown(str(path))}: refused: {exc}"
            return
        if self._reload(self.plugins + [plugin]):
            self.message = f"added {plugin.spec.name}"

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
