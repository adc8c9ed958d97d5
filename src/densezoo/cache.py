"""Cache management: what is in the store, how big it is, and removing things safely.

Removal is two steps, as in ``hf cache``: a plan (what would go, how many bytes,
why) that ``--dry-run`` prints, then ``execute()``.  Pins are never removed with
files, so a re-download is still checked against what was trusted first.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .store import LOCK, META, PART, STALE_SECONDS, holder_alive, read_json
from .urls import url_key

if TYPE_CHECKING:
    from .api import Zoo


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
                    for side in (path.with_name(path.name + META),
                                 path.with_name(path.name + ".meta")):
                        if side.exists():
                            side.unlink()
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


def _internal(name: str) -> bool:
    return PART in name or name.endswith((META, LOCK, ".meta", ".tmp"))


def _published(root: Path):
    files = root / "files"
    if not files.is_dir():
        return
    for dirpath, _, names in os.walk(files):
        for n in names:
            if not _internal(n):
                yield Path(dirpath) / n


def _by_path(zoo: "Zoo") -> dict[Path, Any]:
    return {zoo.store.path_for(a): a for a in zoo.catalog.artifacts}


def entries(zoo: "Zoo") -> list[CacheEntry]:
    known = _by_path(zoo)
    out = []
    for p in sorted(_published(zoo.store.root)):
        art = known.get(p)
        meta = read_json(p.with_name(p.name + META)) or {}
        state = "unknown"
        if art is not None:
            memo_ok = zoo.store.memo_valid(art, meta)
            state = ("pinned" if zoo.strength(art) == "pinned" else "verified") \
                if memo_ok else "unverified"
        st = p.stat()
        last = max(st.st_atime, st.st_mtime)
        out.append(CacheEntry(p, st.st_size, art.name if art else None, state,
                              time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last))))
    return out


def usage(zoo: "Zoo") -> CacheUsage:
    root = zoo.store.root
    files = list(_published(root))
    partial = sum(_size(p) for p in (root / "files").rglob(f"*{PART}*")
                  if not p.name.endswith(".meta")) if (root / "files").exists() else 0
    return CacheUsage(root, len(files), sum(_size(p) for p in files), partial,
                      _size(root / "extracted") if (root / "extracted").exists() else 0,
                      _size(root / "bad") if (root / "bad").exists() else 0)


def plan_remove(zoo: "Zoo", names: list[str] | None) -> RemovalPlan:
    """Named artifacts' files (and their unpacked folders), or with None every file."""
    plan = RemovalPlan()
    if names is None:
        for p in _published(zoo.store.root):
            plan.add(p, "--all")
        for sub in ("extracted", "bad"):
            if (zoo.store.root / sub).exists():
                plan.add(zoo.store.root / sub, "--all")
        return plan
    for art in zoo.resolve(names):
        p = zoo.store.cached_path(art)
        if p is not None:
            plan.add(p, f"cache rm {art.name}")
        ex = zoo.store.extract_dir(art)
        if ex.exists():
            plan.add(ex, f"unpacked {art.name}")
    return plan


def plan_prune(zoo: "Zoo") -> RemovalPlan:
    """Stale partials and locks, corrupt copies kept aside, files no manifest names."""
    plan = RemovalPlan()
    root = zoo.store.root
    known = _by_path(zoo)
    now = time.time()
    if (root / "files").exists():
        for p in (root / "files").rglob("*"):
            if not p.is_file() or p.name.endswith((".meta", META)):
                continue
            if PART in p.name:
                token = p.name.split(PART + "-", 1)[1] if PART + "-" in p.name else ""
                idle = now - p.stat().st_mtime
                alive = holder_alive(token) if token else None
                if alive is False or (alive is not True and idle > STALE_SECONDS):
                    plan.add(p, "stale partial download")
            elif p.name.endswith(LOCK):
                if now - p.stat().st_mtime > STALE_SECONDS:
                    plan.add(p, "stale fetch marker")
            elif p not in known:
                plan.add(p, "no loaded manifest names this file")
    if (root / "bad").exists():
        plan.add(root / "bad", "corrupt or unsafe copies kept aside")
    keys = {url_key(a.url) for a in zoo.catalog.artifacts}
    ex_root = root / "extracted"
    if ex_root.exists():
        for stamp in ex_root.rglob(".densezoo-extracted.json"):
            folder = stamp.parent
            if tuple(folder.relative_to(ex_root).parts) not in keys:
                plan.add(folder, "unpacked archive no loaded manifest names")
    return plan
