"""The local store: where files, partial downloads, metadata and pins live on disk.

Layout (see docs/cache.md)::

    <root>/CACHEDIR.TAG
    <root>/files/<host>/<url path>                    published, verified file
    <root>/files/<host>/<url path>.dzmeta             its metadata (JSON)
    <root>/files/<host>/<url path>.dzpart             a resumable partial nobody holds
    <root>/files/<host>/<url path>.dzpart-<token>     a partial one process is writing
    <root>/pins/<host>/<url path>.json                checksums pinned on first download
    <root>/bad/<stamp>/<host>/<url path>              corrupt copies moved aside by verify

Correctness never depends on a lock.  Each process writes its own uniquely
named partial; a resumable partial is *claimed* by an atomic rename (one
winner), and a finished file is published by an atomic rename after it has
been verified.  The worst a race can cost is duplicate bandwidth.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from .errors import DensezooError, StoreError
from .hashing import ALGORITHMS, Digests
from .manifest import Artifact
from .urls import url_key

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by densezoo.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
PART = ".dzpart"
META = ".dzmeta"
LOCK = ".dzlock"
STALE_SECONDS = 15 * 60      # an unchanged partial of a holder we cannot see is up for grabs
MARKER_STALE_SECONDS = 30.0  # a marker whose heartbeat stopped this long ago is ignored
HEARTBEAT_SECONDS = 5.0


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def stat_memo(path: Path) -> list[int]:
    """(inode, size, mtime_ns, ctime_ns): changes whenever the file is written or replaced.

    ctime is in it because no user tool can set ctime back, so restoring an
    mtime after an edit still invalidates the memo.
    """
    st = path.stat()
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _token() -> str:
    host = "".join(c if c.isalnum() or c in ".-" else "_" for c in socket.gethostname())[:40]
    return f"{os.getpid()}@{host or 'host'}.{uuid.uuid4().hex[:8]}"


def holder_alive(token: str) -> bool | None:
    """True/False for a holder on this host; None if it lives elsewhere (cannot tell)."""
    pid_s, _, rest = token.partition("@")
    host = rest.rsplit(".", 1)[0]
    mine = "".join(c if c.isalnum() or c in ".-" else "_" for c in socket.gethostname())[:40]
    if host != mine or not pid_s.isdigit():
        return None
    pid = int(pid_s)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_text_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def store_errors(what: str, path: Path,
                 needed: Callable[[], int | None] | None = None) -> Iterator[None]:
    """Turn OSError (ENOSPC, EROFS, EACCES, ...) into a StoreError naming the directory.

    densezoo's own errors (a TransferError is an OSError too) pass through untouched.
    ``needed`` is asked only when the disk is full, for the bytes still to come.
    """
    try:
        yield
    except DensezooError:
        raise
    except OSError as e:
        reason = e.strerror or str(e)
        more = needed() if (e.errno == errno.ENOSPC and needed is not None) else None
        if more is not None:
            reason += f" ({more} more bytes needed)"
        raise StoreError(f"cannot {what} in {path}: {reason}", path=str(path)) from e


def check_free_space(directory: Path, needed: int) -> None:
    """Refuse before the first byte when the filesystem says the file cannot fit."""
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return            # cannot tell: let the write itself report a full disk
    if needed > free:
        raise StoreError(
            f"not enough space in {directory}: the download needs {needed} more bytes "
            f"and {free} are free", path=str(directory),
            hint="free some space, point --cache-dir / DENSEZOO_CACHE_DIR elsewhere, or pass "
                 "--no-space-check if this filesystem misreports its free space")


@dataclass
class Partial:
    """A partial download this process holds (its own unique file)."""

    path: Path
    slot: Path                     # where an abandoned partial waits for the next run
    meta: dict[str, Any]           # url, etag, last_modified of the bytes in it

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    @property
    def meta_path(self) -> Path:
        return self.path.with_name(self.path.name + ".meta")

    def open(self, offset: int) -> BinaryIO:
        """Open for writing at ``offset`` (dropping anything after it).

        Truncate only when there is something to drop: truncating a file to
        size 0 makes ext4 (auto_da_alloc) force writeback of the whole file on
        close, which cost ~0.35 s per GiB for nothing.
        """
        f = open(self.path, "r+b" if self.path.exists() else "w+b")
        if os.fstat(f.fileno()).st_size > offset:
            f.truncate(offset)
        f.seek(offset)
        return f

    def save_meta(self, **fields: Any) -> None:
        self.meta.update(fields)
        write_json_atomic(self.meta_path, self.meta)

    def release(self) -> None:
        """Leave the partial where the next run (or another process) can resume it."""
        with contextlib.suppress(OSError):
            if self.size == 0:
                self.discard()
                return
            os.replace(self.path, self.slot)
            if self.meta_path.exists():
                os.replace(self.meta_path, self.slot.with_name(self.slot.name + ".meta"))

    def discard(self) -> None:
        for p in (self.path, self.meta_path):
            with contextlib.suppress(OSError):
                p.unlink()


class FetchMarker:
    """"Some process is fetching this file": lets others wait instead of downloading twice.

    Only bandwidth depends on it.  Created with O_EXCL (one winner), kept fresh
    by a heartbeat thread, and ignored once its holder is dead (same host) or its
    heartbeat is older than MARKER_STALE_SECONDS (another host), so a crashed
    holder never blocks anyone for long.  On filesystems where O_EXCL or mtimes
    lie, the worst case is the duplicate download we would have had anyway.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.token = _token()
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
        """True when the current marker belongs to a dead or silent process."""
        try:
            token = self.path.read_text()
            age = time.time() - self.path.stat().st_mtime
        except OSError:
            return True
        alive = holder_alive(token)
        return alive is False or age > MARKER_STALE_SECONDS

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
        self.root = Path(root)

    # -- paths ----------------------------------------------------------------------------

    @property
    def files_dir(self) -> Path:
        return self.root / "files"

    def path_for(self, art: Artifact) -> Path:
        key = url_key(art.url)
        path = self.files_dir.joinpath(*key)
        if art.filename and art.filename != key[-1]:
            path = path.with_name(art.filename)
        return path

    def meta_path(self, art: Artifact) -> Path:
        p = self.path_for(art)
        return p.with_name(p.name + META)

    def extract_dir(self, art: Artifact) -> Path:
        return self.root.joinpath("extracted", *url_key(art.url))

    def marker(self, art: Artifact) -> FetchMarker:
        p = self.path_for(art)
        self.ensure_dir(p.parent)
        return FetchMarker(p.with_name(p.name + LOCK))

    def pin_path(self, art: Artifact) -> Path:
        p = self.root.joinpath("pins", *url_key(art.url))
        return p.with_name(p.name + ".json")

    # -- reading --------------------------------------------------------------------------

    def cached_path(self, art: Artifact) -> Path | None:
        p = self.path_for(art)
        return p if p.is_file() else None

    def read_meta(self, art: Artifact) -> dict[str, Any] | None:
        return read_json(self.meta_path(art))

    def read_pin(self, art: Artifact) -> dict[str, Any] | None:
        return read_json(self.pin_path(art))

    def memo_valid(self, art: Artifact, meta: dict[str, Any] | None = None) -> bool:
        """Whether the file is unchanged since densezoo last hashed it."""
        meta = meta if meta is not None else self.read_meta(art)
        path = self.path_for(art)
        try:
            return bool(meta) and meta.get("stat") == stat_memo(path)
        except OSError:
            return False

    # -- writing --------------------------------------------------------------------------

    def ensure_dir(self, directory: Path) -> None:
        with store_errors("create a directory", directory):
            directory.mkdir(parents=True, exist_ok=True)
            tag = self.root / "CACHEDIR.TAG"
            if not tag.exists():
                write_text_atomic(tag, CACHEDIR_TAG)

    def claim_partial(self, art: Artifact) -> Partial:
        """Take over a resumable partial if one is free, else start an empty one of our own."""
        final = self.path_for(art)
        self.ensure_dir(final.parent)
        slot = final.with_name(final.name + PART)
        mine = final.with_name(f"{final.name}{PART}-{_token()}")
        candidates = [slot] + self._orphans(final)
        for cand in candidates:
            try:
                os.rename(cand, mine)          # atomic: exactly one process wins it
            except OSError:
                continue
            meta = {}
            cand_meta = cand.with_name(cand.name + ".meta")
            with contextlib.suppress(OSError):
                os.rename(cand_meta, mine.with_name(mine.name + ".meta"))
                meta = read_json(mine.with_name(mine.name + ".meta")) or {}
            return Partial(mine, slot, meta)
        with store_errors("start a download", final.parent):
            mine.touch(exist_ok=False)
        return Partial(mine, slot, {})

    def _orphans(self, final: Path) -> list[Path]:
        """Partials left by holders that died (same host) or went quiet (other hosts)."""
        out = []
        prefix = f"{final.name}{PART}-"
        try:
            entries = list(os.scandir(final.parent))
        except OSError:
            return []
        now = time.time()
        for e in entries:
            if not e.name.startswith(prefix) or e.name.endswith((".meta", ".tmp", LOCK)):
                continue
            alive = holder_alive(e.name[len(prefix):])
            try:
                idle = now - e.stat().st_mtime
            except OSError:
                continue
            if alive is False or (alive is None and idle > STALE_SECONDS):
                out.append(Path(e.path))
        out.sort(key=lambda p: p.stat().st_size if p.exists() else 0, reverse=True)
        return out

    def publish(self, art: Artifact, partial: Partial, digests: Digests, *, url: str,
                headers: dict[str, str | None]) -> Path:
        """Atomically move a verified partial into place and record its metadata."""
        final = self.path_for(art)
        with store_errors("publish a file", final.parent):
            os.replace(partial.path, final)
            partial.discard()
            self.write_meta(art, digests, url=url, headers=headers)
        return final

    def write_meta(self, art: Artifact, digests: Digests, *, url: str | None,
                   headers: dict[str, str | None] | None = None,
                   extra: dict[str, Any] | None = None) -> None:
        final = self.path_for(art)
        old = self.read_meta(art) or {}
        found = digests.as_dict()
        # A digest not computed this time is kept if another one proves the same bytes.
        same_bytes = old.get("size") == digests.size and any(
            found[a] is not None and old.get(a) == found[a] for a in ALGORITHMS)
        for a in ALGORITHMS:
            if found[a] is None and same_bytes:
                found[a] = old.get(a)
        meta = {
            "name": art.name, "url": url, **(headers or {}), **found,
            "fetched_at": _now(), "verified_at": _now(), "stat": stat_memo(final),
        }
        if headers is None:
            for k in ("url", "etag", "last_modified", "fetched_at"):
                if old.get(k):
                    meta[k] = old[k]
        if "sidecar_md5" in old:
            meta["sidecar_md5"] = old["sidecar_md5"]
        meta.update(extra or {})
        with store_errors("write metadata", final.parent):
            write_json_atomic(self.meta_path(art), meta)

    def remember_sidecar(self, art: Artifact, md5: str) -> None:
        """Keep the md5 read from a ``.md5sum`` sidecar, so verify can run offline."""
        pin = self.read_pin(art) or {}
        if pin.get("sidecar_md5") != md5:
            pin["sidecar_md5"] = md5
            self._write_pin_dict(art, pin)

    def write_pin(self, art: Artifact, digests: Digests, url: str) -> dict[str, Any]:
        pin = self.read_pin(art) or {}
        pin.update({"name": art.name, "url": url, "pinned_at": _now(), **digests.as_dict()})
        self._write_pin_dict(art, pin)
        return pin

    def _write_pin_dict(self, art: Artifact, pin: dict[str, Any]) -> None:
        path = self.pin_path(art)
        self.ensure_dir(path.parent)
        with store_errors("write a pin", path.parent):
            write_json_atomic(path, pin)

    def quarantine(self, art: Artifact, src: Path | None = None) -> Path:
        """Move a corrupt or unsafe file out of the way (never delete it: it is evidence)."""
        published = src is None
        src = src or self.path_for(art)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
        dest = self.root.joinpath("bad", stamp, *url_key(art.url))
        self.ensure_dir(dest.parent)
        with store_errors("move a corrupt file aside", dest.parent):
            os.replace(src, dest)
            if published:
                with contextlib.suppress(OSError):
                    self.meta_path(art).unlink()
        return dest
