"""`patchloop sessions` (list the recorded sessions) and `patchloop merge A B -o C`. Both
read sessions with their journals (a running or killed session shows every acknowledged
label) and write nothing but the merge's new file."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from loop.errors import UserError
from loop.faces.info import describe_session
from loop.faces.wording import counted
from loop.store.merge import merge_files
from loop.store.records import SessionFormatError
from loop.safe_files import shown


def list_sessions(args) -> int:
    folder = Path(args.dir)
    if not folder.is_dir():
        raise UserError(f"{shown(str(folder))}: no such folder (sessions are recorded in "
                        "./sessions)")
    rows = []
    for path in sorted(folder.glob("*.h5")):
        try:
            rows.append(describe_session(path))
        except SessionFormatError as exc:
            rows.append({"file": str(path), "error": str(exc)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no sessions in {shown(str(folder))}")
    for r in rows:
        if "error" in r:
            print(f"{shown(r['file'])}: unreadable: {r['error']}")
            continue
        names = shown(", ".join(f"{k} {v}" for k, v in r["labels_by_category"].items()))
        last = shown(r["snapshots"][-1]) if r["snapshots"] else "no snapshot"
        print(f"{shown(r['file'])}: {shown(r['patch']['name'])} - "
              f"{counted(r['frames'], 'frame')}, {counted(r['labels'], 'label')}"
              f"{f' ({names})' if names else ''}; last snapshot {last}")
    return 0


def merge(args) -> int:
    try:
        merged = merge_files(args.a, args.b, args.out, warn=_warn)
    except SessionFormatError as exc:
        raise UserError(str(exc)) from exc
    print(f"{shown(args.out)}: {counted(len(merged.frame_shapes), 'frame')}, "
          f"{counted(merged.active_count(), 'label')}")
    return 0


def _warn(line: str) -> None:
    print(f"patchloop: warning: {line}", file=sys.stderr)
