"""The command line as people read it: help specific to each command and bench kind, every
command reaching its face, one plain line about the source or the display a window uses,
"no such file" without OpenCV's own lines, plurals right and no Python values in text."""
import argparse
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from loop.cli import _Face, _parser, main
from loop.errors import UserError
from loop.faces import display
from loop.faces.bench import loop as bench_loop
from loop.store.session import SessionStore

sys.path.insert(0, str(Path(__file__).parent))
from session_writer_child import trained_state  # noqa: E402

BENCH_OPTIONS = {
    "kernels": {"--repeats", "--tune", "--json"},
    "base": {"--repeats", "--json", "--base"},
    "loop": {"--clicks", "--seconds", "--policy", "--step-scale", "--scored-when-shown",
             "--camera-fps", "--seed", "--plot", "--batch", "--topology", "--tap", "--json", "--base"},
    "train": {"--fine-tune", "--images", "--json", "--base"},
    "train-step": {"--topology", "--fine-tune", "--batch", "--repeats", "--json", "--base"},
    "live": {"--topology", "--tap", "--seconds", "--seed", "--camera-fps", "--json", "--base"},
    "sessions": {"--json"},
}


def commands(parser=None, path=()):
    """Every command line's words down to a leaf parser: ("live",), ("bench", "loop"), ..."""
    parser = parser or _parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [path]
    return [leaf for name, child in subs[0].choices.items()
            for leaf in commands(child, path + (name,))]


def help_text(capsys, words) -> str:
    with pytest.raises(SystemExit) as stop:
        main([*words, "--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("words", commands(), ids=" ".join)
def test_every_command_has_help(capsys, words):
    assert f"usage: patchloop {' '.join(words)}" in help_text(capsys, words)


@pytest.mark.parametrize("kind", sorted(BENCH_OPTIONS))
def test_each_bench_kind_lists_only_its_own_options(capsys, kind):
    shown = set(re.findall(r"--[a-z][a-z-]*", help_text(capsys, ["bench", kind])))
    assert shown == BENCH_OPTIONS[kind] | {"--help"}


def test_bench_options_keep_their_defaults():
    parse = _parser().parse_args
    loop = parse(["bench", "loop"])
    assert (loop.clicks, loop.seconds, loop.policy, loop.seed, loop.plot, loop.batch,
            loop.json, loop.base) == (40, 120.0, None, 0, None, 16, False, None)
    assert parse(["bench", "train"]).fine_tune == 3
    assert parse(["bench", "kernels"]).repeats == parse(["bench", "base"]).repeats == 20


@pytest.mark.parametrize("words", commands(), ids=" ".join)
def test_every_option_a_face_reads_is_parsed(words):
    """The attributes `args.X` a command's face function reads exist on its parsed
    arguments (the bench kinds no longer share one parser that gave each every option)."""
    args = _parser().parse_args([*words, *REQUIRED.get(words, [])])
    faces = [args.handler] if isinstance(args.handler, _Face) else \
        [_Face("bench.loop"), _Face("bench.policies")]
    for face in faces:
        for name in set(re.findall(r"\bargs\.([a-z_]+)", inspect.getsource(face.target()))):
            assert hasattr(args, name), f"{' '.join(words)}: {face.module} reads args.{name}"


REQUIRED = {("replay",): ["s.h5"], ("train",): ["data"], ("eval",): ["p.h5", "data"],
            ("export",): ["s.h5", "-o", "p.specialneurons"], ("apply",): ["p.specialneurons"],
            ("merge",): ["a.h5", "b.h5", "-o", "c.h5"], ("info",): ["s.h5"],
            ("classify",): ["x.png"], ("base",): ["convert"]}
DISPATCH = [(["devices"], "devices", "run"), (["bench", "kernels"], "bench.kernels", "run"),
            (["bench", "base"], "bench.base", "run"), (["bench", "loop"], "bench.loop", "run"),
            (["bench", "loop", "--policy", "all"], "bench.policies", "run"),
            (["bench", "train"], "bench.train", "run"),
            (["bench", "train-step"], "bench.train_step", "run"),
            (["bench", "sessions"], "bench.sessions", "run"),
            (["bench", "live"], "bench.live", "run"),
            (["base"], "base_command", "run"), (["live"], "live", "run"),
            (["replay"], "replay", "run"), (["train"], "train", "run"),
            (["eval"], "eval_folder", "run"), (["export"], "export", "run"),
            (["apply"], "apply", "run"), (["sessions"], "sessions_command", "list_sessions"),
            (["merge"], "sessions_command", "merge"), (["info"], "info", "run"),
            (["classify"], "classify", "run")]


def test_the_dispatch_table_covers_every_command():
    assert {tuple(w[:2]) for w, _, _ in DISPATCH} == set(commands())


@pytest.mark.parametrize("words, module, function", DISPATCH,
                         ids=[" ".join(words) for words, _, _ in DISPATCH])
def test_every_command_reaches_its_face(monkeypatch, words, module, function):
    face = __import__(f"loop.faces.{module}", fromlist=[function])
    seen = []
    monkeypatch.setattr(face, function, lambda args: seen.append(args) or 7)
    assert main([*words, *REQUIRED.get(tuple(words[:1]), [])]) == 7
    assert len(seen) == 1 and seen[0].command == words[0]


def run_python(*argv, code=None):
    """A fresh interpreter, so that what OpenCV writes on descriptor 2 is seen too."""
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "loop.cli"]
    done = subprocess.run([*command, *map(str, argv)], capture_output=True, text=True,
                          env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
    return done, done.stderr.strip().splitlines()


def test_classify_on_a_missing_file_is_one_line(tmp_path, base_spec):
    done, lines = run_python("classify", tmp_path / "missing.png", "--base", base_spec.path)
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0] == f"patchloop: {tmp_path / 'missing.png'}: no such file"


NO_CAMERA = """
from loop.faces import sources
sources.CAMERA_INDICES = (97, 98)
source, note = sources.open_source()
print(type(source).__name__, "|", note)
"""


def test_no_camera_is_one_plain_line_and_the_demo():
    done, lines = run_python(code=NO_CAMERA)
    assert done.stdout.startswith("DemoSource |") and "demo" in done.stdout
    assert len(lines) == 1 and "WARN" not in done.stderr, done.stderr
    assert "no camera answered (tried indices 97 and 98)" in lines[0]
    assert "--camera N" in lines[0] and "demo scene" in lines[0]


def test_a_camera_that_gives_nothing_is_one_line():
    done, lines = run_python("live", "--camera", "97")
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("patchloop: camera 97 gives no frames")


@pytest.fixture
def no_display(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("driver", ["", "x11", "wayland,x11"])
def test_no_display_names_the_headless_option(no_display, driver):
    no_display.setenv("SDL_VIDEODRIVER", driver)
    with pytest.raises(UserError, match="no display .* pass --screenshot FILE for a headless"):
        display.require_display("--screenshot FILE")


@pytest.mark.parametrize("env", [{"SDL_VIDEODRIVER": "dummy"}, {"SDL_VIDEODRIVER": "offscreen"},
                                 {"SDL_VIDEODRIVER": "kmsdrm"}, {"DISPLAY": ":0"},
                                 {"WAYLAND_DISPLAY": "wayland-0"}])
def test_a_display_or_a_chosen_driver_is_enough(no_display, env):
    for name, value in env.items():
        no_display.setenv(name, value)
    display.require_display("--screenshot FILE")


@pytest.mark.parametrize("words, option", [(["live", "--demo"], "--screenshot FILE"),
                                           (["apply", "p.specialneurons"], "--json")])
def test_window_commands_without_a_display_stop_before_opening_anything(
        no_display, capsys, words, option):
    """Needs `require_display(...)` called first in live.run and apply.run."""
    def opened(*args, **kwargs):
        raise AssertionError("a source was opened before the display was checked")
    for face in ("live", "apply"):
        no_display.setattr(f"loop.faces.{face}.open_source", opened)
    assert main(words) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no display" in err and option in err


@pytest.fixture
def sessions(tmp_path):
    """A folder of two sessions: one of 1 frame and 1 label, one of 2 frames and 2."""
    folder = tmp_path / "sessions"
    folder.mkdir()
    SessionStore.write_new(folder / "one.h5", trained_state(1, 1))
    SessionStore.write_new(folder / "two.h5", trained_state(2, 2))
    return folder


def plain(capsys, *argv) -> str:
    assert main(list(map(str, argv))) == 0
    out = capsys.readouterr().out
    assert not re.search(r"\bNone\b|\bTrue\b|\bFalse\b|[\[\]{}]", out), out
    return out


def test_info_sessions_and_merge_count_in_words(capsys, sessions, tmp_path):
    assert "  1 frame, 1 label (" in plain(capsys, "info", sessions / "one.h5")
    assert "  2 frames, 2 labels (" in plain(capsys, "info", sessions / "two.h5")
    listed = plain(capsys, "sessions", "--dir", sessions).splitlines()
    assert " - 1 frame, 1 label (bg 1, thing 0);" in listed[0]
    assert " - 2 frames, 2 labels (bg 1, thing 1);" in listed[1]
    merged = plain(capsys, "merge", sessions / "one.h5", sessions / "two.h5",
                   "-o", tmp_path / "m.h5")
    assert merged.endswith(": 3 frames, 3 labels\n")


def test_plugin_info_has_no_python_values(capsys, sessions, tmp_path):
    plugin = tmp_path / "one.specialneurons"
    assert main(["export", str(sessions / "one.h5"), "-o", str(plugin)]) == 0
    capsys.readouterr()
    out = plain(capsys, "info", plugin)
    assert "; no icon" in out and re.search(r"\n  w0: \d+x\d+x3x3 float32 \(\d+ bytes\)", out)


def test_bench_loop_text_without_pytorch_or_flips():
    report = {"device": "cpu", "training_speed_batch16": {
        "patchloop_steps_per_second": 40.0, "pytorch_steps_per_second": None},
        "loop": {"clicks": 1, "seconds": 3.2, "final_balanced_accuracy": 0.5,
                 "clicks_to_90": None, "clicks_to_95": None, "verdicts_per_second": 12.0,
                 "final_pixel_balanced_accuracy": 0.5, "pixel_clicks_to_95": None,
                 "pixel_clicks_to_97": None, "final_false_regions_per_frame": 0.25,
                 "click_to_flip_ms": {"median": None, "p95": None, "flipped": 0,
                                      "not_flipped_within_s": [1, 3.0]}}}
    text = bench_loop._text(report)
    assert "None" not in text and "1 click in 3.2 s" in text
    assert "false object regions per held-out frame 0.25" in text
    assert "recall by category" not in text, "a report from before it names no recall"
    assert "outside the" not in text, "nor the rate outside the held-out scoring"
    assert "steps between two clicks" not in text, "nor the steps between clicks"
    report["loop"]["training_steps_per_click"] = 18.3
    assert "training steps between two clicks: 18.3" in bench_loop._text(report)
    report["loop"].update(verdicts_per_second_outside_scoring=14.5, held_out_scoring_seconds=2.1)
    assert "verdicts/s while training: 12.0 (14.5 outside the 2.1 s of held-out scoring)" in \
        bench_loop._text(report)
    report["loop"]["final_pixel_recall"] = {"background": 0.99, "ball": 0.9125, "box": None}
    assert "per pixel, recall by category: background 0.990, ball 0.912, box -" in \
        bench_loop._text(report)
    assert "PyTorch not installed" in text and "no click flipped the verdict" in text
    assert "machine while measuring" not in text, "a report from before it names no machine"
    report["machine"] = {"cores": 2, "this_process": 0.5, "other_processes": 0.0,
                         "idle": 0.1, "steal": 0.4}
    assert bench_loop._text(report).endswith(
        "taken by the hypervisor 40%; not a quiet machine: compare only with runs taken in turn")
    report["loop"]["click_to_flip_ms"] = {"median": 120.0, "p95": 300.0, "flipped": 38,
                                          "not_flipped_within_s": [0, 3.0],
                                          "before_a_second_category": 1}
    text = bench_loop._text(report)
    assert "(38 of 38 clicks flipped within 3.0 s; 1 click before a second category" in text
