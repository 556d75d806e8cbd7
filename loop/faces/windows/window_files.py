"""Files a window writes while it runs (a snapped frame, an exported plugin): each on a
thread of its own, so the window never waits on the disk; `say` shows how it went."""
from __future__ import annotations

import threading

from loop.store.plugin_export import export_snapshot
from loop.store.snap import snap_frame


def snap_in_background(say, snap_dir, frame, category) -> None:
    """The frame into the snap folder (map_clsloc.txt layout) under `category`, ready for
    `patchloop train`."""

    def write():
        try:
            say(f"snapped as {category.name}: "
                f"{snap_frame(snap_dir, frame, category.tag, category.name)}")
        except OSError as exc:
            say(f"snap failed: {exc}")

    say("snapping...")
    threading.Thread(target=write, name="patchloop-snap", daemon=True).start()


def export_in_background(say, spec, snapshot, session, base_spec) -> None:
    """`snapshot`'s patch as a plugin beside the session file,
    `<session>-<tag>.specialneurons`."""
    out = session.with_name(f"{session.stem}-{snapshot.tag}.specialneurons")

    def write():
        try:
            export_snapshot(spec, snapshot.weights, out, snapshot.tag, base_spec)
            say(f"exported to {out}")
        except (OSError, ValueError) as exc:
            say(f"export failed: {exc}")

    say("exporting...")  # before the thread: its own message must come last
    threading.Thread(target=write, name="patchloop-export", daemon=True).start()
