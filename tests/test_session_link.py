"""A full disk: the window's labels stay in memory, the error is shown, and they are
written once the disk takes them."""
import errno
import time

from loop.core.engine import LoopCore
from loop.core.labels import LabelDisc
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.settings import TrainerSettings
from loop.demo.scene import DemoScene
from loop.faces import session_link
from loop.faces.session_link import SessionLink
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
