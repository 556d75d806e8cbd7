"""`patchloop sessions` (list the recorded sessions) and `patchloop merge A B -o C`."""
from __future__ import annotations

import json
from pathlib import Path

from loop.errors import UserError
from loop.faces.info import describe_session
from loop.store.merge import merge_files
from loop.store.records import SessionFormatError


def list_sessions(args) -> int:
    folder = Path(args.dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder (sessions are recorded in ./sessions)")
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
        print(f"no sessions in {folder}")
    for r in rows:
        if "error" in r:
            print(f"{r['file']}: unreadable: {r['error']}")
            continue
        names = ", ".join(f"{k} {v}" for k, v in r["labels_by_category"].items())
        last = r["snapshots"][-1] if r["snapshots"] else "no snapshot"
        print(f"{r['file']}: {r['patch']['name']} - {r['frames']} frames, labels: {names}; "
              f"last snapshot {last}")
    return 0


def merge(args) -> int:
    try:
        merged = merge_files(args.a, args.b, args.out)
    except SessionFormatError as exc:
        raise UserError(str(exc)) from exc
    except OSError as exc:
        raise UserError(f"{exc.filename}: {exc.strerror}") from exc
    print(f"{args.out}: {len(merged.frames)} frames, "
          f"{sum(r.active for r in merged.labels)} labels")
    return 0
