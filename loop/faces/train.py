"""`patchloop train DATA_DIR`: a patch from a folder of images (map_clsloc.txt layout),
headless: a progress bar with loss, accuracy and images per second; Ctrl+C saves a snapshot
and exits cleanly. The result is a session file: replay it, edit it, train it further live,
export it."""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from loop.base.loading import open_base
from loop.base.network import BaseNetwork
from loop.core.augment import AugmentRanges
from loop.core.engine import AUGMENTED_COPIES, LoopCore
from loop.core.folder_training import ExtractionCancelled, FolderTraining, load_image
from loop.core.patch import Category, PatchSpec
from loop.core.settings import TrainerSettings
from loop.core.train_step import TUNED_RATE
from loop.errors import UserError
from loop.faces.progress import ProgressBar
from loop.store.data_folder import held_out_split, scan_folder
from loop.store.records import (LabelRecord, SessionFormatError, SessionState, frame_factor,
                                shrink_frame, stored_snapshot)
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
        if load_image(path) is None:
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


def run(args) -> int:
    path = None if args.check else _check_args(args)
    folder = check_folder(args.data_dir)
    if args.check:
        return _report_check(args, folder)
    if folder.problems:
        raise UserError(f"{args.data_dir}: {len(folder.problems)} problems (listed above); "
                        "fix them, or see them again with --check")
    core, about = _make_core(args, folder)
    train_items, held_items = held_out_split(folder.images, args.held_out, args.seed)
    job = FolderTraining(core, train_items, held_items)
    window = None
    if _wants_window(args):  # the About dialog comes before the features are computed
        from loop.faces.train_window import TrainWindow
        window = TrainWindow(core, job, args.epochs, path.parent, about=about)
        if not window.ask_about():
            return _cancelled(core)
    try:
        feature_rate = _extract(args, job, window)
    except ExtractionCancelled:
        return _cancelled(core)
    if window is not None:
        window.run()
        interrupted = False
    else:
        interrupted = _train_headless(args, core, job)
    _save(path, core, job)
    print(f"{path}: {len(job.images)} images, held-out accuracy {job.held_out_accuracy():.3f} "
          f"on {len(job.held)}; features {feature_rate:.1f} images/s"
          + (" (tilt-shift copies counted)" if args.augment else "")
          + (" (stopped early)" if interrupted else ""))
    core.close()
    return 0


def _report_check(args, folder) -> int:
    unreadable = _unreadable(folder.images)
    summary = ", ".join(f"{c.name} {n}" for c, n in zip(folder.categories, folder.counts()))
    print(f"{args.data_dir}: {len(folder.images)} images in {len(folder.categories)} "
          f"categories ({summary}); {len(folder.problems)} problems; "
          f"{len(unreadable)} unreadable (skipped when training)")
    return 2 if folder.problems else 0


def _make_core(args, folder) -> tuple[LoopCore, list[str]]:
    """The core with the patch the folder defines, and the About lines (printed here)."""
    try:
        settings = TrainerSettings(learning_rate=args.lr, momentum=args.momentum,
                                   weight_decay=args.decay, batch_size=args.batch)
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
    core.augment_ranges = ranges
    core.trainer.update(flips=args.flips)
    about = _about(spec, base, core.model.arch)
    for line in about:
        print(line)
    return core, about


def _extract(args, job: FolderTraining, window) -> float:
    """Features for every image (and tilt-shift copy), with progress in the terminal and
    the window; returns images per second. The window's Esc raises ExtractionCancelled."""
    copies = AUGMENTED_COPIES if args.augment else 0
    bar = ProgressBar("features" + (f" (+{copies} tilt-shift copies each)" if copies else ""),
                      len(job.train_items) + len(job.held_items)
                      + copies * len(job.train_items))

    def progress(done, total):
        bar.update(done)
        if window is not None:
            window.show_progress(done, total)
    job.extract(args.augment, progress)
    rate = bar.done()
    if job.unreadable:
        print(f"skipped {len(job.unreadable)} unreadable images (first: {job.unreadable[0]})",
              file=sys.stderr)
    if not job.images:
        raise UserError(f"{args.data_dir}: no readable training images")
    return rate


def _train_headless(args, core: LoopCore, job: FolderTraining) -> bool:
    """Epochs with progress bars; Ctrl+C stops early. Returns whether it was interrupted."""
    batch = core.trainer.settings.batch_size
    try:
        for epoch in range(1, args.epochs + 1):
            steps = job.steps_per_epoch()
            bar = ProgressBar(f"epoch {epoch}/{args.epochs}", steps * batch)
            for step in range(steps):
                core.trainer.step()
                bar.update((step + 1) * batch, f"loss {core.trainer.status.last_loss:.4f}")
            bar.done(f"loss {core.trainer.status.last_loss:.4f} train acc "
                     f"{job.train_accuracy():.3f} held-out acc {job.held_out_accuracy():.3f}")
    except KeyboardInterrupt:
        print("\ninterrupted: saving a snapshot", file=sys.stderr)
        return True
    return False


def _cancelled(core) -> int:
    core.close()
    print("cancelled before training: nothing trained, no session written")
    return 0


def _about(spec, base, arch) -> list[str]:
    """What the seed's About dialog tells before training (the terminal prints it too)."""
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


def _save(path: Path, core: LoopCore, job: FolderTraining) -> None:
    """The whole session written at once, under its lock, into a temporary file moved into
    place: a kill leaves no session (a rerun goes ahead) or a whole one, never an empty or
    half-written one."""
    from loop.core.labels import WholeFrameLabel
    state = SessionState(core.spec, core.trainer.settings, time.time())
    for frame_id, image in job.images.items():
        factor = frame_factor(image.shape)
        small = shrink_frame(image, factor)
        state.add_frame(frame_id, small.shape[0], small.shape[1], small)
        state.labels.append(LabelRecord.of(frame_id, WholeFrameLabel(job.categories[frame_id]),
                                           state.created))
    for snapshot in job.snapshots + [core.snapshot()]:
        state.snapshots[snapshot.tag] = stored_snapshot(snapshot)
    state.loss_log = list(core.trainer.status.losses)
    try:
        SessionStore.write_new(path, state, holder="patchloop train")
    except SessionFormatError as exc:
        raise UserError(str(exc)) from exc
