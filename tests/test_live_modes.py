"""The live window's modes, driven by real events: edit mode inside live (`e`), the key
tables the help page is drawn from, and the view a session reopens with."""
import pygame
import pytest

from loop.cli import _parser
from loop.faces import live
from loop.faces.windows.live_app import LiveApp
from loop.faces.windows.live_keys import edit_keys, live_keys
from loop.faces.sources import DemoSource
from loop.store.session_loader import load_session
from window_driver import app, at, post, pump_until, session_window  # noqa: F401


def _click(app, x, y, button):
    post(pygame.MOUSEBUTTONDOWN, button=button, pos=at(app, x, y))
    post(pygame.MOUSEBUTTONUP, button=button, pos=at(app, x, y))


def _key(k, mod=0):
    post(pygame.KEYDOWN, key=k, mod=mod)


def test_edit_mode_inside_live_steps_back_edits_and_returns(app):
    assert pump_until(app, lambda: app.worker.latest() is not None)
    _click(app, 160, 120, 1)   # labels whichever frame is shown when the window takes it
    assert pump_until(app, lambda: app.core.labeled_frames())
    first = app.core.labeled_frames()[0].frame_id
    assert pump_until(app, lambda: app.worker.latest()[1].frame_id != first)
    app.step()   # drawn: a click lands on the frame the window last drew
    _click(app, 40, 40, 3)
    assert pump_until(app, lambda: len(app.core.labeled_frames()) == 2)
    second = max(f.frame_id for f in app.core.labeled_frames())
    _key(pygame.K_e)
    app.step()
    assert app.edit is not None and app.footer().startswith("frame 1/2")
    assert app.shown.latest()[1].frame_id == first, "edit mode shows the labeled frames"
    _key(pygame.K_RIGHT)
    app.step()
    assert app.edit.current().frame_id == second
    _click(app, 200, 200, 1)  # a label made in edit mode lands on the frame shown
    app.step()
    assert len(app.core.labels_of(second)) == 2
    _key(pygame.K_d)
    app.step()
    assert app.edit.current().excluded
    _key(pygame.K_h)
    app.step()
    assert ("e, Esc", "back to the live camera") in app.help_lines()
    _key(pygame.K_h)
    _key(pygame.K_ESCAPE)  # leaves edit mode; it does not quit
    app.step()
    assert app.running and app.edit is None
    assert pump_until(app, lambda: app.worker.latest()[1].frame_id > second + 1), "live again"
    assert app.footer() == ""


def test_every_key_the_help_lists_is_answered_and_no_other(app):
    """The help page is the key table: each key it names does something (the state or the
    message changes, or the mode does), and a key it does not name does nothing."""
    assert pump_until(app, lambda: app.worker.latest() is not None)
    for table in (live_keys(), edit_keys(inside_live=True), edit_keys(inside_live=False)):
        labels = [label for label, _ in table.help_lines()]
        assert all(labels) and len(labels) == len(set(labels)), "one line per binding"
    names = {label for label, _ in app.help_lines()}
    for wanted in ("e", "Ctrl+E", "space", "[ / ]", ", / .", "v", "m", "l", "Esc"):
        assert wanted in names
    before = (app.state.view, app.state.smooth, app.core.trainer.settings)
    _key(pygame.K_j)  # no binding
    _key(pygame.K_q)
    app.step()
    assert (app.state.view, app.state.smooth, app.core.trainer.settings) == before
    assert app.running


@pytest.fixture
def session_args(base_spec, tmp_path):
    return _parser().parse_args(["live", "--demo", "--base", str(base_spec.path),
                                 "--session", str(tmp_path / "s.h5")])


def test_brush_category_and_view_come_back_when_the_session_resumes(session_args, base_spec,
                                                                   device):
    app, _ = session_window(base_spec, session_args.session)
    try:
        _click(app, 100, 100, 1)  # a session with a label is kept
        post(pygame.MOUSEWHEEL, x=0, y=5, flipped=False)   # brush 16 -> 26
        _key(pygame.K_3)
        _key(pygame.K_v)
        _key(pygame.K_m)
        _key(pygame.K_l)
        app.step()
        wanted = (app.state.brush, app.state.selected, app.state.view, app.state.smooth,
                  app.state.show_labels)
        assert wanted == (26, 2, 1, False, False)
    finally:
        app.close()
    assert load_session(session_args.session).state.window["brush"] == 26

    source = DemoSource(seed=2)
    core, link, note = live.open_session(session_args, source)
    again = LiveApp(core, source, note, link=link)
    try:
        assert (again.state.brush, again.state.selected, again.state.view, again.state.smooth,
                again.state.show_labels) == wanted
    finally:
        again.close()


@pytest.mark.parametrize("prefs", [[], "brush", {"brush": [1]}, {"b" * 40: 1},
                                   {f"k{i}": 1 for i in range(17)}, {"brush": float("nan")},
                                   {"view": {"nested": 1}}])
def test_a_saved_view_that_is_not_a_few_plain_values_is_refused(prefs, tmp_path):
    from loop.core.settings import TrainerSettings
    from loop.store.records import SessionFormatError
    from loop.store.session import SessionStore
    from session_writer_child import SPEC
    store = SessionStore.create(tmp_path / "w.h5", SPEC, TrainerSettings())
    try:
        with pytest.raises(SessionFormatError):
            store.save_window(prefs)
        store.save_window({"brush": 30, "smooth": False})
    finally:
        store.close()
    assert load_session(tmp_path / "w.h5").state.window == {"brush": 30, "smooth": False}


def test_a_new_session_nothing_was_labeled_in_is_not_left_behind(session_args, capsys):
    from pathlib import Path
    source = DemoSource(seed=2)
    core, link, note = live.open_session(session_args, source)
    app = LiveApp(core, source, note, link=link)
    path = Path(session_args.session)
    assert path.exists()
    post(pygame.MOUSEWHEEL, x=0, y=2, flipped=False)  # a view change is not a label
    _key(pygame.K_ESCAPE)
    app.step()
    app.close()
    live.finish(link)
    assert sorted(p.name for p in path.parent.iterdir()) == [], "no file, journal or lock"
    assert "nothing was labeled" in capsys.readouterr().err

    source = DemoSource(seed=2)
    core, link, note = live.open_session(session_args, source)
    app = LiveApp(core, source, note, link=link)
    app.worker.start()
    try:
        assert pump_until(app, lambda: app.worker.latest() is not None)
        _click(app, 100, 100, 1)
        app.step()
    finally:
        app.close()
    live.finish(link)
    assert load_session(path).state.labels, "a labeled session is kept"
