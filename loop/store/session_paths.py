"""The files beside a session (N.h5.journal, N.h5.lock, temporary files of writers) and
what is refused about them: a session is never created over anything already there, and an
OSError about them becomes one line naming the file."""
from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from loop.store.records import SessionFormatError
from loop.safe_files import shown


class SessionNotWritable(SessionFormatError):
    """The session's folder cannot be written (read-only media, no permission)."""


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def path_error(path: Path, exc: OSError) -> SessionFormatError:
    where = shown(str(exc.filename)) if exc.filename else shown(str(path))
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return SessionNotWritable(f"{where}: cannot be written here ({exc.strerror})")
    if exc.errno == errno.ELOOP:
        return SessionFormatError(f"{where}: is a symbolic link; a session's files are never "
                                  "written through one (remove it)")
    if exc.errno == errno.ENOENT:
        return SessionFormatError(f"{shown(str(path.parent))}: no such folder")
    if exc.errno == errno.EEXIST:
        return SessionFormatError(f"{where}: exists already; move it away")
    return SessionFormatError(f"{where}: {exc.strerror or exc}")


def refuse_existing(path: Path) -> None:
    if os.path.lexists(path):
        raise SessionFormatError(f"{shown(str(path))}: exists already (open it to resume)")
    jpath = journal_path(path)
    if os.path.lexists(jpath):
        raise SessionFormatError(f"{shown(str(jpath))}: exists already without its session "
                                 "file; move it away")


def remove_leftovers(path: Path) -> None:
    """Temporary files of writers of this session that were killed (only the lock holder
    may remove them: no one else writes them now)."""
    pattern = re.compile(r"\." + re.escape(path.name) + r"\.[A-Za-z0-9_]{8}\.part")
    old_style = path.name + ".writing"
    try:
        entries = list(os.scandir(path.parent if str(path.parent) else "."))
    except OSError:
        return
    for entry in entries:
        if entry.name == old_style or pattern.fullmatch(entry.name):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def remove_session_files(path: Path) -> None:
    """The session file and its journal removed (the caller holds the lock)."""
    for where in (journal_path(path), path):
        try:
            os.unlink(where)
        except FileNotFoundError:
            pass
