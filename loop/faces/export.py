"""`patchloop export SESSION -o NAME.specialneurons`: a session's patch (its newest snapshot,
or --snapshot TAG) as a plugin that runs without the trainer."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from loop.base.loading import open_base
from loop.base.network import weights_hash
from loop.core.engine import BASE_INPUT
from loop.core.patch import PIXELS_INPUT, TAG_PATTERN
from loop.core.patch_arch import patch_arch
from loop.core.patch_net import split_dense
from loop.errors import UserError
from loop.store.plugin import PluginError, write_plugin
from loop.store.records import SessionFormatError
from loop.store.session_file import read_session


def export_snapshot(spec, dense_weights, out: Path, tag: str, base_spec=None,
                    dtype: str = "float32", icon: bytes | None = None) -> Path:
    """Writes the plugin; `base_spec` is needed for head patches (the tap's channels, and
    the blocks a fine-tuned patch carries)."""
    if spec.topology == "head":
        input_hw, norm = BASE_INPUT, (base_spec.norm_offset, base_spec.norm_scale)
    else:
        input_hw, norm = PIXELS_INPUT, (127.0, 128.0)
    arch = patch_arch(spec, base_spec)
    weights = split_dense(list(arch.layers), dense_weights)
    write_plugin(out, spec, arch, input_hw, weights, tag, time.time(), dtype, icon, norm)
    return out


def run(args) -> int:
    try:
        state = read_session(Path(args.session))
    except OSError as exc:
        raise UserError(f"{args.session}: {exc.strerror or exc}") from exc
    except SessionFormatError as exc:
        raise UserError(str(exc)) from exc
    if not state.snapshots:
        raise UserError(f"{args.session}: holds no snapshot yet (press s in the window, or "
                        "quit it: quitting saves one)")
    if args.snapshot:
        if args.snapshot not in state.snapshots:
            raise UserError(f"{args.session}: no snapshot {args.snapshot!r} (it has: "
                            f"{', '.join(sorted(state.snapshots))})")
        snapshot = state.snapshots[args.snapshot]
    else:
        snapshot = max(state.snapshots.values(), key=lambda s: s.header.get("created", 0))
    spec = state.spec
    if args.trigger is not None:
        triggers = tuple(t.strip() for t in args.trigger.split(",") if t.strip())
        bad = [t for t in triggers if not TAG_PATTERN.match(t)]
        if bad:
            raise UserError(f"--trigger {bad[0]!r}: a trigger is a synset tag like n02123159")
        spec = replace(spec, triggers=triggers)
    if args.threshold is not None:
        if not 0 < args.threshold < 1:
            raise UserError(f"--threshold {args.threshold}: must lie between 0 and 1")
        spec = replace(spec, threshold=args.threshold)
    icon = None
    if args.icon:
        icon_path = Path(args.icon)
        if not icon_path.is_file():
            raise UserError(f"{args.icon}: no such icon file")
        icon = icon_path.read_bytes()
    base_spec = open_base(args.base) if spec.topology == "head" else None
    if base_spec is not None and spec.base_hash and spec.base_hash != weights_hash(base_spec):
        raise UserError(f"{args.session}: made on another base ({spec.base_name} "
                        f"{spec.base_hash}) than the one loaded")
    try:
        out = export_snapshot(spec, snapshot.weights, Path(args.out), snapshot.tag, base_spec,
                              args.dtype, icon)
    except (PluginError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    print(f"{out}: patch {spec.name!r} from snapshot {snapshot.tag} ({args.dtype})")
    if args.onnx:
        onnx_path = write_onnx(out, base_spec)
        print(f"{onnx_path}: the patch with its base and preprocessing, as ONNX")
    return 0


def write_onnx(plugin_path: Path, base_spec) -> Path:
    """NAME.onnx beside NAME.specialneurons, from the plugin as written (its dtype's
    weights, dequantised)."""
    try:
        from loop.store.plugin_onnx import plugin_to_onnx
        from loop.store.plugin_read import read_plugin
        model = plugin_to_onnx(read_plugin(plugin_path), base_spec)
    except ImportError as exc:
        raise UserError("--onnx needs the onnx package: pip install 'patchloop[bench]'") from exc
    out = plugin_path.with_suffix(".onnx")
    out.write_bytes(model.SerializeToString())
    return out
