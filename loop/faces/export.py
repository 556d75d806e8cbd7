"""`patchloop export SESSION -o NAME.specialneurons`: a session's patch (its newest snapshot,
or --snapshot TAG) as a plugin that runs without the trainer.

The session is read with its journal and never written. Outputs go to a temporary file in
the target's folder and are moved into place: a kill or a full disk leaves the old file or
the new one, never half of one. An existing output is replaced only with --force, and never
when it is the session itself (or its journal or lock)."""
from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

from loop.base.loading import open_base
from loop.base.network import weights_hash
from loop.core.patch import TAG_PATTERN
from loop.errors import UserError
from loop.store.plugin import MAX_ICON, PluginError
from loop.store.plugin_export import export_snapshot
from loop.store.records import SessionFormatError
from loop.safe_files import read_input, same_place, shown, write_atomically
from loop.store.session_loader import load_session
from loop.store.session_paths import journal_path, lock_path


def run(args) -> int:
    session = Path(args.session)
    out = Path(args.out)
    onnx_out = out.with_suffix(".onnx") if args.onnx else None
    _check_outputs(session, [out] + ([onnx_out] if onnx_out else []), args.force)
    try:
        loaded = load_session(session, frames=False, arrays=True)
    except SessionFormatError as exc:
        raise UserError(str(exc)) from exc
    for line in loaded.warnings:
        print(f"patchloop: warning: {line}", file=sys.stderr)
    state = loaded.state
    if not state.snapshots:
        raise UserError(f"{shown(args.session)}: holds no snapshot yet (press s in the window, "
                        "or quit it: quitting saves one)")
    if args.snapshot:
        if args.snapshot not in state.snapshots:
            raise UserError(f"{shown(args.session)}: no snapshot {shown(args.snapshot)} (it "
                            f"has: {shown(', '.join(sorted(state.snapshots)))})")
        snapshot = state.snapshots[args.snapshot]
    else:
        snapshot = state.latest_snapshot()
    spec = _adjusted_spec(state.spec, args)
    icon = read_input(args.icon, MAX_ICON, "icon") if args.icon else None
    base_spec = open_base(args.base) if spec.topology == "head" else None
    if base_spec is not None and spec.base_hash and spec.base_hash != weights_hash(base_spec):
        raise UserError(f"{shown(args.session)}: made on another base ({spec.base_name} "
                        f"{spec.base_hash}) than the one loaded")
    try:
        export_snapshot(spec, snapshot.weights, out, snapshot.tag, base_spec, args.dtype, icon,
                        replace_existing=args.force)
    except (PluginError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    except OSError as exc:
        raise UserError(_cannot_write(out, exc)) from exc
    print(f"{shown(str(out))}: patch {spec.name!r} from snapshot {snapshot.tag} ({args.dtype})")
    if onnx_out is not None:
        write_onnx(out, base_spec, onnx_out, args.force)
        print(f"{shown(str(onnx_out))}: the patch with its base and preprocessing, as ONNX")
    return 0


def _adjusted_spec(spec, args):
    if args.trigger is not None:
        triggers = tuple(t.strip() for t in args.trigger.split(",") if t.strip())
        bad = [t for t in triggers if not TAG_PATTERN.match(t)]
        if bad:
            raise UserError(f"--trigger {shown(bad[0])}: a trigger is a synset tag like "
                            "n02123159")
        spec = replace(spec, triggers=triggers)
    if args.threshold is not None:
        if not 0 < args.threshold < 1:
            raise UserError(f"--threshold {args.threshold}: must lie between 0 and 1")
        spec = replace(spec, threshold=args.threshold)
    return spec


def _check_outputs(session: Path, outputs: list[Path], force: bool) -> None:
    """Before any work: an output is never the session or one of its files, and replaces
    an existing file only with --force."""
    own = (session, journal_path(session), lock_path(session))
    for out in outputs:
        if any(same_place(out, mine) for mine in own):
            raise UserError(f"{shown(str(out))}: is the session's own file; choose another "
                            "output name")
        if os.path.lexists(out) and not force:
            raise UserError(f"{shown(str(out))}: exists already; add --force to replace it")



def _cannot_write(out: Path, exc: OSError) -> str:
    if isinstance(exc, FileExistsError):
        return f"{shown(str(out))}: exists already; add --force to replace it"
    where = out.parent if str(out.parent) else Path(".")
    return f"{shown(str(out))}: cannot write it in {shown(str(where))} ({exc.strerror or exc})"


def write_onnx(plugin_path: Path, base_spec, out: Path | None = None,
               replace_existing: bool = False) -> Path:
    """NAME.onnx beside NAME.specialneurons, from the plugin as written (its dtype's
    weights, dequantised)."""
    try:
        from loop.store.plugin_onnx import plugin_to_onnx
        from loop.store.plugin_read import read_plugin
        onnx_model = plugin_to_onnx(read_plugin(plugin_path), base_spec)
    except ImportError as exc:
        raise UserError("--onnx needs the onnx package: pip install 'patchloop[bench]'") from exc
    out = out or plugin_path.with_suffix(".onnx")
    data = onnx_model.SerializeToString()
    try:
        write_atomically(out, lambda f: f.write(data), replace=replace_existing)
    except OSError as exc:
        raise UserError(_cannot_write(out, exc)) from exc
    return out
