"""Small filesystem primitives every writer shares: atomic writes, JSON, errors, free space.

They sit below the store and the downloader (both write files) so neither has
to import the other; each turns an ``OSError`` into a ``StoreError`` that names
the directory, which is what a user can act on.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import DensezooError, StoreError


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def stat_memo(path: Path) -> list[int]:
    """(inode, size, mtime_ns, ctime_ns): changes whenever the file is written or replaced.

    ctime is in it because no user tool can set ctime back, so restoring an
    mtime after an edit still invalidates the memo.
    """
    st = path.stat()
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def mine_alone(st: os.stat_result) -> bool:
    """Owned by the current user and writable by nobody else: the only files whose
    recorded facts (a stat memo, a compiled catalog) densezoo lets stand in for their
    bytes.  In a cache others can write, anything else may be a co-tenant's forgery."""
    getuid = getattr(os, "getuid", None)
    mine = getuid is None or st.st_uid == getuid()
    return mine and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def private_file(path: Path) -> bool:
    """A regular file (not a symlink) that ``mine_alone`` holds for."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and mine_alone(st)


def write_text_atomic(path: Path, text: str, *, mode: int | None = None) -> None:
    """Readers see the old file or the new one, never half of one; ``mode``: the new
    file's permissions from its first byte (a secret is never readable by others)."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if mode is None:
            tmp.write_text(text, encoding="utf-8")
        else:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, mode)            # the umask may have taken bits away
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object, or None for a missing, unreadable or damaged file (never fatal)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def store_errors(what: str, path: Path,
                 needed: Callable[[], int | None] | None = None) -> Iterator[None]:
    """Turn OSError (ENOSPC, EROFS, EACCES, ...) into a StoreError naming the directory.

    densezoo's own errors (a TransferError is an OSError too) pass through untouched.
    ``needed`` is asked only when the disk is full, for the bytes still to come.
    """
    try:
        yield
    except DensezooError:
        raise
    except OSError as e:
        reason = e.strerror or str(e)
        more = needed() if (e.errno == errno.ENOSPC and needed is not None) else None
        if more is not None:
            from .units import human_size

            reason += f" ({human_size(more)} more needed)"
        raise StoreError(f"cannot {what} in {path}: {reason}", path=str(path),
                         hint=_HINTS.get(e.errno)) from e


# What to do about each kind of failure (StoreError's default hint covers the rest).
_HINTS = {
    errno.ENOSPC: "free some space, or point --cache-dir / DENSEZOO_CACHE_DIR at a larger disk",
    errno.EDQUOT: "your disk quota is used up: free some, or point --cache-dir elsewhere",
    errno.EROFS: "the cache is on a read-only filesystem: point --cache-dir / "
                 "DENSEZOO_CACHE_DIR at a writable directory (reading and verifying work "
                 "read-only)",
    errno.EACCES: "no permission to write there: point --cache-dir / DENSEZOO_CACHE_DIR at a "
                  "directory you own",
    errno.EPERM: "no permission to write there: point --cache-dir / DENSEZOO_CACHE_DIR at a "
                 "directory you own",
    errno.ENOTDIR: "a part of that path is a file, not a folder: point --cache-dir / "
                   "DENSEZOO_CACHE_DIR (or the output path) at a directory",
    errno.ENOENT: "a folder on that path does not exist: create it, or choose another path",
    errno.ENAMETOOLONG: "a path is too long for this filesystem: use a shorter --cache-dir, "
                        "or give the artifact a shorter `filename:` in its manifest",
}


def check_free_space(directory: Path, needed: int) -> None:
    """Refuse before the first byte when the filesystem says the file cannot fit."""
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return            # cannot tell: let the write itself report a full disk
    if needed > free:
        raise StoreError(
            f"not enough space in {directory}: the download needs {needed} more bytes "
            f"and {free} are free", path=str(directory),
            hint="free some space, point --cache-dir / DENSEZOO_CACHE_DIR elsewhere, or pass "
                 "--no-space-check if this filesystem misreports its free space")


WRITE_BEHIND = 32 << 20      # bytes written between two write-behind calls


class WriteBehind:
    """Stream a big file to disk without leaving all of it in memory as dirty pages.

    Every ``WRITE_BEHIND`` bytes, ``posix_fadvise(DONTNEED)`` over what is written
    so far: the kernel starts writing the newest pages back and drops those an
    earlier call already wrote back, so a 5 GiB download holds ~2 windows of page
    cache instead of evicting the user's data for 5 GiB of its own (the pattern
    of PostgreSQL's ``*_flush_after``).  It also decides speed where memory is
    cheap to keep and dear to get: on this project's VM, taking fresh pages for a
    1 GiB file cost 0.8-2.6 s of system time; reusing the few just dropped costs
    ~0.1 s.  The file is on disk, not in the cache, when the download ends (a
    reader reads it from disk once).  Best effort: where the call does not exist
    (macOS, Windows) or fails, writes are plain writes.
    """

    def __init__(self, fd: int, start: int = 0, window: int | None = None) -> None:
        self._advise = getattr(os, "posix_fadvise", None)
        self.fd = fd
        self.start = start
        self.window = window or WRITE_BEHIND
        self._mark = start

    def wrote(self, end: int) -> None:
        """Bytes up to offset ``end`` are written (in order from ``start``)."""
        if self._advise is None or end - self._mark < self.window:
            return
        self._mark = end
        try:
            self._advise(self.fd, self.start, end - self.start, os.POSIX_FADV_DONTNEED)
        except OSError:
            self._advise = None


FICLONE = 0x40049409          # linux/fs.h: share the extents (a reflink), no bytes copied


def reflink(src: Path, dst: Path) -> bool:
    """Make ``dst`` (absent) a reflink of ``src``: shared extents, its own inode, no bytes
    copied; False (``dst`` absent again) where the filesystem cannot."""
    try:
        import fcntl

        with open(src, "rb") as s, open(dst, "xb") as d:
            fcntl.ioctl(d.fileno(), FICLONE, s.fileno())
        return True
    except (OSError, ImportError):
        with contextlib.suppress(FileNotFoundError):
            dst.unlink()
        return False


def clone_or_copy(src: Path, dst: Path) -> str:
    """Put ``src``'s bytes at ``dst`` as a new inode: a reflink where the filesystem can
    (no bytes copied, yet a later write to either side stays its own), else a copy.
    Returns ``"reflink"`` or ``"copy"``.  Never a hard link: the caller does not own
    ``src``'s inode, or must not lend it (see ops/adopt.py)."""
    with contextlib.suppress(FileNotFoundError):
        dst.unlink()
    if reflink(src, dst):
        return "reflink"
    shutil.copyfile(src, dst)
    return "copy"
