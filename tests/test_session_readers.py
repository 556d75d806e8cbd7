"""Every reader (info, sessions, export, merge, eval, replay's open) sees every acknowledged
change of a session that is running or was killed, writes nothing where the session lies,
and works on read-only media. `export -o` never overwrites unless asked, and never the
session itself."""
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from loop.cli import _parser, main
from loop.core.labels import LabelDisc
from loop.core.settings import TrainerSettings
from loop.store.plugin_read import read_plugin
from loop.core.snapshot import Snapshot
from loop.store.session import SessionStore
from loop.store.session_loader import load_session

sys.path.insert(0, str(Path(__file__).parent))
from session_writer_child import SPEC, trained_state  # noqa: E402

LABELS = 7


def running_session(folder: Path) -> SessionStore:
    """A session being written: 7 labels and a snapshot, all only in its journal."""
    folder.mkdir(parents=True, exist_ok=True)
    store = SessionStore.create(folder / "k.h5", SPEC, TrainerSettings(), holder="patchloop live")
    for n in range(LABELS):
        store.add_label(n // 2, trained_state(n, 1).frames[0], LabelDisc(n, 3, 2, n % 2),
                        when=float(n))
    snap = next(iter(trained_state(0, 1).snapshots.values()))
    store.save_snapshot(_core_snapshot(snap))
    return store


def _core_snapshot(snap: Snapshot) -> Snapshot:
    """The snapshot as the window would take it: 5 s in, 3 steps."""
    import numpy as np
    return replace(snap, created=5.0, label_counts=np.array([1, 1]), steps=3)


def tree(folder: Path) -> dict:
    """Every entry under `folder` with its size, time and content hash."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        out[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns, digest)
    return out


def read_everything(folder: Path, out: Path, capsys) -> dict:
    """Runs each reader on folder/k.h5; outputs go to `out`. Returns what they reported."""
    session = folder / "k.h5"
    other = out / "other.h5"
    if not other.exists():
        SessionStore.write_new(other, trained_state(3, 2))
    seen = {}
    assert main(["info", str(session), "--json"]) == 0
    seen["info"] = json.loads(capsys.readouterr().out)
    assert main(["sessions", "--dir", str(folder), "--json"]) == 0
    seen["sessions"] = json.loads(capsys.readouterr().out)
    plugin = out / f"p{len(list(out.iterdir()))}.specialneurons"
    assert main(["export", str(session), "-o", str(plugin)]) == 0
    seen["export"] = read_plugin(plugin).manifest["name"]
    merged = out / f"m{len(list(out.iterdir()))}.h5"
    assert main(["merge", str(session), str(other), "-o", str(merged)]) == 0
    seen["merge"] = load_session(merged).state.active_count()
    capsys.readouterr()
    return seen


def check_sees_everything(seen: dict) -> None:
    assert seen["info"]["labels"] == LABELS and seen["info"]["frames"] == 4
    assert seen["info"]["snapshots"] == ["20260101-000000-0000abcd"]
    assert seen["sessions"][0]["labels"] == LABELS
    assert seen["export"] == "kill"
    assert seen["merge"] == LABELS + 2


def test_readers_see_a_running_and_a_killed_session_and_write_nothing(tmp_path, capsys):
    """Item 1: while the window runs, and after it was killed, every reader sees all
    acknowledged labels (they are in the journal only), and nothing beside the session
    changes."""
    out = tmp_path / "out"
    out.mkdir()
    store = running_session(tmp_path / "s")
    before = tree(tmp_path / "s")
    check_sees_everything(read_everything(tmp_path / "s", out, capsys))
    assert tree(tmp_path / "s") == before, "a reader wrote beside a running session"
    store.release()  # as kill -9 leaves it: no consolidation
    before = tree(tmp_path / "s")
    check_sees_everything(read_everything(tmp_path / "s", out, capsys))
    assert tree(tmp_path / "s") == before, "a reader wrote beside a killed session"


@pytest.fixture
def read_only_folder(tmp_path):
    """A function making a folder read-only media: a read-only bind mount where this user
    may mount, else (not root) a folder without write permission."""
    made = []

    def make(folder: Path) -> Path:
        if os.geteuid() != 0:
            for p in [folder, *folder.rglob("*")]:
                p.chmod(0o555 if p.is_dir() else 0o444)
            made.append(("chmod", folder))
            return folder
        view = folder.with_name(folder.name + "-ro")
        view.mkdir()
        ok = subprocess.run(["mount", "--bind", str(folder), str(view)],
                            capture_output=True).returncode == 0
        ok = ok and subprocess.run(["mount", "-o", "remount,ro,bind", str(view)],
                                   capture_output=True).returncode == 0
        if not ok:
            subprocess.run(["umount", str(view)], capture_output=True)
            pytest.skip("cannot make read-only media here (root, but no mount)")
        made.append(("mount", view))
        return view

    yield make
    for how, where in made:
        if how == "mount":
            subprocess.run(["umount", str(where)], capture_output=True)
        else:
            for p in [where, *where.rglob("*")]:
                p.chmod(0o755 if p.is_dir() else 0o644)


def test_readers_work_on_read_only_media(tmp_path, capsys, read_only_folder, device):
    """Item 4: info, sessions, export, merge, eval and replay's open on a killed session on
    read-only media; replay opens it for viewing and says edits are not saved."""
    from loop.faces import live
    from loop.faces.eval_folder import open_patch_core
    store = running_session(tmp_path / "s")
    store.release()
    media = read_only_folder(tmp_path / "s")
    with pytest.raises(OSError):
        (media / "probe").write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    check_sees_everything(read_everything(media, out, capsys))
    assert main(["export", str(media / "k.h5"), "-o", str(media / "x.specialneurons")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "x.specialneurons: cannot write it" in err
    core = open_patch_core(str(media / "k.h5"), None)
    core.close()
    args = _parser().parse_args(["replay", str(media / "k.h5")])
    core, link, note = live.open_session(args, None, holder="patchloop replay",
                                         read_only_ok=True)
    assert link is None and "read-only" in note
    assert sum(len(f.labels) for f in core.frames) == LABELS
    core.close()


def test_export_never_overwrites_unless_asked_and_never_the_session(tmp_path, capsys):
    """Item 6's export half: -o equal to the session (or its journal) is refused even with
    --force; an existing output needs --force; a missing folder is one line."""
    store = running_session(tmp_path)
    store.close()
    session = tmp_path / "k.h5"
    before = session.read_bytes()
    for out, force in ((session, False), (session, True), (tmp_path / "k.h5.journal", True),
                       (tmp_path / "." / "k.h5", True)):
        assert main(["export", str(session), "-o", str(out)] + (["--force"] if force else [])) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "session's own file" in err
    assert session.read_bytes() == before
    plugin = tmp_path / "p.specialneurons"
    plugin.write_bytes(b"precious")
    assert main(["export", str(session), "-o", str(plugin)]) == 2
    assert "--force" in capsys.readouterr().err and plugin.read_bytes() == b"precious"
    assert main(["export", str(session), "-o", str(plugin), "--onnx"]) == 2
    capsys.readouterr()
    assert main(["export", str(session), "-o", str(plugin), "--force"]) == 0
    assert read_plugin(plugin).manifest["name"] == "kill"
    assert main(["export", str(session), "-o", str(tmp_path / "nowhere" / "p.specialneurons")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "nowhere" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.h5", "k.h5.journal",
                                                          "p.specialneurons"]
