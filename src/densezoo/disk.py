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
import platform
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .errors import DensezooError, StoreError

if TYPE_CHECKING:
    from .progress import Progress


# Work in progress is named for its writer (docs/cache.md, "Temporary files"): a partial
# download (``.dzpart-<token>``) and every temp file or folder (``temp_path``) carry a
# ``pid@host.random`` token, so a reader can tell a dead writer's leftover from live work.
TMP = ".tmp"
TEMP_STALE_SECONDS = 15 * 60   # unchanged this long, a temp whose writer we cannot see is dead


def _host_label() -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in platform.node())[:40]


def new_token() -> str:
    """``pid@host.random``: unique per holder, and tells a same-host reader who holds it."""
    return f"{os.getpid()}@{_host_label() or 'host'}.{uuid.uuid4().hex[:8]}"


def holder_alive(token: str) -> bool | None:
    """True/False for a holder on this host; None if it lives elsewhere (cannot tell)."""
    pid_s, _, rest = token.partition("@")
    host = rest.rsplit(".", 1)[0]
    if host != _host_label() or not pid_s.isdigit():
        return None
    pid = int(pid_s)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def idle_seconds(path: Path) -> float | None:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return None


TEMP = ".dztmp-"      # .<name>.dztmp-<pid@host.random>.tmp: a temp file or folder, and its writer


def temp_path(path: Path, token: str | None = None) -> Path:
    """Where one process stages ``path`` (a file or a folder) before renaming it into
    place.  The name carries the writer's token, so whoever finds it after a SIGKILL
    (``cache prune``, the next run of the same operation) can tell a dead writer's
    leftover from a live writer's work (``temp_is_stale``)."""
    return path.with_name(f".{path.name[:60]}{TEMP}{token or new_token()}{TMP}")


# An older densezoo's unpack folders (``<name>.tmp-<hex>``, ``<name>.old-<hex>``): no writer
# named, so only their age tells (what issue 39 found: 476 MiB of them after a few kills).
_OLD_UNPACK = re.compile(r"\.(?:tmp|old)-[0-9a-f]{8}$")


def is_temp(name: str, unpacked: bool = False) -> bool:
    """A name ``temp_path`` made, or an older densezoo's ``….tmp``; with ``unpacked`` (a
    folder under ``extracted/``, where no artifact's own name lives) also an older
    densezoo's unpack folder.  None of the older names says who wrote it."""
    return name.endswith(TMP) or (unpacked and _OLD_UNPACK.search(name) is not None)


def temp_is_stale(path: Path) -> bool:
    """A temp whose writer died (same host), or, when the name cannot say (another host,
    an older densezoo's name), one untouched for as long as a partial may be."""
    _, sep, rest = path.name.rpartition(TEMP)
    alive = holder_alive(rest[:-len(TMP)]) if sep and rest.endswith(TMP) else None
    if alive is not None:
        return not alive
    idle = idle_seconds(path)
    return idle is not None and idle > TEMP_STALE_SECONDS


def stale_temps(folder: Path, name: str | None = None) -> list[Path]:
    """The dead writers' temps directly in ``folder`` (only those staging ``name`` when
    given): what the next run of an operation sweeps before writing there again."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    want = f".{name[:60]}{TEMP}" if name is not None else None
    return [folder / n for n in names
            if is_temp(n) and TEMP in n and (want is None or n.startswith(want))
            and temp_is_stale(folder / n)]


def sweep_temps(folder: Path, name: str | None = None) -> int:
    """Remove ``stale_temps(folder, name)`` (files, links, folders; nothing followed);
    how many went.  Run before an operation writes into ``folder`` again."""
    gone = 0
    for path in stale_temps(folder, name):
        try:
            if stat.S_ISDIR(os.lstat(path).st_mode):
                shutil.rmtree(path)
            else:
                path.unlink()
            gone += 1
        except OSError:
            pass
    return gone


def copy_file(src: Path, dest: Path, progress: "Progress | None" = None) -> None:
    """``shutil.copyfile``; with ``progress`` (export, mirror build) a chunked copy that
    reports every MiB copied, labelled ``copy <file>``."""
    if progress is None:
        shutil.copyfile(src, dest)
        return
    from .progress import Reading

    progress.start(f"copy {src.name}", os.path.getsize(src))
    try:
        with open(src, "rb") as fi, open(dest, "wb") as fo:
            shutil.copyfileobj(Reading(fi, progress), fo, 1 << 20)
    finally:
        progress.close()


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
    tmp = temp_path(path)
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


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset``, or raise.

    ``os.pwrite`` may write fewer bytes than asked (a nearly full filesystem: a 1 MiB
    tmpfs took 12288 of 65536; FUSE and network filesystems too); the caller must
    never count the rest as written, or a hole of zeros is recorded as the file's."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        if n <= 0:         # no progress and no error: call it what it is in practice
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view, offset = view[n:], offset + n


def allocated(path: Path) -> int:
    """Bytes the filesystem has already given ``path`` (0 if it is gone): a resumed
    download reuses them, so they are not asked of the free space again."""
    try:
        return os.stat(path).st_blocks * 512
    except (OSError, AttributeError):
        return 0


def check_free_space(directory: Path, needed: int, *, what: str = "the download",
                     shown: Path | None = None) -> None:
    """Refuse before the first byte when the filesystem says the file cannot fit.
    ``what`` needs the bytes; ``shown``: the folder to name (a temp folder is gone by the
    time the user reads the message)."""
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return            # cannot tell: let the write itself report a full disk
    if needed > free:
        where = shown or directory
        raise StoreError(
            f"not enough space in {where}: {what} needs {needed} more bytes "
            f"and {free} are free", path=str(where),
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


# -- writes and deletes that a swapped link cannot redirect ----------------------------
#
# A path is resolved by the kernel at the moment of each call: a check made before it
# (``lstat`` walks, a plan made while a prompt waited) says nothing about what the call
# will follow.  In a cache other users can write, a co-tenant swaps a folder for a link
# between the two.  So every write and delete below a cache root goes through directory
# fds: each component below the root is opened ``O_NOFOLLOW`` relative to the one above
# it, and the last step (``unlinkat``, ``openat``, ``renameat``) names one entry of a
# folder already open.  A link anywhere on the way is refused at the act itself.

_DIR_FLAGS = (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
              | getattr(os, "O_CLOEXEC", 0))


def _planted(parent_fd: int, name: str) -> bool:
    """Is ``name`` in the open folder a symlink (the reason an O_NOFOLLOW open failed)?"""
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _open_child(parent_fd: int, name: str, shown: Path, *, create: bool, mode: int) -> int:
    from .errors import PlantedLinkError

    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK) and _planted(parent_fd, name):
            raise PlantedLinkError(str(shown)) from None
        raise
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, mode, dir_fd=parent_fd)
    return _open_child(parent_fd, name, shown, create=False, mode=mode)


@contextlib.contextmanager
def open_dir_under(root: Path, parts: tuple[str, ...] | list[str], *, create: bool = False,
                   mode: int = 0o755) -> Iterator[int]:
    """An fd of ``root/parts...`` reached without following any link below ``root``
    (PlantedLinkError naming the link); ``create`` makes missing folders with ``mode``.
    The root itself may be a link (a cache moved to a larger disk)."""
    if create:
        root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    shown = root
    try:
        for part in parts:
            shown = shown / part
            child = _open_child(fd, part, shown, create=create, mode=mode)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def fd_path(fd: int, fallback: Path) -> Path:
    """A path that reaches the folder open as ``fd`` without resolving its path again
    (Linux's ``/proc/self/fd``): a folder above it swapped for a link afterwards changes
    nothing.  ``fallback`` (its path) where there is no /proc."""
    proc = Path(f"/proc/self/fd/{fd}")
    return proc if os.path.isdir(proc) else fallback


def rmtree_at(parent_fd: int, name: str) -> None:
    """Remove the folder ``name`` of an open folder and all below it, by fds only: a
    folder swapped for a link midway is unlinked as a link, never followed."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        os.unlink(name, dir_fd=parent_fd)     # it is (now) a link or a file: remove only it
        return
    try:
        with os.scandir(fd) as it:
            children = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        for child, is_dir in children:
            try:
                if is_dir:
                    rmtree_at(fd, child)
                else:
                    os.unlink(child, dir_fd=fd)
            except FileNotFoundError:
                pass
            except IsADirectoryError:
                rmtree_at(fd, child)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent_fd)


def remove_under(root: Path, path: Path, *, identity: tuple[int, int] | None = None,
                 also: tuple[str, ...] = (),
                 keep: Callable[[], bool] | None = None) -> int | None:
    """Remove ``path`` (a file, or a folder with all it holds) below ``root``, reaching it
    by fds: a link planted on the way is refused (PlantedLinkError), a link at ``path``
    itself is removed as a link.  Decided at the act, not at plan time:

    - ``identity`` (dev, inode) from the plan: a different file there now (published
      since) is left alone;
    - ``keep()``: asked after the file is renamed out of its name (so no
      writer can finish with it in between); True puts it back.

    ``also`` names siblings to remove with it (its metadata).  Returns the bytes removed
    (a file's size, 0 for a folder or a link), or None when nothing was removed."""
    rel = path.relative_to(root)
    name = rel.parts[-1]
    with open_dir_under(root, rel.parts[:-1]) as pfd:
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if identity is not None and (st.st_dev, st.st_ino) != identity:
            return None
        if stat.S_ISDIR(st.st_mode):
            rmtree_at(pfd, name)
            return 0
        if keep is not None:
            tomb = temp_path(Path(name)).name
            os.rename(name, tomb, src_dir_fd=pfd, dst_dir_fd=pfd)
            now = os.stat(tomb, dir_fd=pfd, follow_symlinks=False)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or keep():
                with contextlib.suppress(FileExistsError):      # a newer file took the name
                    os.link(tomb, name, src_dir_fd=pfd, dst_dir_fd=pfd, follow_symlinks=False)
                os.unlink(tomb, dir_fd=pfd)
                return None
            name = tomb
        os.unlink(name, dir_fd=pfd)
        for sibling in also:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sibling, dir_fd=pfd)
        return st.st_size if stat.S_ISREG(st.st_mode) else 0


def write_text_under(root: Path, path: Path, text: str, *, mode: int = 0o600,
                     dir_mode: int = 0o700, private: bool = False) -> None:
    """``write_text_atomic`` for a file below ``root``, through fds: every folder on the
    way opened ``O_NOFOLLOW`` (made with ``dir_mode`` if missing), the temporary file
    created ``O_EXCL | O_NOFOLLOW`` and renamed within the open folder.  A planted link
    (``imported/`` pointing into someone's project) is refused, never written through;
    with ``private`` so is a folder (as opened, not as checked before) another user owns."""
    rel = path.relative_to(root)
    with open_dir_under(root, rel.parts[:-1], create=True, mode=dir_mode) as pfd:
        getuid = getattr(os, "getuid", None)
        owner = os.fstat(pfd).st_uid
        if private and getuid is not None and owner != getuid():
            from .errors import ForeignFolderError

            raise ForeignFolderError(str(path.parent), owner)
        tmp = temp_path(Path(rel.parts[-1])).name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_CLOEXEC", 0), mode, dir_fd=pfd)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, rel.parts[-1], src_dir_fd=pfd, dst_dir_fd=pfd)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=pfd)


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
