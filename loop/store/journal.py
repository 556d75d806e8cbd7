"""An append-only journal beside a session file: every change is made durable here first.

File (version 2): the magic bytes, then records

    sync b"PLr\\xa7" | u32 length | u32 crc32(payload) | u32 crc32(the 12 bytes before) | payload

payload = one type byte and a body. Each append is written and fsync'ed before it returns:
that is the moment a label counts as acknowledged. The header's own checksum and the sync
bytes let a reader step over a damaged record (a bad byte, a record torn by a failed write
that was then retried) and find every later good one: damage costs that record only.

Reading is streamed (one record body in memory at a time, at most MAX_RECORD bytes) and
never writes. Version 1 journals (no sync bytes) are still read, record by record."""
from __future__ import annotations

import errno
import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from loop.safe_files import create_exclusive, open_no_follow, shown, sync_folder

MAGIC = b"PLJOURNAL2\n"
MAGIC_V1 = b"PLJOURNAL1\n"
SYNC = b"PLr\xa7"
HEAD = struct.Struct("<4sIII")       # sync, length, payload crc, header crc
HEAD_V1 = struct.Struct("<II")       # length, payload crc
MAX_RECORD = 64 << 20
MAX_JOURNAL_BYTES = 1 << 30    # the writer appends to the file long before (session.py)
FRAME, EVENT, SNAPSHOT = 1, 2, 3
KINDS = (FRAME, EVENT, SNAPSHOT)
FRAME_HEAD = struct.Struct("<qHH")   # frame id, height, width
SNAP_HEAD = struct.Struct("<I")      # length of the JSON header that follows
_BLOCK = 1 << 20


class JournalError(ValueError):
    pass


@dataclass(frozen=True)
class Record:
    kind: int
    body: bytes

    @staticmethod
    def frame(frame_id: int, image) -> "Record":
        h, w = image.shape[:2]
        return Record(FRAME, FRAME_HEAD.pack(frame_id, h, w) + image.tobytes())

    @staticmethod
    def event(event: dict) -> "Record":
        return Record(EVENT, json.dumps(event, separators=(",", ":")).encode())

    @staticmethod
    def snapshot(header: dict, arrays: bytes) -> "Record":
        head = json.dumps(header, separators=(",", ":")).encode()
        return Record(SNAPSHOT, SNAP_HEAD.pack(len(head)) + head + arrays)

    def encode(self) -> bytes:
        payload = bytes([self.kind]) + self.body
        if len(payload) > MAX_RECORD:
            raise JournalError(f"a record of {len(payload)} bytes is over the "
                               f"{MAX_RECORD >> 20} MiB limit")
        crc = zlib.crc32(payload)
        head = SYNC + struct.pack("<II", len(payload), crc)
        return head + struct.pack("<I", zlib.crc32(head)) + payload


@dataclass
class JournalScan:
    """What a read found: the good records in order, where the last one ends, and a line
    for each damaged stretch that was stepped over."""
    records: list = field(default_factory=list)
    good_end: int = 0
    damage: list = field(default_factory=list)


def read_journal(path, frame_pixels: bool = True) -> JournalScan:
    """Every good record of the journal at `path` (which must be a regular file, not a
    link). With frame_pixels=False a frame record's body is only its FRAME_HEAD (the pixels
    are checked but not kept). Never writes; a missing journal reads as empty."""
    path = Path(path)
    try:
        fd = open_no_follow(path, os.O_RDONLY)
    except FileNotFoundError:
        return JournalScan()
    except OSError as exc:
        why = "a symbolic link" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
        raise JournalError(f"{shown(str(path))}: cannot read the journal ({why})") from exc
    try:
        size = os.fstat(fd).st_size
        if size > MAX_JOURNAL_BYTES:
            raise JournalError(f"{shown(str(path))}: {size} bytes is over the "
                               f"{MAX_JOURNAL_BYTES >> 20} MiB limit for a journal")
        found = _scan(fd, size, path, frame_pixels)
        if os.fstat(fd).st_size < size:  # emptied by its writer as we read: what looked
            found.damage = []            # torn is in the session file, read after this
        return found
    finally:
        os.close(fd)


def _scan(fd: int, size: int, path: Path, frame_pixels: bool) -> JournalScan:
    start = os.pread(fd, len(MAGIC), 0)
    if start == MAGIC:
        return _Reader(fd, size, path, frame_pixels).scan()
    if start == MAGIC_V1:
        return _Reader(fd, size, path, frame_pixels).scan_v1()
    if len(start) == len(MAGIC) and sum(a == b for a, b in zip(start, MAGIC)) >= 8:
        found = _Reader(fd, size, path, frame_pixels).scan()  # a bad byte in the magic
        found.damage.insert(0, f"{shown(str(path))}: its first bytes are damaged; read as a "
                               "version 2 journal")
        return found
    if len(start) < len(MAGIC) and (MAGIC.startswith(start) or MAGIC_V1.startswith(start)):
        return JournalScan()  # a crash while the file was being started
    raise JournalError(f"{shown(str(path))}: not a Patchloop journal")


class _Reader:
    def __init__(self, fd: int, size: int, path: Path, frame_pixels: bool):
        self.fd, self.size, self.path, self.frame_pixels = fd, size, path, frame_pixels
        self.found = JournalScan(good_end=len(MAGIC))

    def scan(self) -> JournalScan:
        at = len(MAGIC)
        while at + HEAD.size <= self.size:
            head = os.pread(self.fd, HEAD.size, at)
            sync, length, crc, head_crc = HEAD.unpack(head)
            if sync != SYNC or head_crc != zlib.crc32(head[:12]) or not 1 <= length <= MAX_RECORD:
                at = self._damaged_from(at)
                continue
            end = at + HEAD.size + length
            if end > self.size:  # cut short: a crash, or a failed write retried later
                at = self._damaged_from(at)
                continue
            if not self._take(at + HEAD.size, length, crc):
                # Not skipped by its length: a torn piece of a record (a failed write that
                # was retried) claims a length that runs over the good records after it.
                at = self._damaged_from(at)
                continue
            self.found.good_end = end
            at = end
        if at < self.size:
            self._damaged_from(at)
        return self.found

    def scan_v1(self) -> JournalScan:
        at = len(MAGIC_V1)
        while at + HEAD_V1.size <= self.size:
            length, crc = HEAD_V1.unpack(os.pread(self.fd, HEAD_V1.size, at))
            end = at + HEAD_V1.size + length
            if not 1 <= length <= MAX_RECORD or end > self.size:
                break
            if self._take(at + HEAD_V1.size, length, crc):
                self.found.good_end = end
            else:
                self._note(at, end, "hold a record that fails its checksum")
            at = end
        if at < self.size:
            self._note(at, self.size, "are damaged or cut short (a version 1 journal cannot "
                                      "be read past that)")
        return self.found

    def _take(self, at: int, length: int, crc: int) -> bool:
        """Reads one payload (streaming the pixels of a frame that is not wanted); keeps the
        record when its checksum holds."""
        keep = length if self.frame_pixels else min(length, _BLOCK)
        first = os.pread(self.fd, keep, at)
        if not first:
            return False
        running = zlib.crc32(first)
        kind = first[0]
        if kind == FRAME and not self.frame_pixels:
            done = len(first)
            while done < length:
                piece = os.pread(self.fd, min(_BLOCK, length - done), at + done)
                if not piece:
                    return False
                running = zlib.crc32(piece, running)
                done += len(piece)
            body = first[1:1 + FRAME_HEAD.size]
        else:
            if len(first) < length:
                first += os.pread(self.fd, length - len(first), at + len(first))
                running = zlib.crc32(first)
            body = first[1:]
        if running != crc or kind not in KINDS:
            return False
        self.found.records.append(Record(kind, body))
        return True

    def _damaged_from(self, at: int) -> int:
        """The offset of the next plausible record after damage at `at` (or the end)."""
        look = at + 1
        while look < self.size:
            block = os.pread(self.fd, _BLOCK + len(SYNC) - 1, look)
            hit = block.find(SYNC)
            while hit >= 0:
                candidate = look + hit
                head = os.pread(self.fd, HEAD.size, candidate)
                if len(head) == HEAD.size and struct.unpack_from("<I", head, 12)[0] \
                        == zlib.crc32(head[:12]):
                    self._note(at, candidate, "are damaged")
                    return candidate
                hit = block.find(SYNC, hit + 1)
            look += _BLOCK
        self._note(at, self.size, "are damaged or a record cut short (a write that never "
                                  "finished)")
        return self.size

    def _note(self, start: int, end: int, what: str) -> None:
        self.found.damage.append(f"{shown(str(self.path))}: bytes {start}-{end} {what}; "
                                 "skipped, every later good record kept")


class JournalWriter:
    """Appends records durably to a journal it created or took over. The file is opened
    without following links; a failed append is cut back off, so a retry never lands after
    half a record (and if even that fails, readers step over the torn piece)."""

    def __init__(self, path: Path, fd: int, end: int):
        self.path, self.fd, self.end = Path(path), fd, end

    @classmethod
    def create(cls, path) -> "JournalWriter":
        """A new journal; FileExistsError when anything (a file, a planted link) is there."""
        fd = create_exclusive(path)
        writer = cls(path, fd, 0)
        try:
            writer._write_at(0, MAGIC)
            writer.end = len(MAGIC)
            os.fsync(fd)
            sync_folder(Path(path).parent)
        except BaseException:
            writer.close()
            raise
        return writer

    @classmethod
    def take_over(cls, path) -> "JournalWriter":
        """An existing journal, emptied: call only once the session file holds all of it."""
        fd = open_no_follow(path, os.O_RDWR)
        writer = cls(path, fd, 0)
        try:
            if os.fstat(fd).st_nlink != 1:  # a hard link planted to a victim file
                raise JournalError(f"{shown(str(path))}: has other names (hard links); a "
                                   "journal never does, so it is not taken over")
            writer.reset()
        except BaseException:
            writer.close()
            raise
        return writer

    def append(self, records: list[Record]) -> None:
        data = b"".join(r.encode() for r in records)
        start = self.end
        if start + len(data) > MAX_JOURNAL_BYTES:
            raise JournalError(f"{shown(str(self.path))}: the journal is full "
                               f"({MAX_JOURNAL_BYTES >> 20} MiB): the session file has not "
                               "taken its changes")
        try:
            self._write_at(start, data)
            os.fsync(self.fd)
        except OSError:
            self._cut_back(start)
            raise
        self.end = start + len(data)

    def reset(self) -> None:
        """Start empty again (after the session file took in everything)."""
        os.ftruncate(self.fd, 0)
        self._write_at(0, MAGIC)
        os.fsync(self.fd)
        self.end = len(MAGIC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _write_at(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            done = os.pwrite(self.fd, view, offset)
            view, offset = view[done:], offset + done

    def _cut_back(self, start: int) -> None:
        try:
            os.ftruncate(self.fd, start)
        except OSError:
            pass  # the torn piece stays; readers step over it by its checksums
