"""Unpack a verified tarball once, refusing any member that could land outside its folder.

DensePose's UV and eval data come as tarballs that users unpack with a plain
``tar xvf``.  A hostile archive (absolute names, ``..``, links pointing out,
device files) can write anywhere the user can.  Every member is checked before
anything is written; on Python versions that have it, tarfile's own "data"
filter runs as a second line of defence.  Extraction goes to a temporary
folder that is renamed into place, so a half-extracted tree is never seen.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tarfile
import uuid
from pathlib import Path, PurePosixPath

from .errors import DensezooError, PolicyError
from .layout import EXTRACT_STAMP as STAMP

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")



class UnsafeArchiveError(PolicyError):
    def __init__(self, archive: str, member: str, reason: str) -> None:
        self.archive = archive
        self.member = member
        self.reason = reason
        super().__init__(f"refused to extract {archive}: member {member!r} {reason}",
                         hint="the archive is hostile or damaged; nothing was extracted")


def is_archive(file_name: str) -> bool:
    return file_name.lower().endswith(ARCHIVE_SUFFIXES)


def _inside(root: Path, p: Path) -> bool:
    try:
        p.relative_to(root)
        return True
    except ValueError:
        return False


def check_members(tar: tarfile.TarFile, target: Path, archive: str) -> list[tarfile.TarInfo]:
    """Every member, or UnsafeArchiveError for the first that could escape ``target``."""
    root = target.resolve()
    out = []
    for m in tar.getmembers():
        name = m.name
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
            raise UnsafeArchiveError(archive, name, "has an absolute path")
        if ".." in PurePosixPath(name.replace("\\", "/")).parts:
            raise UnsafeArchiveError(archive, name, "has a '..' path component")
        dest = (root / name).resolve()
        if not _inside(root, dest):
            raise UnsafeArchiveError(archive, name, "would be written outside the target")
        if m.issym():
            if os.path.isabs(m.linkname):
                raise UnsafeArchiveError(archive, name, f"is a symlink to an absolute path "
                                                        f"({m.linkname})")
            if not _inside(root, (dest.parent / m.linkname).resolve()):
                raise UnsafeArchiveError(archive, name, f"is a symlink pointing outside "
                                                        f"({m.linkname})")
        elif m.islnk():
            if not _inside(root, (root / m.linkname).resolve()):
                raise UnsafeArchiveError(archive, name, f"is a hard link to outside "
                                                        f"({m.linkname})")
        elif m.ischr() or m.isblk() or m.isfifo():
            raise UnsafeArchiveError(archive, name, "is a device or fifo")
        elif not (m.isfile() or m.isdir()):
            raise UnsafeArchiveError(archive, name, "is of an unsupported type")
        m.mode &= 0o755                      # no setuid/setgid/sticky, no world-writable
        out.append(m)
    return out


def extract_once(archive: Path, target: Path, sha256: str) -> bool:
    """Extract ``archive`` into ``target`` unless already done for these bytes.

    Returns True if it extracted now, False if ``target`` already held this
    archive's contents (its stamp records the archive's sha256).
    """
    stamp = target / STAMP
    with contextlib.suppress(OSError, ValueError):
        if json.loads(stamp.read_text()).get("sha256") == sha256:
            return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir()
        try:
            with tarfile.open(archive) as tar:
                members = check_members(tar, tmp, archive.name)
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(tmp, members=members, **kwargs)  # noqa: S202 - checked above
        except (tarfile.TarError, EOFError) as e:
            raise DensezooError(f"cannot extract {archive.name}: {e}",
                                hint="the file is not a readable tar archive") from None
        (tmp / STAMP).write_text(json.dumps({"archive": str(archive), "sha256": sha256}))
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
