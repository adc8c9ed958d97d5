"""Cache management: what is in the store, how big it is, and removing things safely.

Removal is two steps, as in ``hf cache``: a plan (what would go, how many bytes,
why) that ``--dry-run`` prints, then ``execute()``.  Pins are never removed with
files, so a re-download is still checked against what was trusted first.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..disk import read_json
from ..content.unpack import EXTRACT_STAMP
from ..store.layout import (Layout, is_internal, marker_is_stale, partial_is_stale,
                            temp_is_stale, with_suffix)
from ..urls import LOCK, META, url_key

if TYPE_CHECKING:
    from ..core import Core


@dataclass(frozen=True)
class CacheEntry:
    path: Path
    size: int
    name: str | None              # the artifact it belongs to (a loaded manifest or a record)
    state: str                    # verified | pinned | unpinned | unverified | quarantined | unknown
    last_used: str | None
    source: str | None = None     # the manifest the file was verified against
    loaded: bool = False          # that manifest is loaded now (else: known from the record)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "size": self.size,
                "state": self.state, "last_used": self.last_used, "source": self.source,
                "loaded": self.loaded}


@dataclass(frozen=True)
class CacheUsage:
    root: Path
    files: int
    file_bytes: int
    partial_bytes: int
    extracted_bytes: int
    bad_bytes: int
    temp_bytes: int = 0           # work in progress, live or left by a killed process

    @property
    def total(self) -> int:
        return (self.file_bytes + self.partial_bytes + self.extracted_bytes + self.bad_bytes
                + self.temp_bytes)

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "files": self.files, "file_bytes": self.file_bytes,
                "partial_bytes": self.partial_bytes, "extracted_bytes": self.extracted_bytes,
                "bad_bytes": self.bad_bytes, "temp_bytes": self.temp_bytes,
                "total": self.total}


@dataclass
class RemovalPlan:
    """What a removal will delete, decided again item by item at the moment of the act.

    The plan is made while a prompt may wait for minutes; in a cache others can write, a
    folder may be swapped for a link to the user's home in between.  ``execute`` reaches
    every item through directory fds opened ``O_NOFOLLOW`` (``disk.remove_under``): a
    link on the way is refused and reported in ``skipped``, a link at the item is
    removed as a link, and a different file at the path now (published since the plan)
    is left alone.  A prune keeps a file a fetch is still publishing (live marker) or
    that a record vouches for by then (``protect``)."""

    layout: Layout
    items: list[tuple[Path, int, str]] = field(default_factory=list)   # path, bytes, reason
    freed: int | None = None       # bytes removed, once executed
    protect: bool = False          # prune: keep what a fetch publishes meanwhile
    skipped: list[tuple[Path, str]] = field(default_factory=list)      # once executed
    _ids: dict[Path, tuple[int, int]] = field(default_factory=dict, repr=False)
    _recorded: set[Path] = field(default_factory=set, repr=False)    # chosen with a record

    @property
    def total(self) -> int:
        return sum(size for _, size, _ in self.items)

    def add(self, path: Path, reason: str, *, recorded: bool = False) -> None:
        """Plan ``path``; ``recorded``: the plan chose it knowing a record vouches for it
        (``--orphans``), so a record is no reason to keep it at the act."""
        try:
            st = os.lstat(path)
        except OSError:
            return
        self._ids[path] = (st.st_dev, st.st_ino)
        if recorded:
            self._recorded.add(path)
        self.items.append((path, _size(path), reason))

    def execute(self) -> int:
        """Remove everything planned (with its metadata); returns bytes freed."""
        from ..disk import remove_under
        from ..errors import DensezooError

        freed = 0
        root = self.layout.root
        for path, size, _ in self.items:
            keep = self._keep(path) if self.protect else None
            also = () if path.name.endswith(META) else (self.layout.meta(path).name,)
            try:
                gone = remove_under(root, path, identity=self._ids.get(path), also=also,
                                    keep=keep)
            except (DensezooError, OSError) as e:
                self.skipped.append((path, getattr(e, "message", None) or str(e)))
                continue
            if gone is not None:
                freed += size
        self.freed = freed
        return freed

    def _keep(self, path: Path):
        """For a published file: a fetch holding its marker now (it publishes, then writes
        the record that vouches for the file, both under the marker) or a record written
        since the plan keeps it (issue 32.7)."""
        if is_internal(path.name):
            return None

        def keep() -> bool:
            marker = with_suffix(path, LOCK)
            if marker.exists() and not marker_is_stale(marker):
                return True
            return path not in self._recorded and self._has_record(path)
        return keep

    def _has_record(self, path: Path) -> bool:
        # The provenance record (the entry in .dzmeta) that ``plan_prune`` reads through
        # ``Store.records``; the trust record (``store/record.py``) says how strong the
        # bytes are, not whether a manifest still names them.
        meta = read_json(self.layout.meta(path)) or {}
        return isinstance(meta.get("entry"), dict)     # read as ``Store.records`` reads it

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "items": [{"path": str(p), "size": s, "reason": r}
                                               for p, s, r in self.items], "freed": self.freed,
                "skipped": [{"path": str(p), "reason": r} for p, r in self.skipped]}


def _size(path: Path) -> int:
    """Bytes under ``path``, links not followed (a planted link counts as nothing)."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size if stat.S_ISREG(st.st_mode) else 0
    total = 0
    for dirpath, _, names in os.walk(path):
        for n in names:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, n))
                total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total


def _by_path(core: "Core") -> dict[Path, Any]:
    return {core.store.layout.file(a): a for a in core.catalog.artifacts}


def _recorded(core: "Core", known: dict[Path, Any]) -> dict[Path, Any]:
    """Files the loaded manifests do not name but whose metadata records their entry."""
    return {p: a for p, a in core.store.recorded() if p not in known}


def _state(core: "Core", art, path: Path) -> str:
    meta = read_json(core.store.layout.meta(path)) or {}
    if not core.store.memo_valid(art, meta):
        return "unverified"
    return str(core.stored_strength(art, core.trust.record_of(art)) or "unverified")


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def entries(core: "Core") -> list[CacheEntry]:
    """Every published file with the entry that vouches for it, then the quarantine
    records (files moved aside that nothing has replaced yet).  Reads only."""
    known = _by_path(core)
    lay = core.store.layout
    recorded: dict[Path, Any] = {}
    moved: dict[Path, tuple[Any, dict[str, Any]]] = {}      # one walk of the records
    for p, art, gone in core.store.records():
        if p not in known:
            recorded.setdefault(p, art)
        if gone is not None:
            moved.setdefault(p, (known.get(p, art), gone))
    out = []
    on_disk = sorted(lay.published_files())
    for p in on_disk:
        art = known.get(p) or recorded.get(p)
        st = p.stat()
        out.append(CacheEntry(p, st.st_size, art.name if art else None,
                              _state(core, art, p) if art else "unknown",
                              _when(max(st.st_atime, st.st_mtime)),
                              art.source if art else None, p in known))
    present = set(on_disk)
    for p, (art, gone) in sorted(moved.items()):
        if p not in present:
            out.append(CacheEntry(p, 0, art.name, "quarantined", gone.get("at"), art.source,
                                  p in known))
    return out


def usage(core: "Core") -> CacheUsage:
    lay = core.store.layout
    files = list(lay.published_files())
    partial = sum(_size(p) for p in lay.partials())
    temps = {p: _size(p) for p in lay.temps()}
    in_extracted = sum(n for p, n in temps.items() if lay.extracted_dir in p.parents)
    return CacheUsage(lay.root, len(files), sum(_size(p) for p in files), partial,
                      (_size(lay.extracted_dir) - in_extracted
                       if lay.extracted_dir.exists() else 0),
                      _size(lay.bad_dir) if lay.bad_dir.exists() else 0,
                      sum(temps.values()))


def plan_remove(core: "Core", names: list[str] | None) -> RemovalPlan:
    """Named artifacts' files (and their unpacked folders, and the record of a copy
    moved aside), or with None all of them.  Pins stay."""
    lay = core.store.layout
    plan = RemovalPlan(lay)
    if names is None:
        for p in lay.published_files():
            plan.add(p, "--all")
        for m in lay.metas():
            if _is_record(m):
                plan.add(m, "--all: a record of a copy moved aside")
        for folder in (lay.extracted_dir, lay.bad_dir):
            if folder.exists():
                plan.add(folder, "--all")
        return plan
    absent = []
    for art in _resolve_with_records(core, names):
        before = len(plan.items)
        p = core.store.cached_path(art)
        if p is not None:
            plan.add(p, f"cache rm {art.name}")
        elif core.store.quarantined(art) is not None:
            plan.add(lay.meta(lay.file(art)), f"forget that {art.name} was moved aside")
        ex = lay.extract_dir(art)
        if ex.exists():
            plan.add(ex, f"unpacked {art.name}")
        if len(plan.items) == before:
            absent.append(art.name)
    if absent and not plan.items:
        from ..errors import NotCachedError

        raise NotCachedError(", ".join(absent), hint="nothing of it is in the cache; "
                                                     "`densezoo cache ls` lists what is")
    return plan


def _is_record(meta_path: Path) -> bool:
    meta = read_json(meta_path)
    return bool(meta) and isinstance(meta.get("quarantined"), dict)


def _resolve_with_records(core: "Core", names: list[str]) -> list[Any]:
    """Names a loaded manifest knows, else names only a store record knows."""
    from ..errors import UnknownArtifactError

    out = []
    for name in names:
        try:
            out.append(core.artifact(name))
        except UnknownArtifactError:
            hits = [a for _, a in core.store.recorded() if a.name.lower() == name.lower()]
            if not hits:
                raise
            out.extend(hits[:1])
    return out


def plan_prune(core: "Core", *, orphans: bool = False) -> RemovalPlan:
    """Stale partials, locks and temps (a killed process's), corrupt copies kept aside, and files nobody can vouch
    for: no loaded manifest names them and no record says what they were verified
    against.  A recorded file is kept (it is checked by ``verify``) unless ``orphans``:
    then every file no loaded manifest names goes."""
    lay = core.store.layout
    plan = RemovalPlan(lay, protect=True)
    known = _by_path(core)
    recorded = _recorded(core, known)
    for p in lay.partials():
        if partial_is_stale(p):
            plan.add(p, "stale partial download")
    for p in lay.markers():
        if marker_is_stale(p):
            plan.add(p, "stale fetch marker")
    temps = set()
    for p in lay.temps():
        temps.add(p)
        if temp_is_stale(p):
            plan.add(p, "temporary file of a process that is gone (killed mid-write)")
    for p in lay.published_files():
        if p in known:
            continue
        if p not in recorded:
            plan.add(p, "no loaded manifest names this file and no record vouches for it")
        elif orphans:
            plan.add(p, f"--orphans: recorded from {recorded[p].source}, not loaded now",
                     recorded=True)
    if lay.bad_dir.exists():
        plan.add(lay.bad_dir, "corrupt or unsafe copies kept aside")
    keys = {url_key(a.url) for a in core.catalog.artifacts}
    if not orphans:
        keys |= {url_key(a.url) for a in recorded.values()}
    if lay.extracted_dir.exists():
        for stamp in lay.extracted_dir.rglob(EXTRACT_STAMP):
            folder = stamp.parent
            if folder in temps or temps & set(folder.parents):
                continue
            if tuple(folder.relative_to(lay.extracted_dir).parts) not in keys:
                plan.add(folder, "unpacked archive no manifest or record names")
    return plan
