"""Damaged journals, generated: bad bytes, torn pieces of failed writes followed by their
retry, garbage, cut tails. Every record the damage did not touch is read back, in order;
nothing that was never written appears; readers never change the file; a writer opening
the session keeps the same and starts a clean journal."""
import errno
import hashlib
import json
import os
import random
import shutil

import numpy as np
import pytest

from loop.core.labels import LabelDisc
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.settings import TrainerSettings
from loop.store import journal as journal_module
from loop.store.journal import MAGIC, SYNC, Record, read_journal
from loop.store.session import SessionStore
from loop.store.session_loader import journal_path, load_session

SPEC = PatchSpec("j", categories_from_names(["background", "ball"]))
CASES = 300


def random_record(rng: random.Random) -> Record:
    kind = rng.choice(["event", "event", "frame", "snapshot"])
    if kind == "event":
        return Record.event({"op": "label", "seq": rng.randrange(1 << 30),
                             "note": "x" * rng.randrange(0, 300)})
    if kind == "frame":
        h, w = rng.randrange(16, 40), rng.randrange(16, 40)
        image = np.frombuffer(rng.randbytes(h * w * 3), np.uint8).reshape(h, w, 3)
        return Record.frame(rng.randrange(1000), image)
    return Record.snapshot({"tag": f"t{rng.randrange(99)}", "size": 4}, rng.randbytes(32))


def damaged_journal(rng: random.Random):
    """(journal bytes, the records written, indices of records the damage touched)."""
    records = [random_record(rng) for _ in range(rng.randrange(1, 25))]
    pieces = [r.encode() for r in records]
    touched = set()
    for _ in range(rng.randrange(1, 4)):
        how = rng.choice(["flip", "torn", "garbage", "zeros", "cut"])
        at = rng.randrange(len(pieces))
        if how == "flip":
            piece = bytearray(pieces[at])
            piece[rng.randrange(len(piece))] ^= rng.randrange(1, 256)
            pieces[at], _ = bytes(piece), touched.add(at)
        elif how == "zeros":
            piece = bytearray(pieces[at])
            start = rng.randrange(len(piece))
            piece[start:start + rng.randrange(1, 64)] = bytes(min(64, len(piece) - start))
            pieces[at], _ = bytes(piece[:len(pieces[at])]), touched.add(at)
        elif how == "cut" and at == len(pieces) - 1:
            pieces[at], _ = pieces[at][:rng.randrange(len(pieces[at]))], touched.add(at)
        elif how == "torn":  # a failed append left part of a record; the retry came after
            source = rng.choice(pieces)
            pieces.insert(at, source[:rng.randrange(1, len(source))])
            records.insert(at, None)
            touched = {i + (i >= at) for i in touched}
        else:
            junk = rng.randbytes(rng.randrange(1, 200))
            if rng.random() < 0.5:
                junk = junk[:10] + SYNC + junk[10:]
            pieces.insert(at, junk)
            records.insert(at, None)
            touched = {i + (i >= at) for i in touched}
    return MAGIC + b"".join(pieces), records, touched


def test_damage_costs_only_the_records_it_touches(tmp_path, capsys):
    rng = random.Random(3)
    path = tmp_path / "j.journal"
    for case in range(CASES):
        data, records, touched = damaged_journal(rng)
        path.write_bytes(data)
        found = read_journal(path)
        expected = [r for i, r in enumerate(records) if r is not None and i not in touched]
        assert found.records == expected, f"case {case}"
        damaged = touched or any(r is None for r in records)
        assert bool(found.damage) == bool(damaged), f"case {case}: {found.damage}"
        assert path.read_bytes() == data, "reading never writes"
    with capsys.disabled():
        print(f"\ndamaged journals: {CASES} generated (bad bytes, zeroed runs, torn pieces of "
              "failed writes, garbage, cut tails); every untouched record kept")


def test_frames_can_be_checked_without_keeping_their_pixels(tmp_path):
    rng = random.Random(4)
    path = tmp_path / "j.journal"
    for _ in range(50):
        data, records, touched = damaged_journal(rng)
        path.write_bytes(data)
        whole, light = read_journal(path), read_journal(path, frame_pixels=False)
        assert [r.kind for r in whole.records] == [r.kind for r in light.records]
        assert all(len(b.body) == 12 for a, b in zip(whole.records, light.records)
                   if a.kind == 1)


def image(value, h=24, w=32):
    return np.full((h, w, 3), value, np.uint8)


def test_failed_appends_then_retries_lose_nothing(tmp_path, monkeypatch, capsys):
    """Item 3: the disk fills mid-record (part of it written), then frees; each label is
    retried until it is acknowledged, as the window's writer does. Sometimes even cutting
    the torn piece back off fails."""
    real_pwrite, real_ftruncate = os.pwrite, os.ftruncate
    rng = random.Random(8)
    for case in range(60):
        path = tmp_path / f"s{case}.h5"
        store = SessionStore.create(path, SPEC, TrainerSettings())
        schedule = {"fail": 0.0, "cut_fails": 0.0}

        def pwrite(fd, data, offset):
            if fd == store.journal.fd and rng.random() < schedule["fail"]:
                real_pwrite(fd, bytes(data[:rng.randrange(len(data))]), offset)
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_pwrite(fd, data, offset)

        def ftruncate(fd, length):
            if fd == store.journal.fd and rng.random() < schedule["cut_fails"]:
                raise OSError(errno.EIO, "Input/output error")
            return real_ftruncate(fd, length)

        monkeypatch.setattr(journal_module.os, "pwrite", pwrite)
        monkeypatch.setattr(journal_module.os, "ftruncate", ftruncate)
        schedule.update(fail=rng.uniform(0.1, 0.6), cut_fails=rng.choice([0.0, 0.5, 1.0]))
        acknowledged = []
        for n in range(12):
            while True:
                try:
                    store.add_label(n // 2, image(n // 2), LabelDisc(n, 1, 2, 1), when=float(n))
                    acknowledged.append(float(n))
                    break
                except OSError:
                    continue
        monkeypatch.undo()
        store.release()  # as if killed: no consolidation
        assert [r.time for r in load_session(path).state.labels] == acknowledged, f"case {case}"
        reopened = SessionStore.open(path)
        assert [r.time for r in reopened.state.labels] == acknowledged
        reopened.close()
    with capsys.disabled():
        print("\nfull disks: 60 schedules of failed appends and retries, no label lost")


@pytest.fixture(scope="module")
def ten_labels(tmp_path_factory):
    """A session killed after 10 labels on 4 frames: all of it in the journal."""
    folder = tmp_path_factory.mktemp("ten")
    store = SessionStore.create(folder / "s.h5", SPEC, TrainerSettings())
    for n in range(10):
        store.add_label(n // 3, image(n // 3), LabelDisc(n, 1, 2, n % 2), when=float(n))
    store.release()
    return folder / "s.h5"


def _record_spans(data: bytes):
    """(start, end, kind, frame id or label time) of each record of an undamaged journal."""
    spans, at = [], len(MAGIC)
    while at < len(data):
        length = int.from_bytes(data[at + 4:at + 8], "little")
        payload = data[at + 16:at + 16 + length]
        key = int.from_bytes(payload[1:9], "little", signed=True) if payload[0] == 1 \
            else json.loads(payload[1:]).get("t")
        spans.append((at, at + 16 + length, payload[0], key))
        at += 16 + length
    return spans


def test_a_bad_byte_costs_its_record_and_readers_never_write(ten_labels, tmp_path, capsys):
    """Item 4: one bad byte anywhere in the journal; `info` (and every reader) keeps every
    label whose records are intact, warns, and leaves the journal as it was; a writer
    opening the session keeps the same labels and starts a clean journal."""
    from loop.cli import main
    original = journal_path(ten_labels).read_bytes()
    spans = _record_spans(original)
    rng = random.Random(12)
    for case in range(200):
        folder = tmp_path / f"c{case}"
        folder.mkdir()
        path = folder / "s.h5"
        shutil.copy(ten_labels, path)
        data = bytearray(original)
        where = rng.randrange(len(data))
        data[where] ^= rng.randrange(1, 256)
        journal_path(path).write_bytes(bytes(data))
        hit = next((s for s in spans if s[0] <= where < s[1]), None)
        lost = set()
        if hit is not None and hit[2] == 1:   # a frame: the labels on it go with it
            lost = {float(n) for n in range(10) if n // 3 == hit[3]}
        elif hit is not None:
            lost = {hit[3]}
        expected = [float(n) for n in range(10) if float(n) not in lost]
        digest = hashlib.sha256(bytes(data)).hexdigest()
        assert [r.time for r in load_session(path).state.labels] == expected, f"case {case}"
        assert main(["info", str(path), "--json"]) == 0
        out, err = capsys.readouterr()
        assert json.loads(out)["labels"] == sum(1 for t in expected)
        assert "warning" in err and "s.h5.journal" in err
        assert hashlib.sha256(journal_path(path).read_bytes()).hexdigest() == digest
        if case % 10 == 0:
            store = SessionStore.open(path)
            assert [r.time for r in store.state.labels] == expected
            store.close()
            again = load_session(path)
            assert [r.time for r in again.state.labels] == expected and not again.warnings
    with capsys.disabled():
        print("\none bad byte: 200 journals, each read by load_session and `info`, unchanged")
