"""``densezoo adopt``: files already on disk into the store, by their bytes, not their names.

Most people who need DensePose weights already have them somewhere -- detectron2's
iopath cache, the Hugging Face cache, a project's ``ckpt/`` folder -- under a name that
proves nothing: renamed copies, 31-byte "put model_final_162be9.pkl here" placeholders
and Git-LFS pointer files are common.  A file is adopted only when its size and then
its full hashes match an entry's (a published md5/sha256, or a pin taken from the
origin), and it passes the same content check and pickle scan as a download: it goes
through the one intake door (``Intake.admit``).  It is linked into the store (a reflink
where the filesystem can, else a hard link, else a copy), never moved.

An entry that publishes only an md5 prefix (24 bits) is matched only where detectron2
itself put the file (its iopath cache path) and only when the file's tensors are that
model's structure too (``content.structure``): a prefix alone proves nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import DensezooError, UnsafeContentError, UsageError, WrongContentError
from ..hashing import ALGORITHMS, Digests, Expected, hash_file
from ..manifest import Artifact
from ..store.trust import has_full, voucher_for
from ..urls import redact

if TYPE_CHECKING:
    from ..core import Core

SKIP_SUFFIXES = (".tmp", ".incomplete", ".lock", ".dzpart", ".dzmeta", ".part")
FICLONE = 0x40049409          # linux/fs.h: share the extents (a reflink), no bytes copied


@dataclass(frozen=True)
class AdoptItem:
    """One file looked at: what it was matched to and what happened to it."""

    path: str
    state: str                    # adopted | would adopt | already cached | refused | no match
    name: str | None = None       # the artifact it matched (or was named like)
    reason: str | None = None     # why refused / why no match
    mode: str | None = None       # reflink | hardlink | copy

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "state": self.state, "name": self.name,
                "reason": self.reason, "mode": self.mode}


@dataclass
class AdoptReport:
    items: list[AdoptItem] = field(default_factory=list)
    looked_at: int = 0            # files seen (unrelated ones are only counted)
    places: list[str] = field(default_factory=list)   # where --known looked

    def count(self, state: str) -> int:
        return sum(i.state == state for i in self.items)


def known_places() -> list[Path]:
    """Where detectron2/iopath, Detectron and the Hugging Face Hub keep downloads (read
    from the environment when called)."""
    env = os.environ.get
    iopath = env("FVCORE_CACHE")
    places = [Path(iopath) if iopath else Path("~/.torch/iopath_cache").expanduser(),
              Path(tempfile.gettempdir()) / "iopath_cache",
              Path("/tmp/detectron-download-cache")]
    hub = env("HF_HUB_CACHE") or env("HUGGINGFACE_HUB_CACHE") or (
        os.path.join(env("HF_HOME"), "hub") if env("HF_HOME") else os.path.join(
            env("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface", "hub"))
    places.append(Path(hub))
    return places


def _walk(root: Path, store_root: Path) -> Iterator[Path]:
    """Regular files under ``root`` (symlinks are not followed: the Hub's snapshots are
    links to its blobs, which are walked), never the store's own files."""
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if _inside(here, store_root):
            dirnames[:] = []
            continue
        dirnames.sort()
        for name in sorted(filenames):
            p = here / name
            if not name.endswith(SKIP_SUFFIXES) and not p.is_symlink() and p.is_file():
                yield p


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError):
        return False


class _Index:
    """The loaded entries a local file can be matched to: by size (with a full checksum
    to confirm), or -- for an entry with a full checksum but no size -- by file name,
    which only decides which files are worth hashing."""

    def __init__(self, core: "Core") -> None:
        self.core = core
        self.by_size: dict[int, list[Artifact]] = {}
        self.by_name: dict[str, list[Artifact]] = {}
        self.names: dict[str, list[Artifact]] = {}
        self.expected: dict[str, Expected] = {}     # read once: a pin is a file read
        for a in core.catalog.artifacts:
            self.names.setdefault(a.file_name, []).append(a)
            exp = core.trust.expected(a, origin=True)
            if not has_full(exp):
                continue
            self.expected[a.name] = exp
            if exp.size is not None:
                self.by_size.setdefault(exp.size, []).append(a)
            else:
                self.by_name.setdefault(a.file_name, []).append(a)

        self._homes()

    def _homes(self) -> None:
        """Entries that publish only an md5 prefix (49 of 50 detectron2 models) but whose
        structure densezoo knows: a file at the entry's iopath path (where detectron2 put
        it) is a candidate, taken only if the prefix *and* the structure match."""
        from ..content.structure import expected_for
        from .export import iopath_paths

        self.homes: dict[str, Artifact] = {}
        for a in self.core.catalog.artifacts:
            if a.name in self.expected or not a.md5_prefix or expected_for(a.name) is None:
                continue
            self.expected[a.name] = self.core.trust.expected(a, origin=True)
            for rel in iopath_paths(a, Path("")):
                self.homes["/" + rel.as_posix()] = a

    def prefix_only(self, art: Artifact) -> bool:
        return not has_full(self.expected[art.name])

    def candidates(self, path: Path, size: int) -> list[Artifact]:
        home = next((a for rel, a in self.homes.items() if path.as_posix().endswith(rel)), None)
        return [*self.by_size.get(size, ()), *self.by_name.get(path.name, ()),
                *((home,) if home is not None else ())]

    def match(self, cands: list[Artifact], digests: Digests) -> Artifact | None:
        return next((a for a in cands if self.expected[a.name].mismatch(digests) is None),
                    None)


def adopt(core: "Core", paths: list[str], *, known: bool = False,
          dry_run: bool = False) -> AdoptReport:
    """Adopt every file under ``paths`` (and, with ``known``, the usual caches) whose
    bytes are an entry's.  Nothing is moved or changed where it was found."""
    if not paths and not known:
        raise UsageError("name files or folders to adopt, or pass --known")
    report = AdoptReport()
    roots: list[Path] = []
    for p in paths:
        path = Path(p).expanduser()
        if not path.exists():
            raise UsageError(f"{p}: no such file or folder")
        roots.append(path)
    if known:
        found = [p for p in known_places() if p.is_dir()]
        report.places = [str(p) for p in known_places()]
        roots += found
    index = _Index(core)
    store_root = core.store.root
    seen: set[tuple[int, int]] = set()
    for root in roots:
        for f in _walk(root, store_root):
            try:
                st = f.stat()
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            report.looked_at += 1
            item = _one(core, index, f, st.st_size, dry_run, explicit=f in roots)
            if item is not None:
                report.items.append(item)
    return report


def _one(core: "Core", index: _Index, path: Path, size: int, dry_run: bool, *,
         explicit: bool) -> AdoptItem | None:
    cands = index.candidates(path, size)
    if not cands:
        named = index.names.get(path.name)
        if named or explicit:
            # Named like an entry (or asked for by name): say why it is not that entry.
            a = named[0] if named else None
            want = core.trust.expected(a, origin=True) if a is not None else None
            if want is not None and want.size is not None:
                why = f"{size} bytes; {a.name} is {want.size} bytes"
                if size < 1024:
                    why += " (a placeholder or an LFS pointer?)"
            elif a is not None:
                why = f"{a.name} publishes no full checksum to match a local file against"
            else:
                why = "its size matches no entry with a full checksum"
            return AdoptItem(str(path), "no match", a.name if a else None, why)
        return None
    cached = [a for a in cands if core.store.cached_path(a) is not None]
    if dry_run or len(cached) == len(cands):
        # Nothing will be written: the file is read where it is.
        try:
            digests = hash_file(path, ALGORITHMS)
        except OSError as e:
            return AdoptItem(str(path), "refused", None, f"cannot read it ({e.strerror or e})")
        match = index.match(cands, digests)
        if match is None:
            return _other_bytes(path, cands[0], digests)
        if match in cached:
            return AdoptItem(str(path), "already cached", match.name)
        seen = core.intake.examine(match, path, first_use=False)
        why = seen.finding.reason if seen.finding is not None else \
            core.intake.structure_problem(seen) if index.prefix_only(match) else None
        if why is not None:
            return AdoptItem(str(path), "refused", match.name, why)
        return AdoptItem(str(path), "would adopt", match.name)
    return _admit(core, index, path, cands, cached)


def _other_bytes(path: Path, like: Artifact, digests: Digests) -> AdoptItem:
    return AdoptItem(str(path), "no match", like.name,
                     f"same size as {like.name} but other bytes (md5 {digests.md5})")


def _admit(core: "Core", index: _Index, src: Path, cands: list[Artifact],
           cached: list[Artifact]) -> AdoptItem:
    """Link (or copy) ``src`` into a partial, hash what is there -- once: the bytes
    matched and checked are the bytes published -- and hand it to the intake."""
    from ..disk import store_errors

    try:
        with open(src, "rb"):
            pass
    except OSError as e:
        return AdoptItem(str(src), "refused", None, f"cannot read it ({e.strerror or e})")
    target = next(a for a in cands if a not in cached)
    partial = core.store.claim_partial(target, resume=False)
    match: Artifact | None = None
    try:
        with store_errors("adopt into", partial.path.parent):
            mode = _place(src, partial.path)
            digests = hash_file(partial.path, ALGORITHMS)
        match = index.match(cands, digests)
        if match is None:
            return _other_bytes(src, cands[0], digests)
        if match in cached:
            return AdoptItem(str(src), "already cached", match.name)
        if match is not target:      # two entries of one size: the partial is the other's
            partial.discard()
            partial = core.store.claim_partial(match, resume=False)
            with store_errors("adopt into", partial.path.parent):
                mode = _place(src, partial.path)
                digests = hash_file(partial.path, ALGORITHMS)
        weak = index.prefix_only(match)   # a prefix alone: the structure must match too
        core.intake.admit(match, partial, digests, index.expected[match.name],
                          url=redact(match.url),
                          validators={"etag": None, "last_modified": None}, origin=str(src),
                          record=core.trust.record_of(match),
                          voucher=voucher_for("adopted", str(src), digests),
                          mismatch_hint="the file changed while it was adopted; nothing "
                                        "was added", require_structure=weak)
    except (UnsafeContentError, WrongContentError) as e:
        return AdoptItem(str(src), "refused", (match or target).name, e.reason)
    except DensezooError as e:
        return AdoptItem(str(src), "refused", (match or target).name, str(e))
    finally:
        partial.discard()
    return AdoptItem(str(src), "adopted", match.name, mode=mode)


def _place(src: Path, dst: Path) -> str:
    with contextlib.suppress(FileNotFoundError):
        dst.unlink()
    try:
        import fcntl

        with open(src, "rb") as s, open(dst, "wb") as d:
            fcntl.ioctl(d.fileno(), FICLONE, s.fileno())
        return "reflink"
    except (OSError, ImportError):
        with contextlib.suppress(FileNotFoundError):
            dst.unlink()
    try:
        os.link(src, dst)
        return "hardlink"
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP,
                           errno.EOPNOTSUPP):
            raise
    shutil.copyfile(src, dst)
    return "copy"
