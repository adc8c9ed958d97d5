"""The Downloader: requests, redirects, retries, and the checks on every response.

What this module owns: redirects (followed by hand so an https->http downgrade
can be refused), retries with capped exponential backoff and ``Retry-After``,
resume with ``Range`` + ``If-Range``, size checks against ``Content-Length``,
and sniffing out HTML error pages or git-lfs pointers served as a file.  One
attempt is three steps, pip-style: ``_accept`` the response (status, range,
size, space), ``_receive`` its body, then hand the rest to ``segmented`` when
one connection is the bottleneck.
"""

from __future__ import annotations

import errno
import threading
import time
from typing import BinaryIO, Callable
from urllib.parse import urljoin, urlsplit

import requests

from ..version import __version__
from ..content.sniff import sniff_wrong_content
from ..disk import WriteBehind, allocated, check_free_space, store_errors
from ..errors import (Cancelled, FailureKind, InsecureRedirectError, PolicyError, StoreError,
                      TransferError)
from ..hashing import ALGORITHMS, CHUNK
from ..progress import Progress
from ..urls import is_loopback, redact
from .transfer import DownloadResult, Sink, Transfer, same_version, validator_of
from .guard import Guard, GuardedAdapter, no_answer
from .guard import current as current_guard
from .health import host_of
from .wire import (NETWORK_ERRORS, RETRY_STATUS, Body, LengthConflict, NoAnswer, RetryPolicy,
                   content_range, length_conflict, network_error, retry_after, to_int)

USER_AGENT = f"densezoo/{__version__} (+https://github.com/densezoo/densezoo)"
MAX_REDIRECTS = 10
_sleep = time.sleep          # a seam: tests swap in a recorder instead of waiting
# Automatic segmentation, decided by projected time rather than size: after AUTO_PROBE
# seconds on one connection, if the server takes ranges, the rate is below AUTO_SLOW
# bytes/s (a per-connection cap, not our CPU or disk) and the rest would still take more
# than AUTO_SPLIT_SECONDS at that rate, split it (segmented: 4 connections, up to 8 while
# each keeps that rate).
# A server that encodes one of these anyway is labelling the file, not compressing it.
COMPRESSED_SUFFIXES = (".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz", ".zip", ".zst")
AUTO_PROBE = 0.25
AUTO_MIN_REMAINING = 8 << 20        # below this, one connection finishes soon enough anyway
AUTO_SLOW = 50e6
AUTO_SPLIT_SECONDS = 1.5


def new_session() -> requests.Session:
    """A Session with a connection pool big enough for parallel downloads.

    requests already honours HTTP(S)_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE.
    """
    s = requests.Session()
    # Its connections tell the running attempt's Guard their socket (see guard.py).
    adapter = GuardedAdapter(pool_connections=16, pool_maxsize=16, max_retries=0)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    return s


def _still_needed(body: Body, t: Transfer) -> Callable[[], int | None]:
    """For a disk-full message: the bytes of this body the disk has still to take, read
    when the error happens (None when the server stated no size)."""
    return lambda: None if body.total is None else max(0, body.total - t.hashed)


class Downloader:
    """Fetch URLs with retries into densezoo's partial files.

    ``session`` and ``sleep`` are injectable so tests can count waits instead
    of sleeping; everything else is exercised against a real loopback server.
    """

    def __init__(self, session: requests.Session | None = None, *,
                 timeout: tuple[float, float] = (10.0, 60.0), attempts: int = 5,
                 backoff_base: float = 0.5, backoff_max: float = 30.0,
                 sleep: Callable[[float], None] | None = None, allow_http: bool = False,
                 space_check: bool = True, connections: int | None = None,
                 min_rate: float = 0.0, cancel: threading.Event | None = None,
                 deadline: float | None = None) -> None:
        self.session = session or new_session()
        self.timeout = timeout
        self.retry = RetryPolicy(attempts, backoff_base, backoff_max, sleep or _sleep, deadline)
        self.allow_http = allow_http
        self.space_check = space_check
        self.connections = connections          # None: automatic; 1: never segment
        self.min_rate = min_rate                # bytes/s over a read timeout, else next URL
        self.cancel = cancel or threading.Event()   # set: every transfer stops (Ctrl-C)
        # URLs whose server misanswered a Range request: one connection from then on.
        self.no_ranges: set[str] = set()
        # Hosts whose last answer to a file request never came (host -> (why, when)): the
        # fetcher asks them for no other file in this run (a silent host cost a timeout
        # per artifact); any answer from the host clears it.
        self.silent: dict[str, tuple[str, float]] = {}

    # -- policy and redirects -------------------------------------------------------------

    def check_url_allowed(self, url: str) -> None:
        scheme = urlsplit(url).scheme
        if scheme == "https":
            return
        if scheme == "http" and (self.allow_http or is_loopback(url)):
            return
        if scheme == "http":
            raise PolicyError(f"refused plain-http URL {redact(url)}",
                              hint="use https, or pass --allow-http / DENSEZOO_ALLOW_HTTP=1 "
                                   "for a trusted internal mirror")
        raise PolicyError(f"refused URL scheme {scheme!r} in {redact(url)}")

    def _open(self, url: str, headers: dict[str, str]) -> requests.Response:
        """GET with redirects followed by hand (so a downgrade is refused, loops are caught)."""
        seen = []
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            self.check_url_allowed(current)
            seen.append(current)
            guard = current_guard()
            try:
                resp = self.session.get(current, headers=headers, stream=True,
                                        allow_redirects=False, timeout=self.timeout)
            except NETWORK_ERRORS as e:
                err = network_error(redact(url), e, self.timeout)
                if (guard is not None and guard.fired) or err.reason.startswith("read timed"):
                    raise NoAnswer(redact(url), no_answer(self.timeout[1])) from None
                raise err from None
            if guard is not None:
                guard.answered()
            if resp.status_code in (301, 302, 303, 307, 308):
                location = resp.headers.get("Location")
                resp.close()
                if not location:
                    raise TransferError(redact(url), f"HTTP {resp.status_code} redirect without "
                                        "a Location header (a dead host alias?)",
                                        status=resp.status_code, retryable=False)
                target = urljoin(current, location)
                if urlsplit(current).scheme == "https" and urlsplit(target).scheme != "https":
                    raise InsecureRedirectError(redact(current), redact(target))
                if target in seen:
                    raise TransferError(redact(url), "redirect loop", retryable=False)
                current = target
                continue
            return resp
        raise TransferError(redact(url), f"more than {MAX_REDIRECTS} redirects", retryable=False)

    # -- small files (sidecars) -----------------------------------------------------------

    def get_small(self, url: str, limit: int = 64 * 1024) -> bytes:
        """GET a small text resource (an ``.md5sum``) with the same retries."""
        def once() -> bytes:
            with Guard(self.timeout[1], self.min_rate):
                resp = self._open(url, {"Accept-Encoding": "identity"})
                with resp:
                    self.raise_for_status(url, resp)
                    data = resp.raw.read(limit + 1, decode_content=True)
            if len(data) > limit:
                raise TransferError(redact(url), f"larger than {limit} bytes", retryable=False)
            return data
        return self.retry.run(once)

    # -- the main job ---------------------------------------------------------------------

    def download(self, url: str, sink: Sink, *, expected_size: int | None,
                 file_name: str, resume_unvalidated: bool = True,
                 algorithms: tuple[str, ...] = ALGORITHMS,
                 progress: Progress | None = None,
                 size_claimed: bool = False) -> DownloadResult:
        """Fill ``sink`` from ``url`` (resuming what is in it) and hash every byte once.

        Bytes already in the sink are kept only if the server can confirm they
        belong to the same file (an ETag/Last-Modified for ``If-Range``), or if
        ``resume_unvalidated`` says a published checksum will catch a stitched file.
        ``size_claimed``: ``expected_size`` is only what this source said of itself
        (the Hub's X-Linked-Size), not the manifest's: it cannot fail the disk.
        """
        t = Transfer(sink, algorithms=algorithms, expected_size=expected_size,
                     file_name=file_name, resume_unvalidated=resume_unvalidated,
                     progress=progress)
        t.size_claimed = size_claimed
        try:
            return self.retry.run(lambda: self._attempt(url, t), progress_made=t.progress_mark)
        finally:
            t.close()

    def raise_for_status(self, url: str, resp: requests.Response) -> None:
        code = resp.status_code
        if code < 400:
            return
        reason = f"HTTP {code} {resp.reason or ''}".strip()
        if code == 403:
            reason += " (forbidden or missing key: check the id/path in the URL)"
        elif code == 404:
            reason += " (not found)"
        busy = code in RETRY_STATUS          # "not now", not "no such file": no 403 advice
        raise TransferError(redact(url), reason, status=code, retryable=busy,
                            retry_after=retry_after(resp.headers.get("Retry-After")),
                            kind=FailureKind.BUSY if busy else None)

    def _attempt(self, url: str, t: Transfer) -> DownloadResult:
        """One request: resume where the kept bytes end, check the answer, take the body."""
        offset = t.resume_offset()
        with Guard(self.timeout[1], self.min_rate) as guard:
            try:
                resp = self._open(url, t.request_headers(offset))
            except NoAnswer as e:
                self.silent[host_of(url)] = (e.reason, time.monotonic())
                raise
            self.silent.pop(host_of(url), None)
            return self._take(url, t, resp, offset, guard)

    def _take(self, url: str, t: Transfer, resp: requests.Response, offset: int,
              guard: Guard) -> DownloadResult:
        """Accept the answer and receive its body (the rest of ``_attempt``)."""
        with resp:
            body = self._accept(url, t, resp, offset)
            f = t.open_at(body.start)
            t.progress.start(t.file_name, body.total, body.start)
            try:
                self._receive(url, t, resp, f, body, guard)
            finally:
                # Closing flushes what is buffered: on a full disk this may be the write
                # that fails, and the message still says how much more is needed.
                with store_errors("write the download", t.sink.path.parent,
                                  _still_needed(body, t)):
                    f.close()
        if body.total is not None and t.hashed != body.total:
            raise TransferError(redact(url), f"connection closed after {t.hashed} of "
                                             f"{body.total} bytes")
        return t.finish(redact(body.url), body.start, body.validators)

    def _accept(self, url: str, t: Transfer, resp: requests.Response, offset: int) -> Body:
        """Check status, Content-Range, version, size and free space; record what the bytes are."""
        if resp.status_code == 416 and offset > 0:
            # Our partial is at least as long as the file: start over, cheaply.
            t.reset()
            raise TransferError(redact(url), "HTTP 416 for a resume; restarting", status=416)
        self.raise_for_status(url, resp)
        encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("identity", "")
        if encoded and t.file_name.lower().endswith(COMPRESSED_SUFFIXES):
            # An object store labelling a .tar.gz as gzip-encoded: the file *is* those bytes.
            encoded = False
        start, total = 0, to_int(resp.headers.get("Content-Length"))
        if resp.status_code == 206 and offset > 0 and not encoded:
            start, total = offset, self._resumed_range(url, t, resp, offset)
        elif resp.status_code != 200:
            raise TransferError(redact(url), f"unexpected HTTP {resp.status_code}",
                                status=resp.status_code, retryable=False)
        if encoded:
            total = None                       # Content-Length counts encoded bytes
        if total is not None and t.expected_size is not None and total != t.expected_size:
            raise TransferError(redact(url), f"server offers {total} bytes but "
                                f"{t.expected_size} are expected: a different file (a "
                                "pointer, a placeholder or a truncated copy)", retryable=False)
        if self.space_check and total is not None:
            # Bytes the partial already holds (the prefix, blocks an earlier run kept, even
            # half-written ones) are rewritten in place, never asked of the free space.
            self._check_space(url, t, max(0, total - allocated(t.sink.path)))
        served = resp.url or url
        validators = {"etag": resp.headers.get("ETag"),
                      "last_modified": resp.headers.get("Last-Modified")}
        t.accepted(redact(served), validators, start, total)
        ranges_ok = (self.connections != 1 and total is not None and not encoded
                     and url not in self.no_ranges
                     and bool(validator_of(validators))
                     and (resp.status_code == 206
                          or resp.headers.get("Accept-Ranges", "").lower() == "bytes"))
        return Body(start, total, encoded, served, validators, ranges_ok)

    def _resumed_range(self, url: str, t: Transfer, resp: requests.Response,
                       offset: int) -> int | None:
        """A 206 must continue the same version of the file at our offset, else restart."""
        parsed = content_range(resp)
        if parsed is None or parsed[0] != offset:
            t.reset()
            raise TransferError(redact(url), "server answered the resume with a wrong "
                                f"Content-Range ({resp.headers.get('Content-Range')!r}); "
                                "restarting")
        same = same_version(t.record.validators, resp.headers)
        if same is False or (same is None and not t.resume_unvalidated):
            t.reset()
            raise TransferError(redact(url), "the server resumed with a different version of "
                                "the file (its ETag/Last-Modified changed); restarting")
        # The same version, so the same size as the answer the kept bytes came from.
        conflict = length_conflict(resp, t.record.total)
        if conflict is not None:
            t.reset()
            raise LengthConflict(redact(url), conflict)
        return parsed[1]

    def _check_space(self, url: str, t: Transfer, needed: int) -> None:
        """A size the manifest (or our own pin) states is the file's: not fitting is the
        disk's problem (exit 8).  A size only a source states -- its Content-Length, the
        Hub's X-Linked-Size -- may be a lie: this URL fails with the disk's facts, and the
        next URL is still tried (a 1 PB claim from one copy must not end the fetch)."""
        try:
            check_free_space(t.sink.path.parent, needed)
        except StoreError as e:
            if t.expected_size is not None and not t.size_claimed:
                raise
            raise TransferError(redact(url), f"{e.message} (a size only the server states: "
                                "the next URL is tried)",
                                retryable=False, kind=FailureKind.DISK) from e

    def _receive(self, url: str, t: Transfer, resp: requests.Response, f: BinaryIO,
                 body: Body, guard: Guard) -> None:
        """Write, hash and count the body; hand the rest to segmented download if it pays."""
        assert t.hasher is not None
        # Blocks an interrupted segmented run completed are on disk: go segmented at once
        # and fetch only the missing ones.
        forced = (self.connections or 0) > 1 or bool(t.kept_ranges())
        began = time.monotonic()
        # No byte past the size the server or the manifest states: a body without a
        # length (or an encoding never asked for) cannot fill the disk with junk.
        cap = body.total if body.total is not None else t.expected_size
        # read1 returns what has arrived (up to CHUNK): a slow link still shows
        # progress and loses at most one socket read when it breaks.
        read, first = resp.raw.read1, True
        behind = WriteBehind(f.fileno(), body.start)
        try:
            with store_errors("write the download", t.sink.path.parent, _still_needed(body, t)):
                while not (body.ranges_ok and self._should_split(
                        forced, began, t.hashed - body.start, body.total - t.hashed)):
                    if self.cancel.is_set():
                        raise Cancelled()
                    try:
                        chunk = read(CHUNK, decode_content=body.encoded)
                    except NETWORK_ERRORS as e:
                        guard.raise_if_fired(redact(url))
                        raise network_error(redact(url), e, self.timeout) from None
                    if not chunk:
                        if body.total is None or t.hashed < body.total:
                            guard.raise_if_fired(redact(url))   # cut, not complete
                        break
                    if first and body.start == 0:
                        self._sniff(url, t, chunk)
                    first = False
                    if cap is not None and t.hashed + len(chunk) > cap:
                        t.reset()
                        raise TransferError(redact(url), f"sent more than the {cap} bytes "
                                            "stated for this file; its bytes were discarded",
                                            retryable=False)
                    f.write(chunk)
                    t.hasher.update(chunk)
                    t.count(len(chunk))
                    guard.got(len(chunk))
                    behind.wrote(t.hashed)
                f.flush()
        except StoreError as e:
            if cap is not None or getattr(e.__cause__, "errno", None) != errno.ENOSPC:
                raise
            t.reset()        # junk of no stated size filled the disk: free it, blame the URL
            raise TransferError(redact(url), "the disk filled while receiving a body of no "
                                "stated size; its bytes were discarded", retryable=False,
                                kind=FailureKind.DISK) from None
        if body.ranges_ok and body.total is not None and t.hashed < body.total:
            guard.stop()           # each segment's connection runs under its own guard
            resp.close()
            from .segmented import RangeRefused, SegmentedFetch

            # What one connection managed alone: the yardstick for adding more.
            one_rate = (None if forced else
                        (t.hashed - body.start) / max(time.monotonic() - began, 1e-3))
            try:
                SegmentedFetch(lambda b, first, last: self.open_range(b, url, first, last),
                               self.retry, self.cancel, t, body, f.fileno(),
                               self.connections, one_rate,
                               new_guard=lambda n: Guard(self.timeout[1],
                                                         self.min_rate / n)).run()
            except LengthConflict as e:
                t.reset()        # which size is the file's cannot be told: keep nothing
                e.url = redact(url)
                raise
            except RangeRefused as e:
                # Server misbehaviour is no reason to fail: one connection from the hashed
                # prefix (the record vouches for it), or from zero when the file changed.
                self.no_ranges.add(url)
                if e.changed:
                    t.reset()
                raise TransferError(redact(url), f"{e.reason}; "
                                    + ("starting again on one connection" if e.changed
                                       else "continuing on one connection")) from None
            except TransferError as e:
                e.url = redact(url)      # a segment names the URL that answered it, raw
                raise

    @staticmethod
    def _sniff(url: str, t: Transfer, first: bytes) -> None:
        bad = sniff_wrong_content(first, t.file_name)
        if bad:
            t.reset()
            raise TransferError(redact(url), bad, retryable=False, kind=FailureKind.CONTENT)

    def _should_split(self, forced: bool, began: float, done: int, remaining: int) -> bool:
        if remaining < 2 * (1 << 20):
            return False
        if forced:
            return True
        if self.connections is not None or remaining < AUTO_MIN_REMAINING:
            return False
        elapsed = time.monotonic() - began
        if elapsed < AUTO_PROBE:
            return False
        rate = done / elapsed
        return rate < AUTO_SLOW and remaining > rate * AUTO_SPLIT_SECONDS

    def open_range(self, body: Body, url: str, first: int, last: int) -> requests.Response:
        """One Range request for the same bytes the body came from (segmented download)."""
        headers = {"Accept-Encoding": "identity", "Range": f"bytes={first}-{last}"}
        validator = validator_of(body.validators)
        if validator:
            headers["If-Range"] = validator
        resp = self._open(body.url, headers)
        self.raise_for_status(url, resp)
        return resp
