"""Every file from outside is hostile: these are the only ways the store and the faces open,
create and replace files.

- Inputs are opened without blocking (a FIFO or a device never hangs a command), must be
  regular files, and are refused when larger than the caller's limit, before anything is
  read or allocated.
- Files the program creates are created exclusively and never through a symbolic link
  (O_EXCL | O_NOFOLLOW): a link planted where a session's journal will go cannot redirect
  the write to a victim file.
- Outputs are written to a temporary file in the target's own folder, flushed to disk and
  then moved into place: a reader or a crash sees the old file or the new one, never half of
  one. An existing target is replaced only when the caller says so.
- Names that come from files (categories, tags) never become paths, and are shown escaped.
"""
from __future__ import annotations

import ctypes
import errno
import functools
import os
import stat
import tempfile
from pathlib import Path

from loop.errors import UserError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def open_input(path, limit: int, what: str = "file"):
    """A binary file object for reading `path`, which must be a regular file of at most
    `limit` bytes; UserError (naming the file) otherwise."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC)
    except OSError as exc:
        raise UserError(f"{_shown(path)}: cannot open {what}: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{_shown(path)}: not a regular file ({_a(what)} must be one)")
        if info.st_size > limit:
            raise UserError(f"{_shown(path)}: {info.st_size} bytes is over the {limit}-byte "
                            f"limit for {_a(what)}")
        if _NONBLOCK:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_input(path, limit: int, what: str = "file") -> bytes:
    """The whole of a regular file of at most `limit` bytes (see open_input)."""
    with open_input(path, limit, what) as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise UserError(f"{_shown(path)}: over the {limit}-byte limit for {_a(what)}")
    return data


def regular_size(path, limit: int, what: str = "file") -> int:
    """The size of a regular file of at most `limit` bytes, checked without reading it."""
    with open_input(path, limit, what) as f:
        return os.fstat(f.fileno()).st_size


def create_exclusive(path, mode: int = 0o644) -> int:
    """A new file's descriptor, opened for writing; FileExistsError when anything (a file, a
    link, a FIFO) is there already. Never writes through a symbolic link."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, mode)


def open_no_follow(path, flags: int) -> int:
    """os.open that refuses a symbolic link in the last component (ELOOP) and anything that is
    not a regular file."""
    fd = os.open(path, flags | _NOFOLLOW | _CLOEXEC | _NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if _NONBLOCK:
            os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def write_atomically(target, write, replace: bool = False) -> None:
    """Write a file by calling `write(binary_file)` on a temporary file in the target's folder,
    flush it to disk, then move it to `target`. An existing target (or a link there) is left
    alone and FileExistsError raised unless `replace`. On any error the temporary file is
    removed and the target is as it was."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if not replace and os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "exists already", str(target))
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    try:
        os.fchmod(fd, _mode_for(target))
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(temp, target)
        else:
            _move_without_clobbering(temp, target)
        sync_folder(folder)
    except BaseException:
        if os.path.lexists(temp):
            os.unlink(temp)
        raise


def _mode_for(target: Path) -> int:
    """A replaced file keeps its mode; a new one gets what open() would give it (mkstemp's
    temporary files are private, 0600)."""
    try:
        return stat.S_IMODE(os.lstat(target).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where the system says it (setting it to
    read it back would briefly affect files other threads create)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


RENAME_NOREPLACE = 1  # linux/fs.h


def _rename_no_replace(temp: str, target: Path) -> bool:
    """Linux's renameat2(RENAME_NOREPLACE): one atomic step that never clobbers and leaves
    no second name behind if the process dies. False where the system or the file system
    does not offer it (FileExistsError when the target appeared)."""
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    at_cwd = -100
    if renameat2(at_cwd, os.fsencode(temp), at_cwd, os.fsencode(str(target)),
                 RENAME_NOREPLACE) == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.EEXIST:
        raise FileExistsError(errno.EEXIST, "exists already", str(target))
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(target))


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _move_without_clobbering(temp: str, target: Path) -> None:
    if _rename_no_replace(temp, target):
        return
    try:
        os.link(temp, target)  # fails if the target appeared meanwhile: never clobbers
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if os.path.lexists(target):  # a file system without hard links: check, then move
            raise FileExistsError(errno.EEXIST, "exists already", str(target)) from exc
        os.replace(temp, target)
        return
    os.unlink(temp)


def sync_folder(folder) -> None:
    """Make a rename or a new file in `folder` durable."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def same_place(a, b) -> bool:
    """Whether two paths name one file (the same inode, or the same absolute path when
    either does not exist yet): an output must never be its own input."""
    try:
        if os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return os.path.abspath(a) == os.path.abspath(b)


def check_plain_name(name: str, what: str = "name") -> str:
    """A name from a file or the user that will be part of a file name: no path separators,
    no control characters, not '.' or '..', at most 100 characters. ValueError otherwise."""
    if (not name or len(name) > 100 or name in (".", "..") or "/" in name or "\\" in name
            or any(ord(c) < 32 or ord(c) == 127 for c in name)):
        raise ValueError(f"{what} {shown(name)} cannot be part of a file name")
    return name


def shown(text: str) -> str:
    """A name from a file as it may be printed: control and escape characters escaped, so a
    name can never move the cursor or recolour the terminal."""
    return repr(str(text)) if any(not c.isprintable() for c in str(text)) else str(text)


def _shown(path: Path) -> str:
    return shown(os.fsdecode(path))


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"
