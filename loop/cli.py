"""The `patchloop` command: parses arguments, hands them to a face, turns user errors into
one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass

from loop.core.patch import FINE_TUNE_TAP, LIVE_TAP, PATCH_TAPS
from loop.faces.train_arguments import add_training_options
from loop.cli_values import frame_rate as _frame_rate, output_file as _output_file, \
    seconds as _seconds
from loop.cli_values import step_scale as _step_scale, window_size as _window_size
from loop.errors import UserError
from loop.safe_files import shown


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line and exit code 2, like every other error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


@dataclass(frozen=True)
class _Face:
    """A command's handler: `loop.faces.<module>.<function>(args)`. The module is imported
    only when its command runs, so `--help` and the light commands start without loading
    pygame or the OpenCL runtime."""
    module: str
    function: str = "run"

    def __call__(self, args) -> int:
        return self.target()(args)

    def target(self):
        return getattr(importlib.import_module(f"loop.faces.{self.module}"), self.function)


def _bench_loop(args) -> int:
    """The real-time loop; with --policy, the simulated labeling policies step by step."""
    return _Face("bench.policies" if args.policy else "bench.loop")(args)


def _json(parser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")


def _base(parser, more: str = "") -> None:
    parser.add_argument("--base", help=f"base network config (.txt){more}")


def _camera_fps(parser, more: str = "") -> None:
    parser.add_argument("--camera-fps", type=_frame_rate, metavar="FPS",
                        help="the demo delivered like a camera at FPS frames a second, the "
                             f"verdicts waiting for each{more}; default: as fast as they are "
                             "judged")


def _sources() -> argparse.ArgumentParser:
    """Where frames come from: the same options for `live` and `apply`."""
    options = _Parser(add_help=False)
    source = options.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int, metavar="N",
                        help="camera index (default: the first that works, else the demo)")
    source.add_argument("--video", metavar="FILE", help="a video file, looping")
    source.add_argument("--images", metavar="FOLDER", help="a folder of images")
    source.add_argument("--demo", action="store_true", help="the built-in demo scene")
    return options


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="patchloop", description="A patch network on a frozen ImageNet base: "
                     "click where its verdict is wrong and an OpenCL trainer corrects it.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="COMMAND")
    sub.add_parser("devices", help="list OpenCL devices and the one that would be used"
                   ).set_defaults(handler=_Face("devices"))
    _bench_kinds(sub.add_parser("bench", help="measure speed (JSON with --json)"))
    base = sub.add_parser("base", help="manage the base network")
    base.add_argument("action", choices=["convert"], help="convert the shipped weights")
    base.add_argument("--out", help="folder for the converted files (default: per-user cache)")
    base.set_defaults(handler=_Face("base_command"))
    sources = _sources()
    _live(sub.add_parser("live", parents=[sources],
                         help="the live window: point the camera, click the mistakes"))
    replay = sub.add_parser("replay", help="step through a session's frames and edit labels")
    replay.add_argument("session", help="the session .h5 file")
    _base(replay)
    replay.set_defaults(handler=_Face("replay"))
    _train(sub.add_parser("train", help="train a patch from a folder of images"))
    _files(sub)
    apply_ = sub.add_parser("apply", parents=[sources],
                            help="run .specialneurons plugins (the companion view)")
    apply_.add_argument("plugins", nargs="+", help="NAME.specialneurons (several: one base pass)")
    apply_.add_argument("--snap-dir", default="snaps",
                        help="data folder the snap key (c) saves frames into")
    _json(apply_)
    apply_.add_argument("--frames", type=int, default=30, help="--json: frames from live sources")
    _base(apply_)
    apply_.set_defaults(handler=_Face("apply"))
    classify = sub.add_parser("classify", help="top-K ImageNet classes of images")
    classify.add_argument("images", nargs="+", help="image files (any format OpenCV reads)")
    classify.add_argument("--top", type=int, default=5, help="classes shown per image")
    _json(classify)
    _base(classify)
    classify.set_defaults(handler=_Face("classify"))
    return parser


def _bench_kinds(bench) -> None:
    """One subcommand per kind of benchmark, each with only the options it reads."""
    kinds = bench.add_subparsers(dest="what", required=True, parser_class=_Parser,
                                 metavar="KIND")
    kernels = kinds.add_parser("kernels", help="the OpenCL kernels against numpy")
    kernels.add_argument("--repeats", type=int, default=20, help="timed calls per case")
    kernels.add_argument("--tune", action="store_true",
                         help="measure every kernel variant choice again and show per shape "
                              "what was chosen and what it gained")
    kernels.set_defaults(handler=_Face("bench.kernels"))
    base = kinds.add_parser("base", help="the base network's forward pass")
    base.add_argument("--repeats", type=int, default=20, help="timed calls per case")
    base.set_defaults(handler=_Face("bench.base"))
    loop = kinds.add_parser("loop", help="the click-train-verdict loop, a simulated user clicking")
    loop.add_argument("--clicks", type=int, default=40, help="clicks of the simulated user")
    loop.add_argument("--seconds", type=float, default=120.0,
                      help="time limit (the real-time run; not with --policy)")
    loop.add_argument("--policy", metavar="NAME|all",
                      help="simulated labeling policies, step by step instead of in real time: "
                      "alternating, streaks, burst, slow, undo, noisy, background_first, "
                      "whole_frame, frozen, or all")
    loop.add_argument("--step-scale", type=_step_scale, default=1.0, metavar="X",
                      help="with --policy: X times the usual training steps between two clicks "
                      "(a faster device: an NVIDIA H200 trains about 3.5 times as many)")
    loop.add_argument("--scored-when-shown", action="store_true",
                      help="with --policy: score the held-out frames right after a click has "
                      "shown, as the real-time run does, not at the end of its pause")
    _camera_fps(loop, " (not with --policy)")
    loop.add_argument("--seed", type=int, default=0, help="demo scene and patch seed")
    loop.add_argument("--plot", type=_output_file, help="write the accuracy curve to this PNG")
    loop.add_argument("--batch", type=int, default=16, help="the trainer's batch size")
    loop.add_argument("--topology", choices=["head", "pixels"], default="head")
    loop.add_argument("--tap", choices=PATCH_TAPS,
                      help=f"where the head reads the base (default {LIVE_TAP}: 8-pixel cells "
                      "from the stride-8 map with the stride-16 map spread over it)")
    loop.set_defaults(handler=_bench_loop)
    train = kinds.add_parser("train", help="training from a folder: features and steps per second")
    train.add_argument("--fine-tune", type=int, default=3, metavar="STAGES",
                       help="blocks fine-tuned in the run beside the frozen one (0: none)")
    train.add_argument("--images", type=int, metavar="N",
                       help="feature extraction on N generated images in this process and on "
                            "1 and 2 local Dask workers, and the peak memory")
    train.set_defaults(handler=_Face("bench.train"))
    step = kinds.add_parser("train-step", help="one patch training step, beside PyTorch CPU "
                            "when it is installed")
    step.add_argument("--topology", choices=["head", "pixels"], default="head")
    step.add_argument("--fine-tune", type=int, default=0, metavar="STAGES",
                      help="head: also train the base's last STAGES blocks (default 0)")
    step.add_argument("--batch", type=int, default=16, help="the batch size (default 16)")
    step.add_argument("--repeats", type=int, default=20, help="timed steps")
    step.set_defaults(handler=_Face("bench.train_step"))
    live = kinds.add_parser("live", help="verdicts/s and steps/s of the live loop, headless")
    live.add_argument("--topology", choices=["head", "pixels"], default="pixels")
    live.add_argument("--tap", choices=PATCH_TAPS, help=f"head: default {LIVE_TAP}")
    live.add_argument("--seconds", type=_seconds, default=20.0, help="measured while training")
    live.add_argument("--seed", type=int, default=0, help="demo video seed")
    _camera_fps(live)
    live.set_defaults(handler=_Face("bench.live"))
    kinds.add_parser("sessions", help="opening and closing sessions of many frames"
                     ).set_defaults(handler=_Face("bench.sessions"))
    for name, kind in kinds.choices.items():
        _json(kind)
        if name in ("base", "loop", "train", "train-step", "live"):
            _base(kind, "; default: EfficientNet-Lite0")


def _live(live) -> None:
    live.add_argument("--categories", help="comma-separated names, background first "
                      "(default: background,object; the demo's own with --demo)")
    live.add_argument("--topology", choices=["head", "pixels"], default="head")
    live.add_argument("--tap", choices=PATCH_TAPS,
                      help=f"where the head reads the base (default {LIVE_TAP}: a hypercolumn, "
                      f"8-pixel cells; {FINE_TUNE_TAP} with --fine-tune)")
    live.add_argument("--fine-tune", type=int, default=0, metavar="STAGES",
                      help="also train the base's last STAGES blocks below the tap (slower steps)")
    live.add_argument("--loss", choices=["cross_entropy", "squared_error"],
                      default="cross_entropy", help="squared_error: the masked +1/-1 score "
                      "loss, for two-category pixels patches")
    live.add_argument("--name", default="patch", help="the patch's name")
    _base(live)
    live.add_argument("--screenshot", type=_output_file, help="run headless for --frames "
                      "frames, save the window to this PNG, and stop")
    live.add_argument("--frames", type=int, default=300,
                      help="frames to show with --screenshot, counted from the first frame")
    live.add_argument("--autoclick", action="store_true",
                      help="with --screenshot on the demo: the simulated annotator clicks")
    live.add_argument("--window", type=_window_size,
                      help="window size WxH (default: four fifths of the screen)")
    live.add_argument("--session", help="session file: resumed if it exists, else created "
                      "(default: sessions/<name>-<time>.h5)")
    live.set_defaults(handler=_Face("live"))


def _train(train) -> None:
    train.add_argument("data_dir", help="folder with map_clsloc.txt at its root")
    train.add_argument("--check", action="store_true", help="report the folder's problems, stop")
    _base(train)
    add_training_options(train)
    train.add_argument("--trigger", help="comma-separated base synsets that trigger the patch")
    train.add_argument("--tap", default="stride16", choices=PATCH_TAPS,
                       help="where the patch reads the base (default stride16; stride8+16: a "
                       "hypercolumn, 8-pixel cells)")
    train.add_argument("--fine-tune", type=int, default=0, metavar="STAGES",
                       help="also train the base's last STAGES blocks below the tap "
                            "(default 0: the base stays frozen)")
    train.add_argument("--name", help="the patch's name (default: the folder's)")
    train.add_argument("--session", help="the session file to write (default: sessions/...)")
    train.add_argument("--json", action="store_true", help="the result (or --check's report) "
                       "as one JSON object on stdout; the lines for people go to stderr")
    window = train.add_mutually_exclusive_group()
    window.add_argument("--headless", action="store_true", help="no window, progress bars only")
    window.add_argument("--window", action="store_true",
                        help="the training window even where no display is detected")
    from loop.faces.train_cluster import add_train_cluster_arguments
    add_train_cluster_arguments(train)   # --workers N, --cluster ADDRESS
    train.set_defaults(handler=_Face("train"))


def _files(sub) -> None:
    """The commands on session and plugin files: eval, export, sessions, merge, info."""
    evaluate = sub.add_parser("eval", help="precision, recall and confusion on a data folder")
    evaluate.add_argument("patch", help="a session .h5 (its newest snapshot) or a .specialneurons")
    evaluate.add_argument("data_dir", help="folder with map_clsloc.txt at its root")
    _json(evaluate)
    evaluate.add_argument("--plot", type=_output_file,
                          help="write the confusion matrix as a PNG")
    _base(evaluate)
    evaluate.set_defaults(handler=_Face("eval_folder"))
    export = sub.add_parser("export", help="a session's patch as a .specialneurons plugin")
    export.add_argument("session", help="the session .h5 file")
    export.add_argument("-o", "--out", required=True, help="NAME.specialneurons")
    export.add_argument("--snapshot", help="snapshot tag (default: the newest)")
    export.add_argument("--icon", help="PNG shown when the patch fires")
    export.add_argument("--trigger", help="comma-separated base synsets that trigger the patch")
    export.add_argument("--threshold", type=float, help="decision threshold")
    export.add_argument("--dtype", choices=["float32", "float16", "int8"], default="float32")
    _base(export)
    export.add_argument("--onnx", action="store_true",
                        help="also write NAME.onnx: the patch with its base and preprocessing")
    export.add_argument("--force", action="store_true",
                        help="replace existing output files (never the session itself)")
    export.set_defaults(handler=_Face("export"))
    sessions = sub.add_parser("sessions", help="list the recorded sessions")
    sessions.add_argument("--dir", default="sessions", help="folder of sessions (./sessions)")
    _json(sessions)
    sessions.set_defaults(handler=_Face("sessions_command", "list_sessions"))
    merge = sub.add_parser("merge", help="merge two sessions of the same patch")
    merge.add_argument("a", help="a session .h5 file")
    merge.add_argument("b", help="another session of the same patch")
    merge.add_argument("-o", "--out", required=True, help="the merged session file (new)")
    merge.set_defaults(handler=_Face("sessions_command", "merge"))
    info = sub.add_parser("info", help="what a session or .specialneurons file holds")
    info.add_argument("file", help="a session .h5 or a .specialneurons file")
    _json(info)
    _base(info, ", for plugins")
    info.set_defaults(handler=_Face("info"))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from patchloop_kernels.runtime import NoOpenCLError
    try:
        code = args.handler(args)
        sys.stdout.flush()  # here, not at exit: a closed pipe must be met inside this try
        return code
    except (UserError, NoOpenCLError) as exc:
        print(f"patchloop: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _reader_gone()
    except OSError as exc:  # an output that cannot be written: a full disk, a folder gone
        where = f"{shown(str(exc.filename))}: " if exc.filename else ""
        print(f"patchloop: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("patchloop: interrupted", file=sys.stderr)
        return 130


def _reader_gone() -> int:
    """What a command does when the pipe it prints into closes (`patchloop info F | head`):
    stop quietly, as a program killed by SIGPIPE would, with its exit code (128 + 13)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())  # the unflushed rest goes nowhere at exit
    except (OSError, ValueError):
        pass  # a stdout without a descriptor: nothing is left to flush into a pipe
    os.close(devnull)
    return 141


if __name__ == "__main__":
    raise SystemExit(main())
