"""A writer killed in the middle of an append leaves HDF5's consistency flags set and its
index pointing past the end of file the superblock declares (the superblock is rewritten
last). Every reader and the next writer must still see every acknowledged label.

The state is made exactly, without timing: an append runs to its end, then the superblock
HDF5 wrote when the append began (flags set, the old end of file) is put back, which is the
file a kill just before the superblock's last rewrite leaves."""
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np

from loop.cli import main
from loop.core.labels import LabelDisc
from loop.core.settings import TrainerSettings
from loop.store.session import SessionStore
from loop.store.session_loader import load_session

sys.path.insert(0, str(Path(__file__).parent))
from session_writer_child import SPEC  # noqa: E402

SUPERBLOCK_BYTES = 48  # version 3: signature to checksum


def add_labels(store: SessionStore, first: int, last: int) -> None:
    for n in range(first, last):
        store.add_label(n // 3, np.full((24, 32, 3), n, np.uint8),
                        LabelDisc(float(n), 1.0, 2.0, n % 2), when=float(n))


def killed_before_the_superblock(path: Path) -> None:
    """`path` (closed, committed) gets 30 more labels journaled and appended; its superblock
    is then the one HDF5 wrote when that append opened the file."""
    store = SessionStore.open(path)
    add_labels(store, 30, 60)
    store.release()  # the journal holds the 30 labels; the file does not yet
    with h5py.File(path, "r+", libver="latest", locking=False) as f:
        f.swmr_mode = True
        with open(path, "rb") as raw:
            marked = raw.read(SUPERBLOCK_BYTES)
    store = SessionStore.open(path)  # appends the journal: the file now holds all 60
    store.release()
    with open(path, "r+b") as raw:
        raw.write(marked)


def test_a_killed_append_is_read_by_every_reader_and_taken_up_by_the_next_writer(
        tmp_path, capsys):
    path = tmp_path / "k.h5"
    store = SessionStore.create(path, SPEC, TrainerSettings())
    add_labels(store, 0, 30)
    store.close()
    killed_before_the_superblock(path)
    with open(path, "rb") as raw:
        assert raw.read(12)[11] & 0x04, "the file is marked as a killed writer leaves it"
    kept = tmp_path / "kept.h5"
    shutil.copy(path, kept)

    state = load_session(path).state
    assert [r.time for r in state.labels][:30] == [float(n) for n in range(30)]
    assert all(r.frame_id in state.frames for r in state.labels)
    assert len(state.labels) == 60, "the append finished before the superblock was due"
    assert main(["info", str(path)]) == 0
    assert "20 frames, 60 labels" in capsys.readouterr().out
    assert path.read_bytes() == kept.read_bytes(), "readers never write"

    store = SessionStore.open(path)  # the next writer
    times = [r.time for r in store.state.labels]
    store.close()
    assert times[:30] == [float(n) for n in range(30)]
    again = load_session(path)
    assert [r.time for r in again.state.labels] == times
    assert not again.warnings
