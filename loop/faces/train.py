"""`patchloop train DATA_DIR`: a patch from a folder of images (map_clsloc.txt layout),
headless: a progress bar with loss, accuracy and images per second; Ctrl+C saves a snapshot
and exits cleanly. Features go to a feature store beside the session (train_extract; with
--workers or --cluster, computed on a Dask cluster: train_cluster), and a rerun after an
interruption goes on from the features already there. The result is a session file: replay
it, edit it, train it further live, export it."""
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from loop.base.loading import open_base
from loop.base.network import BaseNetwork
from loop.core.augment import AugmentRanges
from loop.core.engine import LoopCore
from loop.core.frame_pipeline import BASE_INPUT
from loop.core.labels_book import AUGMENTED_COPIES
from loop.core.folder_training import (AugmentSettings, ExtractionCancelled, ExtractionPlan,
                                       FolderTraining)
from loop.core.patch import Category, PatchSpec
from loop.core.settings import MOMENTUM_STEPPING, TrainerSettings
from loop.core.train_step import TUNED_RATE
from loop.errors import UserError
from loop.store.images import load_folder_image
from loop.faces.eval_folder import confusion_report, confusion_table
from loop.faces.progress import ProgressBar
from loop.faces.train_cluster import check_cluster_args, shard_results
from loop.faces.train_extract import build_job, store_path
from loop.faces.train_summary import TrainingResult
from loop.store.data_folder import held_out_split, scan_folder
from loop.store.records import LabelRecord, SessionFormatError, SessionState, stored_snapshot
from loop.store.session import SessionStore
from patchloop_kernels.runtime import Device


def check_folder(data_dir: str):
    folder = scan_folder(data_dir)
    for problem in folder.problems:
        print(f"patchloop: {problem}", file=sys.stderr)
    return folder


def _unreadable(images: list) -> list[str]:
    """Images OpenCV cannot decode, each reported: not fatal, training skips them."""
    bar = ProgressBar("reading", len(images))
    found = []
    for done, (path, _) in enumerate(images, 1):
        if load_folder_image(path, BASE_INPUT) is None:
            found.append(str(path))
            print(f"\rpatchloop: {path}: not an image OpenCV can read (skipped when "
                  "training)", file=sys.stderr)
        bar.update(done)
    bar.done()
    return found


def _spec(args, folder, base) -> PatchSpec:
    triggers = tuple(t.strip() for t in (args.trigger or "").split(",") if t.strip())
    triggers += tuple(c.tag for c in folder.triggers if c.tag not in triggers)
    categories = tuple(Category(c.tag, i, c.name) for i, c in enumerate(folder.categories))
    try:
        return PatchSpec(args.name or Path(args.data_dir).resolve().name or "patch", categories,
                         triggers, "head", args.tap, pooling="mean", seed=args.seed,
                         base_name=base.spec.name, base_hash=base.hash,
                         fine_tune=args.fine_tune)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def _check_args(args) -> Path:
    """Values checked before any work; returns the session path to write (new, never over
    an existing session: that one would be lost)."""
    if not 0 <= args.held_out <= 0.9:
        raise UserError(f"--held-out {args.held_out:g}: the fraction kept for validation must "
                        "lie between 0 and 0.9")
    if args.epochs < 1:
        raise UserError(f"--epochs {args.epochs}: at least one pass over the images is needed")
    check_cluster_args(args)
    path = Path(args.session) if args.session else \
        Path("sessions") / f"{args.name or Path(args.data_dir).resolve().name or 'patch'}-" \
                           f"{time.strftime('%Y%m%d-%H%M%S')}.h5"
    if path.exists():
        raise UserError(f"{path}: exists already; choose another --session (train it further "
                        "with patchloop live --session or replay)")
    try:  # find an unwritable folder now, not after the training it would lose
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".patchloop-probe-"):
            pass
    except OSError as exc:
        raise UserError(f"{path.parent}: cannot write the session there ({exc.strerror})") \
            from exc
    return path


def run(args, answer_frames: int | None = None) -> int:
    """`answer_frames`: how many frames the window's questions (the About dialog, the result
    screen) wait for the user; None waits until the user answers, except under SDL's dummy
    video driver, where no one can (one frame: drawn, read by tests, never blocking).
    With --json the lines for people go to stderr and stdout gets one JSON object: the
    folder's check, or the training's result."""
    if not getattr(args, "json", False):
        return _run(args, answer_frames, {})
    report: dict = {}
    with contextlib.redirect_stdout(sys.stderr):
        code = _run(args, answer_frames, report)
    print(json.dumps(report, indent=2))
    return code


def _run(args, answer_frames, report: dict) -> int:
    path = None if args.check else _check_args(args)
    folder = check_folder(args.data_dir)
    if args.check:
        return _report_check(args, folder, report)
    if folder.problems:
        raise UserError(f"{args.data_dir}: {len(folder.problems)} problems (listed above); "
                        "fix them, or see them again with --check")
    core, about = _make_core(args, folder)
    train_items, held_items = held_out_split(folder.images, args.held_out, args.seed)
    plan = ExtractionPlan(tuple(train_items), tuple(held_items), AugmentSettings(
        AUGMENTED_COPIES if args.augment else 0, core.copies.ranges, args.flips,
        core.spec.seed))
    if answer_frames is None and os.environ.get("SDL_VIDEODRIVER") == "dummy":
        answer_frames = 1
    window = None
    if _wants_window(args):  # the About dialog comes before the features are computed
        from loop.faces.windows.train_window import TrainWindow
        window = TrainWindow(core, None, args.epochs, path.parent, about=about)
        if not window.ask_about(answer_frames):
            return _cancelled(core, window)
    try:
        job, store, feature_rate = _extract(args, core, plan, path.parent, window)
    except ExtractionCancelled:
        return _cancelled(core, window)
    try:
        if window is not None:
            window.job = job
            window.run()
            stopped_early = not window.running
        else:
            stopped_early = _train_headless(args, core, job)
        result = finish_training(path, core, job, args.epochs, stopped_early,
                                 window.saved if window else [])
    finally:
        store.close()
    features = "features from the store" if feature_rate is None else \
        f"features {feature_rate:.1f} images/s" + (" (tilt-shift copies counted)"
                                                   if args.augment else "")
    print(f"{path}: {job.images} images, held-out accuracy {result.held_out_accuracy:.3f} "
          f"on {result.held_out_images}; {features}"
          + (" (stopped early)" if result.stopped_early else ""))
    if result.confusion is not None:
        print("\n".join(confusion_table(result.confusion)))
    report.update(result_report(result, job.images, feature_rate))
    if window is not None:  # the session is on disk before the result screen names it
        window.show_result(result, answer_frames)
        window.close()
    core.close()
    return 0


def _report_check(args, folder, report: dict) -> int:
    unreadable = _unreadable(folder.images)
    report.update({"images": len(folder.images), "problems": list(folder.problems),
                   "unreadable": [str(p) for p in unreadable],
                   "categories": {c.name: n for c, n in zip(folder.categories, folder.counts())}})
    summary = ", ".join(f"{c.name} {n}" for c, n in zip(folder.categories, folder.counts()))
    print(f"{args.data_dir}: {len(folder.images)} images in {len(folder.categories)} "
          f"categories ({summary}); {len(folder.problems)} problems; "
          f"{len(unreadable)} unreadable (skipped when training)")
    return 2 if folder.problems else 0


def _make_core(args, folder) -> tuple[LoopCore, list[str]]:
    """The core with the patch the folder defines, and the About lines (printed here)."""
    try:
        # Folder training keeps momentum's stepping, as its figures were measured (every
        # image labeled at once: no clicks to answer).
        settings = TrainerSettings(learning_rate=args.lr, momentum=args.momentum,
                                   weight_decay=args.decay, batch_size=args.batch,
                                   **MOMENTUM_STEPPING)
        ranges = AugmentRanges(args.tilt, args.shift, args.colour_shift, args.gain)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    base = BaseNetwork(Device.default(), open_base(args.base))
    spec = _spec(args, folder, base)
    try:
        core = LoopCore(spec, base=base, settings=settings)
    except ValueError as exc:
        raise UserError(f"--fine-tune {args.fine_tune}: {exc}" if args.fine_tune else str(exc)) \
            from exc
    core.set_augmentation(ranges, args.flips)
    about = _about(spec, base, core.model.arch)
    for line in about:
        print(line)
    return core, about


def _extract(args, core, plan: ExtractionPlan, session_dir: Path, window):
    """The feature store filled, with progress in the terminal and the window: (the job
    streaming from it, the store, base passes per second or None when none was computed
    here). The window's Esc raises
    ExtractionCancelled; Ctrl+C keeps what was computed for the next run."""
    copies = plan.augment.copies
    title = "features" + (f" (+{copies} tilt-shift copies each)" if copies else "")
    bar = []  # (the bar over what is left to compute, the passes found in the store)

    def progress(done, total):
        if not bar:
            bar.extend((ProgressBar(title, total - done), done))
        bar[0].update(done - bar[1])
        if window is not None:
            window.show_progress(done, total)
    where = store_path(session_dir, args.data_dir)
    try:
        with shard_results(args, core, plan) as results:
            job, done, store = build_job(core, plan, where, results, progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the features computed so far are kept in {where}; the same "
              "command goes on from there", file=sys.stderr)
        raise
    if done.computed:
        bar[0].done()
    if done.reused:
        print(f"features: {done.reused} of {done.shards} shards were in {where} already")
    if job.unreadable:
        print(f"skipped {len(job.unreadable)} unreadable images (first: {job.unreadable[0]})",
              file=sys.stderr)
    if not job.images:
        store.close()
        raise UserError(f"{args.data_dir}: no readable training images")
    return job, store, done.images_per_second if done.computed else None


def _train_headless(args, core: LoopCore, job: FolderTraining) -> bool:
    """Epochs with progress bars; Ctrl+C stops early. Returns whether it was interrupted."""
    batch = core.trainer.settings.batch_size
    try:
        for epoch in range(1, args.epochs + 1):
            steps = job.steps_per_epoch()
            bar = ProgressBar(f"epoch {epoch}/{args.epochs}", steps * batch)
            for step in range(steps):
                job.step()
                bar.update((step + 1) * batch, f"loss {core.trainer.status.last_loss:.4f}")
            bar.done(f"loss {core.trainer.status.last_loss:.4f} train acc "
                     f"{job.train_accuracy():.3f} held-out acc {job.held_out_accuracy():.3f}")
    except KeyboardInterrupt:
        print("\ninterrupted: saving a snapshot", file=sys.stderr)
        return True
    return False


def _cancelled(core, window) -> int:
    if window is not None:
        window.close()
    core.close()
    print("cancelled before training: nothing trained, no session written")
    return 0


def _about(spec, base, arch) -> list[str]:
    """What the About dialog tells before training (the terminal prints it too)."""
    lines = [f"the last layer is reconfigured to the patch's {spec.outputs} categories "
             f"({', '.join(spec.names)}) instead of the base's {len(base.classes)}"]
    if arch.tuned:
        lines.append(f"fine-tuning the base's last {len(arch.tuned_blocks)} blocks "
                     f"({', '.join(arch.tuned_blocks)}) at {TUNED_RATE:g}x the learning rate; "
                     f"features are taken once per image at {arch.input_layer}")
    return lines


def _wants_window(args) -> bool:
    """The window by default when a display is present; --headless (or none) otherwise."""
    if args.headless:
        return False
    if os.environ.get("SDL_VIDEODRIVER") == "dummy":
        return bool(args.window)
    return bool(args.window or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def finish_training(path: Path, core: LoopCore, job: FolderTraining, epochs: int,
                    stopped_early: bool, patch_files: list) -> TrainingResult:
    """The session saved, then what training came to: the result names only written files."""
    _save(path, core, job)
    verdicts = list(job.held_verdicts())
    right = sum(truth == said for truth, said, _ in verdicts)
    return TrainingResult(str(path), core.trainer.status.steps, job.steps_per_epoch() * epochs,
                          right / len(verdicts) if verdicts else float("nan"), len(verdicts),
                          confusion_report(core.spec.names, verdicts) if verdicts else None,
                          stopped_early, list(patch_files))


def _save(path: Path, core: LoopCore, job: FolderTraining) -> None:
    """The whole session written at once, under its lock, into a temporary file moved into
    place: a kill leaves no session (a rerun goes ahead) or a whole one, never an empty or
    half-written one."""
    from loop.core.labels import WholeFrameLabel
    state = SessionState(core.spec, core.trainer.settings, time.time())
    for row in job.train_rows[job.copy[job.train_rows] == 0]:
        frame_id = int(job.item[row]) + 1
        state.add_frame(frame_id, *core.base_input)
        state.labels.append(LabelRecord.of(frame_id, WholeFrameLabel(int(job.category[row])),
                                           state.created))
    for snapshot in job.snapshots + [core.snapshot()]:
        state.snapshots[snapshot.tag] = stored_snapshot(snapshot)
    state.loss_log = list(core.trainer.status.losses)
    try:
        SessionStore.write_new(path, state, job.training_images(), holder="patchloop train")
    except SessionFormatError as exc:
        raise UserError(str(exc)) from exc



def result_report(result: TrainingResult, images: int, feature_rate) -> dict:
    """The training's result for `train --json`."""
    accuracy = result.held_out_accuracy
    return {"session": result.session, "images": images, "steps": result.steps,
            "planned_steps": result.planned_steps, "stopped_early": result.stopped_early,
            "held_out_images": result.held_out_images,
            "held_out_accuracy": None if math.isnan(accuracy) else round(accuracy, 4),
            "confusion": result.confusion, "patch_files": list(result.patch_files),
            "feature_images_per_second": None if feature_rate is None
            else round(feature_rate, 2)}
