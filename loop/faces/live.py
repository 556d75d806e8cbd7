"""`patchloop live`: opens the source, builds the core, opens or creates the session (its
store holds the session's lock while the window runs), runs the window, and reports what
the disk did not take."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from loop.base.loading import open_base
from loop.base.network import BaseNetwork
from loop.core.engine import LoopCore
from loop.core.patch import PatchSpec, categories_from_names, live_tap
from loop.demo.scene import CATEGORIES
from loop.errors import UserError
from loop.faces.display import require_display
from loop.store.session_link import SessionLink
from loop.faces.sources import DemoSource, open_source
from loop.store.frame_shelf import FrameShelf
from loop.store.records import SessionFormatError
from loop.store.session import SessionStore
from loop.store.session_loader import load_session
from loop.store.session_paths import SessionNotWritable
from patchloop_kernels.runtime import Device


def build_core(args, source, spec: PatchSpec | None = None) -> LoopCore:
    if spec is not None:  # a resumed session: its patch, on the base it was made on
        device = Device.default()
        base = BaseNetwork(device, open_base(args.base)) if spec.topology == "head" else None
        if base is not None and spec.base_hash and spec.base_hash != base.hash:
            raise UserError(f"the session's patch was made on base {spec.base_name} "
                            f"({spec.base_hash}), not on the one loaded ({base.hash})")
        return LoopCore(spec, base=base, device=device)
    if args.categories:
        names = [n.strip() for n in args.categories.split(",") if n.strip()]
    elif isinstance(source, DemoSource):
        names = [name for _, name in CATEGORIES]
    else:
        names = ["background", "object"]
    try:
        spec = PatchSpec(args.name, categories_from_names(names), topology=args.topology,
                         tap=args.tap or live_tap(args.topology, args.fine_tune), loss=args.loss,
                         fine_tune=args.fine_tune)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    device = Device.default()
    base = BaseNetwork(device, open_base(args.base)) if args.topology == "head" else None
    if base is not None:
        spec = replace(spec, base_name=base.spec.name, base_hash=base.hash)
    return LoopCore(spec, base=base, device=device)


def open_session(args, source, holder: str = "patchloop live", read_only_ok: bool = False):
    """(core, link, note): a new session, or the one at --session resumed with its labels
    and its last snapshot's weights. With read_only_ok a session that cannot be written
    (read-only media) opens for viewing: link is None and nothing is saved."""
    path = Path(args.session) if args.session else \
        Path("sessions") / f"{args.name}-{time.strftime('%Y%m%d-%H%M%S')}.h5"
    try:
        if os.path.lexists(path):
            try:
                store = SessionStore.open(path, holder)
            except SessionNotWritable as exc:
                if not read_only_ok:
                    raise
                return _open_read_only(args, source, path, exc)
            warn(store.warnings)
            try:
                needed = {r.frame_id for r in store.state.labels if r.active}
                core = resume_core(args, source, store.state, store.frames(needed))
            except BaseException:
                store.release()
                raise
            state = store.state
            note = f"resumed {path.name}: {state.active_count()} labels on " \
                   f"{len(state.frame_shapes)} frames"
        else:
            core = build_core(args, source)
            store = SessionStore.create(path, core.spec, core.trainer.settings, holder)
            note = f"recording to {path}"
    except (SessionFormatError, OSError, ValueError) as exc:
        raise UserError(f"{path}: {exc}" if str(path) not in str(exc) else str(exc)) from exc
    return core, SessionLink(core, store), note


def _open_read_only(args, source, path: Path, why):
    loaded = load_session(path, frames=False, journal_frames=True)
    warn(loaded.warnings)
    state = loaded.state
    needed = {r.frame_id for r in state.labels if r.active}
    frames = FrameShelf(path, state.frame_shapes, state.frames).read(needed)
    core = resume_core(args, source, state, frames)
    return core, None, f"{path.name} opened read-only ({why}); edits are not saved"


def resume_core(args, source, state, frames: dict) -> LoopCore:
    """A core with a recorded session's patch, labeled frames ({id: image}), standing labels
    (in the order they were made), exclusions, settings and newest snapshot."""
    core = build_core(args, source, state.spec)
    order = [(r.frame_id, r.label()) for r in state.labels if r.active]
    core.resume(frames, order, state.excluded)
    core.change_settings(state.settings)
    snapshot = state.latest_snapshot()
    if snapshot is not None:  # saved before a category was added: it grows to fit
        core.load_saved_weights(snapshot.weights, snapshot.velocity)
    return core


def warn(warnings: list[str]) -> None:
    """A damaged journal's skipped records, one line each: the session still opens."""
    for line in warnings:
        print(f"patchloop: warning: {line}", file=sys.stderr)


def finish(link) -> None:
    """After the window: a problem that lost nothing is a warning; changes that could not
    be saved are an error (exit 2), each named."""
    if link is None:
        return
    if link.discarded:
        print(f"patchloop: nothing was labeled, so {link.store.path} was not kept",
              file=sys.stderr)
    if link.warning:
        warn([link.warning])
    if link.failure:
        raise UserError(link.failure)


def run(args, max_frames: int | None = None) -> int:
    if args.screenshot:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless: no window needed
        max_frames = max_frames or args.frames
    elif args.autoclick:
        raise UserError("--autoclick goes with --screenshot (a demonstration run)")
    require_display("--screenshot FILE")  # before anything is opened or created
    source, note = open_source(args.camera, args.video, args.images, args.demo)
    core, link, session_note = open_session(args, source)
    from loop.faces.windows.live_app import LiveApp  # pygame only when a window is wanted
    app = LiveApp(core, source, note or session_note, window=args.window, link=link)
    try:
        app.run(max_frames, args.screenshot, args.autoclick)
    finally:
        source.close()
    finish(link)
    return 0
