"""The feature store (HDF5, readable with plain h5py): every training image's features and
its tilt-shift copies', and the held-out images', computed once and kept on disk beside the
sessions, so folder training is bounded by the disk, not by memory, and an interrupted
extraction goes on where it stopped.

    /                  attrs: format="patchloop-features", version=1, key (JSON: what the
                       features depend on: the base's hash, the tap, the fine-tune cut, the
                       base's input size, the augmentation settings and the folder's images)
    /features/<tap>    float32 (R, C, h, w), chunks of one row (at most 1 MiB; channels
                       split when a row is larger), every chunk allocated when the file is
                       created: writing a row changes raw data only, never the file's
                       structure, so a kill in the middle of a write cannot damage the file
    /category          int32 (R,): the row's category
    /item              int32 (R,): the image the row comes from (its place in the plan)
    /copy              int8 (R,): 0 for the image, j for its j-th tilt-shift copy
    /readable          uint8 (R,): 1 once the row's features are written, 0 where the image
                       could not be read
    /commit            int64 (S,): per shard, 0 until its rows are written and flushed to
                       disk, then the id of the run that wrote them. Written last: rows of
                       a shard without a commit are ignored and computed again.

The file is created whole (a temporary file moved into place, safe_files) and reused while
its key matches; a different key, or a file that is not a readable store, is replaced."""
from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path

import h5py
import numpy as np

from loop.errors import UserError
from loop.safe_files import shown, write_atomically

FORMAT = "patchloop-features"
VERSION = 1
CHUNK_BYTES = 1 << 20


class FeatureStore:
    def __init__(self, path: Path, f: h5py.File, tap: str):
        self.path, self._f, self.tap = path, f, tap
        self._features = f["features"][tap]
        self.readable = f["readable"][:]
        self.commit = f["commit"][:]
        self.run_id = secrets.randbits(62) + 1

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def open(cls, path, key: dict, tap: str, feature_shape: tuple, table, shards: list
             ) -> "FeatureStore":
        """The store at `path` for `key`, created (or replaced, when it holds other
        features or is damaged) with `table` (category, item, copy per row) and `shards`
        (each shard's range of rows). UserError when path is a link or not a file."""
        path = Path(path)
        wanted = json.dumps(key, sort_keys=True)
        if not _matches(path, wanted, tap, tuple(feature_shape), len(table[0]), len(shards)):
            write_atomically(path, lambda handle: _create(handle, wanted, tap, feature_shape,
                                                          table, shards),
                             replace=os.path.lexists(path))
        try:
            f = h5py.File(path, "r+")  # locked: a second writer is refused
        except OSError as exc:
            raise UserError(f"{shown(str(path))}: cannot open the feature store "
                            f"({exc.strerror or exc})") from None
        return cls(path, f, tap)

    @classmethod
    def read(cls, path, tap: str) -> "FeatureStore":
        """An existing store, read-only (while another process may be writing it)."""
        _check_plain_file(Path(path))
        return cls(Path(path), h5py.File(path, "r", locking=False), tap)

    # -- shards ---------------------------------------------------------------------------
    def shard_rows(self, shard: int) -> range:
        first, stop = self._f["shards"][shard]
        return range(int(first), int(stop))

    def pending_shards(self) -> list[int]:
        return [int(s) for s in np.flatnonzero(self.commit == 0)]

    def write_shard(self, shard: int, features: np.ndarray, readable: np.ndarray) -> None:
        """A shard's rows, durable, then its commit record, durable: a kill at any moment
        leaves it committed with every row, or not committed."""
        rows = self.shard_rows(shard)
        shape = (len(rows),) + self._features.shape[1:]
        features, readable = np.asarray(features), np.asarray(readable)
        if features.shape != shape or features.dtype != np.float32 \
                or readable.shape != (len(rows),):
            raise ValueError(f"shard {shard}: features {features.dtype} {features.shape} and "
                             f"{readable.shape} flags, expected float32 {shape}")
        self._features[rows.start:rows.stop] = features
        self._f["readable"][rows.start:rows.stop] = readable
        self._sync()
        self._f["commit"][shard] = self.run_id
        self._sync()
        self.readable[rows.start:rows.stop] = readable
        self.commit[shard] = self.run_id

    def _sync(self) -> None:
        self._f.flush()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- reading --------------------------------------------------------------------------
    def read_rows(self, rows) -> np.ndarray:
        """float32 (n, C, h, w) of the given rows (ascending)."""
        rows = np.asarray(rows, np.int64)
        out = np.empty((len(rows),) + self._features.shape[1:], np.float32)
        start = 0
        while start < len(rows):  # runs of consecutive rows are read at once
            stop = start + 1
            while stop < len(rows) and rows[stop] == rows[stop - 1] + 1:
                stop += 1
            self._features.read_direct(out, np.s_[rows[start]:rows[stop - 1] + 1],
                                       np.s_[start:stop])
            start = stop
        return out

    @property
    def feature_shape(self) -> tuple:
        return self._features.shape[1:]

    def close(self) -> None:
        self._f.close()


def _check_plain_file(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise UserError(f"{shown(str(path))}: no feature store there") from None
    if not stat.S_ISREG(mode):
        raise UserError(f"{shown(str(path))}: not a regular file (a link or a folder where "
                        "the feature store goes); move it away")


def _matches(path: Path, key: str, tap: str, feature_shape: tuple, rows: int,
             shards: int) -> bool:
    """Whether the file at path is a whole store of these features (False: none there, or
    one to replace)."""
    if not os.path.lexists(path):
        return False
    _check_plain_file(path)
    try:
        with h5py.File(path, "r", locking=False) as f:
            return (f.attrs.get("format") == FORMAT and f.attrs.get("version") == VERSION
                    and f.attrs.get("key") == key and f["features"][tap].shape
                    == (rows,) + feature_shape and f["commit"].shape == (shards,))
    except (OSError, KeyError, ValueError):
        return False


def _create(handle, key: str, tap: str, feature_shape: tuple, table, shards: list) -> None:
    category, item, copy = table
    rows = len(category)
    channels = max(1, min(feature_shape[0],
                          CHUNK_BYTES // (4 * int(np.prod(feature_shape[1:])))))
    with os.fdopen(os.dup(handle.fileno()), "w+b") as both, h5py.File(both, "w") as f:
        f.attrs["format"], f.attrs["version"], f.attrs["key"] = FORMAT, VERSION, key
        early = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        early.set_chunk((1, channels) + tuple(feature_shape[1:]))
        early.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        early.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
        early.set_obj_track_times(False)
        space = h5py.h5s.create_simple((rows,) + tuple(feature_shape))
        h5py.h5d.create(f.create_group("features").id, tap.encode(), h5py.h5t.IEEE_F32LE,
                        space, dcpl=early)
        for name, values in (("category", category), ("item", item), ("copy", copy),
                             ("readable", np.zeros(rows, np.uint8)),
                             ("commit", np.zeros(len(shards), np.int64)),
                             ("shards", np.array([(r.start, r.stop) for r in shards],
                                                 np.int64).reshape(-1, 2))):
            f.create_dataset(name, data=values, track_times=False)
