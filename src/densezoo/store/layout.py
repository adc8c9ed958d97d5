"""Where everything lives in a cache root, and which names are densezoo's own.

One module owns the naming so the store, ``cache`` management and manifest
validation cannot disagree about it: the suffixes densezoo reserves, the path
of every file, partial, marker, pin and unpacked folder, and when a partial or
a marker left by another process counts as abandoned.

Layout (see docs/cache.md)::

    <root>/CACHEDIR.TAG
    <root>/files/<host>/<url path>                    published, verified file
    <root>/files/<host>/<url path>.dzmeta             its metadata (JSON)
    <root>/files/<host>/<url path>.dzpart             a resumable partial nobody holds
    <root>/files/<host>/<url path>.dzpart-<token>     a partial one process is writing
    <root>/files/<host>/<url path>.dzpart+adopt-<token>  a file adopt is checking (never claimed)
    <root>/files/<host>/<url path>.dzpart….dzmeta     what the partial's bytes are (validator)
    <root>/files/<host>/<url path>.dzlock             "a process is fetching this" marker
    <root>/pins/<host>/<url path>.json                checksums pinned on first download
    <root>/bad/<stamp>/<host>/<url path>              corrupt copies moved aside
    <root>/extracted/<host>/<url path>/               unpacked archives
    <root>/derived/<host>/<url path>.safetensors      a converted checkpoint (+ .dzmeta)
    <root>/catalog/<sha256>.json                      a manifest pre-parsed (by content hash)
    <any folder>/.<name>.dztmp-<token>.tmp            work in progress of one process
                                                      (an unpack, a bundle, a mirror file)
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
import uuid
from pathlib import Path
from typing import Iterator

from ..disk import (TEMP, TEMP_STALE_SECONDS, TMP, holder_alive, idle_seconds,  # noqa: F401
                    is_temp, new_token, stale_temps, sweep_temps, temp_is_stale, temp_path)
from ..errors import ForeignFolderError, ManifestError, PlantedLinkError
from ..manifest import Artifact, is_plain_name
from ..urls import LOCK, META, PART, key_is_safe, redact, url_key, valid_host


# A partial adopt fills from a file on disk (possibly the user's own inode, hard-linked):
# no fetch ever claims or resumes it (``held_partials`` matches ``.dzpart-`` only), so a
# killed adopt can never lead a later fetch to truncate and rewrite the user's file.
ADOPTING = PART + "+adopt-"
PARTIAL_STALE_SECONDS = TEMP_STALE_SECONDS  # an unchanged partial of a holder we cannot see is up for grabs
MARKER_STALE_SECONDS = 30.0       # a marker whose heartbeat stopped this long ago is ignored
HEARTBEAT_SECONDS = 5.0


def is_internal(name: str) -> bool:
    """True for densezoo's own bookkeeping files (never an artifact)."""
    return PART in name or name.endswith((META, LOCK, TMP))


def is_partial(name: str) -> bool:
    """True for a partial download's bytes (the slot or a held one), not its metadata."""
    return PART in name and not name.endswith((META, TMP))


def partial_is_stale(path: Path) -> bool:
    """A partial whose writer died (same host) or has been silent too long (any host)."""
    _, sep, token = path.name.partition(PART + "-")
    if not sep:
        _, sep, token = path.name.partition(ADOPTING)
    alive = holder_alive(token) if sep else None
    if alive is not None:
        return not alive
    idle = idle_seconds(path)
    return idle is not None and idle > PARTIAL_STALE_SECONDS


def marker_is_stale(path: Path) -> bool:
    """A fetch marker whose holder died, or whose heartbeat stopped (other hosts)."""
    try:
        token = path.read_text()
    except OSError:
        return True
    idle = idle_seconds(path)
    return holder_alive(token) is False or idle is None or idle > MARKER_STALE_SECONDS


LONG_NAME = 180     # past this, bookkeeping files use a hash of the name (NAME_MAX is 255)


def with_suffix(path: Path, suffix: str) -> Path:
    """A bookkeeping file beside ``path``.  A legal 244-character file name plus
    ``.dzpart-<token>.dzmeta`` would pass the filesystem's 255-byte limit, so long
    names are replaced by a hash of the name (same folder, same suffix rules)."""
    name = path.name
    if len(name.encode()) > LONG_NAME and not is_internal(name):
        name = "dz-" + hashlib.sha256(name.encode()).hexdigest()[:24]
    return path.with_name(name + suffix)


class Layout:
    """Every path under one cache root.  Computing a path never touches the disk."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.files_dir = self.root / "files"
        self.pins_dir = self.root / "pins"
        self.bad_dir = self.root / "bad"
        self.extracted_dir = self.root / "extracted"
        self.derived_dir = self.root / "derived"
        self.imported_dir = self.root / "imported"
        self.health_file = self.root / "health.json"
        self.compiled_dir = self.root / "catalog"     # manifests pre-parsed, by content hash
        self.cachedir_tag = self.root / "CACHEDIR.TAG"

    def file(self, art: Artifact) -> Path:
        """The published file: host + URL path, so equal basenames never collide.

        Both the URL's key and the file name are checked here, whatever let the
        artifact through (a manifest, a compiled catalog, a store record, an API
        caller): a name that is not a plain name in its folder is refused."""
        key = self.key(art.url)                 # refuses a key that could leave the folder
        name = art.file_name
        if not is_plain_name(name):
            raise ManifestError(art.source or "<artifact>", f"file name {name!r} is not a "
                                "plain name inside the store folder", entry=art.name)
        return self.files_dir.joinpath(*key[:-1], name)

    @staticmethod
    def key(url: str) -> tuple[str, ...]:
        """The URL's store key; one that could leave its folder is refused, whatever let
        the URL through (manifests validate hosts and segments first)."""
        key = url_key(url)
        if not (key_is_safe(key) and valid_host(key[0].rsplit("_", 1)[0])):
            raise ManifestError(redact(url), "this URL cannot be a store key (its host or a "
                                             "path segment would leave the cache folder)")
        return key

    def check_no_links(self, path: Path) -> Path:
        """Refuse (PlantedLinkError, exit 9) when any existing component from below the
        root down to ``path`` itself is a symlink: densezoo never makes one there, so a
        link is a plant.  The root itself may be a link (a cache moved to a larger disk)."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return path
        cur = self.root
        for part in rel.parts:
            cur = cur / part
            try:
                st = os.lstat(cur)
            except OSError:
                return path                   # nothing further exists yet
            if stat.S_ISLNK(st.st_mode):
                raise PlantedLinkError(str(cur))
        return path

    def private_folder(self, path: Path) -> Path:
        """``path`` (``imported/``, ``catalog/``), if it is not a link and, when it exists,
        is the current user's: refused otherwise.  What is written there decides what an
        artifact is for this user, so a co-tenant's folder (or their link to someone's
        project) is not a place to write it.  The write itself then goes through
        ``disk.write_text_under``, which refuses a link swapped in after this check."""
        self.check_no_links(path)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return path
        getuid = getattr(os, "getuid", None)
        if getuid is not None and st.st_uid != getuid():
            raise ForeignFolderError(str(path), st.st_uid)
        return path

    def meta(self, path: Path) -> Path:
        """The metadata beside a published file or a partial."""
        return with_suffix(path, META)

    def slot(self, art: Artifact) -> Path:
        """Where a partial nobody holds waits for the next run to resume it."""
        return with_suffix(self.file(art), PART)

    def partial(self, art: Artifact, token: str) -> Path:
        return with_suffix(self.file(art), f"{PART}-{token}")

    def adopting(self, art: Artifact, token: str) -> Path:
        """Where adopt puts a file's bytes while it checks them (see ``ADOPTING``)."""
        return with_suffix(self.file(art), f"{ADOPTING}{token}")

    def held_partials(self, art: Artifact) -> list[Path]:
        """Partials some process named as its own (alive or not)."""
        probe = self.partial(art, "")
        try:
            names = os.listdir(probe.parent)
        except OSError:
            return []
        return [probe.parent / n for n in names if n.startswith(probe.name) and is_partial(n)]

    def marker(self, art: Artifact) -> Path:
        return with_suffix(self.file(art), LOCK)

    def pin(self, art: Artifact) -> Path:
        return with_suffix(self.pins_dir.joinpath(*self.key(art.url)), ".json")

    def extract_dir(self, art: Artifact) -> Path:
        return self.extracted_dir.joinpath(*self.key(art.url))

    def derived(self, art: Artifact, suffix: str) -> Path:
        """A file made from the artifact's verified bytes (``densezoo convert``)."""
        return with_suffix(self.derived_dir.joinpath(*self.key(art.url)), suffix)

    def bad(self, art: Artifact) -> Path:
        """A fresh place under bad/ for a copy moved aside (never overwrites evidence)."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
        return self.bad_dir.joinpath(stamp, *self.key(art.url))

    def published_files(self) -> Iterator[Path]:
        """Every artifact file under files/ (bookkeeping files skipped)."""
        yield from self._walk(lambda n: not is_internal(n))

    def partials(self) -> Iterator[Path]:
        """Every partial download under files/ (its metadata not included)."""
        yield from self._walk(is_partial)

    def metas(self) -> Iterator[Path]:
        """Metadata of published files and quarantine records (not of partials)."""
        yield from self._walk(lambda n: n.endswith(META) and PART not in n)

    def markers(self) -> Iterator[Path]:
        yield from self._walk(lambda n: n.endswith(LOCK))

    def temps(self) -> Iterator[Path]:
        """Every temp file or folder anywhere under the root (``bad/`` aside: it goes
        whole), writers alive or dead; folders are not entered (links never followed)."""
        for dirpath, dirs, names in os.walk(self.root):
            here = Path(dirpath)
            if here == self.root and "bad" in dirs:
                dirs.remove("bad")
            unpacked = here == self.extracted_dir or self.extracted_dir in here.parents
            for d in [d for d in dirs if is_temp(d, unpacked)]:
                dirs.remove(d)
                yield here / d
            for n in names:
                if is_temp(n):
                    yield here / n

    def _walk(self, keep) -> Iterator[Path]:
        if not self.files_dir.is_dir():
            return
        for dirpath, _, names in os.walk(self.files_dir):
            for n in names:
                if keep(n):
                    yield Path(dirpath) / n
