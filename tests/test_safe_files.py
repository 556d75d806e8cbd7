"""The file primitives every reader and writer uses, against generated hostile files: FIFOs,
devices, folders, links planted where outputs go, files over their limit, hostile names."""
import os
import random

import pytest

from loop.errors import UserError
from loop import safe_files


def _hostile_inputs(tmp_path, rng):
    """(path, why it must be refused) for a few hundred generated cases."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    os.symlink("/dev/zero", tmp_path / "to-zero")
    os.symlink(tmp_path / "fifo", tmp_path / "to-fifo")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    cases = [(tmp_path / n, n) for n in ("fifo", "folder", "to-zero", "to-fifo", "dangling")]
    cases.append((tmp_path / "missing", "missing"))
    for i in range(300):
        limit = rng.randint(0, 5000)
        path = tmp_path / f"big{i}"
        path.write_bytes(os.urandom(limit + rng.randint(1, 3000)))
        cases.append((path, limit))
    sparse = tmp_path / "sparse"
    with open(sparse, "wb") as f:
        f.truncate(8 << 30)  # 8 GiB of nothing on disk
    cases.append((sparse, "sparse"))
    return cases


def test_inputs_that_are_not_small_regular_files_are_refused_without_reading(tmp_path):
    rng = random.Random(1)
    tried = 0
    for path, why in _hostile_inputs(tmp_path, rng):
        limit = why if isinstance(why, int) else 1 << 20
        with pytest.raises(UserError) as caught:
            safe_files.read_input(path, limit, "test file")
        message = str(caught.value)
        assert "\n" not in message and path.name in message, message
        tried += 1
    print(f"hostile inputs refused: {tried}")
    assert tried > 300


def test_a_regular_file_within_its_limit_is_read(tmp_path):
    path = tmp_path / "ok"
    path.write_bytes(b"x" * 100)
    assert safe_files.read_input(path, 100) == b"x" * 100
    os.symlink(path, tmp_path / "link-to-ok")
    assert safe_files.read_input(tmp_path / "link-to-ok", 100) == b"x" * 100


def test_creating_never_follows_or_clobbers(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    for i in range(50):
        planted = tmp_path / f"session{i}.h5.journal"
        os.symlink(victim if i % 2 else tmp_path / f"absent{i}", planted)
        with pytest.raises(FileExistsError):
            safe_files.create_exclusive(planted)
        with pytest.raises(OSError):
            safe_files.open_no_follow(planted, os.O_WRONLY | os.O_APPEND)
    assert victim.read_bytes() == b"precious"


def test_atomic_writes_replace_only_when_asked_and_leave_nothing_behind(tmp_path):
    target = tmp_path / "out.bin"
    safe_files.write_atomically(target, lambda f: f.write(b"one"))
    assert target.read_bytes() == b"one"
    with pytest.raises(FileExistsError):
        safe_files.write_atomically(target, lambda f: f.write(b"two"))
    assert target.read_bytes() == b"one"

    def fails_midway(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")
    with pytest.raises(OSError):
        safe_files.write_atomically(target, fails_midway, replace=True)
    assert target.read_bytes() == b"one", "a failed write leaves the old file whole"
    safe_files.write_atomically(target, lambda f: f.write(b"two"), replace=True)
    assert target.read_bytes() == b"two"
    os.symlink(tmp_path / "elsewhere", tmp_path / "link.bin")
    with pytest.raises(FileExistsError):
        safe_files.write_atomically(tmp_path / "link.bin", lambda f: f.write(b"x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.bin", "out.bin"]


def test_names_that_would_be_paths_or_terminal_control_are_refused_or_escaped():
    rng = random.Random(2)
    bad = ["", ".", "..", "a/b", "/etc", "a\\b", "n1\n", "x\x1b[31m", "\x00", "a" * 101]
    bad += ["".join(rng.choice("ab/\n\x1b\x7f.") for _ in range(rng.randint(1, 12)))
            for _ in range(300)]
    refused = 0
    for name in bad:
        plain = not (not name or len(name) > 100 or name in (".", "..")
                     or any(c in name for c in "/\\\n\x1b\x7f\x00"))
        if plain:
            assert safe_files.check_plain_name(name) == name
            continue
        with pytest.raises(ValueError):
            safe_files.check_plain_name(name)
        refused += 1
        assert all(c.isprintable() for c in safe_files.shown(name))
    assert refused > 250
    assert safe_files.shown("ball") == "ball"


def test_without_renameat2_the_move_still_never_clobbers(tmp_path, monkeypatch):
    """Where the system lacks an atomic no-replace rename, a hard link (then unlink) does it."""
    from loop import safe_files
    monkeypatch.setattr(safe_files, "_libc", lambda: None)
    safe_files.write_atomically(tmp_path / "a", lambda f: f.write(b"first"))
    assert (tmp_path / "a").read_bytes() == b"first"
    with pytest.raises(FileExistsError):
        safe_files.write_atomically(tmp_path / "a", lambda f: f.write(b"second"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
