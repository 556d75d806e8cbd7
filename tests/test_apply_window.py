"""The apply window, the same for one plugin or several, driven by real events: the selected
patch's verdict is laid over the frame, the icon and FIRED are drawn before the frame's
only flip (no flicker), the help lists the window's own keys (its key table), and `o`,
Tab and `r` work with a single plugin too."""

import cv2
import numpy as np
import pygame

from loop.faces.apply import load_companion
from loop.faces.windows.companion_app import APPLY_KEYS, CompanionApp
from loop.store.plugin_export import export_snapshot
from loop.faces.sources import DemoSource
from loop.faces.windows.help_page import help_layout
from test_companion import pixels_plugin
from window_driver import post, pump_until
from test_plugin import trained_core

MAGENTA = (255, 0, 255)


def _frame_pixels(app):
    rect = app.view.frame_rect
    return pygame.surfarray.array3d(app.screen)[rect.x:rect.right, rect.y:rect.bottom] \
        .transpose(1, 0, 2).astype(int)


def test_one_plugin_overlay_icon_once_per_frame_and_help_of_its_own(
        base_network, base_spec, tmp_path, monkeypatch):
    core = trained_core(base_network)
    snapshot = core.snapshot()
    icon = np.zeros((24, 24, 3), np.uint8)
    icon[:] = MAGENTA[::-1]  # OpenCV writes BGR
    png = cv2.imencode(".png", icon)[1].tobytes()
    out = export_snapshot(core.spec, snapshot.weights, tmp_path / "p.specialneurons",
                          snapshot.tag, base_network.spec, icon=png)
    companion, plugins = load_companion([str(out)], str(base_spec.path))
    app = CompanionApp(companion, plugins, DemoSource(seed=6), window=(900, 600))
    app.start()
    try:
        def fired():
            return app.latest is not None and app.latest[1][1][0].fired
        assert pump_until(app, fired, seconds=30), "the trained patch fires on the demo"
        post(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0)  # hold that frame
        app.step()
        assert app.frozen
        flips = []
        real_flip = pygame.display.flip
        monkeypatch.setattr(pygame.display, "flip", lambda: (flips.append(1), real_flip()))
        for _ in range(5):
            before = len(flips)
            app.step()
            assert len(flips) - before == 1, "one flip per frame"
            screen = pygame.surfarray.array3d(app.screen)
            magenta = (screen[..., 0] == 255) & (screen[..., 1] == 0) & (screen[..., 2] == 255)
            assert magenta.sum() >= 24 * 24, "the icon is on every frame while it fires"
            columns = np.nonzero(magenta.any(axis=1))[0]
            assert columns.max() > app.view.frame_rect.right - 40, "in the top-right corner"

        tinted = _frame_pixels(app)
        post(pygame.KEYDOWN, key=pygame.K_x, mod=0)   # the overlay off: the raw frame
        app.step()
        raw = _frame_pixels(app)
        probabilities = app.latest[1][1][0].probabilities
        assert (probabilities.argmax(axis=0) == 1).any(), "it sees a ball on the frozen frame"
        assert np.abs(tinted - raw).max() > 40, "the verdict tints the frame"
        post(pygame.KEYDOWN, key=pygame.K_x, mod=0)   # the overlay back, as a heat map
        post(pygame.KEYDOWN, key=pygame.K_v, mod=0)
        app.step()
        rect = app.view.frame_rect
        corner = pygame.surfarray.array3d(app.screen)[rect.right - 34, rect.y + 34]
        assert tuple(corner) == (240, 240, 240), "the heat map carries its scale"

        post(pygame.KEYDOWN, key=pygame.K_h, mod=0)
        app.step()
        lines = APPLY_KEYS.help_lines()
        bottom = help_layout(app.view.view, lines)[0].bottom - 1  # the page its LiveView draws
        screen = pygame.surfarray.array3d(app.screen)
        assert tuple(screen[app.screen.get_width() // 2, bottom]) == (200, 200, 200)
        assert not any("learning rate" in what or "label" in what for _, what in lines)
    finally:
        app.close()


def test_one_plugin_window_adds_selects_and_removes(device, base_spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = pixels_plugin(tmp_path / "a.specialneurons", "a", [("n1", "bg"), ("n2", "thing")])
    pixels_plugin(tmp_path / "b.specialneurons", "b", [("n3", "bg"), ("n4", "other")])
    companion, plugins = load_companion([a], str(base_spec.path))
    app = CompanionApp(companion, plugins, DemoSource(), window=(900, 600))
    app.start()
    try:
        assert pump_until(app, lambda: app.latest is not None)
        post(pygame.KEYDOWN, key=pygame.K_r, mod=0)
        app.step()
        assert len(app.plugins) == 1 and "last patch stays" in app.message
        for key in (pygame.K_o, pygame.K_DOWN, pygame.K_RETURN):
            post(pygame.KEYDOWN, key=key, mod=0)
        assert pump_until(app, lambda: len(app.plugins) == 2 and app.latest is not None
                    and len(app.latest[1][1]) == 2), app.message
        post(pygame.KEYDOWN, key=pygame.K_TAB, mod=0)
        app.step()
        assert app.selected == 1 and "overlay: b" in app.message
        post(pygame.KEYDOWN, key=pygame.K_r, mod=0)
        assert pump_until(app, lambda: len(app.plugins) == 1)
        assert app.plugins[0].spec.name == "a"
    finally:
        app.close()
