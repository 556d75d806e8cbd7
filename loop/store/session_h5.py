"""Checked access to the HDF5 objects of a session file that may be hostile: only hard links
are followed (no soft links that loop, no external links to other files); every attribute
and dataset is checked for its type and declared size before it is read; a small file can
never ask for gigabytes. Every refusal is a one-line SessionFormatError naming the file."""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from loop.errors import UserError
from loop.store.records import SessionFormatError
from loop.safe_files import open_input, shown

MAX_FILE_BYTES = 8 << 30
MAX_ATTR_BYTES = 1 << 20
MAX_EXPANSION = 256          # declared bytes per stored byte, for datasets other than frames
SMALL_BYTES = 1 << 20        # datasets this small may declare anything
OPEN_TRIES = 20              # a writer's append holds the file for a moment
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
SUPERBLOCK_HEAD = 12         # signature, version, two sizes, consistency flags
SWMR_WRITE_FLAG = 0x04       # the consistency flag a single-writer-multiple-reader writer sets


@contextmanager
def open_for_reading(path):
    """The session file at `path` as a read-only h5py.File, never written. It must be a
    regular file under MAX_FILE_BYTES. A file a writer is appending to (or was, when it was
    killed) is opened in single-writer-multiple-reader mode, which sees its last consistent
    state: read any other way, its index may point past the end the file declares."""
    path = Path(path)
    name = shown(str(path))
    try:
        handle = open_input(path, MAX_FILE_BYTES, "session file")
    except UserError as exc:
        raise SessionFormatError(str(exc)) from None
    with handle:
        if _marked_for_swmr_writing(handle):
            f = _open_being_written(path, handle, name)
        else:
            try:
                f = h5py.File(handle, "r")
            except OSError as exc:
                if "already open for write" not in str(exc):
                    raise SessionFormatError(f"{name}: not a readable session file "
                                             f"({_brief(exc)})") from None
                f = _open_being_written(path, handle, name)
        try:
            yield f
        finally:
            f.close()


def _marked_for_swmr_writing(handle) -> bool:
    """Whether the superblock (version 3, at the start: where Patchloop writes it) says a
    single-writer-multiple-reader writer has the file open or was killed with it open.
    h5py reading through a Python file object does not look at these flags itself."""
    head = handle.read(SUPERBLOCK_HEAD)
    handle.seek(0)
    return len(head) == SUPERBLOCK_HEAD and head[:8] == HDF5_SIGNATURE and head[8] >= 3 \
        and bool(head[11] & SWMR_WRITE_FLAG)


def _open_being_written(path: Path, handle, name: str) -> h5py.File:
    """Opened again by the descriptor already checked (its /proc name: the same file even
    if the path was swapped since), in single-writer-multiple-reader mode, which needs
    HDF5's own file driver."""
    by_descriptor = Path(f"/proc/self/fd/{handle.fileno()}")
    target = str(by_descriptor) if by_descriptor.exists() else str(path)
    for attempt in range(OPEN_TRIES):
        try:
            return h5py.File(target, "r", swmr=True, locking=False)
        except OSError as exc:
            if attempt == OPEN_TRIES - 1 or "already open for write" not in str(exc):
                raise SessionFormatError(f"{name}: not a readable session file "
                                         f"({_brief(exc)})") from None
            time.sleep(0.05)  # the writer switches to single-writer mode in a moment
    raise AssertionError("unreachable")


class Checked:
    """Members, datasets and attributes of one open file, each checked before it is read."""

    def __init__(self, f: h5py.File, name: str):
        self.f, self.name = f, name

    def member(self, parent, key: str, kind, where: str):
        link = parent.get(key, getlink=True)
        if link is None:
            raise SessionFormatError(f"{self.name}: {where} is missing")
        if not isinstance(link, h5py.HardLink):
            raise SessionFormatError(f"{self.name}: {where} is a link (only plain members "
                                     "are read)")
        item = parent[key]
        if not isinstance(item, kind):
            raise SessionFormatError(f"{self.name}: {where} is not a "
                                     f"{'dataset' if kind is h5py.Dataset else 'group'}")
        return item

    def group(self, key: str, limit: int):
        group = self.member(self.f, key, h5py.Group, f"/{key}")
        if len(group) > limit:
            raise SessionFormatError(f"{self.name}: /{key} has {len(group)} members, over "
                                     f"the limit of {limit}")
        return group

    def dataset(self, key: str, dtype, ndim: int, rows: int, parent=None):
        """The dataset (not its data) after checking its type, rank and row count."""
        d = self.member(self.f if parent is None else parent, key, h5py.Dataset, f"/{key}")
        if d.dtype != np.dtype(dtype) or d.ndim != ndim or d.shape[0] > rows:
            kind = "compound" if d.dtype.names else d.dtype.name
            raise SessionFormatError(f"{self.name}: /{key} has the wrong type or size "
                                     f"({kind} {d.shape})")
        return d

    def rows(self, key: str, dtype, ndim: int, rows: int, count: int | None = None):
        """The first `count` rows (all when None) of a checked dataset."""
        d = self.dataset(key, dtype, ndim, rows)
        if count is not None and count > d.shape[0]:
            raise SessionFormatError(f"{self.name}: /{key} holds {d.shape[0]} rows, the file "
                                     f"says {count}")
        self.check_declared(d, f"/{key}", count)
        return d[()] if count is None else d[:count]

    def check_declared(self, d, where: str, count: int | None = None) -> None:
        rows = d.shape[0] if count is None else count
        declared = rows * int(np.prod(d.shape[1:], dtype=np.int64)) * d.dtype.itemsize
        stored = d.id.get_storage_size()
        if declared > SMALL_BYTES and declared > MAX_EXPANSION * stored:
            raise SessionFormatError(f"{self.name}: {where} declares {declared} bytes but "
                                     f"stores only {stored}")

    def attr(self, obj, key: str):
        if key not in obj.attrs:
            raise SessionFormatError(f"{self.name}: attribute {key} is missing")
        size = obj.attrs.get_id(key).get_storage_size()
        if size > MAX_ATTR_BYTES:
            raise SessionFormatError(f"{self.name}: attribute {key} is {size} bytes, over "
                                     f"{MAX_ATTR_BYTES >> 20} MiB")
        value = obj.attrs[key]
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if isinstance(value, np.ndarray) and value.shape == ():
            value = value[()]
        return value

    def json_attr(self, obj, key: str):
        value = self.attr(obj, key)
        if not isinstance(value, str):
            raise SessionFormatError(f"{self.name}: attribute {key} is not text")
        return json.loads(value)


def whole(value, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise SessionFormatError(f"{what} {_brief(value)} is not a whole number")
    return int(value)


def _brief(value, limit: int = 160) -> str:
    text = str(value).replace("\n", " ")
    return shown(text if len(text) <= limit else text[:limit] + "...")
