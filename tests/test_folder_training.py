"""Training from an image folder: real photographs in three categories, and a broken folder
whose every problem is reported."""
import cv2
import numpy as np
import pytest
import skimage.data

from loop.cli import main
from loop.store.session import SessionStore

PHOTOS = {"n101": ("cat", skimage.data.chelsea), "n102": ("coffee", skimage.data.coffee),
          "n103": ("rocket", skimage.data.rocket)}


def make_folder(root, per_category=8, seed=0):
    rng = np.random.default_rng(seed)
    lines = ["# tag index name"]
    for i, (tag, (name, photo)) in enumerate(PHOTOS.items()):
        lines.append(f"{tag} {i} {name}")
        image = photo()
        h, w = image.shape[:2]
        (root / name).mkdir(parents=True)
        for j in range(per_category):
            side = int(min(h, w) * rng.uniform(0.6, 0.95))
            y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            crop = image[y:y + side, x:x + side]
            cv2.imwrite(str(root / name / f"{tag}_{j}.jpg"), crop[:, :, ::-1])
    (root / "map_clsloc.txt").write_text("\n".join(lines) + "\n")


def test_check_accepts_a_good_folder(tmp_path, capsys):
    make_folder(tmp_path / "data", per_category=2)
    assert main(["train", str(tmp_path / "data"), "--check"]) == 0
    assert "6 images in 3 categories" in capsys.readouterr().out


def test_broken_folder_lists_every_problem(tmp_path, capsys):
    root = tmp_path / "data"
    make_folder(root, per_category=1)
    (root / "map_clsloc.txt").write_text(
        "n101 0 cat\nn101 1 again\nx7 2 bad\nn104 3 empty\nn105 0 same_index\nn106 4\n")
    cv2.imwrite(str(root / "n999_stray.png"), np.zeros((20, 20, 3), np.uint8))
    cv2.imwrite(str(root / "untagged.png"), np.zeros((20, 20, 3), np.uint8))
    assert main(["train", str(root), "--check"]) == 2
    err = capsys.readouterr().err
    for expected in ("map_clsloc.txt:2: tag n101 repeats line 1",
                     "map_clsloc.txt:3: tag 'x7'", "map_clsloc.txt:5: index 0 repeats line 1",
                     "map_clsloc.txt:6: expected 'tag index name'", "n999_stray.png: tag n999",
                     "untagged.png: the name", "n104 (empty) has no images",
                     "n102_0.jpg: tag n102 is not in"):
        assert expected in err, expected
    assert main(["train", str(root)]) == 2  # training refuses a broken folder


def test_bad_training_values_are_one_line_errors_before_any_work(base_spec, tmp_path, capsys):
    make_folder(tmp_path / "data", per_category=2)
    (tmp_path / "taken.h5").write_bytes(b"a session someone has")
    for argv, words in ((["--held-out", "1.5"], "--held-out 1.5"),
                        (["--epochs", "0"], "--epochs 0"),
                        (["--session", str(tmp_path / "taken.h5")], "exists already"),
                        (["--session", str(tmp_path / "file" / "s.h5")], "cannot write"),
                        (["--tilt", "-5"], "tilt -5 degrees is outside [0, 45]")):
        if "file" in argv[-1]:
            (tmp_path / "file").write_text("a file where the folder should be")
        assert main(["train", str(tmp_path / "data"), "--headless", "--base",
                     str(base_spec.path)] + argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], (argv, err)
    assert (tmp_path / "taken.h5").read_bytes() == b"a session someone has"


def test_unreadable_images_are_listed_and_skipped(device, base_spec, tmp_path, capsys):
    root = tmp_path / "data"
    make_folder(root, per_category=3)
    (root / "cat" / "n101_broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "coffee" / "n102_empty.png").write_bytes(b"")
    assert main(["train", str(root), "--check"]) == 0, "unreadable images are not fatal"
    captured = capsys.readouterr()
    assert "2 unreadable (skipped when training)" in captured.out
    assert "n101_broken.jpg: not an image OpenCV can read" in captured.err
    assert "n102_empty.png: not an image OpenCV can read" in captured.err
    session = tmp_path / "s.h5"
    assert main(["train", str(root), "--epochs", "1", "--no-augment", "--headless",
                 "--session", str(session), "--base", str(base_spec.path)]) == 0
    captured = capsys.readouterr()
    assert "skipped 2 unreadable images" in captured.err
    trained = int(captured.out.split(f"{session}: ")[1].split()[0])
    held = int(captured.out.split(" on ")[-1].split(";")[0])
    assert trained + held == 9, "every readable image is used, the broken ones are not"
    assert len(SessionStore.open(session).state.frames) == trained


def test_training_on_photographs_beats_chance(device, base_spec, tmp_path, capsys):
    make_folder(tmp_path / "data", per_category=8)
    session = tmp_path / "trained.h5"
    assert main(["train", str(tmp_path / "data"), "--epochs", "4", "--held-out", "0.25",
                 "--session", str(session), "--base", str(base_spec.path)]) == 0
    out = capsys.readouterr().out
    assert "reconfigured to the patch's 3 categories" in out
    accuracy = float(out.split("held-out accuracy ")[1].split()[0])
    assert accuracy >= 0.8, out  # chance is 1/3
    state = SessionStore.open(session).state
    assert state.spec.pooling == "mean" and len(state.snapshots) == 1
    assert len(state.frames) == len(state.labels) == 18


def test_eval_reports_confusion_and_mistakes(device, base_spec, tmp_path, capsys):
    import json
    make_folder(tmp_path / "data", per_category=4)
    session = tmp_path / "trained.h5"
    assert main(["train", str(tmp_path / "data"), "--epochs", "3", "--no-augment",
                 "--session", str(session), "--base", str(base_spec.path)]) == 0
    capsys.readouterr()
    make_folder(tmp_path / "test", per_category=3, seed=9)
    picture = tmp_path / "confusion.png"
    assert main(["eval", str(session), str(tmp_path / "test"), "--json", "--plot", str(picture),
                 "--base", str(base_spec.path)]) == 0
    report = json.loads(capsys.readouterr().out)
    matrix = np.array(report["confusion"])
    assert matrix.shape == (3, 3) and matrix.sum() == 9
    assert report["accuracy"] == pytest.approx(np.trace(matrix) / 9, abs=1e-4)
    assert sum(len(m["images"]) for m in report["mistakes"]) == 9 - np.trace(matrix)
    assert cv2.imread(str(picture)) is not None


def test_training_window_stop_n_show_saves_snapshots(device, base_spec, tmp_path, monkeypatch):
    import pygame
    from loop.base.network import BaseNetwork
    from loop.core.engine import LoopCore
    from loop.core.folder_training import FolderTraining
    from loop.core.patch import Category, PatchSpec
    from loop.faces.train_window import TrainWindow
    from loop.store.data_folder import scan_folder
    from loop.store.plugin_read import read_plugin
    make_folder(tmp_path / "data", per_category=2)
    folder = scan_folder(tmp_path / "data")
    base = BaseNetwork(device, __import__("loop.base.loading", fromlist=["x"]).open_base(
        str(base_spec.path)))
    spec = PatchSpec("w", tuple(Category(c.tag, i, c.name) for i, c in enumerate(folder.categories)),
                     pooling="mean", base_name=base.spec.name, base_hash=base.hash)
    core = LoopCore(spec, base=base)
    job = FolderTraining(core, folder.images, [])
    job.extract(False)
    window = TrainWindow(core, job, epochs=50, out_dir=tmp_path / "out")
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0))
    window.run(max_frames=3)
    assert window.asking and window.shown is not None, "paused on an image, asking"
    steps = core.trainer.status.steps
    pygame.display.init()
    window.screen = pygame.display.set_mode((960, 600))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_y, mod=0))
    window.running = True
    window.run(max_frames=2)
    assert len(job.snapshots) == 1 and len(window.saved) == 1
    assert read_plugin(window.saved[0]).spec.name == "w"
    assert core.trainer.status.steps <= steps + 1, "stop-N-show goes one image at a time"


def _window_job(device, base_spec, tmp_path):
    from loop.base.loading import open_base
    from loop.base.network import BaseNetwork
    from loop.core.engine import LoopCore
    from loop.core.folder_training import FolderTraining
    from loop.core.patch import Category, PatchSpec
    from loop.store.data_folder import scan_folder
    make_folder(tmp_path / "data", per_category=2)
    folder = scan_folder(tmp_path / "data")
    base = BaseNetwork(device, open_base(str(base_spec.path)))
    spec = PatchSpec("w", tuple(Category(c.tag, i, c.name) for i, c in enumerate(folder.categories)),
                     pooling="mean", base_name=base.spec.name, base_hash=base.hash)
    core = LoopCore(spec, base=base)
    job = FolderTraining(core, folder.images, [])
    job.extract(False)
    return core, job


def test_the_about_dialog_comes_before_training(device, base_spec, tmp_path):
    """The seed's About dialog: nothing trains until Yes; No cancels."""
    import pygame
    from loop.faces.train_window import ABOUT_PANEL, ABOUT_RECT, NO_BUTTON, TrainWindow
    core, job = _window_job(device, base_spec, tmp_path)
    about = ["the last layer is reconfigured to the patch's 3 categories"]
    window = TrainWindow(core, job, epochs=50, out_dir=tmp_path / "out", about=about)
    window.run(max_frames=3)
    assert core.trainer.status.steps == 0, "training waits for the dialog"
    assert tuple(window.screen.get_at((ABOUT_RECT.x + 8, ABOUT_RECT.bottom - 8)))[:3] == ABOUT_PANEL
    pygame.display.init()
    window.screen = pygame.display.set_mode((960, 600))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_y, mod=0))
    window.run(max_frames=3)
    assert core.trainer.status.steps >= 2 and not window.cancelled
    assert tuple(window.screen.get_at((ABOUT_RECT.x + 8, ABOUT_RECT.bottom - 8)))[:3] != ABOUT_PANEL

    declined = TrainWindow(core, job, epochs=50, out_dir=tmp_path / "out", about=about)
    steps = core.trainer.status.steps
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=NO_BUTTON.center))
    declined.run(max_frames=5)
    assert declined.cancelled and core.trainer.status.steps == steps


def test_the_about_dialog_and_feature_progress_come_before_extraction(device, base_spec,
                                                                      tmp_path):
    """As `train` runs it with a window: About first (No cancels before any feature is
    computed), then the features' progress, which Esc cancels."""
    import pygame
    from loop.core.folder_training import ExtractionCancelled, FolderTraining
    from loop.faces.train_window import TrainWindow
    core, _ = _window_job(device, base_spec, tmp_path)
    job = FolderTraining(core, [], [])
    about = ["the last layer is reconfigured to the patch's 3 categories"]
    window = TrainWindow(core, job, epochs=1, out_dir=tmp_path / "out", about=about)
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_n, mod=0))
    assert window.ask_about(max_frames=10) is False and window.cancelled
    window = TrainWindow(core, job, epochs=1, out_dir=tmp_path / "out", about=about)
    assert window.ask_about(max_frames=2) is False and not window.cancelled, "still open"
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN, mod=0))
    assert window.ask_about(max_frames=10) is True
    window.show_progress(5, 10)
    assert tuple(window.screen.get_at((50, 100)))[:3] == (120, 200, 255), "the bar is drawn"
    assert tuple(window.screen.get_at((window.screen.get_width() - 50, 100)))[:3] != \
        (120, 200, 255), "half of it"
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE, mod=0))
    with pytest.raises(ExtractionCancelled):
        window.show_progress(6, 10)
    pygame.display.quit()


def test_trigger_only_categories_are_declared_in_the_map(device, base_spec, tmp_path, capsys):
    root = tmp_path / "data"
    make_folder(root, per_category=3)
    with open(root / "map_clsloc.txt", "a") as f:
        f.write("n02123159 7 tiger_cat trigger\nn02124075 8 egyptian_cat trigger\n")
    assert main(["train", str(root), "--check"]) == 0
    assert "9 images in 3 categories" in capsys.readouterr().out
    session = tmp_path / "t.h5"
    assert main(["train", str(root), "--epochs", "1", "--no-augment", "--session", str(session),
                 "--base", str(base_spec.path)]) == 0
    spec = SessionStore.open(session).state.spec
    assert spec.triggers == ("n02123159", "n02124075") and spec.outputs == 3
    cv2.imwrite(str(root / "n02123159_stray.png"), np.zeros((20, 20, 3), np.uint8))
    assert main(["train", str(root), "--check"]) == 2
    assert "trigger-only category, which takes no images" in capsys.readouterr().err
