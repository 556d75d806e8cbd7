"""The apply window (one plugin in use), driven by real events: the icon and FIRED are drawn
before the frame's only flip (no flicker), and its help lists only the keys that work."""
import cv2
import numpy as np
import pygame

from loop.faces.apply import load_plugin_core
from loop.faces.apply_app import APPLY_HELP, ApplyApp
from loop.faces.export import export_snapshot
from loop.faces.sources import DemoSource
from test_live_window import post, pump_until
from test_plugin import trained_core

MAGENTA = (255, 0, 255)


def test_icon_drawn_once_per_frame_and_help_of_its_own(base_network, base_spec, tmp_path,
                                                        monkeypatch):
    core = trained_core(base_network)
    snapshot = core.snapshot()
    icon = np.zeros((24, 24, 3), np.uint8)
    icon[:] = MAGENTA[::-1]  # OpenCV writes BGR
    png = cv2.imencode(".png", icon)[1].tobytes()
    out = export_snapshot(core.spec, snapshot.weights, tmp_path / "p.specialneurons",
                          snapshot.tag, base_network.spec, icon=png)
    applied, plugin = load_plugin_core(str(out), str(base_spec.path))
    app = ApplyApp(applied, DemoSource(seed=6), plugin)
    app.worker.start()
    app.core.start()
    try:
        def fired():
            latest = app.worker.latest()
            return latest is not None and latest[1].triggered and latest[1].category != 0
        assert pump_until(app, fired, seconds=30), "the trained patch fires on the demo"
        post(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0)  # hold that frame
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
        post(pygame.KEYDOWN, key=pygame.K_h, mod=0)
        app.step()
        bottom = 40 + 26 + 20 * len(APPLY_HELP) - 1
        screen = pygame.surfarray.array3d(app.screen)
        assert tuple(screen[app.screen.get_width() // 2, bottom]) == (200, 200, 200)
        assert not any("learning rate" in what or "label" in what for _, what in APPLY_HELP)
    finally:
        app.close()
