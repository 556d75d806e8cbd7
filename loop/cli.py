"""The `patchloop` command: parses arguments, hands them to a face, turns user errors into
one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import os
import sys

from loop.errors import UserError
from loop.store.safe_files import shown


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line and exit code 2, like every other error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog.split()[0]} --help)\n")


def _window_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"window size {text!r} is not WxH, e.g. 1280x720")
    if width < 320 or height < 240:
        raise argparse.ArgumentTypeError(f"window size {text!r} is below 320x240")
    return width, height


def _output_file(text: str) -> str:
    """A file to write: its folder must exist, checked before the minutes of work it ends."""
    folder = os.path.dirname(text) or "."
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"{text!r}: there is no folder {folder!r} to write into")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text!r}: the folder {folder!r} is not writable")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="patchloop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("devices", help="list OpenCL devices and the one that would be used")

    bench = sub.add_parser("bench", help="measure speed (JSON with --json)")
    bench.add_argument("what", choices=["kernels", "base", "loop", "train", "sessions"],
                       help="what to measure")
    bench.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    bench.add_argument("--repeats", type=int, default=20, help="timed calls per case")
    bench.add_argument("--base", help="base network config (.txt); default: EfficientNet-Lite0")
    bench.add_argument("--clicks", type=int, default=40, help="loop: clicks of the simulated user")
    bench.add_argument("--seconds", type=float, default=120.0,
                       help="loop: time limit (the real-time run; not with --policy)")
    bench.add_argument("--policy", metavar="NAME|all",
                       help="loop: simulated labeling policies, step by step instead of in real "
                       "time: alternating, streaks, burst, slow, undo, noisy, background_first, "
                       "whole_frame, frozen, or all")
    bench.add_argument("--seed", type=int, default=0, help="loop: demo scene and patch seed")
    bench.add_argument("--plot", type=_output_file,
                       help="loop: write the accuracy curve to this PNG")
    bench.add_argument("--batch", type=int, default=16, help="loop: the trainer's batch size")
    bench.add_argument("--fine-tune", type=int, default=3, metavar="STAGES",
                       help="train: blocks fine-tuned in the run beside the frozen one (0: none)")

    base = sub.add_parser("base", help="manage the base network")
    base.add_argument("action", choices=["convert"], help="convert the shipped weights")
    base.add_argument("--out", help="folder for the converted files (default: per-user cache)")

    live = sub.add_parser("live", help="the live window: point the camera, click the mistakes")
    source = live.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int, help="camera index (default: the first that works)")
    source.add_argument("--video", help="a video file, looping")
    source.add_argument("--images", help="a folder of images")
    source.add_argument("--demo", action="store_true", help="the built-in demo scene")
    live.add_argument("--categories", help="comma-separated names, background first "
                      "(default: background,object; the demo's own with --demo)")
    live.add_argument("--topology", choices=["head", "pixels"], default="head")
    live.add_argument("--tap", default="stride16", help="base stage the head sits on")
    live.add_argument("--fine-tune", type=int, default=0, metavar="STAGES",
                      help="also train the base's last STAGES blocks below the tap (slower steps)")
    live.add_argument("--loss", choices=["cross_entropy", "squared_error"],
                      default="cross_entropy", help="squared_error: the masked +1/-1 score loss, for "
                      "two-category pixels patches")
    live.add_argument("--name", default="patch", help="the patch's name")
    live.add_argument("--base", help="base network config (.txt)")
    live.add_argument("--screenshot", type=_output_file, help="run headless for --frames "
                      "frames, save the window to this PNG, and stop")
    live.add_argument("--frames", type=int, default=300, help="frames to run with --screenshot")
    live.add_argument("--autoclick", action="store_true",
                      help="with --screenshot on the demo: the simulated annotator clicks")
    live.add_argument("--window", type=_window_size,
                      help="window size WxH (default: four fifths of the screen)")
    live.add_argument("--session", help="session file: resumed if it exists, else created "
                      "(default: sessions/<name>-<time>.h5)")

    replay = sub.add_parser("replay", help="step through a session's frames and edit labels")
    replay.add_argument("session", help="the session .h5 file")
    replay.add_argument("--base", help="base network config (.txt)")

    train = sub.add_parser("train", help="train a patch from a folder of images")
    train.add_argument("data_dir", help="folder with map_clsloc.txt at its root")
    train.add_argument("--check", action="store_true", help="report the folder's problems, stop")
    train.add_argument("--base", help="base network config (.txt)")
    train.add_argument("--batch", type=int, default=16, help="images per step (default 16)")
    train.add_argument("--lr", type=float, default=0.005, help="learning rate (default 0.005)")
    train.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    train.add_argument("--decay", type=float, default=1e-4, help="weight decay (default 1e-4)")
    train.add_argument("--epochs", type=int, default=10, help="passes over the images (default 10)")
    train.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                       help="rand-tilt-shift copies of every training image")
    train.add_argument("--tilt", type=float, default=10.0, help="augment: max rotation, degrees")
    train.add_argument("--shift", type=float, default=0.08, help="augment: max shift, of the size")
    train.add_argument("--colour-shift", type=float, default=20.0,
                       help="augment: max shift per colour channel (0-255 units)")
    train.add_argument("--gain", type=float, default=0.15, help="augment: max brightness change")
    train.add_argument("--flips", action="store_true", help="augment: mirror images too")
    train.add_argument("--held-out", type=float, default=0.1, help="fraction kept for validation")
    train.add_argument("--seed", type=int, default=0, help="fixes the held-out split")
    train.add_argument("--trigger", help="comma-separated base synsets that trigger the patch")
    train.add_argument("--tap", default="stride16",
                       help="base stage the patch reads (stride2..stride32, default stride16)")
    train.add_argument("--fine-tune", type=int, default=0, metavar="STAGES",
                       help="also train the base's last STAGES blocks below the tap "
                            "(default 0: the base stays frozen)")
    train.add_argument("--name", help="the patch's name (default: the folder's)")
    train.add_argument("--session", help="the session file to write (default: sessions/...)")
    shown = train.add_mutually_exclusive_group()
    shown.add_argument("--headless", action="store_true", help="no window, progress bars only")
    shown.add_argument("--window", action="store_true",
                       help="the training window even where no display is detected")

    evaluate = sub.add_parser("eval", help="precision, recall and confusion on a data folder")
    evaluate.add_argument("patch", help="a session .h5 (its newest snapshot) or a .specialneurons")
    evaluate.add_argument("data_dir", help="folder with map_clsloc.txt at its root")
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--plot", type=_output_file,
                          help="write the confusion matrix as a PNG")
    evaluate.add_argument("--base", help="base network config (.txt)")

    export = sub.add_parser("export", help="a session's patch as a .specialneurons plugin")
    export.add_argument("session", help="the session .h5 file")
    export.add_argument("-o", "--out", required=True, help="NAME.specialneurons")
    export.add_argument("--snapshot", help="snapshot tag (default: the newest)")
    export.add_argument("--icon", help="PNG shown when the patch fires")
    export.add_argument("--trigger", help="comma-separated base synsets that trigger the patch")
    export.add_argument("--threshold", type=float, help="decision threshold")
    export.add_argument("--dtype", choices=["float32", "float16", "int8"], default="float32")
    export.add_argument("--base", help="base network config (.txt)")
    export.add_argument("--onnx", action="store_true",
                        help="also write NAME.onnx: the patch with its base and preprocessing")
    export.add_argument("--force", action="store_true",
                        help="replace existing output files (never the session itself)")

    apply_ = sub.add_parser("apply", help="run .specialneurons plugins (the companion view)")
    apply_.add_argument("plugins", nargs="+", help="NAME.specialneurons (several: one base pass)")
    apply_.add_argument("--snap-dir", default="snaps",
                        help="data folder the snap key (c) saves frames into")
    source = apply_.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int)
    source.add_argument("--video")
    source.add_argument("--images")
    source.add_argument("--demo", action="store_true")
    apply_.add_argument("--json", action="store_true", help="one JSON line per frame, no window")
    apply_.add_argument("--frames", type=int, default=30, help="--json: frames from live sources")
    apply_.add_argument("--base", help="base network config (.txt)")

    sessions = sub.add_parser("sessions", help="list the recorded sessions")
    sessions.add_argument("--dir", default="sessions", help="folder of sessions (./sessions)")
    sessions.add_argument("--json", action="store_true")

    merge = sub.add_parser("merge", help="merge two sessions of the same patch")
    merge.add_argument("a")
    merge.add_argument("b")
    merge.add_argument("-o", "--out", required=True, help="the merged session file (new)")

    info = sub.add_parser("info", help="what a session or .specialneurons file holds")
    info.add_argument("file", help="a session .h5 or a .specialneurons file")
    info.add_argument("--json", action="store_true")
    info.add_argument("--base", help="base network config (.txt), for plugins")

    classify = sub.add_parser("classify", help="top-K ImageNet classes of images")
    classify.add_argument("images", nargs="+", help="image files (any format OpenCV reads)")
    classify.add_argument("--top", type=int, default=5)
    classify.add_argument("--json", action="store_true")
    classify.add_argument("--base", help="base network config (.txt)")
    return parser


def _dispatch(args) -> int:
    if args.command == "devices":
        from loop.faces import devices
        return devices.run(args)
    if args.command == "bench" and args.what == "kernels":
        from loop.faces import bench_kernels
        return bench_kernels.run(args)
    if args.command == "bench" and args.what == "base":
        from loop.faces import bench_base
        return bench_base.run(args)
    if args.command == "bench" and args.what == "train":
        from loop.faces import bench_train
        return bench_train.run(args)
    if args.command == "bench" and args.what == "sessions":
        from loop.faces import bench_sessions
        return bench_sessions.run(args)
    if args.command == "bench" and args.what == "loop" and args.policy:
        from loop.faces import bench_policies
        return bench_policies.run(args)
    if args.command == "bench" and args.what == "loop":
        from loop.faces import bench_loop
        return bench_loop.run(args)
    if args.command == "base":
        from loop.faces import base_command
        return base_command.run(args)
    if args.command == "live":
        from loop.faces import live
        return live.run(args)
    if args.command == "replay":
        from loop.faces import replay
        return replay.run(args)
    if args.command == "train":
        from loop.faces import train
        return train.run(args)
    if args.command == "eval":
        from loop.faces import eval_folder
        return eval_folder.run(args)
    if args.command == "export":
        from loop.faces import export
        return export.run(args)
    if args.command == "apply":
        from loop.faces import apply
        return apply.run(args)
    if args.command == "sessions":
        from loop.faces import sessions_command
        return sessions_command.list_sessions(args)
    if args.command == "merge":
        from loop.faces import sessions_command
        return sessions_command.merge(args)
    if args.command == "info":
        from loop.faces import info
        return info.run(args)
    if args.command == "classify":
        from loop.faces import classify
        return classify.run(args)
    raise UserError(f"unknown command {args.command!r}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from patchloop_kernels.runtime import NoOpenCLError
    try:
        code = _dispatch(args)
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
