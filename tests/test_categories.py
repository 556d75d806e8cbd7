"""Categories added and renamed while the patch trains: through the core, through the live
window's keys (real events), into the session and back on resume."""
import numpy as np
import pygame
import pytest

from loop.cli import _parser
from loop.core.labels import LabelDisc
from loop.demo.scene import DemoScene
from loop.faces import live
from loop.faces.sources import DemoSource
from loop.store.records import SessionFormatError
from loop.store.session import SessionStore
from loop.store.session_loader import load_session
from window_driver import at, post, pump_until, session_window
from test_plugin import trained_core


def test_an_added_category_keeps_the_verdict_and_then_learns(base_network):
    core = trained_core(base_network)
    scene = DemoScene(seed=6)
    frame = scene.frame(20)
    before = core.observe(frame.image).probabilities.argmax(axis=0)
    spec = core.add_category("ring")
    assert spec.names == ["background", "ball", "box", "ring"]
    assert spec.categories[3].tag == "n3"
    after = core.observe(frame.image)
    assert after.probabilities.shape[0] == 4
    assert (after.probabilities.argmax(axis=0) == before).mean() >= 0.99, \
        "a new category starts quiet: the verdict does not change"
    # Teach it: a corner of the frame is "ring" now.
    for index in (20, 60):
        verdict = core.observe(scene.frame(index).image)
        core.label(verdict.frame_id, LabelDisc(20, 20, 12, 3))
    for _ in range(60):
        core.trainer.step()
    taught = core.observe(scene.frame(20).image)
    assert taught.category_at(20, 20) == 3
    core.rename_category(3, "hoop")
    assert core.snapshot().spec.names[3] == "hoop"
    with pytest.raises(ValueError, match="already"):
        core.rename_category(1, "box")
    with pytest.raises(ValueError):
        core.add_category("two words")


def _key(k, mod=0, text=""):
    post(pygame.KEYDOWN, key=k, mod=mod, unicode=text)


def _type(text):
    for ch in text:
        _key(pygame.key.key_code(ch), text=ch)


def test_the_window_adds_and_renames_and_the_session_keeps_them(device, base_spec, tmp_path):
    path = tmp_path / "c.h5"
    app, args = session_window(base_spec, path)
    core, link = app.core, app.link
    try:
        post(pygame.MOUSEBUTTONDOWN, button=1, pos=at(app, 160, 120))
        post(pygame.MOUSEBUTTONUP, button=1, pos=at(app, 160, 120))
        _key(pygame.K_n, mod=pygame.KMOD_LCTRL)
        _type("ring")
        app.step()
        assert app.state.entry[1] == "ring", "the name shows as it is typed"
        _key(pygame.K_RETURN)
        app.step()
        assert core.spec.names[-1] == "ring" and app.state.selected == 3
        assert app.state.entry is None
        post(pygame.MOUSEBUTTONDOWN, button=1, pos=at(app, 40, 40))
        post(pygame.MOUSEBUTTONUP, button=1, pos=at(app, 40, 40))
        _key(pygame.K_F2)
        for _ in "ring":
            _key(pygame.K_BACKSPACE)
        _type("box")  # taken already: said, the entry stays open
        _key(pygame.K_RETURN)
        app.step()
        assert app.state.entry is not None and "already" in app.state.entry[2]
        _key(pygame.K_BACKSPACE)
        _key(pygame.K_BACKSPACE)
        _key(pygame.K_BACKSPACE)
        _type("hoop")
        _key(pygame.K_RETURN)
        app.step()
        assert core.spec.names[-1] == "hoop"
        assert pump_until(app, lambda: core.trainer.status.steps > 3)
    finally:
        app.close()
    live.finish(link)

    state = load_session(path).state
    assert state.spec.names == ["background", "ball", "box", "hoop"]
    assert [r.category for r in state.labels] == [1, 3]
    snapshot = state.latest_snapshot()
    assert snapshot.weights.size == core.model.layout.dense_size

    core2, link2, _ = live.open_session(args, DemoSource(seed=2))
    try:
        assert core2.spec.names == state.spec.names
        weights = core2.model.layout.dense(core2.model.state(core2.queue)["weights"])
        assert np.array_equal(weights, snapshot.weights)
    finally:
        link2.close()
        core2.close()


def test_a_snapshot_older_than_an_added_category_grows_on_resume(base_network, base_spec,
                                                                 tmp_path):
    core = trained_core(base_network)
    path = tmp_path / "g.h5"
    store = SessionStore.create(path, core.spec, core.trainer.settings)
    frame = next(iter(core.labeled_frames()))
    store.add_label(frame.frame_id, frame.image, frame.labels[0])
    store.save_snapshot(core.snapshot())
    store.save_categories(core.spec.names + ["ring"])
    store.close()
    args = _parser().parse_args(["live", "--demo", "--base", str(base_spec.path),
                                 "--session", str(path)])
    core2, link2, _ = live.open_session(args, DemoSource(seed=2))
    try:
        assert core2.spec.outputs == 4
        scene = DemoScene(seed=6)
        old = core.observe(scene.frame(20).image).probabilities.argmax(axis=0)
        new = core2.observe(scene.frame(20).image).probabilities.argmax(axis=0)
        assert (old == new).mean() >= 0.99, "the trained weights came back, grown"
    finally:
        link2.close()
        core2.close()


@pytest.mark.parametrize("names", [["background"], ["background", "ball", "box", "ball"],
                                   ["background", "ball", "two words"], "background",
                                   ["background", "ball", 3], ["x"] * 40])
def test_saved_category_names_that_do_not_fit_are_refused(names, tmp_path):
    from loop.core.settings import TrainerSettings
    from test_plugin import PatchSpec, categories_from_names
    spec = PatchSpec("p", categories_from_names(["background", "ball"]), topology="pixels")
    store = SessionStore.create(tmp_path / "n.h5", spec, TrainerSettings())
    try:
        with pytest.raises(SessionFormatError):
            store.save_categories(names)
        store.save_categories(["bg", "ball", "box"])
    finally:
        store.close()
    assert load_session(tmp_path / "n.h5").state.spec.names == ["bg", "ball", "box"]
