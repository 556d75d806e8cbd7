"""Snapping a frame into a training-data folder (map_clsloc.txt layout), so that
`patchloop train` can use it at once. The folder's map is created or extended by appending;
existing lines are never rewritten, so existing indices never change.

Several snaps may run at once (a window snaps off its own thread; two windows may share a
folder): the map is locked while a snap reads it and appends its line, so two new
categories never get the same index. Names come from plugins and sessions: the tag and the
category name are checked before they become part of a path, the category's folder must be
a real folder (not a link planted there), and a snap never replaces a file."""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from pathlib import Path

import numpy as np

from loop.core.patch import TAG_PATTERN, plain_category_name
from loop.store.data_folder import MAX_MAP_BYTES, DataFolder, parse_map
from loop.store.images import encode_png
from loop.safe_files import create_exclusive, open_no_follow, shown, write_atomically

MAX_SAME_STAMP = 1000  # snaps within one millisecond, numbered -1, -2, ...


class SnapError(OSError):
    """A snap could not be written; the message names the file or the name at fault. An
    OSError, so that the windows, which report a failed write and keep going, report it."""


def snap_frame(folder, image: np.ndarray, tag: str, name: str) -> Path:
    """Writes `<tag>_<time>.png` under `folder/<name>/`; returns its path."""
    if not isinstance(tag, str) or not TAG_PATTERN.match(tag):
        raise SnapError(f"tag {tag!r:.40} cannot be part of a file name")
    if not isinstance(name, str) or not plain_category_name(name):
        raise SnapError(f"category name {name!r:.60} cannot name a folder")
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    _add_to_map(root / "map_clsloc.txt", tag, name)
    target = _category_folder(root / name)
    data = encode_png(image)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{int(time.time() * 1000) % 1000:03d}"
    for n in range(MAX_SAME_STAMP):
        path = target / (f"{tag}_{stamp}.png" if n == 0 else f"{tag}_{stamp}-{n}.png")
        try:
            write_atomically(path, lambda f: f.write(data))
            return path
        except FileExistsError:
            continue
    raise SnapError(f"{shown(str(target))}: {MAX_SAME_STAMP} snaps named {tag}_{stamp} already")


def _open_map(path: Path) -> int:
    """The map's descriptor for reading and appending; created when missing. Never through
    a link, never a FIFO or a device."""
    try:
        fd = create_exclusive(path)
        os.close(fd)
    except FileExistsError:
        pass
    try:
        return open_no_follow(path, os.O_RDWR | os.O_APPEND)
    except OSError as exc:
        why = "a link or not a regular file" if exc.errno in (errno.ELOOP, errno.EINVAL) \
            else exc.strerror
        raise SnapError(f"{shown(str(path))}: cannot add to the category map ({why})") from None


def _add_to_map(path: Path, tag: str, name: str) -> None:
    """Appends `tag index name` unless the tag is there; the index is one past the largest,
    read under an exclusive lock held until the line is on disk."""
    with os.fdopen(_open_map(path), "r+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # released when the file is closed
        if os.fstat(f.fileno()).st_size > MAX_MAP_BYTES:
            raise SnapError(f"{shown(str(path))}: over {MAX_MAP_BYTES >> 20} MiB, not a "
                            "category map")
        f.seek(0)
        text = f.read(MAX_MAP_BYTES)
        known = DataFolder(path.parent)
        parse_map(text.decode("utf-8", "replace"), str(path), known)
        entries = known.categories + known.triggers
        if any(c.tag == tag for c in entries):
            return
        index = max((c.index for c in entries), default=-1) + 1
        prefix = "\n" if text and not text.endswith(b"\n") else ""
        f.write(f"{prefix}{tag} {index} {name}\n".encode())
        f.flush()
        os.fsync(f.fileno())


def _category_folder(target: Path) -> Path:
    try:
        target.mkdir(exist_ok=True)
        mode = os.lstat(target).st_mode
    except OSError as exc:
        raise SnapError(f"{shown(str(target))}: cannot make the category's folder "
                        f"({exc.strerror})") from None
    if not stat.S_ISDIR(mode):
        raise SnapError(f"{shown(str(target))}: not a folder (a link or a file is there)")
    return target


def default_snap_category(spec, said: int) -> int:
    """The category the patch did not say: for two categories the other one; otherwise
    background when it said something, else the first non-background category."""
    if spec.outputs == 2:
        return 1 - said
    return 0 if said != 0 else 1
