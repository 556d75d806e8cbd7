"""`patchloop replay SESSION.h5`: opens a recorded session in the window's edit mode alone
(read-only when its folder cannot be written: the window works, edits are not saved)."""
from __future__ import annotations

import os

from loop.errors import UserError
from loop.faces import live
from loop.safe_files import shown


def run(args, max_frames: int | None = None) -> int:
    if not os.path.lexists(args.session):
        raise UserError(f"{shown(args.session)}: no such session file")
    core, link, note = live.open_session(args, source=None, holder="patchloop replay",
                                         read_only_ok=True)
    if not core.labeled_frames():
        core.close()
        if link is not None:
            link.close()
        raise UserError(f"{shown(args.session)}: has no labeled frames to replay")
    from dataclasses import replace
    from loop.faces.windows.live_app import LiveApp  # pygame only when a window is wanted
    core.change_settings(replace(core.trainer.settings, training=False))  # edit first; t trains
    first = core.labeled_frames()[0].image
    LiveApp(core, None, note, frame_size=(first.shape[1], first.shape[0]), link=link,
            edit_only=True).run(max_frames)
    live.finish(link)
    return 0
