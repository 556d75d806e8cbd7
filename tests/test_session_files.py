"""Hostile session files, generated: a valid session mutated hundreds of ways (huge declared
frames, millions of labels in a few KB, soft-link loops, external links, deep or huge JSON,
wrong types, NaN labels, labels for missing frames, random bytes, cut files, damaged journals,
FIFOs, links to /dev/zero), each read by the loader and by `info` in a child under `ulimit -v`:
success or a one-line error naming the file, within seconds; nothing crashes."""
import json
import os
import random
import resource
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from loop.core.labels import LabelDisc
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.settings import TrainerSettings
from loop.core.snapshot import Snapshot as CoreSnapshot
from loop.store.journal import MAGIC, Record
from loop.store.records import LabelRecord, settings_to_json, spec_to_json
from loop.store.session import SessionStore
from loop.store.session_loader import journal_path
from loop.store.session_rows import label_rows
from child_env import child_env

SPEC = PatchSpec("f", categories_from_names(["background", "ball"]), topology="pixels")
MEMORY_LIMIT = 1 << 30
CASES = 300

CHILD = r"""
import contextlib, io, json, sys, time
from loop.cli import main
from loop.store.records import SessionFormatError
from loop.store.session_loader import load_session
for path in sys.argv[1:]:
    result = {"file": path}
    for what, kwargs in (("summary", dict(frames=False, arrays=False)), ("full", {})):
        start = time.monotonic()
        try:
            loaded = load_session(path, **kwargs)
            result[what] = ["ok", len(loaded.state.labels), len(loaded.warnings)]
        except SessionFormatError as exc:
            result[what] = ["refused", str(exc)]
        result[what + "_seconds"] = time.monotonic() - start
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["info", path])
    result["info"] = [code, err.getvalue()]
    print(json.dumps(result), flush=True)
"""


def base_session(folder: Path) -> Path:
    path = folder / "base.h5"
    store = SessionStore.create(path, SPEC, TrainerSettings())
    for n in range(6):
        store.add_label(n // 2, np.full((24, 32, 3), n, np.uint8), LabelDisc(n, 2, 3, n % 2),
                        when=float(n))
    store.save_snapshot(CoreSnapshot("20260101-000000-0000abcd", 3.0, SPEC,
                                     np.ones(8, np.float32), np.zeros(8, np.float32),
                                     TrainerSettings(), np.array([1, 1]), 2))
    store.close()
    return path


def legacy_session(folder: Path) -> Path:
    """A version 1 file as Patchloop wrote them before sessions grew."""
    path = folder / "legacy.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update(format="patchloop-session", version=1, created=1.0, journal_seq=0,
                       patch=json.dumps(spec_to_json(SPEC)),
                       settings=json.dumps(settings_to_json(TrainerSettings())))
        frames = f.create_group("frames")
        for i in range(3):
            frames.create_dataset(str(i), data=np.full((24, 32, 3), i, np.uint8),
                                  compression="gzip")
        f.create_dataset("labels", data=label_rows(
            [LabelRecord(i // 2, "disc", i, 2, 3, i % 2, float(i)) for i in range(6)]),
            maxshape=(None,), chunks=(1024,))
        f.create_dataset("excluded", data=np.array([1], np.int64))
        f.create_dataset("loss_log", data=np.zeros((3, 2)))
        g = f.create_group("snapshots").create_group("t0")
        g.create_dataset("weights", data=np.ones(8, np.float32))
        g.create_dataset("velocity", data=np.zeros(8, np.float32))
        g.attrs["header"] = json.dumps({"tag": "t0", "created": 1.0})
    return path


def _v3_mutation(f, rng):
    """The growing layout: commit counts, the frame index, tiles, settings, snapshots."""
    choice = rng.randrange(9)
    if choice == 0:
        f["commit"][rng.randrange(1, 6)] = rng.choice([-1, 10**12, 7, 1000])
    elif choice == 1:
        index = f["frame_index"][()]
        field = rng.choice(["id", "height", "width"])
        index[field][rng.randrange(len(index))] = rng.choice([0, 5000, -3, index["id"][0]])
        f["frame_index"][:] = index
    elif choice == 2:  # a hundred 4096 px frames declared, no tiles stored for them
        f["frame_index"].resize((100,))
        f["frame_index"][:] = [(i, 4096, 4096, 0) for i in range(100)]
        f["frames"].resize(100, axis=0)
        f["commit"][1] = 100
    elif choice == 3:
        del f["frames"]
        f.create_dataset("frames", data=np.zeros((3, 24, 32, 3), np.uint8))
    elif choice == 4:
        f["settings_log"][-1] = 0
        data = rng.choice([b"[" * 4000, b"{}", b"7", b"\xff\xfe"])
        f["settings_log"][-1, :len(data)] = np.frombuffer(data, np.uint8)
    elif choice == 5:
        data = rng.choice([b"[1,2", b"99999", b"nul", b"{}"])
        f["snapshot_headers"][-1] = 0
        f["snapshot_headers"][-1, :len(data)] = np.frombuffer(data, np.uint8)
    elif choice == 6:
        f["commit"][5] = rng.choice([2, 9])
    elif choice == 7:
        del f["commit"]
        f["commit"] = h5py.SoftLink("/commit")
    else:
        del f["settings_log"]
        f["settings_log"] = h5py.ExternalLink("/etc/passwd", "/x")


def _attr_mutation(f, rng):
    key = rng.choice(["patch", "settings", "version", "journal_seq", "created", "format"])
    f.attrs[key] = rng.choice([
        "[" * 100_000, "x" * (2 << 20), "{}", "[]", "null", '{"name": 5}', 99, -1, "2",
        float("nan"), np.array([1, 2]), b"\xff\xfe", True])


def _legacy_frames_mutation(f, rng):
    frames = f["frames"]
    name = rng.choice(["0", "1", "77", "abc", "-1", "1e3", ""]) or "x"
    if name in frames:
        del frames[name]
    choice = rng.randrange(7)
    if choice == 0:  # declares 48 MiB in a few hundred bytes
        frames.create_dataset(name, shape=(4096, 4096, 3), dtype=np.uint8, chunks=(64, 64, 3),
                              compression="gzip")
    elif choice == 1:
        frames[name] = h5py.SoftLink(f"/frames/{name}")
    elif choice == 2:
        frames[name] = h5py.ExternalLink("/etc/passwd", "/x")
    elif choice == 3:
        frames.create_dataset(name, data=np.zeros(rng.choice([(10, 10, 3), (20, 20, 4),
                                                              (20, 20)]), np.uint8))
    elif choice == 4:
        frames.create_dataset(name, data=np.zeros((20, 20, 3), np.float32))
    elif choice == 5:
        frames.create_group(name)
    else:
        for i in range(rng.randrange(100, 3000)):  # many tiny frames
            frames.create_dataset(f"{1000 + i}", shape=(16, 16, 3), dtype=np.uint8)


def _dataset_mutation(f, rng):
    key = rng.choice(["labels", "excluded", "loss_log"] if "excluded" in f
                     else ["labels", "loss_log"])
    labels = f["labels"][()]
    del f[key]
    choice = rng.randrange(6)
    if choice == 0:  # ten million labels in a few KB
        f.create_dataset(key, shape=(10_000_000,), dtype=labels.dtype, chunks=(65536,),
                         compression="gzip")
    elif choice == 1:
        f.create_dataset(key, shape=(900_000,), dtype=labels.dtype, chunks=(65536,),
                         compression="gzip")
    elif choice == 2:
        f.create_dataset(key, data=np.zeros((5, 5)))
    elif choice == 3 and key == "labels":
        field = rng.choice(["x", "frame", "category", "kind", "radius", "time", "undone"])
        labels[field][rng.randrange(len(labels))] = rng.choice(
            [np.nan, np.inf, -5, 99, 1e30, 7])
        f.create_dataset(key, data=labels)
    elif choice == 4:
        f[key] = h5py.SoftLink(f"/{key}")
    # choice 5 (or 3 for others): the member is missing


def _legacy_snapshot_mutation(f, rng):
    g = f["snapshots"].create_group(rng.choice(["t", "a b", "x" * 200]))
    choice = rng.randrange(5)
    g.create_dataset("weights", data=np.zeros(rng.choice([4, 5]),
                                              rng.choice([np.float32, np.int32])))
    if choice > 0:
        g.create_dataset("velocity", data=np.zeros(4, np.float32))
    if choice > 1:
        g.attrs["header"] = rng.choice(["{", "[1]", '{"created": "x"}', "{}", "[" * 50_000])


def _journal(rng) -> bytes:
    events = [
        {"op": "label", "frame": 99, "kind": "disc", "x": 1, "y": 1, "r": 1, "category": 1,
         "t": 1}, {"op": "label", "frame": 0, "kind": "disc", "x": float("nan"), "y": 1,
                   "r": 1, "category": 1, "t": 1},
        {"op": "label", "frame": 0, "kind": "blob", "x": 1, "y": 1, "r": 1, "category": 1,
         "t": 1}, {"op": "label", "frame": 0, "kind": "disc", "x": 1, "y": 1, "r": 1,
                   "category": 9, "t": 1},
        {"op": "undo", "label": 10_000, "t": 1}, {"op": "undo", "label": "x", "t": 1},
        {"op": "exclude", "frame": "x", "value": 1}, {"op": "settings", "settings": 5},
        {"op": "settings", "settings": {"learning_rate": -1}}, {"op": "loss", "points": 7},
        {"op": "nope"}, [1, 2], "text"]
    records = []
    for _ in range(rng.randrange(1, 6)):
        choice = rng.randrange(5)
        if choice == 0:
            event = rng.choice(events)
            if isinstance(event, dict):
                event = dict(event, seq=rng.choice([100, 0, -1, "1", None]))
            records.append(Record.event(event))
        elif choice == 1:
            records.append(Record(2, b"[" * 200_000))
        elif choice == 2:
            records.append(Record(3, bytes(rng.randrange(0, 40))))  # a 1-byte snapshot, ...
        elif choice == 3:
            records.append(Record(1, rng.randbytes(rng.randrange(0, 30))))
        else:
            records.append(Record(rng.randrange(4, 256), b"?"))
    return MAGIC + b"".join(r.encode() for r in records)


def generate(folder: Path, count: int) -> list[Path]:
    rng = random.Random(21)
    current, legacy = base_session(folder).read_bytes(), legacy_session(folder).read_bytes()
    mutations = [_attr_mutation, _v3_mutation, _dataset_mutation, _v3_mutation,
                 _legacy_frames_mutation, _dataset_mutation, _legacy_snapshot_mutation]
    paths = []
    for case in range(count):
        path = folder / f"c{case}.h5"
        kind = case % 9
        good = legacy if kind in (4, 5, 6) else current
        if kind == 8:  # bytes of the file itself: flipped, cut, junk
            data = bytearray(good if rng.random() < 0.5 else legacy)
            how = rng.randrange(3)
            if how == 0:
                for _ in range(rng.randrange(1, 20)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
            elif how == 1:
                data = data[:rng.randrange(len(data))]
            else:
                data = bytearray(rng.randbytes(rng.randrange(0, 3000)))
            path.write_bytes(bytes(data))
        else:
            path.write_bytes(good)
            if kind == 7:
                journal_path(path).write_bytes(_journal(rng))
            else:
                with h5py.File(path, "r+") as f:
                    mutations[kind](f, rng)
        paths.append(path)
    for size in (8 << 30, 200 << 20):  # sparse journals: over the limit, and all zeros
        path = folder / f"sparse{size >> 20}.h5"
        path.write_bytes(current)
        with open(journal_path(path), "wb") as f:
            f.write(MAGIC)
            f.truncate(size)
        paths.append(path)
    (folder / "journal-fifo.h5").write_bytes(current)
    os.mkfifo(journal_path(folder / "journal-fifo.h5"))
    fifo = folder / "fifo.h5"
    os.mkfifo(fifo)
    zero = folder / "zero.h5"
    zero.symlink_to("/dev/zero")
    return paths + [folder / "journal-fifo.h5", fifo, zero]


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def test_hostile_session_files_are_read_or_refused_in_one_line(tmp_path, capsys):
    paths = generate(tmp_path, CASES)
    env = child_env(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    child = subprocess.run([sys.executable, "-c", CHILD] + [str(p) for p in paths],
                           capture_output=True, text=True, env=env, timeout=240,
                           preexec_fn=_limit_memory)
    assert child.returncode == 0, child.stderr[-3000:]
    results = [json.loads(line) for line in child.stdout.splitlines()]
    assert len(results) == len(paths), child.stderr[-3000:]
    outcomes = {"ok": 0, "refused": 0}
    for r in results:
        name = Path(r["file"]).name
        for what in ("summary", "full"):
            outcome = r[what]
            outcomes[outcome[0]] += 1
            if outcome[0] == "refused":
                assert name in outcome[1] and "\n" not in outcome[1], (name, outcome)
            assert r[what + "_seconds"] < 5, (name, what, r[what + "_seconds"])
        code, err = r["info"]
        assert code in (0, 2), (name, r["info"])
        lines = [line for line in err.splitlines() if not line.startswith("patchloop: warning:")]
        assert code == 0 or (len(lines) == 1 and name in lines[0]), (name, r["info"])
    with capsys.disabled():
        print(f"\nhostile session files (under a {MEMORY_LIMIT >> 20} MiB address-space limit): "
              f"{len(paths)} crafted, reads {outcomes}")
    assert outcomes["refused"] > len(paths) // 2 and outcomes["ok"] > 20
