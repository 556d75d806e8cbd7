"""The replay window, driven by real events: stepping, editing, leaving frames out."""
import pygame
import pytest

from loop.cli import _parser
from loop.core.labels import LabelDisc
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.settings import TrainerSettings
from loop.demo.scene import DemoScene
from loop.faces import live
from loop.faces.windows.live_app import LiveApp
from loop.store.session import SessionStore
from loop.faces.windows.help_page import help_layout


@pytest.fixture
def replay(device, base_network, base_spec, tmp_path):
    path = tmp_path / "s.h5"
    spec = PatchSpec("r", categories_from_names(["background", "ball", "box"]),
                     base_name=base_network.spec.name, base_hash=base_network.hash)
    store = SessionStore.create(path, spec, TrainerSettings())
    scene = DemoScene(seed=4)
    for frame_id in (3, 8, 9):
        store.add_label(frame_id, scene.frame(frame_id * 10).image, LabelDisc(40, 40, 10, 1))
    store.close()
    args = _parser().parse_args(["replay", str(path), "--base", str(base_spec.path)])
    core, link, note = live.open_session(args, source=None)
    app = LiveApp(core, None, note, link=link, edit_only=True)
    yield app, path
    if app.running:
        app.close()


def key(k):
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, mod=0))


def test_step_edit_and_leave_out(replay):
    app, path = replay
    app.step()
    assert app.edit.current().frame_id == 3 and app.edit.current_verdict is not None
    key(pygame.K_RIGHT)
    app.step()
    assert app.edit.current().frame_id == 8
    key(pygame.K_d)
    app.step()
    assert app.edit.current().excluded
    pos = app.view.frame_rect.center
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=3, pos=pos))
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, button=3, pos=pos))
    app.step()
    assert len(app.edit.current().labels) == 2
    key(pygame.K_f)  # disagreeing frames: the untrained patch disagrees with every label
    app.step()
    assert len(app.edit.order) == 3
    key(pygame.K_ESCAPE)
    app.step()
    app.close()
    state = SessionStore.open(path).state
    assert state.excluded == {8}
    assert [r.frame_id for r in state.labels if r.active] == [3, 8, 9, 8]


def test_help_lists_the_replay_keys_and_an_empty_filter_says_so(replay):
    app, _ = replay
    REPLAY_HELP = app.help_lines()
    key(pygame.K_h)
    app.step()
    # The help box is drawn from the replay's own key table: its bottom edge sits where
    # that table's length puts it.
    bottom = help_layout(app.view, REPLAY_HELP)[0].bottom - 1
    screen = pygame.surfarray.array3d(app.screen)
    assert tuple(screen[app.screen.get_width() // 2, bottom]) == (200, 200, 200)
    assert dict(REPLAY_HELP)["Left / Right"].startswith("previous / next labeled frame")
    key(pygame.K_h)
    key(pygame.K_3)  # box: no frame has box labels
    key(pygame.K_f)
    key(pygame.K_f)
    app.step()
    assert app.edit.order == [] and app.edit.current() is None
    assert "no frame matches the filter" in app.empty_note()
    assert "waiting" not in app.empty_note()
