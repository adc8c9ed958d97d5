"""``densezoo adopt``: files already on disk into the store, by their bytes, not their names.

Most people who need DensePose weights already have them somewhere -- detectron2's
iopath cache, the Hugging Face cache, a project's ``ckpt/`` folder -- under a name that
proves nothing: renamed copies, 31-byte "put model_final_162be9.pkl here" placeholders
and Git-LFS pointer files are common.  A file is adopted only when its size and then
its full hashes match an entry's (a published md5/sha256, or a pin taken from the
origin), and it passes the same content check and pickle scan as a download: it goes
through the one intake door (``Intake.admit``).  It is never moved, and never lent:

- A file of the Hugging Face cache, or of a folder another user can write, or owned by
  someone else, is reflinked or copied (a new inode).  The HF cache is the Hub client's:
  a hard link would keep ``hf cache rm`` from freeing the space and let an in-place
  rewrite of the blob reach the store; a file someone else can write could be changed
  between our hash and our load.
- Only a file you own, that nobody else can write, in a folder only you can write, may
  be hard-linked (no bytes copied) -- and then into a name no fetch ever claims
  (``<file>.dzpart+adopt-<token>``, never a resumable ``.dzpart-<token>``): a partial left by
  a killed adopt must never be resumed by a later fetch, whose reset would truncate the
  user's own inode and download into it.

Snapshots (what ``snapshot_download`` returns) are symlinks into the HF cache's
``blobs/``: such links are followed when they stay inside the cache's ``blobs/``, and
only those; a link leaving the cache is named and skipped.  ``--known`` looks only in
folders the user owns and nobody else can write (``$TMPDIR/iopath_cache`` can be made by
anyone).

An entry that publishes only an md5 prefix (24 bits) is matched only where detectron2
itself put the file (its iopath cache path) and only when the file's tensors are that
model's structure too (``content.structure``): a prefix alone proves nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..disk import clone_or_copy, mine_alone, reflink
from ..errors import DensezooError, UnsafeContentError, UsageError, WrongContentError
from ..hashing import ALGORITHMS, Digests, Expected, hash_file
from ..manifest import Artifact
from ..store import hf_cache
from ..store.trust import has_full, voucher_for
from ..urls import redact

if TYPE_CHECKING:
    from ..core import Core

SKIP_SUFFIXES = (".tmp", ".incomplete", ".lock", ".dzpart", ".dzmeta", ".part")


@dataclass(frozen=True)
class AdoptItem:
    """One file looked at: what it was matched to and what happened to it."""

    path: str
    state: str    # adopted | would adopt | already cached | refused | no match | skipped
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
              Path(env("TMPDIR") or tempfile.gettempdir()) / "iopath_cache",
              Path("/tmp/detectron-download-cache")]
    places.append(hf_cache.hub_cache())
    return places


def _not_yours(folder: Path) -> str | None:
    """Why ``--known`` does not look in ``folder``: only folders the user owns and nobody
    else can write (a co-tenant can create ``$TMPDIR/iopath_cache`` and fill it)."""
    try:
        st = os.lstat(folder)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "a symlink: --known looks only in folders you own"
    if not mine_alone(st):
        return (f"owned by uid {st.st_uid} or writable by others (mode "
                f"{stat.S_IMODE(st.st_mode):o}): --known looks only in folders you own; "
                "name it as a PATH if you trust it")
    return None


def _walk(root: Path, store_root: Path, skipped: list["AdoptItem"]) -> Iterator[Path]:
    """Regular files under ``root``, never the store's own files.  A symlink is followed
    only into the HF cache's ``blobs/`` (a snapshot's files); any other link is named in
    ``skipped`` (a link leaving the cache), or passed over (the blobs are walked)."""
    if root.is_file() and not root.is_symlink():
        yield root
        return
    if root.is_symlink() and not root.is_dir():
        yield from _follow(root, skipped)
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if _inside(here, store_root):
            dirnames[:] = []
            continue
        dirnames.sort()
        for name in sorted(filenames):
            p = here / name
            if name.endswith(SKIP_SUFFIXES):
                continue
            if p.is_symlink():
                yield from _follow(p, skipped)
            elif p.is_file():
                yield p


def _follow(link: Path, skipped: list["AdoptItem"]) -> Iterator[Path]:
    """The blob a snapshot link leads to, if it stays inside the HF cache's ``blobs/``."""
    root = _hub_root_of(link)
    blob = hf_cache.blob_target(link, root)
    if blob is not None:
        yield blob
        return
    try:
        target = os.readlink(link)
    except OSError:
        target = "?"
    skipped.append(AdoptItem(str(link), "skipped", None,
                             f"a symlink to {target}, outside the Hugging Face cache's blobs/: "
                             "not followed (adopt the file itself if you trust it)"))


def _hub_root_of(link: Path) -> Path:
    """The HF cache a snapshot entry belongs to: ``<root>/<repo>/snapshots/<commit>/...``
    (any cache folder, not only the configured one), else the configured cache."""
    parts = link.absolute().parts
    for i in range(len(parts) - 1, 1, -1):
        if parts[i] == "snapshots" and "--" in parts[i - 1]:
            return Path(*parts[: i - 1])
    return hf_cache.hub_cache()


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
    skipped: list[AdoptItem] = []
    if known:
        report.places = [str(p) for p in known_places()]
        for place in known_places():
            why = _not_yours(place)
            if why is not None:
                skipped.append(AdoptItem(str(place), "skipped", None, why))
            elif place.is_dir():
                roots.append(place)
    index = _Index(core)
    store_root = core.store.root
    seen: set[tuple[int, int]] = set()
    for root in roots:
        for f in _walk(root, store_root, skipped):
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
    report.items += skipped
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
    """Place ``src``'s bytes in a partial of our own (see the module's docstring for how),
    hash what is there -- once: the bytes matched and checked are the bytes published --
    and hand it to the intake."""
    from ..disk import store_errors

    try:
        with open(src, "rb"):
            pass
    except OSError as e:
        return AdoptItem(str(src), "refused", None, f"cannot read it ({e.strerror or e})")
    may_link = _may_hardlink(src)
    target = next(a for a in cands if a not in cached)
    partial = core.store.claim_adopt_partial(target)
    match: Artifact | None = None
    try:
        with store_errors("adopt into", partial.path.parent):
            mode = _place(src, partial.path, may_link)
            digests = hash_file(partial.path, ALGORITHMS)
        match = index.match(cands, digests)
        if match is None:
            return _other_bytes(src, cands[0], digests)
        if match in cached:
            return AdoptItem(str(src), "already cached", match.name)
        if match is not target:      # two entries of one size: the partial is the other's
            partial.discard()
            partial = core.store.claim_adopt_partial(match)
            with store_errors("adopt into", partial.path.parent):
                mode = _place(src, partial.path, may_link)
                digests = hash_file(partial.path, ALGORITHMS)
        # Who vouches: the file on disk (adopted) -- or, for a blob of the Hub client's
        # cache, a copy voucher naming that cache.
        weak = index.prefix_only(match)   # a prefix alone: the structure must match too
        core.intake.admit(match, partial, digests, index.expected[match.name],
                          url=redact(match.url),
                          validators={"etag": None, "last_modified": None}, origin=str(src),
                          record=core.trust.record_of(match), voucher=_voucher(src, digests),
                          mismatch_hint="the file changed while it was adopted; nothing "
                                        "was added", require_structure=weak)
    except (UnsafeContentError, WrongContentError) as e:
        return AdoptItem(str(src), "refused", (match or target).name, e.reason)
    except DensezooError as e:
        return AdoptItem(str(src), "refused", (match or target).name, str(e))
    finally:
        partial.discard()
    return AdoptItem(str(src), "adopted", match.name, mode=mode)


def _voucher(src: Path, digests: Digests):
    """``adopted`` for a file of the user's; ``copy`` naming the HF cache for one of the
    Hub client's blobs: its bytes are what the Hub's client downloaded."""
    if hf_cache.inside(src):
        return voucher_for("copy", f"the HF cache ({src})", digests, detail="adopt")
    return voucher_for("adopted", str(src), digests)


def _may_hardlink(src: Path) -> bool:
    """Only a file the user owns and nobody else can write, in a folder only the user can
    write, and never a file of the Hub's cache (see the module's docstring)."""
    if hf_cache.inside(src):
        return False
    try:
        return mine_alone(os.lstat(src)) and mine_alone(os.stat(src.parent))
    except OSError:
        return False


def _place(src: Path, dst: Path, may_link: bool) -> str:
    """Reflink, else (only when ``may_link``) hard-link, else copy ``src`` to ``dst``."""
    with contextlib.suppress(FileNotFoundError):
        dst.unlink()
    if reflink(src, dst):
        return "reflink"
    if may_link:
        try:
            os.link(src, dst)
            return "hardlink"
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK,
                               errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
    return clone_or_copy(src, dst)
