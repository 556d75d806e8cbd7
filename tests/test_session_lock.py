"""One writer per session, and no planted link, FIFO or hard link beside a session ever
redirects a write: generated over every file a writer touches, every kind of plant and
every way a session is written."""
import itertools
import os
import random
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from loop.core.labels import LabelDisc
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.settings import TrainerSettings
from loop.errors import UserError
from loop.store.records import SessionFormatError, SessionState
from loop.store.session import SessionStore
from loop.store.session_lock import SessionBusy
from child_env import child_env

SPEC = PatchSpec("l", categories_from_names(["background", "ball"]), topology="pixels")


def image(value):
    return np.full((24, 32, 3), value, np.uint8)


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, capsys):
    from loop.cli import main
    path = tmp_path / "c.h5"
    store = SessionStore.create(path, SPEC, TrainerSettings(), holder="patchloop live")
    store.add_label(1, image(1), LabelDisc(1, 1, 1, 1))
    with pytest.raises(SessionBusy, match=rf"in use by patchloop live \(pid {os.getpid()}"):
        SessionStore.open(path)
    child = subprocess.run(
        [sys.executable, "-c", "import sys; from loop.store.session import SessionStore\n"
         "try: SessionStore.open(sys.argv[1])\nexcept Exception as e: print(e)", str(path)],
        capture_output=True, text=True, env=child_env())
    assert f"in use by patchloop live (pid {os.getpid()}" in child.stdout
    for command in (["replay", str(path)],
                    ["live", "--demo", "--topology", "pixels", "--session", str(path),
                     "--screenshot", str(tmp_path / "x.png"), "--frames", "1"]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "in use by patchloop live" in err and "c.h5" in err
    store.close()
    again = SessionStore.open(path)  # free once the holder closed it
    assert len(again.state.labels) == 1
    again.close()
    assert not (tmp_path / "c.h5.lock").exists(), "the lock file goes with its holder"


@contextmanager
def time_limit(seconds: int):
    def expired(*_):
        raise TimeoutError("hung")
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def plant(where: Path, kind: str, victim: Path) -> None:
    if kind == "symlink":
        where.symlink_to(victim)
    elif kind == "dangling":
        where.symlink_to(victim.with_name("nowhere"))
    elif kind == "hardlink":
        os.link(victim, where)
    elif kind == "fifo":
        os.mkfifo(where)
    else:
        where.mkdir()


def write_session(how: str, path: Path) -> None:
    if how == "create":
        SessionStore.create(path, SPEC, TrainerSettings()).close()
    elif how == "resume":
        store = SessionStore.open(path)
        store.add_label(1, image(1), LabelDisc(1, 1, 1, 1))
        store.close()
    else:
        state = SessionState(SPEC, TrainerSettings(), 1.0)
        state.add_frame(0, 24, 32, image(0))
        SessionStore.write_new(path, state)


@pytest.mark.parametrize("how", ["create", "resume", "write_new"])
def test_planted_files_never_redirect_a_write(how, tmp_path, capsys):
    """Item 10: a link (or a FIFO, a folder, a hard link) planted where a session's journal,
    lock or old-style temporary file goes: the victim is never touched, the outcome is a
    clean session or a one-line error, and nothing hangs."""
    rng = random.Random(hash(how) & 0xffff)
    names = [".journal", ".lock", ".writing", ".part"]
    kinds = ["symlink", "dangling", "hardlink", "fifo", "folder"]
    tried = 0
    for n, (name, kind, _) in enumerate(itertools.product(names, kinds, range(3))):
        folder = tmp_path / f"{name[1:]}-{kind}-{n}"
        folder.mkdir()
        victim = folder / "victim.txt"
        content = rng.randbytes(rng.randrange(0, 300))
        victim.write_bytes(content)
        path = folder / "n.h5"
        if how == "resume":
            SessionStore.create(path, SPEC, TrainerSettings()).close()
        target = folder / (f".n.h5.{rng.randbytes(4).hex()}.part" if name == ".part"
                           else "n.h5" + name)
        if how == "resume" and name == ".journal":
            target.unlink()
        plant(target, kind, victim)
        try:
            with time_limit(10):
                write_session(how, path)
        except (SessionFormatError, UserError) as exc:
            assert "\n" not in str(exc) and "n.h5" in str(exc), str(exc)
        assert victim.read_bytes() == content, f"{how} through {kind} at {name}: victim changed"
        tried += 1
    assert tried == 60
    with capsys.disabled():
        print(f"\nplanted files ({how}): {tried} tried, no victim touched")
