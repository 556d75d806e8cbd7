"""A full disk: the window's labels stay in memory, the error is shown, and they are
written once the disk takes them."""
import errno
import time

from loop.core.engine import LoopCore
from loop.core.labels import LabelDisc
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.settings import TrainerSettings
from loop.demo.scene import DemoScene
from loop.store import session_link
from loop.store.session_link import SessionLink
from loop.store.session import SessionStore


def test_full_disk_keeps_labels_and_writes_them_later(device, tmp_path, monkeypatch):
    monkeypatch.setattr(session_link, "RETRY_SECONDS", 0.05)
    spec = PatchSpec("p", categories_from_names(["bg", "thing"]), topology="pixels")
    core = LoopCore(spec)
    store = SessionStore.create(tmp_path / "s.h5", spec, TrainerSettings())
    real_add = store.add_label
    failures = {"left": 3}

    def full_disk(*args, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_add(*args, **kwargs)

    monkeypatch.setattr(store, "add_label", full_disk)
    link = SessionLink(core, store)
    verdict = core.observe(DemoScene().frame(0).image)
    link.label(verdict.frame_id, LabelDisc(50, 50, 10, 1))
    assert core.label_counts()[1] > 0, "the core has the label at once"
    deadline = time.monotonic() + 5
    seen_error = None
    while time.monotonic() < deadline and link.held == 0:
        seen_error = seen_error or link.error
        time.sleep(0.01)
    assert seen_error and "No space left" in seen_error
    assert link.held == 1 and link.error is None
    link.close()
    assert len(SessionStore.open(tmp_path / "s.h5").state.labels) == 1


class FakeCore:
    """What the link needs of a core, without a device: frames by id, undo, snapshots."""

    def __init__(self, spec):
        from loop.core.snapshot import Snapshot
        import numpy as np
        self.spec, self.images = spec, {}
        self.trainer = type("T", (), {"status": type("S", (), {"losses": [(1, 0.5)]})()})()
        self._snapshot = Snapshot("20260101-000000-00000001", 1.0, spec,
                                  np.zeros(4, np.float32), np.zeros(4, np.float32),
                                  TrainerSettings(), np.zeros(2), 0)

    def label(self, frame_id, label):
        return type("Frame", (), {"image": self.images[frame_id]})()

    def undo(self):
        return True

    def snapshot(self):
        return self._snapshot


def test_frames_over_4096_px_are_kept_shrunk_with_their_labels(tmp_path):
    """Item 5: frames of any size up to 8200 px a side are stored (shrunk by a whole factor
    to fit 4096), the label scaled with them; a frame that cannot be stored at all is
    refused, named, and the writer goes on with the next label."""
    import numpy as np
    import random
    from loop.store.records import MAX_SIDE
    from loop.store.session_loader import load_session
    spec = PatchSpec("p", categories_from_names(["bg", "thing"]), topology="pixels")
    core = FakeCore(spec)
    store = SessionStore.create(tmp_path / "s.h5", spec, TrainerSettings())
    link = SessionLink(core, store)
    rng = random.Random(1)
    expected = []
    for frame_id in range(60):
        long_side = rng.randrange(4097, 8200)
        short_side = rng.randrange(16 * (-(-long_side // MAX_SIDE)), 300)
        h, w = (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)
        core.images[frame_id] = np.full((h, w, 3), frame_id, np.uint8)
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        link.label(frame_id, LabelDisc(x, y, 8.0, 1))
        factor = -(-max(h, w) // MAX_SIDE)
        expected.append((frame_id, x / factor, y / factor, 8.0 / factor, h // factor, w // factor))
    core.images[99] = np.zeros((9000, 20, 3), np.uint8)  # cannot shrink to fit: refused
    link.label(99, LabelDisc(1, 1, 1, 1))
    core.images[100] = np.zeros((20, 20, 3), np.uint8)
    link.label(100, LabelDisc(1, 1, 1, 1))
    link.close()
    assert link.failure and "the label on frame 99" in link.failure and "\n" not in link.failure
    state = load_session(tmp_path / "s.h5").state
    got = [(r.frame_id, r.x, r.y, r.radius) + state.frame_shapes[r.frame_id]
           for r in state.labels]
    assert [g[0] for g in got] == list(range(60)) + [100], "the writer went on after 99"
    assert max(h for h, w in state.frame_shapes.values()) <= MAX_SIDE
    for g, e in zip(got, expected):
        assert g[0] == e[0] and g[4:] == e[4:] and np.allclose(g[1:4], e[1:4], rtol=1e-5)
        assert max(g[4:]) <= MAX_SIDE


def test_quitting_with_the_disk_still_full_is_bounded_and_names_the_lost(tmp_path,
                                                                        monkeypatch):
    """Item 9: closing waits a bounded time, then says which labels were lost (exit 2 from
    the face); a close whose consolidation fails loses nothing (the journal has it all)."""
    import numpy as np
    from loop.errors import UserError
    from loop.faces.live import finish
    from loop.store import session as session_module
    from loop.store.session_loader import load_session
    monkeypatch.setattr(session_link, "RETRY_SECONDS", 0.05)
    spec = PatchSpec("p", categories_from_names(["bg", "thing"]), topology="pixels")
    core = FakeCore(spec)
    store = SessionStore.create(tmp_path / "s.h5", spec, TrainerSettings())
    link = SessionLink(core, store)
    core.images[3] = np.zeros((20, 20, 3), np.uint8)
    link.label(3, LabelDisc(1, 1, 1, 1))
    assert _wait(lambda: link.held == 1)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "add_label", full)
    monkeypatch.setattr(store, "save_snapshot", full)
    monkeypatch.setattr(store, "log_loss", full)
    monkeypatch.setattr(session_module, "append", full)
    for frame_id in (7, 8):
        core.images[frame_id] = np.zeros((20, 20, 3), np.uint8)
        link.label(frame_id, LabelDisc(1, 1, 1, 1))
    started = time.monotonic()
    link.close(seconds=0.5)
    assert time.monotonic() - started < 3
    assert "the label on frame 7" in link.failure and "the label on frame 8" in link.failure
    assert "No space left" in link.failure and "\n" not in link.failure
    assert link.warning and "not consolidated" in link.warning
    try:
        finish(link)
        raise AssertionError("a loss must be an error")
    except UserError as exc:
        assert str(exc) == link.failure
    assert [r.frame_id for r in load_session(tmp_path / "s.h5").state.labels] == [3]


def _wait(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False
