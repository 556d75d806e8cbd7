"""One writer per session: `N.h5.lock` beside the file, held with flock for as long as a
window, a training run or a merge writes the session. A second writer is refused at once
with a line naming the holder (command, process, host, since when). The lock dies with its
process (a kill -9 never leaves a session blocked); the file is created without following
links and removed on release. Readers never take it: they read the file and the journal."""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from loop.store.records import SessionFormatError
from loop.safe_files import open_no_follow, shown
from loop.store.session_paths import lock_path

MAX_HOLDER_BYTES = 300


class SessionBusy(SessionFormatError):
    """Another process writes this session."""


class SessionLock:
    def __init__(self, path: Path, handle):
        self.path = path
        self._handle = handle  # a file object: the lock goes when it is closed or collected

    @classmethod
    def acquire(cls, session: Path, holder: str) -> "SessionLock":
        """The lock of `session`; SessionBusy when another process holds it, OSError when
        the folder cannot take the lock file (read-only media)."""
        path = lock_path(Path(session))
        for _ in range(20):  # the holder may remove the file just as we open it
            fd = open_no_follow(path, os.O_RDWR | os.O_CREAT)
            handle = os.fdopen(fd, "r+b")
            if os.fstat(fd).st_nlink > 1:  # a hard link planted to a victim file
                handle.close()
                raise SessionFormatError(f"{shown(str(path))}: has other names (hard links); "
                                         "a session's lock never does (remove it)")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    handle.close()
                    raise
                text = os.pread(handle.fileno(), MAX_HOLDER_BYTES, 0)
                handle.close()
                who = shown(text.decode("utf-8", "replace").strip()) or "another process"
                raise SessionBusy(f"{shown(str(session))}: in use by {who}; close it there "
                                  "first (one writer at a time)") from None
            if _same_file(handle.fileno(), path):
                lock = cls(path, handle)
                lock._write_holder(holder)
                return lock
            handle.close()  # we locked a file its last holder had just removed: again
        raise SessionBusy(f"{shown(str(session))}: its lock keeps changing hands; try again")

    @classmethod
    def take(cls, session: Path, holder: str) -> "SessionLock":
        """acquire, with a folder that cannot take the lock said in one line."""
        from loop.store.session_paths import path_error
        try:
            return cls.acquire(session, holder)
        except OSError as exc:
            raise path_error(Path(session), exc) from exc

    @classmethod
    @contextmanager
    def opening(cls, session: Path, holder: str):
        """The lock while a store opens the session: let go again if opening fails, with
        a file system error or a journal not ours said in one line."""
        from loop.store.journal import JournalError
        from loop.store.session_paths import path_error
        lock = cls.take(session, holder)
        try:
            yield lock
        except OSError as exc:
            lock.release()
            raise path_error(Path(session), exc) from exc
        except JournalError as exc:
            lock.release()
            raise SessionFormatError(str(exc)) from None
        except BaseException:
            lock.release()
            raise

    def _write_holder(self, holder: str) -> None:
        text = (f"{holder} (pid {os.getpid()} on {socket.gethostname()}, since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')})").encode()[:MAX_HOLDER_BYTES]
        fd = self._handle.fileno()
        os.fchmod(fd, 0o644)  # created with the default 0o777 less the umask
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)

    def release(self) -> None:
        """Removes the lock file, then lets go: a process that opened the old file sees it is
        gone and takes a fresh one."""
        if self._handle is None:
            return
        try:
            if _same_file(self._handle.fileno(), self.path):
                os.unlink(self.path)
        except OSError:
            pass
        self._handle.close()
        self._handle = None


def _same_file(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.lstat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
