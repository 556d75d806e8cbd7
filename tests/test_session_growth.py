"""Sessions that grow: frames and labels are appended to the file in place as the session
runs (the journal stays a short tail, memory holds only frames not yet appended), the file
is readable with h5py at any moment, an append a kill interrupted is ignored by readers and
repaired by the next writer, older files are read and converted, and `bench sessions`
measures it all."""
import argparse
import json
import struct
import subprocess
import sys
import zlib

import h5py
import numpy as np

from loop.core.labels import LabelDisc
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.settings import TrainerSettings
from loop.store.journal import MAGIC_V1, Record
from loop.store.records import LabelRecord, settings_to_json, spec_to_json
from loop.store.session import COMMIT_FRAMES, SessionStore
from loop.store.session_loader import load_session
from loop.store.session_paths import journal_path
from loop.store.session_rows import label_rows
from child_env import child_env

SPEC = PatchSpec("g", categories_from_names(["background", "ball"]), topology="pixels")


def frame(i: int, h: int = 40, w: int = 56) -> np.ndarray:
    return ((np.arange(h * w * 3).reshape(h, w, 3) + i * 7) % 251).astype(np.uint8)


def test_frames_are_appended_in_place_and_memory_holds_only_the_tail(tmp_path):
    path = tmp_path / "g.h5"
    store = SessionStore.create(path, SPEC, TrainerSettings())
    for i in range(3 * COMMIT_FRAMES + 5):
        store.add_label(i, frame(i, 40 + i % 3, 56), LabelDisc(3, 4, 2, i % 2), when=float(i))
        assert len(store.state.frames.pending) < COMMIT_FRAMES, "memory holds only the tail"
        assert store.journal.end < 2 * COMMIT_FRAMES * 8000, "the journal stays short"
    with h5py.File(path, "r", swmr=True, locking=False) as f:  # while the session runs
        held = int(f["commit"][1])
        assert held == 3 * COMMIT_FRAMES
        assert (f["frames"][5, :41, :56] == frame(5, 41, 56)).all()
    assert load_session(path).state.active_count() == 3 * COMMIT_FRAMES + 5
    assert (store.state.frames[7] == frame(7, 41, 56)).all(), "read back from the file"
    store.close()
    with h5py.File(path, "r") as f:  # a plain h5py reader, once it is closed
        assert f.attrs["version"] == 3
        index = f["frame_index"][()]
        assert index["id"].tolist() == list(range(3 * COMMIT_FRAMES + 5))
        i = 3 * COMMIT_FRAMES + 2
        assert (f["frames"][i, :index["height"][i], :56] == frame(i, 42, 56)).all()
        assert f["labels"].shape == (3 * COMMIT_FRAMES + 5,)


CRASH = """
import os, sys, h5py
from loop.store.records import LabelRecord
from loop.store.session_rows import label_rows
f = h5py.File(sys.argv[1], "r+", libver="latest", locking=False)
f.swmr_mode = True
labels = f["labels"]
labels.resize((labels.shape[0] + 5,))
labels[-5:] = label_rows([LabelRecord(0, "disc", 1, 1, 1, 1, 99.0)] * 5)
f.flush()
os._exit(0)
"""


def _crash_during_append(path) -> None:
    """A child appends five label rows and dies before the commit record and close."""
    subprocess.run([sys.executable, "-c", CRASH, str(path)], check=True, env=child_env())


def test_an_interrupted_append_is_ignored_then_repaired(tmp_path):
    path = tmp_path / "c.h5"
    store = SessionStore.create(path, SPEC, TrainerSettings())
    for i in range(4):
        store.add_label(i, frame(i), LabelDisc(3, 4, 2, 1), when=float(i))
    store.consolidate()
    store.add_label(9, frame(9), LabelDisc(3, 4, 2, 0), when=9.0)  # only in the journal
    store.release()
    _crash_during_append(path)
    try:
        h5py.File(path, "r").close()
        marked = False
    except OSError:
        marked = True
    assert marked, "the crash left the file marked as being written"
    times = [r.time for r in load_session(path).state.labels]
    assert times == [0.0, 1.0, 2.0, 3.0, 9.0], "the unfinished rows are ignored"
    store = SessionStore.open(path)  # rebuilds the file from its consistent part
    store.close()
    with h5py.File(path, "r") as f:
        assert f["labels"]["time"].tolist() == [0.0, 1.0, 2.0, 3.0, 9.0]


def _legacy_file(path, version: int, spec: PatchSpec) -> None:
    with h5py.File(path, "w") as f:
        f.attrs.update(format="patchloop-session", version=version, created=1.0,
                       journal_seq=1, patch=json.dumps(spec_to_json(spec)),
                       settings=json.dumps(settings_to_json(TrainerSettings(learning_rate=0.03))))
        group = f.create_group("frames")
        for i in range(3):
            group.create_dataset(str(i), data=frame(i), chunks=(40, 56, 3), compression="gzip")
        f.create_dataset("labels", data=label_rows(
            [LabelRecord(i, "disc", 3, 4, 2, 1, float(i)) for i in range(3)]),
            maxshape=(None,), chunks=(1024,))
        f.create_dataset("excluded", data=np.array([2], np.int64))
        f.create_dataset("loss_log", data=np.array([[1, 0.5]]))
        snap = f.create_group("snapshots").create_group("t0")
        snap.create_dataset("weights", data=np.arange(6, dtype=np.float32))
        snap.create_dataset("velocity", data=np.ones(6, np.float32))
        snap.attrs["header"] = json.dumps({"tag": "t0", "created": 2.0, "size": 6})


def _v1_journal(path, events: list) -> None:
    data = MAGIC_V1
    for event in events:
        payload = bytes([2]) + Record.event(event).body
        data += struct.pack("<II", len(payload), zlib.crc32(payload)) + payload
    journal_path(path).write_bytes(data)


def test_older_files_are_read_as_they_are_and_converted_by_a_writer(tmp_path):
    for version, spec in ((1, SPEC), (2, PatchSpec("g2", SPEC.categories, fine_tune=1))):
        path = tmp_path / f"v{version}.h5"
        _legacy_file(path, version, spec)
        _v1_journal(path, [{"op": "undo", "t": 5.0, "seq": 2},
                           {"op": "exclude", "frame": 0, "value": True, "seq": 3}])
        before = path.read_bytes()
        state = load_session(path).state
        assert path.read_bytes() == before, "a reader never converts"
        assert [r.active for r in state.labels] == [True, True, False]
        assert state.excluded == {0, 2} and state.settings.learning_rate == 0.03
        store = SessionStore.open(path)
        store.close()
        with h5py.File(path, "r") as f:
            assert f.attrs["version"] == 3
        again = load_session(path).state
        assert [r.active for r in again.labels] == [True, True, False]
        assert again.excluded == {0, 2} and again.settings.learning_rate == 0.03
        assert (again.frames[1] == frame(1)).all() and again.loss_log == [(1, 0.5)]
        assert again.snapshots["t0"].weights.tolist() == list(range(6))
        assert journal_path(path).stat().st_size == len(b"PLJOURNAL2\n")


def test_bench_sessions_reports_open_close_memory_and_size(capsys):
    from loop.faces.bench import sessions as bench_sessions
    assert bench_sessions.run(argparse.Namespace(json=True), sizes=(60,)) == 0
    report = json.loads(capsys.readouterr().out)
    row = report["sessions"][0]
    assert row["frames"] == 60 and row["file_mb"] > 0
    assert row["open_seconds"] < 2 and row["close_seconds"] < 2
    assert 0 < row["peak_rss_mb"] < 500
