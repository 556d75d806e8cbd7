"""`patchloop info FILE [--json]`: what a session file holds."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from loop.errors import UserError
from loop.faces.wording import counted
from loop.store.records import SessionFormatError, spec_to_json
from loop.safe_files import shown
from loop.store.session_loader import load_session


def describe_session(path: Path, warn=None) -> dict:
    """What the session holds with every acknowledged change (its journal included), read
    without frames or weights and without writing anything. `warn` gets each line about a
    damaged journal record (skipped)."""
    loaded = load_session(path, frames=False, arrays=False)
    for line in loaded.warnings:
        (warn or _warn)(line)
    state = loaded.state
    active = [r for r in state.labels if r.active]
    names = {c.index: c.name for c in state.spec.categories}
    counts = {c.name: 0 for c in state.spec.categories}
    erased = {c.name: 0 for c in state.spec.categories}
    for r in state.labels:
        if r.category in names:
            (counts if r.active else erased)[names[r.category]] += 1
    return {"file": str(path), "kind": "session", "patch": spec_to_json(state.spec),
            "frames": len(state.frame_shapes), "labels": len(active),
            "labels_in_history": len(state.labels), "labels_by_category": counts,
            "undone_by_category": erased, "format_version": loaded.counts.version,
            "excluded_frames": len(state.excluded),
            "snapshots": sorted(state.snapshots), "loss_points": len(state.loss_log),
            "journal_records": loaded.journal_records, "warnings": len(loaded.warnings)}


def _warn(line: str) -> None:
    print(f"patchloop: warning: {line}", file=sys.stderr)


def describe_plugin(path: Path, base_path: str | None) -> dict:
    from loop.base.loading import open_base
    from loop.base.network import weights_hash
    from loop.store.plugin_read import read_plugin
    plugin = read_plugin(path)
    m = plugin.manifest
    info = {"file": str(path), "kind": "specialneurons", "format_version": m["version"],
            "name": m["name"], "description": m.get("description", ""), "tag": m["tag"],
            "categories": m["categories"], "triggers": m["triggers"],
            "topology": m["topology"], "tap": m["tap"], "base": m["base"], "input": m["input"],
            "threshold": m["threshold"], "dtype": m["dtype"],
            "tensors": [{"name": t["name"], "shape": t["shape"], "dtype": t["dtype"],
                         "bytes": t["size"]} for t in m["tensors"]],
            "icon": plugin.icon is not None, "fine_tune": m.get("fine_tune")}
    if m["base"] is not None:
        installed = weights_hash(open_base(base_path))
        info["base_installed_matches"] = installed == m["base"]["hash"]
    return info


def run(args) -> int:
    path = Path(args.file)
    if not os.path.lexists(path):
        raise UserError(f"{shown(str(path))}: no such file")
    if path.suffix == ".specialneurons":
        from loop.store.plugin import PluginError
        try:
            info = describe_plugin(path, getattr(args, "base", None))
        except PluginError as exc:
            raise UserError(str(exc)) from exc
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            _print_plugin(path, info)
        return 0
    try:
        info = describe_session(path)
    except SessionFormatError as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    patch = info["patch"]
    tuned = f", fine-tuning {patch['fine_tune']} base blocks" if patch["fine_tune"] else ""
    base = f"base {shown(patch['base_name'])}" if patch["base_name"] else "no base network"
    print(f"{shown(str(path))}: session of patch {patch['name']!r} ({shown(patch['topology'])}, "
          f"{counted(len(patch['categories']), 'category', 'categories')}, {base}{tuned})")
    by_category = ", ".join(f"{shown(name)} {count}"
                            for name, count in info["labels_by_category"].items())
    print(f"  {counted(info['frames'], 'frame')}, {counted(info['labels'], 'label')} "
          f"({info['labels_in_history']} in the edit history)"
          + (f": {by_category}" if by_category else ""))
    print(f"  snapshots: {shown(', '.join(info['snapshots'])) or 'none'}")
    return 0


def _print_plugin(path: Path, info: dict) -> None:
    """Names from the file are shown escaped: they can never move the cursor or recolour
    the terminal."""
    names = shown(", ".join(str(c[2]) for c in info["categories"]))
    triggers = shown(", ".join(str(t) for t in info["triggers"])) or "always"
    print(f"{shown(str(path))}: plugin {info['name']!r} ({shown(info['topology'])} on "
          f"{shown(info['tap'])}, {shown(info['dtype'])}), categories: {names}; triggers: "
          f"{triggers}; {'with' if info['icon'] else 'no'} icon")
    if info["fine_tune"]:
        tuned = info["fine_tune"]
        print(f"  carries its own tuned copies of the base's "
              f"{shown(', '.join(map(str, tuned['blocks'])))} (reading {shown(tuned['input'])})")
    for t in info["tensors"]:
        shape = "x".join(str(side) for side in t["shape"])
        print(f"  {shown(t['name'])}: {shown(shape)} {shown(t['dtype'])} "
              f"({counted(t['bytes'], 'byte')})")
    if "base_installed_matches" in info:
        print(f"  base {shown(info['base']['name'])}: "
              f"{'installed' if info['base_installed_matches'] else 'NOT the one installed'}")
