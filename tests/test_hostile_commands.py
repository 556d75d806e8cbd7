"""The installed `patchloop` command against generated hostile files, each run in a
subprocess under a memory limit (`ulimit -v`) and a time limit, so that a blow-up or a hang
fails the test instead of the machine. Every bad input must give one line on stderr naming
it, with exit code 2: never a traceback, a segfault (exit 139) or a hang."""
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from loop.base.network import weights_hash
from loop.core.patch import Category, PatchSpec
from loop.core.patch_arch import patch_arch
from loop.store.plugin import write_plugin
from loop.safe_files import shown
from test_hostile_images import hostile_images, png_bomb
from test_hostile_plugins import join, pixels_plugin_bytes, split

PATCHLOOP = str(Path(sys.executable).with_name("patchloop"))
MEMORY_LIMIT = 1200 << 20   # bytes; a normal run needs well under 1 GB of address space
TRIED: dict = {}


def _limit(kind):
    return lambda: resource.setrlimit(kind, (MEMORY_LIMIT, MEMORY_LIMIT))


class Limited:
    """Runs `patchloop ARGS` under the memory limit: on the address space (`ulimit -v`),
    or, where a GPU driver reserves more address space than that for itself, on the data
    segment (`ulimit -d`). A traceback or a crash fails at once."""

    def __init__(self, base_txt: str, folder: Path):
        self.base = base_txt
        cv2.imwrite(str(folder / "ok.png"), np.zeros((64, 64, 3), np.uint8))
        self.kind = resource.RLIMIT_AS
        if self.run("classify", folder / "ok.png", "--base", base_txt, check=False).returncode:
            self.kind = resource.RLIMIT_DATA

    def run(self, *args, timeout=120, check=True):
        done = subprocess.run([PATCHLOOP, *map(str, args)], preexec_fn=_limit(self.kind),
                              capture_output=True, timeout=timeout)
        done.err = done.stderr.decode("utf-8", "replace")
        if check:
            assert "Traceback" not in done.err, done.err
            assert done.returncode not in (-11, 139, -6, 134, 1), (done.returncode, done.err)
        return done


@pytest.fixture(scope="module")
def limited(base_spec, tmp_path_factory, request):
    runner = Limited(str(base_spec.path), tmp_path_factory.mktemp("probe"))
    yield runner
    limit = "address-space" if runner.kind == resource.RLIMIT_AS else "data-segment"
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\nhostile inputs through the installed command, under a {MEMORY_LIMIT >> 20} "
              f"MiB {limit} limit: {sum(TRIED.values())} in all, {TRIED}")


def _one_line_each(err: str, names) -> list[str]:
    """stderr holds only `patchloop...` lines, one at least naming each of `names` (the
    progress of reading, a bar on a terminal or one plain line in a log, aside)."""
    lines = [line for line in re.split(r"[\r\n]", err)
             if line.strip() and not line.startswith(("reading [", "reading: "))]
    assert all(line.startswith("patchloop") for line in lines), err
    for name in names:
        assert any(name in line for line in lines), (name, err)
    return lines


def _hostile_image_files(folder: Path, count: int) -> list[Path]:
    """`count` generated hostile images (lying headers, damage, random bytes), bombs, a FIFO,
    a link to /dev/zero and a name that is not UTF-8, all named like category n5's."""
    folder.mkdir(parents=True, exist_ok=True)
    generated = list(hostile_images(random.Random(31)))
    paths = []
    for i, (_, data) in enumerate(random.Random(32).sample(generated, count)):
        paths.append(folder / f"n5_crafted{i}.png")
        paths[-1].write_bytes(data)
    for i, (width, height) in enumerate([(20000, 20000), (65535, 65535), (7000, 7000)]):
        paths.append(folder / f"n5_bomb{i}.png")
        paths[-1].write_bytes(png_bomb(width, height))
    os.mkfifo(folder / "n5_fifo.png")
    os.symlink("/dev/zero", folder / "n5_zero.png")
    not_utf8 = folder / os.fsdecode(b"n5_\xff\xfe.png")
    not_utf8.write_bytes(b"not an image")
    return paths + [folder / "n5_fifo.png", folder / "n5_zero.png", not_utf8]


def _good_image(path: Path) -> Path:
    ok, data = cv2.imencode(".png", np.full((300, 200, 3), 90, np.uint8))
    path.write_bytes(data.tobytes())
    return path


def test_classify_reads_hostile_images_or_refuses_each_in_one_line(limited, tmp_path):
    paths = _hostile_image_files(tmp_path / "images", 80)
    good = _good_image(tmp_path / os.fsdecode(b"good\xff.png"))
    done = limited.run("classify", *paths, good, "--base", limited.base)
    assert done.returncode == 2
    _one_line_each(done.err, ["n5_bomb0.png: 20000x20000", "n5_fifo.png: not a regular",
                              "n5_zero.png: not a regular", "n5_\\udcff\\udcfe.png"])
    assert shown(str(good)) in done.stdout.decode()
    TRIED["classify: images"] = len(paths) + 1


def test_train_check_reports_a_hostile_folder_in_bounded_time(limited, tmp_path):
    root = tmp_path / "data"
    paths = _hostile_image_files(root / "cat", 40)
    _good_image(root / "dog" / "n6_good.png") if (root / "dog").mkdir() is None else None
    (root / "map_clsloc.txt").write_bytes(b"n5 0 cat\nn6 1 dog\nn1\r 2 x\nn7 3 a/b\n"
                                          b"n8 4 \x1b[31mred\nn9 5 ok\xff\n")
    started = time.monotonic()
    done = limited.run("train", root, "--check", timeout=60)
    assert done.returncode == 2 and time.monotonic() - started < 60
    _one_line_each(done.err, ["n5_fifo.png: not a regular file",
                              "n5_zero.png: a symbolic link, not followed",
                              "name 'a/b' cannot", "name '\\x1b[31mred' cannot"])
    os.mkfifo(tmp_path / "fifo-map")
    (root / "map_clsloc.txt").unlink()
    os.symlink(tmp_path / "fifo-map", root / "map_clsloc.txt")
    done = limited.run("train", root, "--check", timeout=60)
    assert done.returncode == 2 and "map_clsloc.txt: not a regular file" in done.err
    TRIED["train --check: folder entries"] = len(paths) + 6 + 1


def _head_plugin(base_spec, path: Path, input_hw=(240, 320)) -> Path:
    spec = PatchSpec("head", (Category("n1", 0, "bg"), Category("n2", 1, "thing")),
                     base_name=base_spec.name, base_hash=weights_hash(base_spec))
    arch = patch_arch(spec, base_spec)
    write_plugin(path, spec, arch, (240, 320), arch.initial_parameters(0), "t", time.time())
    manifest, blobs = split(path.read_bytes())
    manifest["input"]["height"], manifest["input"]["width"] = input_hw
    path.write_bytes(join(manifest, blobs))
    return path


def test_apply_and_eval_refuse_hostile_plugins_one_line_each(limited, base_spec, tmp_path):
    data = pixels_plugin_bytes(tmp_path)
    manifest, blobs = split(data)
    crafted = {}
    for name, change in [("no-tag", lambda m: m.pop("tag")),
                         ("slash", lambda m: m["categories"][1].__setitem__(2, "../../x")),
                         ("newline-tag", lambda m: m["categories"][1].__setitem__(0, "n1\n")),
                         ("escape", lambda m: m.__setitem__("name", "\x1b]0;owned\x07"))]:
        m = json.loads(json.dumps(manifest))
        change(m)
        crafted[name] = tmp_path / f"{name}.specialneurons"
        crafted[name].write_bytes(join(m, blobs))
    os.mkfifo(tmp_path / "fifo.specialneurons")
    os.symlink("/dev/zero", tmp_path / "zero.specialneurons")
    huge = _head_plugin(base_spec, tmp_path / "huge.specialneurons", (4096, 4096))
    paths = list(crafted.values()) + [tmp_path / "fifo.specialneurons",
                                      tmp_path / "zero.specialneurons", huge]
    done = limited.run("apply", *paths, "--demo", "--json", "--frames", "1",
                       "--base", limited.base)
    assert done.returncode == 2 and "no plugin could be loaded" in done.err
    _one_line_each(done.err, [p.name for p in paths])
    data_dir = tmp_path / "data"
    for tag, name in (("n1", "bg"), ("n2", "thing")):
        _good_image(data_dir / name / f"{tag}_0.png") if (data_dir / name).mkdir(
            parents=True) is None else None
    (data_dir / "map_clsloc.txt").write_text("n1 0 bg\nn2 1 thing\n")
    done = limited.run("eval", huge, data_dir, "--base", limited.base)
    assert done.returncode == 2 and "input height/width out of bounds" in done.err
    _one_line_each(done.err, ["huge.specialneurons"])
    TRIED["apply/eval: plugins"] = len(paths) + 1


def test_a_chain_of_1100_plugins_is_one_line(limited, tmp_path):
    data = pixels_plugin_bytes(tmp_path)
    manifest, blobs = split(data)
    paths = []
    for i in range(1100):
        manifest["categories"] = [["n1", 0, "bg"], [f"n{1000 + i}", 1, f"c{i}"]]
        manifest["triggers"] = [f"n{999 + i}"] if i else []
        paths.append(tmp_path / f"chain{i}.specialneurons")
        paths[-1].write_bytes(join(manifest, blobs))
    done = limited.run("apply", *paths, "--demo", "--json", "--frames", "1",
                       "--base", limited.base)
    assert done.returncode == 2
    assert _one_line_each(done.err, ["1100 plugins"]) == [
        "patchloop: 1100 plugins: at most 32 run together"]
    TRIED["apply: a 1100-plugin chain"] = 1


def test_apply_json_on_hostile_images_and_videos(limited, tmp_path):
    px = tmp_path / "px.specialneurons"
    px.write_bytes(pixels_plugin_bytes(tmp_path))
    images = tmp_path / "images"
    paths = _hostile_image_files(images, 20)
    _good_image(images / "n5_good.png")
    done = limited.run("apply", px, "--images", images, "--json", "--frames", len(paths) + 1,
                       "--base", limited.base)
    assert done.returncode == 0
    results = [json.loads(line, parse_constant=pytest.fail) for line in done.stdout.split(b"\n")
               if line]
    assert len(results) >= 1
    _one_line_each(done.err, ["n5_bomb0.png: 20000x20000", "n5_\\udcff\\udcfe.png"])
    os.mkfifo(tmp_path / "fifo.avi")
    video = tmp_path / os.fsdecode(b"clip\xff.avi")
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10,
                             (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    os.rename(tmp_path / "clip.avi", video)
    started = time.monotonic()
    done = limited.run("apply", px, "--video", tmp_path / "fifo.avi", "--json", timeout=30)
    assert done.returncode == 2 and time.monotonic() - started < 30
    _one_line_each(done.err, ["fifo.avi: not a regular file"])
    done = limited.run("apply", px, "--video", video, "--json", "--frames", "2",
                       "--base", limited.base)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 2, done.err
    TRIED["apply: image folder entries and videos"] = len(paths) + 1 + 2


@pytest.mark.parametrize("edit", [
    ("nominal=224", "nominal=100000"), ("channels=3", "channels=4"),
    ("tap name=stride16 layer=b10.add", "tap name=stride16 layer=pool"),
    ("tap name=stride2 layer=b0.project\n", ""), ("dil=1 groups=32", "dil=100000 groups=32"),
    ("out=32 in=3", "out=8000 in=3"), ("k=3 stride=2", "k=3 stride=9"),
], ids=["huge-nominal", "4-channels", "tap-on-pool", "a-tap-missing", "huge-dilation",
        "huge-channels", "huge-stride"])
def test_hostile_base_configs_are_one_line(limited, base_spec, tmp_path, edit):
    folder = tmp_path / "base"
    folder.mkdir()
    for name in (base_spec.path.with_suffix(".data").name, "map_clsloc.txt"):
        os.symlink(base_spec.path.parent / name, folder / name)
    txt = folder / base_spec.path.name
    text = base_spec.path.read_text()
    assert edit[0] in text
    txt.write_text(text.replace(edit[0], edit[1], 1))
    image = _good_image(tmp_path / "x.png")
    done = limited.run("classify", image, "--base", txt, timeout=60)
    assert done.returncode == 2
    _one_line_each(done.err, [str(txt)])
    assert len(done.err.strip().splitlines()) == 1
    TRIED["classify: base configs"] = TRIED.get("classify: base configs", 0) + 1


def test_outputs_and_pipes_are_one_line_or_quiet(limited, tmp_path):
    done = limited.run("live", "--demo", "--screenshot", tmp_path / "nodir" / "x.png")
    assert done.returncode == 2 and _one_line_each(done.err, ["nodir"])
    done = limited.run("bench", "loop", "--plot", tmp_path / "nodir" / "x.png")
    assert done.returncode == 2 and _one_line_each(done.err, ["nodir"])
    image = _good_image(tmp_path / "x.png")
    pipeline = (f"set -o pipefail; {PATCHLOOP} classify {image} {image} {image} --top 1000 "
                f"--json --base {limited.base} 2>{tmp_path / 'err'} | head -c 1 >/dev/null")
    done = subprocess.run(["bash", "-c", pipeline], timeout=60)
    err = (tmp_path / "err").read_text()
    assert done.returncode in (0, 141) and err == "", err
    TRIED["outputs and pipes"] = 3
