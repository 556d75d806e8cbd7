"""Driving the live window as a user does, for the window tests: the window on the demo scene
(a fixture), real events posted into its loop, frame pixels to window positions."""
import time

import pygame
import pytest

from loop.cli import _parser
from loop.faces import live
from loop.faces.sources import DemoSource
from loop.faces.windows.live_app import LiveApp


@pytest.fixture
def app(device, base_spec):
    args = _parser().parse_args(["live", "--demo", "--base", str(base_spec.path)])
    source = DemoSource(seed=2)
    app = LiveApp(live.build_core(args, source), source)
    app.worker.start()
    app.core.start()
    yield app
    app.close()


def pump_until(app, condition, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.step()
        if condition():
            return True
    return False


def at(app, x, y):
    """The window position of frame pixel (x, y) of a 320x240 frame."""
    rect = app.view.frame_rect
    scale = rect.width / 320
    return int(rect.x + x * scale), int(rect.y + y * scale)


def cell_at(probabilities, x, y, frame_hw=(240, 320)):
    """The (row, column) of the verdict cell over frame pixel (x, y), whatever the patch's
    cell size."""
    rows, columns = probabilities.shape[1:]
    return y * rows // frame_hw[0], x * columns // frame_hw[1]


def post(event_type, **fields):
    pygame.event.post(pygame.event.Event(event_type, **fields))


def session_window(base_spec, path, start: bool = True):
    """(app, args): the live window on the demo, recording to the session at `path`
    (resumed if it exists); started and showing a frame when `start`."""
    args = _parser().parse_args(["live", "--demo", "--base", str(base_spec.path),
                                 "--session", str(path)])
    source = DemoSource(seed=2)
    core, link, note = live.open_session(args, source)
    app = LiveApp(core, source, note, link=link)
    if start:
        app.worker.start()
        core.start()
        assert pump_until(app, lambda: app.worker.latest() is not None)
    return app, args
