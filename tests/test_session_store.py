"""Session files: round trips, journal replay, torn tails, versions, and a reader beside a
running writer (kill -9 at random moments: test_session_kill)."""
import os

import h5py
import numpy as np
import pytest

from loop.core.labels import LabelDisc, WholeFrameLabel
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.settings import TrainerSettings
from loop.core.snapshot import Snapshot as CoreSnapshot
from loop.store.records import SessionFormatError
from loop.store.session import SessionStore
from loop.store.session_loader import journal_path, load_session

SPEC = PatchSpec("t", categories_from_names(["background", "ball"]), triggers=("n02123159",))


def image(value, h=24, w=32):
    return np.full((h, w, 3), value, np.uint8)


def fill(store):
    store.add_label(1, image(10), LabelDisc(5, 6, 3, 1), when=1.0)
    store.add_label(1, image(10), LabelDisc(7, 8, 2, 0), when=2.0)
    store.add_label(2, image(20), WholeFrameLabel(0), when=3.0)
    store.undo(when=4.0)
    store.set_excluded(1, True)
    store.save_settings(TrainerSettings(learning_rate=0.02))
    store.log_loss([(1, 0.5), (2, 0.25)])
    store.save_snapshot(CoreSnapshot("20261123-000000-abcd1234", 5.0, SPEC,
                                     np.arange(10, dtype=np.float32),
                                     np.ones(10, np.float32), TrainerSettings(),
                                     np.array([3, 4]), 7))


def check(state):
    assert state.spec == SPEC
    assert state.settings.learning_rate == 0.02
    assert sorted(state.frames) == [1, 2] and state.frames[2][0, 0, 0] == 20
    assert [r.time for r in state.labels] == [1.0, 2.0, 3.0]
    assert [r.active for r in state.labels] == [True, True, False]
    assert state.active_labels() == {1: [LabelDisc(5, 6, 3, 1), LabelDisc(7, 8, 2, 0)]}
    assert state.excluded == {1}
    assert state.loss_log == [(1, 0.5), (2, 0.25)]
    snap = state.snapshots["20261123-000000-abcd1234"]
    assert np.array_equal(snap.weights, np.arange(10)) and snap.steps == 7


def test_round_trip_through_the_file(tmp_path):
    path = tmp_path / "s.h5"
    store = SessionStore.create(path, SPEC, TrainerSettings())
    fill(store)
    store.close()
    assert journal_path(path).stat().st_size < 20, "the journal is emptied into the file"
    check(SessionStore.open(path).state)
    with h5py.File(path, "r") as f:  # readable with plain h5py
        assert f.attrs["version"] == 3 and f["labels"].shape == (3,)
        assert f["frame_index"]["id"].tolist() == [1, 2]
        assert (f["frames"][1, :24, :32] == 20).all()


def test_journal_alone_holds_everything_after_a_crash(tmp_path):
    path = tmp_path / "s.h5"
    store = SessionStore.create(path, SPEC, TrainerSettings())
    fill(store)
    check(load_session(path).state)  # a reader beside the running writer sees it all
    store.release()  # no consolidation: as if the process died here
    check(load_session(path).state)
    check(SessionStore.open(path).state)


def test_crash_between_file_and_journal_reset_applies_nothing_twice(tmp_path):
    path = tmp_path / "s.h5"
    store = SessionStore.create(path, SPEC, TrainerSettings())
    fill(store)
    store._append()  # the file has it all, the journal is not emptied yet
    store.release()
    check(load_session(path).state)
    check(SessionStore.open(path).state)


def test_torn_journal_tail_is_skipped_and_writing_goes_on(tmp_path):
    path = tmp_path / "s.h5"
    store = SessionStore.create(path, SPEC, TrainerSettings())
    store.add_label(1, image(1), LabelDisc(1, 1, 1, 1), when=1.0)
    os.pwrite(store.journal.fd, b"PLr\xa7\x40\x00\x00\x00garbage", store.journal.end)
    store.release()  # a record cut short by a crash
    reopened = SessionStore.open(path)
    assert len(reopened.state.labels) == 1
    reopened.add_label(1, image(1), LabelDisc(2, 2, 1, 0), when=2.0)
    reopened.release()
    assert len(SessionStore.open(path).state.labels) == 2


def test_newer_version_and_foreign_files_are_clear_errors(tmp_path):
    path = tmp_path / "s.h5"
    SessionStore.create(path, SPEC, TrainerSettings()).close()
    with h5py.File(path, "a") as f:
        f.attrs["version"] = 99
    with pytest.raises(SessionFormatError, match="version 99 is newer"):
        SessionStore.open(path)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "something else"
    with pytest.raises(SessionFormatError, match="not a Patchloop session"):
        SessionStore.open(other)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(SessionFormatError, match="junk.h5"):
        SessionStore.open(junk)
    with pytest.raises(SessionFormatError, match="exists already"):
        SessionStore.create(path, SPEC, TrainerSettings())
    with pytest.raises(SessionFormatError, match="no such session"):
        SessionStore.open(tmp_path / "absent.h5")


def test_a_bad_frame_is_refused(tmp_path):
    store = SessionStore.create(tmp_path / "s.h5", SPEC, TrainerSettings())
    with pytest.raises(SessionFormatError, match="frame 3"):
        store.add_label(3, np.zeros((4, 4), np.uint8), LabelDisc(1, 1, 1, 1))


def test_info_reads_a_session_and_refuses_junk(tmp_path, capsys):
    import json as json_module
    from loop.cli import main
    path = tmp_path / "s.h5"
    store = SessionStore.create(path, SPEC, TrainerSettings())
    fill(store)
    store.close()
    assert main(["info", str(path), "--json"]) == 0
    info = json_module.loads(capsys.readouterr().out)
    assert info["frames"] == 2 and info["labels"] == 2 and info["labels_in_history"] == 3
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"nope")
    assert main(["info", str(junk)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "junk.h5" in err


def test_truncated_file_is_a_one_line_error(tmp_path, capsys):
    from loop.cli import main
    path = tmp_path / "s.h5"
    store = SessionStore.create(path, SPEC, TrainerSettings())
    fill(store)
    store.close()
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(SessionFormatError, match="s.h5"):
        SessionStore.open(path)
    assert main(["info", str(path)]) == 2
    assert "\n" not in capsys.readouterr().err.strip()


def test_sessions_lists_and_merge_joins_or_refuses(tmp_path, capsys):
    from loop.cli import main
    folder = tmp_path / "sessions"
    for name in ("a", "b"):
        store = SessionStore.create(folder / f"{name}.h5", SPEC, TrainerSettings())
        fill(store)
        store.close()
    assert main(["sessions", "--dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "a.h5" in out and "b.h5" in out and "background 1, ball 1" in out
    merged = tmp_path / "m.h5"
    assert main(["merge", str(folder / "a.h5"), str(folder / "b.h5"), "-o", str(merged)]) == 0
    state = SessionStore.open(merged).state
    assert len(state.frames) == 4 and len(state.labels) == 6
    assert sum(r.active for r in state.labels) == 4
    other = SessionStore.create(tmp_path / "o.h5",
                                PatchSpec("o", categories_from_names(["x", "y", "z"])),
                                TrainerSettings())
    other.close()
    assert main(["merge", str(folder / "a.h5"), str(tmp_path / "o.h5"), "-o",
                 str(tmp_path / "n.h5")]) == 2
    err = capsys.readouterr().err
    assert "different patches" in err and not (tmp_path / "n.h5").exists()
