"""Cache management: what is in the store, how big it is, and removing things safely.

Removal is two steps, as in ``hf cache``: a plan (what would go, how many bytes,
why) that ``--dry-run`` prints, then ``execute()``.  Pins are never removed with
files, so a re-download is still checked against what was trusted first.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..disk import read_json
from ..content.unpack import EXTRACT_STAMP
from ..store.layout import Layout, marker_is_stale, partial_is_stale
from ..results import Strength
from ..urls import url_key

if TYPE_CHECKING:
    from ..core import Core


@dataclass(frozen=True)
class CacheEntry:
    path: Path
    size: int
    name: str | None              # the artifact it belongs to, if a loaded manifest names it
    state: str                    # verified | pinned | unknown
    last_used: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "size": self.size,
                "state": self.state, "last_used": self.last_used}


@dataclass(frozen=True)
class CacheUsage:
    root: Path
    files: int
    file_bytes: int
    partial_bytes: int
    extracted_bytes: int
    bad_bytes: int

    @property
    def total(self) -> int:
        return self.file_bytes + self.partial_bytes + self.extracted_bytes + self.bad_bytes

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "files": self.files, "file_bytes": self.file_bytes,
                "partial_bytes": self.partial_bytes, "extracted_bytes": self.extracted_bytes,
                "bad_bytes": self.bad_bytes, "total": self.total}


@dataclass
class RemovalPlan:
    layout: Layout
    items: list[tuple[Path, int, str]] = field(default_factory=list)   # path, bytes, reason

    @property
    def total(self) -> int:
        return sum(size for _, size, _ in self.items)

    def add(self, path: Path, reason: str) -> None:
        self.items.append((path, _size(path), reason))

    def execute(self) -> int:
        """Remove everything planned (with its metadata); returns bytes freed."""
        freed = 0
        for path, size, _ in self.items:
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                    self.layout.meta(path).unlink(missing_ok=True)
                freed += size
            except FileNotFoundError:
                pass
        return freed

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "items": [{"path": str(p), "size": s, "reason": r}
                                               for p, s, r in self.items]}


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _by_path(core: "Core") -> dict[Path, Any]:
    return {core.store.layout.file(a): a for a in core.catalog.artifacts}


def entries(core: "Core") -> list[CacheEntry]:
    known = _by_path(core)
    lay = core.store.layout
    out = []
    for p in sorted(lay.published_files()):
        art = known.get(p)
        meta = read_json(lay.meta(p)) or {}
        state = "unknown"
        if art is not None:
            memo_ok = core.store.memo_valid(art, meta)
            state = ("pinned" if core.trust.strength(art) is Strength.PINNED else "verified") \
                if memo_ok else "unverified"
        st = p.stat()
        last = max(st.st_atime, st.st_mtime)
        out.append(CacheEntry(p, st.st_size, art.name if art else None, state,
                              time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last))))
    return out


def usage(core: "Core") -> CacheUsage:
    lay = core.store.layout
    files = list(lay.published_files())
    partial = sum(_size(p) for p in lay.partials())
    return CacheUsage(lay.root, len(files), sum(_size(p) for p in files), partial,
                      _size(lay.extracted_dir) if lay.extracted_dir.exists() else 0,
                      _size(lay.bad_dir) if lay.bad_dir.exists() else 0)


def plan_remove(core: "Core", names: list[str] | None) -> RemovalPlan:
    """Named artifacts' files (and their unpacked folders), or with None every file."""
    lay = core.store.layout
    plan = RemovalPlan(lay)
    if names is None:
        for p in lay.published_files():
            plan.add(p, "--all")
        for folder in (lay.extracted_dir, lay.bad_dir):
            if folder.exists():
                plan.add(folder, "--all")
        return plan
    for art in core.resolve(names):
        p = core.store.cached_path(art)
        if p is not None:
            plan.add(p, f"cache rm {art.name}")
        ex = lay.extract_dir(art)
        if ex.exists():
            plan.add(ex, f"unpacked {art.name}")
    return plan


def plan_prune(core: "Core") -> RemovalPlan:
    """Stale partials and locks, corrupt copies kept aside, files no manifest names."""
    lay = core.store.layout
    plan = RemovalPlan(lay)
    known = _by_path(core)
    for p in lay.partials():
        if partial_is_stale(p):
            plan.add(p, "stale partial download")
    for p in lay.markers():
        if marker_is_stale(p):
            plan.add(p, "stale fetch marker")
    for p in lay.published_files():
        if p not in known:
            plan.add(p, "no loaded manifest names this file")
    if lay.bad_dir.exists():
        plan.add(lay.bad_dir, "corrupt or unsafe copies kept aside")
    keys = {url_key(a.url) for a in core.catalog.artifacts}
    if lay.extracted_dir.exists():
        for stamp in lay.extracted_dir.rglob(EXTRACT_STAMP):
            folder = stamp.parent
            if tuple(folder.relative_to(lay.extracted_dir).parts) not in keys:
                plan.add(folder, "unpacked archive no loaded manifest names")
    return plan
