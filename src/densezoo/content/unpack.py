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
  removed on any refusal: nothing is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tarfile
import uuid
import gzip
import lzma
import zlib
from pathlib import Path

from .sniff import TAR_SUFFIXES
from .tarstream import DEFAULT_MAX_MEMBERS, Limits, open_tar  # noqa: F401 - re-exported
from ..disk import check_free_space
from ..errors import DensezooError, PolicyError
from ..hashing import CHUNK, Digests

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


def _write(tar: tarfile.TarFile, members: list[tuple[tarfile.TarInfo, tuple[str, ...]]],
           root: Path) -> None:
    """Folders and files, then hard links, then symlinks: nothing is written through a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for m, parts in members:
        dest = root.joinpath(*parts)
        if m.isdir():
            dest.mkdir(parents=True, exist_ok=True)
        elif m.isfile():
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(m)
            assert src is not None
            fd = os.open(dest, flags, (m.mode & 0o755) | 0o600)
            with os.fdopen(fd, "wb") as f:
                while chunk := src.read(CHUNK):
                    f.write(chunk)
            os.utime(dest, (m.mtime, m.mtime))
    for m, parts in members:
        if m.islnk():
            dest = root.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(root.joinpath(*_parts(m.linkname, "")), dest)
    for m, parts in members:
        if m.issym():
            dest = root.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(m.linkname, dest)


def _stamp(digests: Digests) -> dict:
    return {"size": digests.size, "md5": digests.md5, "sha256": digests.sha256}


def _same_archive(stamp: dict, digests: Digests) -> bool:
    """The folder came from exactly these bytes: same size and every digest both know."""
    mine = _stamp(digests)
    common = [k for k in ("md5", "sha256") if stamp.get(k) and mine[k]]
    return (bool(common) and stamp.get("size") == mine["size"]
            and all(stamp[k] == mine[k] for k in common))


def extract_once(archive: Path, target: Path, digests: Digests, *,
                 limits: Limits = Limits(), space_check: bool = True) -> bool:
    """Extract ``archive`` into ``target`` unless already done for these exact bytes.

    Returns True if it extracted now, False if ``target`` already held this
    archive's contents (its stamp records the archive's size and digests).
    """
    stamp = target / EXTRACT_STAMP
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if _same_archive(json.loads(stamp.read_text()), digests):
            return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir()
        try:
            size = archive.stat().st_size
            with open_tar(archive, limits.bytes_for(size), limits.max_members) as tar:
                members = plan(tar, archive.name, size, limits)
                if space_check:
                    check_free_space(tmp, sum(m.size for m, _ in members if m.isfile()))
                _write(tar, members, tmp)
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as e:
            raise DensezooError(f"cannot extract {archive.name}: {e}",
                                hint="the file is not a readable tar archive") from None
        (tmp / EXTRACT_STAMP).write_text(json.dumps({"archive": str(archive),
                                                     **_stamp(digests)}))
        old = None
        if target.exists():
            old = target.with_name(f"{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(target, old)
        os.rename(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True
