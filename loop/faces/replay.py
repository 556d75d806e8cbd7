"""`patchloop replay SESSION.h5`: opens a recorded session in the edit-mode window."""
from __future__ import annotations

from pathlib import Path

from loop.errors import UserError
from loop.faces import live


def run(args, max_frames: int | None = None) -> int:
    if not Path(args.session).is_file():
        raise UserError(f"{args.session}: no such session file")
    core, link, note = live.open_session(args, source=None)
    if not core.frames:
        link.close()
        raise UserError(f"{args.session}: has no labeled frames to replay")
    from loop.faces.replay_app import ReplayApp  # pygame only when a window is wanted
    ReplayApp(core, link, note).run(max_frames)
    return 0
