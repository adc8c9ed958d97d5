"""The local store: publishing verified files, partial downloads, metadata and pins.

Correctness never depends on a lock.  Each process writes its own uniquely
named partial; a resumable partial is *claimed* by an atomic rename (one
winner), and a finished file is published by an atomic rename after it has
been verified.  The worst a race can cost is duplicate bandwidth.  Where each
file lives is ``layout.Layout``'s business, not this module's.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from ..disk import (private_file, read_json, stat_memo, store_errors, utc_now,
                   write_json_atomic, write_text_atomic)
from ..hashing import ALGORITHMS, Digests
from ..errors import DensezooError
from ..manifest import Artifact, recorded_artifact
from ..urls import META, redact
from .layout import (HEARTBEAT_SECONDS, Layout, holder_alive, marker_is_stale, new_token,
                     partial_is_stale, with_suffix)

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by densezoo.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


@dataclass
class Partial:
    """A partial download this process holds (its own unique file).

    It is what the downloader writes into (see ``download.transfer.Sink``):
    the bytes, plus ``meta`` naming the URL and validator they came from.
    """

    path: Path
    slot: Path                     # where an abandoned partial waits for the next run
    meta: dict[str, Any]           # the resume record, as JSON (what the bytes are)
    meta_path: Path

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def open(self, offset: int, keep_tail: bool = False) -> BinaryIO:
        """Open for writing at ``offset``, dropping anything after it unless ``keep_tail``
        (blocks a segmented download completed past the in-order prefix).

        Truncate only when there is something to drop: truncating a file to
        size 0 makes ext4 (auto_da_alloc) force writeback of the whole file on
        close, which cost ~0.35 s per GiB for nothing.
        """
        f = open(self.path, "r+b" if self.path.exists() else "w+b")
        if not keep_tail and os.fstat(f.fileno()).st_size > offset:
            f.truncate(offset)
        f.seek(offset)
        return f

    def save_meta(self, record: dict[str, Any]) -> None:
        """Replace the resume record (``download.transfer.ResumeRecord``) atomically: a
        kill leaves either the old record or the new one, never half of either."""
        self.meta = dict(record)
        # OSError passes: the transfer that saves it says what failed and how much more
        # the download needs (``Transfer._save``).
        write_json_atomic(self.meta_path, self.meta)

    def drop_meta(self) -> None:
        """Remove the resume record: the bytes beside it vouch for nothing now."""
        self.meta = {}
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.meta_path)

    def release(self) -> None:
        """Leave the partial where the next run (or another process) can resume it."""
        with contextlib.suppress(OSError):
            if self.size == 0:
                self.discard()
                return
            os.replace(self.path, self.slot)
            if self.meta_path.exists():
                os.replace(self.meta_path, with_suffix(self.slot, META))

    def discard(self) -> None:
        for p in (self.path, self.meta_path):
            with contextlib.suppress(OSError):
                p.unlink()


class FetchMarker:
    """"Some process is fetching this file": lets others wait instead of downloading twice.

    Only bandwidth depends on it.  Created with O_EXCL (one winner), kept fresh
    by a heartbeat thread, and ignored once ``layout.marker_is_stale`` says its
    holder is gone, so a crashed holder never blocks anyone for long.  On
    filesystems where O_EXCL or mtimes lie, the worst case is the duplicate
    download we would have had anyway.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.token = new_token()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def try_acquire(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError:
            return True       # cannot coordinate here: go ahead (correctness does not need it)
        with os.fdopen(fd, "w") as f:
            f.write(self.token)
        self._thread = threading.Thread(target=self._beat, name="densezoo-heartbeat", daemon=True)
        self._thread.start()
        return True

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def holder_gone(self) -> bool:
        return marker_is_stale(self.path)

    def peek(self) -> tuple[str | None, int | None]:
        """(holder token, heartbeat stamp) of the marker as it is now, (None, None) if gone."""
        try:
            token = self.path.read_text()
            return token, os.stat(self.path).st_mtime_ns
        except OSError:
            return None, None

    def holder_dead(self, token: str | None) -> bool:
        """The holder is a process on this host that no longer exists."""
        return token is not None and holder_alive(token) is False

    def break_stale(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            with contextlib.suppress(OSError):
                if self.path.read_text() == self.token:
                    self.path.unlink()


class Store:
    """One cache root.  Creating a Store touches nothing; writes create what they need."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.layout = Layout(root)
        self.root = self.layout.root

    # -- reading --------------------------------------------------------------------------

    def path_for(self, art: Artifact) -> Path:
        return self.layout.file(art)

    def cached_path(self, art: Artifact) -> Path | None:
        p = self.layout.check_no_links(self.layout.file(art))
        return p if p.is_file() else None

    def read_meta(self, art: Artifact) -> dict[str, Any] | None:
        """The file's metadata; a damaged one (wrong types) counts as missing, never fatal."""
        meta = read_json(self.layout.meta(self.layout.file(art)))
        return meta if meta is not None and _meta_ok(meta) else None

    def quarantined(self, art: Artifact) -> dict[str, Any] | None:
        """What moved the file aside, while no good copy has replaced it (else None).

        ``verify`` reports such an entry as missing with a non-zero exit until a
        fetch publishes a good copy or ``cache rm`` forgets it: a retried CI step
        must not go green because the first run moved the evidence away."""
        if self.cached_path(art) is not None:
            return None
        meta = read_json(self.layout.meta(self.layout.file(art)))
        record = meta.get("quarantined") if meta else None
        return record if isinstance(record, dict) else None

    def recorded(self) -> Iterator[tuple[Path, Artifact]]:
        """Every published file (or quarantine record) with the manifest entry it was
        verified against, rebuilt from its metadata; a record that does not describe
        the place it sits in (copied, forged, damaged) is skipped."""
        for path, art, _ in self.records():
            yield path, art

    def records(self) -> Iterator[tuple[Path, Artifact, dict[str, Any] | None]]:
        """``recorded``, with the quarantine record when the file was moved aside."""
        for meta_path in self.layout.metas():
            meta = read_json(meta_path)
            art = artifact_from_record(meta.get("entry") if meta else None)
            if art is None:
                continue
            try:
                path = self.layout.file(art)
            except DensezooError:
                continue
            if self.layout.meta(path) == meta_path:
                gone = meta.get("quarantined")
                yield path, art, gone if isinstance(gone, dict) else None

    def memo_valid(self, art: Artifact, meta: dict[str, Any] | None = None) -> bool:
        """Whether the file is unchanged since densezoo last hashed it.

        Only a memo nobody else could have forged counts: the file and its metadata
        must be this user's alone (``disk.private_file``).  In a cache others can
        write, a forged memo plus the published digests would hand out replaced
        bytes; there every check hashes in full."""
        meta = meta if meta is not None else self.read_meta(art)
        path = self.layout.file(art)
        try:
            return (bool(meta) and meta.get("stat") == stat_memo(path)
                    and self.private(art))
        except OSError:
            return False

    def private(self, art: Artifact) -> bool:
        """The published file and its metadata are this user's alone."""
        path = self.layout.file(art)
        return private_file(path) and private_file(self.layout.meta(path))

    # -- writing --------------------------------------------------------------------------

    def ensure_dir(self, directory: Path) -> None:
        """Create a folder in the store, refusing one reached through a planted link."""
        self.layout.check_no_links(directory)
        with store_errors("create a directory", directory):
            directory.mkdir(parents=True, exist_ok=True)
            self.layout.check_no_links(directory)      # made meanwhile by someone else?
            tag = self.layout.cachedir_tag
            if not tag.exists():
                write_text_atomic(tag, CACHEDIR_TAG)

    def marker(self, art: Artifact) -> FetchMarker:
        path = self.layout.marker(art)
        self.ensure_dir(path.parent)
        return FetchMarker(path)

    def claim_partial(self, art: Artifact, *, resume: bool = True) -> Partial:
        """Take over a resumable partial if one is free (unless ``resume`` is False: bytes
        that come whole from elsewhere leave an interrupted download's bytes alone), else
        start an empty one of our own."""
        lay = self.layout
        slot = lay.slot(art)
        self.ensure_dir(slot.parent)
        mine = lay.partial(art, new_token())
        orphans = sorted((p for p in lay.held_partials(art) if partial_is_stale(p)),
                         key=_size_or_zero, reverse=True)
        for cand in [slot, *orphans] if resume else []:
            try:
                os.rename(cand, mine)          # atomic: exactly one process wins it
            except OSError:
                continue
            meta: dict[str, Any] = {}
            with contextlib.suppress(OSError):
                os.rename(lay.meta(cand), lay.meta(mine))
                meta = read_json(lay.meta(mine)) or {}
            return Partial(mine, slot, meta, lay.meta(mine))
        with store_errors("start a download", slot.parent):
            mine.touch(exist_ok=False)
        return Partial(mine, slot, {}, lay.meta(mine))

    def claim_adopt_partial(self, art: Artifact) -> Partial:
        """A partial for bytes adopt takes from a file on disk: a name no fetch claims
        (``layout.ADOPTING``), so it may share the user's inode without a later fetch
        ever resuming into it.  It is never released to the resumable slot."""
        lay = self.layout
        slot = lay.slot(art)
        self.ensure_dir(slot.parent)
        mine = lay.adopting(art, new_token())
        return Partial(mine, mine, {}, lay.meta(mine))

    def publish(self, art: Artifact, partial: Partial, digests: Digests, *, url: str,
                validators: dict[str, str | None]) -> Path:
        """Atomically move a verified partial into place and record its metadata."""
        final = self.layout.file(art)
        with store_errors("publish a file", final.parent):
            os.replace(partial.path, final)
            partial.discard()
            self.write_meta(art, digests, url=url, validators=validators)
        return final

    def write_meta(self, art: Artifact, digests: Digests, *, url: str | None,
                   validators: dict[str, str | None] | None = None) -> None:
        """Record what the file's bytes are; ``validators`` None keeps the download facts."""
        final = self.layout.file(art)
        old = self.read_meta(art) or {}
        found = digests.as_dict()
        # A digest not computed this time is kept if another one proves the same bytes.
        same_bytes = old.get("size") == digests.size and any(
            found[a] is not None and old.get(a) == found[a] for a in ALGORITHMS)
        for a in ALGORITHMS:
            if found[a] is None and same_bytes:
                found[a] = old.get(a)
        meta = {
            "name": art.name, "url": url, **(validators or {}), **found,
            "fetched_at": utc_now(), "verified_at": utc_now(), "stat": stat_memo(final),
            "entry": entry_record(art),
        }
        if validators is None:
            for k in ("url", "etag", "last_modified", "fetched_at"):
                if old.get(k):
                    meta[k] = old[k]
        with store_errors("write metadata", final.parent):
            write_json_atomic(self.layout.meta(final), meta)

    def quarantine(self, art: Artifact, src: Path | None = None, *,
                   identity: tuple[int, int] | None = None, status: str = "corrupt",
                   reason: str | None = None) -> Path | None:
        """Move a corrupt or unsafe file out of the way (never delete it: it is evidence).

        With ``identity`` (device, inode of the copy that was checked), a file that
        was replaced meanwhile -- say a concurrent fetch repaired it -- is left alone
        and None returned: only the bytes that failed are ever moved.  Moving the
        published file leaves a record in its metadata's place (``quarantined``:
        when, where to, why), which the next ``verify`` reports.
        """
        published = src is None
        src = src or self.layout.file(art)
        if identity is not None:
            try:
                st = os.stat(src)
            except FileNotFoundError:
                return None
            if (st.st_dev, st.st_ino) != identity:
                return None
        dest = self.layout.bad(art)
        self.ensure_dir(dest.parent)
        if published:
            # The record first, the move second: a kill or a full disk between them leaves
            # the corrupt file in place under a record that says so (the next verify finds
            # it corrupt again), never a moved file with no record (a green CI retry).
            record = {"name": art.name, "entry": entry_record(art), "quarantined": {
                "at": utc_now(), "moved_to": str(dest), "status": status, "reason": reason}}
            with store_errors("record a corrupt file before moving it aside", src.parent):
                write_json_atomic(self.layout.meta(src), record)
        with store_errors("move a corrupt file aside", dest.parent):
            os.replace(src, dest)
        return dest

    def forget(self, art: Artifact) -> bool:
        """Drop a quarantine record (``cache rm``): the missing file is no longer news."""
        if self.quarantined(art) is None:
            return False
        with contextlib.suppress(FileNotFoundError):
            self.layout.meta(self.layout.file(art)).unlink()
        return True


RECORD_FIELDS = ("name", "url", "filename", "md5", "sha256", "md5_prefix", "size", "md5_url",
                 "source")


def entry_record(art: Artifact) -> dict[str, Any]:
    """The manifest entry a file was verified against, as kept in its metadata, so the
    file stays checkable (``verify``) and vouched for (``cache prune``) after the
    manifest that listed it is no longer loaded.  URLs are kept redacted (the store never
    holds a secret); the store key does not depend on credentials or the query."""
    record = {k: getattr(art, k) for k in RECORD_FIELDS}
    for k in ("url", "md5_url"):
        if record[k]:
            record[k] = redact(record[k])
    return record


def artifact_from_record(record: object) -> Artifact | None:
    """The entry back from ``entry_record``; None unless every field has its type and the
    URL and file name pass the same checks a manifest's would."""
    if not isinstance(record, dict):
        return None
    strs = ("name", "url", "filename", "md5", "sha256", "md5_prefix", "md5_url", "source")
    if not all(record.get(k) is None or isinstance(record.get(k), str) for k in strs):
        return None
    size = record.get("size")
    if not (isinstance(record.get("name"), str) and isinstance(record.get("url"), str)) or \
            not (size is None or (isinstance(size, int) and not isinstance(size, bool))):
        return None
    try:
        return recorded_artifact({k: record.get(k) for k in RECORD_FIELDS})
    except DensezooError:
        return None


def _meta_ok(meta: dict[str, Any]) -> bool:
    def int_or_none(v: Any) -> bool:
        return v is None or (isinstance(v, int) and not isinstance(v, bool))

    def str_or_none(v: Any) -> bool:
        return v is None or isinstance(v, str)

    stat = meta.get("stat")
    return (int_or_none(meta.get("size")) and str_or_none(meta.get("md5"))
            and str_or_none(meta.get("sha256"))
            and (stat is None or (isinstance(stat, list) and len(stat) == 4
                                  and all(isinstance(x, int) for x in stat))))


def _size_or_zero(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0
