"""`patchloop info FILE [--json]`: what a session file holds."""
from __future__ import annotations

import json
from pathlib import Path

from loop.errors import UserError
from loop.store.records import SessionFormatError, spec_to_json
from loop.store.session_file import VERSION, read_session


def describe_session(path: Path) -> dict:
    state = read_session(path)
    active = [r for r in state.labels if r.active]
    names = {c.index: c.name for c in state.spec.categories}
    counts = {c.name: 0 for c in state.spec.categories}
    erased = {c.name: 0 for c in state.spec.categories}
    for r in state.labels:
        if r.category in names:
            (counts if r.active else erased)[names[r.category]] += 1
    return {"file": str(path), "kind": "session", "patch": spec_to_json(state.spec),
            "frames": len(state.frames), "labels": len(active),
            "labels_in_history": len(state.labels), "labels_by_category": counts,
            "undone_by_category": erased, "format_version": VERSION,
            "excluded_frames": len(state.excluded),
            "snapshots": sorted(state.snapshots), "loss_points": len(state.loss_log)}


def run(args) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        info = describe_session(path)
    except SessionFormatError as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    patch = info["patch"]
    print(f"{path}: session of patch {patch['name']!r} ({patch['topology']}, "
          f"{len(patch['categories'])} categories, base {patch['base_name'] or 'none'})")
    print(f"  {info['frames']} frames, {info['labels']} labels "
          f"({info['labels_in_history']} in the edit history): {info['labels_by_category']}")
    print(f"  snapshots: {', '.join(info['snapshots']) or 'none'}")
    return 0
