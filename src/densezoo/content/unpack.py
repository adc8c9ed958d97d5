"""Unpack a verified tarball once, deciding every member's safety ourselves.

DensePose's UV and eval data come as tarballs that users unpack with a plain
``tar xvf``.  A hostile archive (absolute names, ``..``, links pointing out,
symlink chains, device files, a decompression bomb) can write anywhere the
user can.  Python's ``tarfile`` filters are not a defence we can lean on: the
``data`` filter does not exist before 3.10.12 (``requires-python`` allows 3.10.0)
and had the PATH_MAX symlink-chain hole until 3.11.13-era fixes.  So this module
does not call ``extractall`` at all:

- every member name is checked lexically (no absolute path, no ``..``, nothing
  that passes through a symlink member), every link target is resolved against
  the archive's own names (inside the folder, never through another symlink),
  devices and fifos are refused, and the member count and unpacked size are capped;
- regular files and folders are written first with ``O_EXCL | O_NOFOLLOW``,
  hard links are made to files already written, and symlinks are created last,
  so no write ever goes through a link even if a check were wrong;
- all of it happens in a fresh temporary folder that is renamed into place, and
  removed on any refusal: nothing is left behind.  The folder's name carries its
  writer's token (``disk.temp_path``), so after a SIGKILL the next unpack of the same
  archive, or ``cache prune``, removes it once that process is gone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import hashlib
import stat
import tarfile
import gzip
import lzma
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from .sniff import TAR_SUFFIXES
from .tarstream import DEFAULT_MAX_MEMBERS, Limits, open_tar  # noqa: F401 - re-exported
from ..disk import (check_free_space, fd_path, open_dir_under, private_file, rmtree_at,
                    stale_temps, temp_path)
from ..errors import DensezooError, PolicyError, StoreError
from ..hashing import CHUNK, Digests
from ..progress import NoProgress, Progress

if TYPE_CHECKING:
    from .inspect import Finding

EXTRACT_STAMP = ".densezoo-extracted.json"     # written last: the folder is complete

ARCHIVE_SUFFIXES = TAR_SUFFIXES


class UnsafeArchiveError(PolicyError):
    def __init__(self, archive: str, member: str, reason: str) -> None:
        self.archive = archive
        self.member = member
        self.reason = reason
        super().__init__(f"refused to extract {archive}: member {member!r} {reason}",
                         hint="a hostile or damaged archive; nothing was extracted")


def is_archive(file_name: str) -> bool:
    return file_name.lower().endswith(ARCHIVE_SUFFIXES)


def _parts(name: str, archive: str) -> tuple[str, ...]:
    """A member path as normalised components; refuses anything that could escape."""
    if "\\" in name or "\x00" in name:
        raise UnsafeArchiveError(archive, name, "has a backslash or NUL in its path")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(archive, name, "has an absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchiveError(archive, name, "has a '..' path component")
    return parts


def _through_symlink(parts: tuple[str, ...], symlinks: set[tuple[str, ...]],
                     include_self: bool) -> tuple[str, ...] | None:
    stop = len(parts) + 1 if include_self else len(parts)
    for i in range(1, stop):
        if parts[:i] in symlinks:
            return parts[:i]
    return None


def plan(tar: tarfile.TarFile, archive: str, archive_size: int,
         limits: Limits = Limits()) -> list[tuple[tarfile.TarInfo, tuple[str, ...]]]:
    """Every member to write with its normalised path, or UnsafeArchiveError for the first
    that could land outside the folder (checked before anything is written)."""
    members = []
    for m in tar:
        members.append(m)
        if len(members) > limits.max_members:
            raise UnsafeArchiveError(archive, m.name, f"is past the limit of "
                                     f"{limits.max_members} members (DENSEZOO_MAX_UNPACK_MEMBERS)")
    symlinks = {_parts(m.name, archive) for m in members if m.issym()}
    seen: dict[tuple[str, ...], tarfile.TarInfo] = {}
    out = []
    total, cap = 0, limits.bytes_for(archive_size)
    for m in members:
        parts = _parts(m.name, archive)
        if not parts:
            if m.isdir():
                continue              # "./": the folder itself
            raise UnsafeArchiveError(archive, m.name, "names the extraction folder itself")
        link = _through_symlink(parts, symlinks, include_self=False)
        if link:
            raise UnsafeArchiveError(archive, m.name, f"lies inside the symlink member "
                                                      f"{'/'.join(link)!r}")
        if parts in seen and not (m.isdir() and seen[parts].isdir()):
            raise UnsafeArchiveError(archive, m.name, "appears twice in the archive")
        if m.issym():
            _check_symlink(m, parts, symlinks, archive)
        elif m.islnk():
            try:
                target = _parts(m.linkname, archive)
            except UnsafeArchiveError:
                raise UnsafeArchiveError(archive, m.name, f"is a hard link to outside "
                                                          f"({m.linkname})") from None
            earlier = seen.get(target)
            if _through_symlink(target, symlinks, include_self=True):
                raise UnsafeArchiveError(archive, m.name, f"is a hard link through a symlink "
                                                          f"({m.linkname})")
            if earlier is None or not earlier.isfile():
                raise UnsafeArchiveError(archive, m.name, f"is a hard link to outside "
                                         f"the files written before it ({m.linkname})")
        elif m.ischr() or m.isblk() or m.isfifo():
            raise UnsafeArchiveError(archive, m.name, "is a device or fifo")
        elif m.issparse() or not (m.isfile() or m.isdir()):
            raise UnsafeArchiveError(archive, m.name, "is of an unsupported type")
        if m.isfile():
            total += m.size
            if total > cap:
                raise UnsafeArchiveError(archive, m.name, f"takes the unpacked size past {cap} "
                                         "bytes (a decompression bomb? raise "
                                         "DENSEZOO_MAX_UNPACK_BYTES if it is genuine)")
        seen[parts] = m
        out.append((m, parts))
    return out


def _check_symlink(m: tarfile.TarInfo, parts: tuple[str, ...],
                   symlinks: set[tuple[str, ...]], archive: str) -> None:
    """Resolve the target against the archive's own names, step by step: it must stay
    inside the folder and never pass through a symlink member (no chains)."""
    if m.linkname.startswith("/") or re.match(r"^[A-Za-z]:", m.linkname):
        raise UnsafeArchiveError(archive, m.name, f"is a symlink to an absolute path "
                                                  f"({m.linkname})")
    current = list(parts[:-1])
    for p in m.linkname.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not current:
                raise UnsafeArchiveError(archive, m.name, f"is a symlink pointing outside "
                                                          f"({m.linkname})")
            current.pop()
            continue
        current.append(p)
        if tuple(current) in symlinks:
            raise UnsafeArchiveError(archive, m.name, f"is a symlink that points through "
                                                      f"another symlink ({m.linkname})")


Tree = dict    # {"files": {relpath: [size, sha256]}, "links": {relpath: target}}


def _write(tar: tarfile.TarFile, members: list[tuple[tarfile.TarInfo, tuple[str, ...]]],
           root: Path, archive: str, *, scan_imports: bool = True,
           progress: Progress | None = None, total: int | None = None) -> Tree:
    """Folders and files, then hard links, then symlinks: nothing is written through a link.

    Each file is hashed as it is written and, when its name says it is a pickle, checked
    by ``content.inspect`` -- the door every download goes through -- before the next
    member is read: an ``os.system`` pickle inside a tarball refuses the extraction.
    Returns what was written (each file's size and sha256, each link's target), which
    the stamp records so a later look notices an edited, added or removed file.  The
    bytes written are reported on ``progress`` (``unpack <archive>``, of ``total``)."""
    progress = progress or NoProgress()
    progress.start(f"unpack {archive}", total)
    try:
        return _write_members(tar, members, root, archive, scan_imports, progress)
    finally:
        progress.close()


def _write_members(tar, members, root: Path, archive: str, scan_imports: bool,
                   progress: Progress) -> Tree:
    from .inspect import inspect, is_pickle

    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    files: dict[str, list] = {}
    links: dict[str, str] = {}
    for m, parts in members:
        dest = root.joinpath(*parts)
        if m.isdir():
            dest.mkdir(parents=True, exist_ok=True)
        elif m.isfile():
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(m)
            assert src is not None
            fd = os.open(dest, flags, (m.mode & 0o755) | 0o600)
            sha, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as f:
                while chunk := src.read(CHUNK):
                    f.write(chunk)
                    sha.update(chunk)
                    size += len(chunk)
                    progress.advance(len(chunk))
            os.utime(dest, (m.mtime, m.mtime))
            files["/".join(parts)] = [size, sha.hexdigest()]
            if is_pickle(parts[-1]):
                finding = inspect(dest, parts[-1], first_use=False, scan_imports=scan_imports)
                if finding is not None:
                    raise UnsafeArchiveError(archive, m.name, f"is an {finding.reason}")
    for m, parts in members:
        if m.islnk():
            dest = root.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            target = _parts(m.linkname, "")
            os.link(root.joinpath(*target), dest)
            files["/".join(parts)] = files["/".join(target)]
    for m, parts in members:
        if m.issym():
            dest = root.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(m.linkname, dest)
            links["/".join(parts)] = m.linkname
    return {"files": files, "links": links}


def tree_changes(folder: Path, tree: Tree, limit: int = 3) -> list[str]:
    """How ``folder`` differs from what was unpacked into it (at most ``limit`` lines):
    a file edited (size or sha256), added or removed, a link retargeted.  Nothing is
    followed: a folder swapped for a link is a change, not a way out."""
    want_files, want_links = dict(tree.get("files") or {}), dict(tree.get("links") or {})
    changes: list[str] = []
    for dirpath, dirs, names in os.walk(folder):
        rel_dir = Path(dirpath).relative_to(folder)
        for n in [*names, *dirs]:
            p = Path(dirpath) / n
            rel = (rel_dir / n).as_posix()
            if rel == EXTRACT_STAMP:
                continue
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            if stat.S_ISLNK(st.st_mode):
                if want_links.pop(rel, None) != os.readlink(p):
                    changes.append(f"{rel}: a link that was not unpacked there")
            elif rel not in want_files:
                changes.append(f"{rel}: added after unpacking")
            else:
                size, sha = want_files.pop(rel)
                if st.st_size != size or _sha256(p) != sha:
                    changes.append(f"{rel}: changed after unpacking")
            if len(changes) >= limit:
                return changes
    changes += [f"{rel}: removed after unpacking" for rel in [*want_files, *want_links]]
    return changes[:limit]


def _sha256(path: Path) -> str | None:
    """The file's sha256, or None unless it is (still) a regular file: a name swapped for
    a link or a fifo after the ``lstat`` is neither followed nor waited on."""
    sha = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        while chunk := f.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def archive_tree(archive: Path, limits: Limits = Limits(), *, scan_imports: bool = True,
                 inspect_pickles: bool = False) -> tuple[Tree, "Finding | None"]:
    """What unpacking ``archive`` writes, read from the archive itself (a folder's stamp
    is not believed when others can write it), and with ``inspect_pickles`` the first
    unsafe finding among its pickle members (``verify --scan``): each is spooled to a
    temporary file and checked by ``content.inspect``, as a download is."""
    import tempfile

    from .inspect import Finding, inspect, is_pickle

    size = archive.stat().st_size
    files: dict[str, list] = {}
    links: dict[str, str] = {}
    found: Finding | None = None
    try:
        with open_tar(archive, limits.bytes_for(size), limits.max_members) as tar:
            for m, parts in plan(tar, archive.name, size, limits):
                rel = "/".join(parts)
                if m.issym():
                    links[rel] = m.linkname
                elif m.islnk():
                    files[rel] = files["/".join(_parts(m.linkname, ""))]
                elif m.isfile():
                    src = tar.extractfile(m)
                    assert src is not None
                    pickle = inspect_pickles and found is None and is_pickle(parts[-1])
                    sha, n = hashlib.sha256(), 0
                    spool = tempfile.NamedTemporaryFile(suffix=".pkl") if pickle else None
                    with spool or contextlib.nullcontext() as t:
                        while chunk := src.read(CHUNK):
                            sha.update(chunk)
                            n += len(chunk)
                            if t is not None:
                                t.write(chunk)
                        if t is not None:
                            t.flush()
                            finding = inspect(t.name, parts[-1], first_use=False,
                                              scan_imports=scan_imports)
                            if finding is not None:
                                found = Finding(True, f"member {rel!r} of the archive: "
                                                      f"{finding.reason}")
                    files[rel] = [n, sha.hexdigest()]
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as e:
        raise DensezooError(f"cannot read {archive.name}: {e}",
                            hint="the file is not a readable tar archive") from None
    return {"files": files, "links": links}, found


def _stamp(digests: Digests) -> dict:
    return {"size": digests.size, "md5": digests.md5, "sha256": digests.sha256}


def _same_archive(stamp: dict, digests: Digests) -> bool:
    """The folder came from exactly these bytes: same size and every digest both know."""
    mine = _stamp(digests)
    common = [k for k in ("md5", "sha256") if stamp.get(k) and mine[k]]
    return (bool(common) and stamp.get("size") == mine["size"]
            and all(stamp[k] == mine[k] for k in common))


def unpacked_state(archive: Path, target: Path, digests: Digests, *,
                   limits: Limits = Limits(), tree: Tree | None = None) -> tuple[bool, list[str]]:
    """(the folder is stamped as unpacked from these exact bytes, how it differs from
    them).  The stamp's record of each file is believed only when the stamp is this
    user's alone; otherwise the expected tree is read from the archive itself (or is
    ``tree``, already read from it)."""
    stamp_path = target / EXTRACT_STAMP
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        return False, []
    if not isinstance(stamp, dict) or not _same_archive(stamp, digests):
        return False, []
    if tree is None:
        tree = stamp.get("tree")
        if not private_file(stamp_path) or not isinstance(tree, dict):
            tree, _ = archive_tree(archive, limits)
    return True, tree_changes(target, tree)


def extract_once(archive: Path, target: Path, digests: Digests, *,
                 limits: Limits = Limits(), space_check: bool = True,
                 scan_imports: bool = True, root: Path | None = None,
                 progress: Progress | None = None) -> tuple[str, list[str]]:
    """Extract ``archive`` into ``target`` unless already done for these exact bytes.

    Returns the action and the changes found: ``extracted`` (unpacked now), ``cached``
    (``target`` already holds exactly this archive's contents) or ``repaired`` (it was
    unpacked from these bytes but a file was edited, added or removed since -- the
    changes say which: unpacked again, the old folder dropped).

    Written through fds: the folder that holds ``target`` is opened from ``root`` (the
    cache root) without following links, the work folder is made in it with mode 0700
    and filled through ``/proc/self/fd`` (no path above it is resolved again: a
    co-tenant who swaps ``extracted/<host>`` for a link after the check changes
    nothing), and it is renamed into place within the open folder.
    """
    stamped, changes = unpacked_state(archive, target, digests, limits=limits)
    if stamped and not changes:
        return "cached", []
    base = root if root is not None else target.parent
    parts = target.parent.relative_to(base).parts
    name = target.name
    with open_dir_under(base, parts, create=True) as pfd:
        for dead in stale_temps(fd_path(pfd, target.parent), name):    # a killed unpack's folder
            with contextlib.suppress(OSError):
                rmtree_at(pfd, dead.name)
        tmp_name = temp_path(target).name      # names its writer: prune knows if it died
        os.mkdir(tmp_name, 0o700, dir_fd=pfd)
        tmp = fd_path(pfd, target.parent) / tmp_name
        try:
            try:
                size = archive.stat().st_size
                with open_tar(archive, limits.bytes_for(size), limits.max_members) as tar:
                    members = plan(tar, archive.name, size, limits)
                    total = sum(m.size for m, _ in members if m.isfile())
                    if space_check:
                        check_free_space(tmp, total, what=f"unpacking {archive.name}",
                                         shown=target.parent)
                    tree = _write(tar, members, tmp, archive.name, scan_imports=scan_imports,
                                  progress=progress, total=total)
            except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError,
                    gzip.BadGzipFile) as e:
                raise DensezooError(f"cannot extract {archive.name}: {e}",
                                    hint="the file is not a readable tar archive") from None
            except OSError as e:
                if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                raise StoreError(f"cannot unpack {archive.name} in {target.parent}: "
                                 f"{e.strerror} (unpacked it takes {total} bytes; nothing "
                                 "was kept)", path=str(target.parent),
                                 hint="free some space, or point --cache-dir / "
                                      "DENSEZOO_CACHE_DIR at a larger disk") from None
            fd = os.open(tmp / EXTRACT_STAMP, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                         | getattr(os, "O_NOFOLLOW", 0), 0o644)
            with os.fdopen(fd, "w") as f:
                # What unpacking these exact bytes wrote: vouched for by the archive's
                # digests above (checked by the fetch that handed the archive over).
                json.dump({"archive": str(archive), **_stamp(digests), "tree": tree}, f)
            os.chmod(tmp_name, 0o755, dir_fd=pfd)
            old = None
            with contextlib.suppress(FileNotFoundError):
                os.stat(name, dir_fd=pfd, follow_symlinks=False)
                old = temp_path(target).name
                os.rename(name, old, src_dir_fd=pfd, dst_dir_fd=pfd)
            os.rename(tmp_name, name, src_dir_fd=pfd, dst_dir_fd=pfd)
            if old is not None:
                with contextlib.suppress(OSError):
                    rmtree_at(pfd, old)
        finally:
            with contextlib.suppress(OSError):
                rmtree_at(pfd, tmp_name)
    return ("repaired" if stamped else "extracted"), changes
