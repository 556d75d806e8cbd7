"""`patchloop apply NAME.specialneurons [MORE...]`: the companion view, the same for one
plugin or several. The base runs on every frame, each patch when it is triggered, and a
patch's icon shows when it fires; `--json` prints one JSON line per frame instead of a
window, each patch named by its file as well as its name."""
from __future__ import annotations

import json
import math
import sys
from dataclasses import replace

from loop.base.loading import open_base
from loop.base.network import BaseNetwork
from loop.core.engine import LoopCore
from loop.errors import UserError
from loop.faces.display import require_display
from loop.faces.sources import DemoSource, ImagesSource, VideoSource, open_source
from loop.store.plugin import PluginError
from loop.store.plugin_fit import fitted_to_base
from loop.store.plugin_read import read_plugin
from loop.safe_files import shown
from patchloop_kernels.runtime import Device


def load_plugin_core(path: str, base_path: str | None = None):
    """(core, plugin): a core running the plugin's patch with its weights, untrained."""
    try:
        plugin = read_plugin(path)
    except PluginError as exc:
        raise UserError(str(exc)) from exc
    spec = plugin.spec
    device = Device.default()
    base = None
    if spec.topology == "head" or spec.triggers:
        base = BaseNetwork(device, open_base(base_path))
    try:  # the layers must be the ones the core builds, before any buffer is sized by them
        fitted_to_base(plugin, base)
    except PluginError as exc:
        raise UserError(f"{shown(path)}: {exc}") from exc
    if spec.topology == "head":
        core = LoopCore(spec, base=base, device=device, base_input=plugin.input_hw,
                        initial_weights=plugin.weights)
    else:
        core = LoopCore(spec, base=base, device=device, initial_weights=plugin.weights)
    core.change_settings(replace(core.trainer.settings, training=False, augment=False))
    return core, plugin


def _frames(source, limit: int):
    """Frames for --json: images and videos once through, live sources up to the limit."""
    if isinstance(source, ImagesSource):
        for i in range(min(limit, len(source.paths))):
            image = source.image(i)
            if image is None:
                print(f"patchloop: {source.unreadable[source.paths[i]]}", file=sys.stderr)
                continue
            yield image
        return
    if isinstance(source, VideoSource):
        count = int(source.capture.get(7)) or limit  # 7: CAP_PROP_FRAME_COUNT
        limit = min(limit, count)
    if isinstance(source, DemoSource):
        for i in range(limit):
            yield source.scene.frame(i * 3).image
        return
    for _ in range(limit):
        frame = source.read()
        if frame is not None:
            yield frame


def load_companion(paths: list[str], base_path: str | None):
    """(companion, plugins): every plugin that loads, over one base; the others are refused
    with their reason on stderr. None of them loading, or a trigger cycle, is an error."""
    companion, plugins, _ = load_companion_files(paths, base_path)
    return companion, plugins


def load_companion_files(paths: list[str], base_path: str | None):
    """(companion, plugins, files): load_companion's, with the path each plugin came from."""
    from loop.core.companion import MAX_PATCHES, Companion, PatchSetError
    if len(paths) > MAX_PATCHES:
        raise UserError(f"{len(paths)} plugins: at most {MAX_PATCHES} run together")
    device = Device.default()
    base = BaseNetwork(device, open_base(base_path))
    loaded, entries, files = [], [], []
    for path in paths:
        try:
            plugin = read_plugin(path)
        except PluginError as exc:
            print(f"patchloop: {exc}", file=sys.stderr)
            continue
        try:
            entries.append((plugin.spec, plugin.weights, fitted_to_base(plugin, base)))
        except PluginError as exc:
            print(f"patchloop: {shown(path)}: refused: {exc}", file=sys.stderr)
            continue
        loaded.append(plugin)
        files.append(path)
    if not loaded:
        raise UserError("no plugin could be loaded (reasons above)")
    try:
        companion = Companion(device, base, entries)
    except PatchSetError as exc:
        raise UserError(str(exc)) from exc
    return companion, loaded, files


def companion_result(index: int, base_top, results, chain, files=None) -> dict:
    """One frame's JSON; `files` (the plugins' paths, in load order) tell patches of the
    same name apart."""
    files = files or [None] * len(results)
    return {"frame": index, "base_top": [[t, n, _number(p)] for t, n, p in base_top[:3]],
            "patches": [{"name": r.name, "file": path, "triggered": r.triggered,
                         "category": r.category, "confidence": _number(r.confidence),
                         "fired": r.fired}
                        for r, path in zip(results, files)],
            "chain": [f"{a} -> {b}" for a, b in chain]}


def _number(value: float) -> float | None:
    """Rounded, or None (JSON null) for NaN and Inf, which JSON cannot hold: a base or a
    patch with extreme weights can give them."""
    return round(value, 5) if math.isfinite(value) else None


def run(args) -> int:
    if not args.json:
        require_display("--json")
    source, note = open_source(args.camera, args.video, args.images, args.demo)
    try:
        companion, plugins, files = load_companion_files(args.plugins, args.base)
        if args.json:  # open_source said on stderr what it shows, when it chose for the user
            files = [shown(path) for path in files]
            for i, frame in enumerate(_frames(source, args.frames)):
                result = companion_result(i, *companion.run(frame), files)
                print(json.dumps(result, allow_nan=False), flush=True)
            return 0
        from loop.faces.windows.companion_app import CompanionApp  # pygame only for a window
        CompanionApp(companion, plugins, source, note, args.snap_dir).run()
        return 0
    finally:
        source.close()
