"""The live window on its sources and outputs, driven by real events: a camera that goes
away, a video file, a screenshot run, fine-tuning live, Ctrl+E's export, `c`'s snaps."""
import numpy as np
import pygame

from loop.cli import _parser
from loop.faces import live
from loop.faces.windows.live_app import LiveApp
from loop.faces.sources import DemoSource
from window_driver import at, post, pump_until, session_window


class FlakyCamera:
    """A camera that delivers frames, goes away, then comes back (as a USB camera does)."""

    name = "flaky camera"

    def __init__(self):
        self.scene = DemoSource(seed=1)
        self.calls = 0
        self.lost = False

    def read(self):
        self.calls += 1
        if self.lost:
            return None
        return self.scene.read()

    def close(self):
        pass


def test_camera_lost_shows_a_message_and_keeps_labels(device, base_spec):
    args = _parser().parse_args(["live", "--base", str(base_spec.path)])
    camera = FlakyCamera()
    app = LiveApp(live.build_core(args, camera), camera)
    app.worker.start()
    try:
        assert pump_until(app, lambda: app.worker.latest() is not None)
        post(pygame.MOUSEBUTTONDOWN, button=1, pos=app.view.frame_rect.center)
        post(pygame.MOUSEBUTTONUP, button=1, pos=app.view.frame_rect.center)
        app.step()
        held = app.core.label_counts().sum()
        assert held > 0
        camera.lost = True
        assert pump_until(app, lambda: app.worker.source_lost)
        app.step()
        assert app.core.label_counts().sum() == held
        camera.lost = False
        assert pump_until(app, lambda: not app.worker.source_lost), "frames came back"
    finally:
        app.close()


def test_a_video_file_plays_and_drags_label(device, base_spec, tmp_path):
    import cv2
    from loop.demo.scene import DemoScene
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    scene = DemoScene(seed=5)
    for i in range(8):
        writer.write(np.ascontiguousarray(scene.frame(i * 5).image[:, :, ::-1]))
    writer.release()
    args = _parser().parse_args(["live", "--video", str(path), "--base", str(base_spec.path)])
    from loop.faces.sources import open_source
    source, note = open_source(video=str(path))
    app = LiveApp(live.build_core(args, source), source, note)
    app.worker.start()
    try:
        assert pump_until(app, lambda: app.worker.latest() is not None)
        post(pygame.MOUSEBUTTONDOWN, button=1, pos=at(app, 40, 120))
        for x in range(60, 300, 20):  # a drag across the frame paints several discs
            post(pygame.MOUSEMOTION, pos=at(app, x, 120), rel=(20, 0), buttons=(1, 0, 0))
        post(pygame.MOUSEBUTTONUP, button=1, pos=at(app, 300, 120))
        app.step()
        frame = app.core.frames[0]
        assert len(frame.labels) >= 6
        rows, columns = frame.label_map.shape
        row = frame.label_map[120 * rows // 240]   # the drag's row (y = 120 of 240)
        assert row.tolist().count(1) >= columns * 3 // 5, "the drag labels its whole path"
    finally:
        app.close()


def test_screenshot_run_saves_the_window(device, base_spec, tmp_path, monkeypatch):
    from loop.cli import main
    monkeypatch.chdir(tmp_path)
    shot = tmp_path / "shot.png"
    code = main(["live", "--demo", "--screenshot", str(shot), "--frames", "40", "--autoclick",
                 "--window", "900x600", "--base", str(base_spec.path)])
    assert code == 0
    image = pygame.image.load(str(shot))
    assert image.get_size() == (900, 600)
    assert list((tmp_path / "sessions").glob("*.h5")), "the run was recorded as a session"


def test_live_fine_tuning_records_and_trains(device, base_spec, tmp_path, monkeypatch):
    from loop.cli import main
    from loop.store.session import SessionStore
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tuned.h5"
    code = main(["live", "--demo", "--fine-tune", "1", "--screenshot", str(tmp_path / "s.png"),
                 "--frames", "60", "--autoclick", "--session", str(path),
                 "--base", str(base_spec.path)])
    assert code == 0
    state = SessionStore.open(path).state
    assert state.spec.fine_tune == 1 and state.labels, "clicks were recorded"
    assert state.loss_log, "the trainer took steps"
    assert main(["live", "--demo", "--fine-tune", "40", "--screenshot", str(tmp_path / "t.png"),
                 "--frames", "1", "--base", str(base_spec.path)]) == 2


def test_ctrl_e_exports_beside_the_session(device, base_spec, tmp_path):
    app, _ = session_window(base_spec, tmp_path / "session.h5")
    core = app.core
    try:
        post(pygame.KEYDOWN, key=pygame.K_e, mod=pygame.KMOD_LCTRL)
        assert pump_until(app, lambda: "exported to" in app.state.message, seconds=20)
        exported = list(tmp_path.glob("session-*.specialneurons"))
        assert len(exported) == 1
        from loop.store.plugin_read import read_plugin
        assert read_plugin(exported[0]).spec.categories == core.spec.categories
    finally:
        app.close()


def test_c_snaps_the_frame_into_a_data_folder(device, base_spec, tmp_path):
    args = _parser().parse_args(["live", "--demo", "--base", str(base_spec.path)])
    source = DemoSource(seed=2)
    app = LiveApp(live.build_core(args, source), source, snap_dir=tmp_path / "snaps")
    app.worker.start()
    try:
        assert pump_until(app, lambda: app.worker.latest() is not None)
        post(pygame.KEYDOWN, key=pygame.K_3, mod=0)
        post(pygame.KEYDOWN, key=pygame.K_c, mod=0)
        assert pump_until(app, lambda: "snapped as box" in app.state.message)
        assert len(list((tmp_path / "snaps" / "box").glob("n2_*.png"))) == 1
        assert (tmp_path / "snaps" / "map_clsloc.txt").read_text() == "n2 0 box\n"
    finally:
        app.close()
