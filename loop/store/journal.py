"""An append-only journal beside a session file: every label is made durable here first.

File: the magic bytes, then records `u32 length | u32 crc32 | payload`, payload = one type
byte and a body. Each append is written, flushed and fsync'ed before it returns: that is
the moment a label counts as acknowledged. A crash can only tear the last record; reading
stops at the first record that is short or fails its checksum, and opening for writing cuts
that torn tail off."""
from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"PLJOURNAL1\n"
HEADER = struct.Struct("<II")
MAX_RECORD = 64 << 20
FRAME, EVENT, SNAPSHOT = 1, 2, 3
FRAME_HEAD = struct.Struct("<qHH")   # frame id, height, width
SNAP_HEAD = struct.Struct("<I")      # length of the JSON header that follows


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
        return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def read_records(path: Path) -> tuple[list[Record], int]:
    """Every whole record, and the byte offset where the good part of the file ends."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        if len(data) < len(MAGIC) and MAGIC.startswith(data):
            return [], 0  # a crash while the file was being started
        raise JournalError(f"{path}: not a Patchloop journal")
    records, at = [], len(MAGIC)
    while at + HEADER.size <= len(data):
        length, crc = HEADER.unpack_from(data, at)
        end = at + HEADER.size + length
        if length < 1 or length > MAX_RECORD or end > len(data):
            break
        payload = data[at + HEADER.size:end]
        if zlib.crc32(payload) != crc:
            break
        records.append(Record(payload[0], payload[1:]))
        at = end
    return records, at


class Journal:
    """Appends records durably. Open it after reading: a torn tail is cut off first."""

    def __init__(self, path: Path, good_end: int | None = None):
        self.path = Path(path)
        new = not self.path.exists() or not good_end
        self.file = open(self.path, "wb" if new else "r+b")
        if new:
            self.file.write(MAGIC)
        else:
            self.file.truncate(good_end)
            self.file.seek(good_end)
        self._sync()

    def append(self, records: list[Record]) -> None:
        self.file.write(b"".join(r.encode() for r in records))
        self._sync()

    def _sync(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()

    def reset(self) -> None:
        """Start empty again (after the session file took in everything)."""
        self.file.seek(0)
        self.file.truncate(0)
        self.file.write(MAGIC)
        self._sync()
