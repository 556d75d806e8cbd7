"""Training from an image folder: real photographs in three categories, and a broken folder
whose every problem is reported."""
import json

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


def folder_core(device, base_spec, folder, name="w"):
    """A core whose patch has the folder's categories, on the converted base."""
    from loop.base.loading import open_base
    from loop.base.network import BaseNetwork
    from loop.core.engine import LoopCore
    from loop.core.patch import Category, PatchSpec
    base = BaseNetwork(device, open_base(str(base_spec.path)))
    categories = tuple(Category(c.tag, i, c.name) for i, c in enumerate(folder.categories))
    return LoopCore(PatchSpec(name, categories, pooling="mean", base_name=base.spec.name,
                              base_hash=base.hash), base=base)


def store_job(core, train_items, held_items, folder, copies=0):
    """The training job of a core on these images, its features in a store in `folder`."""
    from loop.core.folder_training import AugmentSettings, ExtractionPlan
    from loop.faces.train_extract import build_job
    plan = ExtractionPlan(tuple(train_items), tuple(held_items),
                          AugmentSettings(copies, seed=core.spec.seed))
    return build_job(core, plan, folder / "features.h5")[0]


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
                 "--session", str(session), "--base", str(base_spec.path), "--json"]) == 0
    captured = capsys.readouterr()
    assert "reconfigured to the patch's 3 categories" in captured.err, "people's lines: stderr"
    result = json.loads(captured.out)
    assert result["held_out_accuracy"] >= 0.8, result  # chance is 1/3
    assert result["session"] == str(session) and result["held_out_images"] == 6
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


def test_links_planted_in_a_data_folder_are_never_followed(tmp_path):
    """A link named like an image is reported by the scan; one planted after the scan is
    not read through (its image is skipped as unreadable)."""
    import os
    from loop.core.folder_training import AugmentSettings, ExtractionPlan
    from loop.errors import UserError
    from loop.faces.train_extract import shard_files
    from loop.store.data_folder import read_image_bytes, scan_folder
    root = tmp_path / "data"
    make_folder(root, per_category=2)
    outside = tmp_path / "outside.jpg"
    outside.write_bytes((root / "cat" / "n101_0.jpg").read_bytes())
    os.symlink(outside, root / "cat" / "n101_link.jpg")
    assert any("n101_link.jpg: a symbolic link, not followed" in p
               for p in scan_folder(root).problems)
    (root / "cat" / "n101_link.jpg").unlink()
    folder = scan_folder(root)
    assert not folder.problems
    planted = root / "cat" / "n101_1.jpg"
    planted.unlink()
    os.symlink(outside, planted)
    with pytest.raises(UserError, match="n101_1.jpg: cannot open the image") as error:
        read_image_bytes(planted)
    assert "\n" not in str(error.value)
    plan = ExtractionPlan(tuple(folder.images), (), AugmentSettings(), shard_items=6)
    files = shard_files(plan, 0)
    assert [path.name for path, _ in folder.images[:6]].index("n101_1.jpg") == 1
    assert files[1] is None and all(f is not None for i, f in enumerate(files) if i != 1)
