"""HTTP transport: one URL into one partial file, hashed as the bytes arrive.

What this module owns: redirects (followed by hand so an https->http downgrade
can be refused), retries with capped exponential backoff and ``Retry-After``,
resume with ``Range`` + ``If-Range``, size checks against ``Content-Length``,
and sniffing out HTML error pages or git-lfs pointers served as a file.
It knows nothing about manifests or the CLI; it raises TransferError for a URL
that failed and leaves choosing the next URL to the caller.
"""

from __future__ import annotations

import email.utils
import os
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import IncompleteRead

from . import __version__
from .errors import InsecureRedirectError, PolicyError, TransferError
from .hashing import ALGORITHMS, CHUNK, Digests, StreamHasher, hash_stream
from .progress import NoProgress, Progress
from .disk import check_free_space, store_errors
from .urls import is_loopback, redact

USER_AGENT = f"densezoo/{__version__} (+https://github.com/densezoo/densezoo)"
MAX_REDIRECTS = 10
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$")
_sleep = time.sleep          # a seam: tests swap in a recorder instead of waiting
# Automatic segmentation: after AUTO_PROBE seconds on one connection, if the server
# takes ranges, at least AUTO_MIN_REMAINING bytes are left and the rate is below
# AUTO_SLOW bytes/s (a per-connection cap, not our CPU), use AUTO_CONNECTIONS.
AUTO_PROBE = 1.0
AUTO_MIN_REMAINING = 64 << 20
AUTO_SLOW = 50e6
AUTO_CONNECTIONS = 4
_NETWORK_ERRORS = (requests.exceptions.RequestException, Urllib3HTTPError, ConnectionError,
                   TimeoutError, OSError)


def new_session() -> requests.Session:
    """A Session with a connection pool big enough for parallel downloads.

    requests already honours HTTP(S)_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE.
    """
    s = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=16, max_retries=0)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    return s


@dataclass
class DownloadResult:
    digests: Digests
    url: str                       # the URL finally served (after redirects)
    resumed_from: int              # bytes kept from an earlier attempt
    transferred: int               # bytes that came over the network
    validators: dict[str, str | None] = field(default_factory=dict)   # etag, last_modified


def sniff_wrong_content(first: bytes, file_name: str) -> str | None:
    """Recognise payloads that are certainly not the artifact (the 31-byte LFS placeholder trap)."""
    head = first[:512].lstrip().lower()
    if head.startswith(b"version https://git-lfs.github.com/spec/"):
        return "the server sent a git-lfs pointer, not the file"
    if not file_name.lower().endswith((".html", ".htm", ".xml")) and (
            head.startswith(b"<!doctype html") or head.startswith(b"<html")):
        return "the server sent an HTML page, not the file"
    return None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Downloader:
    """Fetch URLs with retries into densezoo's partial files.

    ``session`` and ``sleep`` are injectable so tests can count waits instead
    of sleeping; everything else is exercised against a real loopback server.
    """

    def __init__(self, session: requests.Session | None = None, *,
                 timeout: tuple[float, float] = (10.0, 60.0), attempts: int = 5,
                 backoff_base: float = 0.5, backoff_max: float = 30.0,
                 sleep: Callable[[float], None] | None = None, allow_http: bool = False,
                 space_check: bool = True, connections: int | None = None) -> None:
        self.session = session or new_session()
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.sleep = sleep or _sleep
        self.allow_http = allow_http
        self.space_check = space_check
        self.connections = connections          # None: automatic; 1: never segment
        self._progress_lock = threading.Lock()

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
            try:
                resp = self.session.get(current, headers=headers, stream=True,
                                        allow_redirects=False, timeout=self.timeout)
            except _NETWORK_ERRORS as e:
                raise TransferError(redact(url), _describe(e)) from None
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
            resp = self._open(url, {"Accept-Encoding": "identity"})
            with resp:
                self._raise_for_status(url, resp)
                data = resp.raw.read(limit + 1, decode_content=True)
            if len(data) > limit:
                raise TransferError(redact(url), f"larger than {limit} bytes", retryable=False)
            return data
        return self._with_retries(url, once)

    # -- the main job ---------------------------------------------------------------------

    def download(self, url: str, partial, *, expected_size: int | None,
                 file_name: str, resume_unvalidated: bool = True,
                 algorithms: tuple[str, ...] = ALGORITHMS,
                 progress: Progress | None = None) -> DownloadResult:
        """Fill ``partial`` from ``url`` (resuming what is in it) and hash every byte once.

        Bytes already in the partial are kept only if the server can confirm they
        belong to the same file (an ETag/Last-Modified for ``If-Range``), or if
        ``resume_unvalidated`` says a published checksum will catch a stitched file.
        """
        progress = progress or NoProgress()
        state = _State(partial, algorithms)
        try:
            return self._with_retries(url, lambda: self._attempt(
                url, state, expected_size=expected_size, file_name=file_name,
                resume_unvalidated=resume_unvalidated, progress=progress), progress_made=lambda: state.progress_mark())
        finally:
            progress.close()
            if state.hasher is not None and state.result is None:
                state.hasher.abort()

    def backoff(self, failures: int) -> float:
        """Capped exponential backoff with jitter, after the n-th consecutive failure."""
        delay = min(self.backoff_max, self.backoff_base * (2 ** (failures - 1)))
        return delay * (0.5 + random.random() / 2)

    def _with_retries(self, url: str, fn: Callable[[], object],
                      progress_made: Callable[[], int] | None = None):
        failures = 0
        last_mark = progress_made() if progress_made else 0
        while True:
            try:
                return fn()
            except TransferError as e:
                mark = progress_made() if progress_made else 0
                if mark > last_mark:        # bytes arrived: a flaky link, not a dead one
                    failures = 0
                    last_mark = mark
                failures += 1
                if not e.retryable or failures >= self.attempts:
                    raise
                delay = self.backoff(failures)
                if e.retry_after is not None:
                    delay = min(max(delay, e.retry_after), max(self.backoff_max, 60.0))
                self.sleep(delay)

    def _raise_for_status(self, url: str, resp: requests.Response) -> None:
        code = resp.status_code
        if code < 400:
            return
        reason = f"HTTP {code} {resp.reason or ''}".strip()
        if code == 403:
            reason += " (forbidden or missing key: check the id/path in the URL)"
        elif code == 404:
            reason += " (not found)"
        raise TransferError(redact(url), reason, status=code, retryable=code in RETRY_STATUS,
                            retry_after=_retry_after(resp.headers.get("Retry-After")))

    def _attempt(self, url: str, state: "_State", *, expected_size: int | None, file_name: str,
                 resume_unvalidated: bool, progress: Progress) -> DownloadResult:
        partial = state.partial
        validator = validator_of(partial.meta)
        offset = partial.size if (validator or resume_unvalidated) else 0
        if expected_size is not None and offset > expected_size:
            offset = 0
        headers = {"Accept-Encoding": "identity"}
        if offset > 0:
            headers["Range"] = f"bytes={offset}-"
            if validator:
                headers["If-Range"] = validator
        resp = self._open(url, headers)
        with resp:
            if resp.status_code == 416 and offset > 0:
                # Our partial is at least as long as the file: start over, cheaply.
                state.reset()
                raise TransferError(redact(url), "HTTP 416 for a resume; restarting", status=416)
            self._raise_for_status(url, resp)
            encoded = resp.headers.get("Content-Encoding", "identity").lower() not in (
                "identity", "")
            start, total = 0, _int(resp.headers.get("Content-Length"))
            if resp.status_code == 206 and offset > 0 and not encoded:
                parsed = content_range(resp)
                if parsed is None or parsed[0] != offset:
                    state.reset()
                    raise TransferError(redact(url), "server answered the resume with a wrong "
                                        f"Content-Range ({resp.headers.get('Content-Range')!r}); "
                                        "restarting")
                start, total = offset, parsed[1]
            elif resp.status_code != 200:
                raise TransferError(redact(url), f"unexpected HTTP {resp.status_code}",
                                    status=resp.status_code, retryable=False)
            if encoded:
                total = None                       # Content-Length counts encoded bytes
            if total is not None and expected_size is not None and total != expected_size:
                raise TransferError(redact(url), f"server offers {total} bytes but the manifest "
                                    f"says {expected_size}: a different file", retryable=False)
            if self.space_check and total is not None:
                check_free_space(partial.path.parent, total - start)
            served_url = resp.url or url
            info = {"etag": resp.headers.get("ETag"),
                    "last_modified": resp.headers.get("Last-Modified")}
            with store_errors("write the download", partial.path.parent):
                partial.save_meta(url=redact(served_url), **info)
            f = state.open_at(start)
            resumed = start
            progress.start(file_name, total, start)
            ranges_ok = (total is not None and not encoded and bool(validator_of(info))
                         and (resp.status_code == 206
                              or resp.headers.get("Accept-Ranges", "").lower() == "bytes"))
            forced = (self.connections or 0) > 1
            began = time.monotonic()
            needed = (lambda: None if total is None else total - state.hasher.size)
            try:
                first = True
                # read1 returns what has arrived (up to CHUNK): a slow link still shows
                # progress and loses at most one socket read when it breaks.
                read = resp.raw.read1
                with store_errors("write the download", partial.path.parent, needed):
                    while True:
                        if ranges_ok and self.connections != 1 and self._should_split(
                                forced, began, state.hasher.size - start,
                                total - state.hasher.size):
                            break
                        try:
                            chunk = read(CHUNK, decode_content=encoded)
                        except _NETWORK_ERRORS as e:
                            raise TransferError(redact(url), _describe(e)) from None
                        if not chunk:
                            break
                        if first:
                            first = False
                            bad = sniff_wrong_content(chunk, file_name) if start == 0 else None
                            if bad:
                                state.reset()
                                raise TransferError(redact(url), bad, retryable=False)
                        f.write(chunk)
                        state.hasher.update(chunk)
                        state.transferred += len(chunk)
                        progress.advance(len(chunk))
                    f.flush()
                if total is not None and state.hasher.size < total and ranges_ok and (
                        self.connections != 1):
                    resp.close()
                    self._segmented(resp.url or url, url, info, f.fileno(), state, total,
                                    progress)
            finally:
                with store_errors("write the download", partial.path.parent):
                    f.close()
        got = state.hasher.size
        if total is not None and got != total:
            raise TransferError(redact(url), f"connection closed after {got} of {total} bytes")
        digests = state.hasher.finish()
        state.result = DownloadResult(digests, redact(served_url), resumed, state.transferred,
                                      info)
        return state.result


    def _should_split(self, forced: bool, began: float, done: int, remaining: int) -> bool:
        if remaining < 2 * (1 << 20):
            return False
        if forced:
            return True
        if self.connections is not None or remaining < AUTO_MIN_REMAINING:
            return False
        elapsed = time.monotonic() - began
        return elapsed >= AUTO_PROBE and done / elapsed < AUTO_SLOW

    def _segmented(self, real_url: str, url: str, info: dict[str, str | None], fd: int,
                   state: "_State", total: int, progress: Progress) -> None:
        """Fetch [hashed prefix, total) over several connections; see segmented.py."""
        from .segmented import SegmentedFetch

        validator = validator_of(info)

        def open_range(first: int, last: int) -> requests.Response:
            headers = {"Accept-Encoding": "identity", "Range": f"bytes={first}-{last}"}
            if validator:
                headers["If-Range"] = validator
            resp = self._open(real_url, headers)
            self._raise_for_status(url, resp)
            return resp

        def on_bytes(n: int) -> None:
            with self._progress_lock:
                state.transferred += n
                progress.advance(n)

        seg = SegmentedFetch(open_range=open_range, fd=fd, start=state.hasher.size, total=total,
                             connections=self.connections or AUTO_CONNECTIONS,
                             attempts=self.attempts, sleep=self.sleep, backoff=self.backoff,
                             on_bytes=on_bytes, describe=_describe,
                             network_errors=_NETWORK_ERRORS, content_range=content_range)
        try:
            seg.run(state.hasher)
        except BaseException:
            # Keep only the prefix that was hashed in order: that is what a resume needs.
            with store_errors("write the download", state.partial.path.parent):
                os.ftruncate(fd, state.hasher.size)
            raise


def validator_of(info: dict) -> str | None:
    """The ETag (or else Last-Modified) that If-Range needs to resume the same file."""
    return info.get("etag") or info.get("last_modified")


def content_range(resp) -> tuple[int, int | None] | None:
    """(first byte, total size or None) of a 206 response, or None if the header is bad."""
    m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
    if not m:
        return None
    return int(m.group(1)), (int(m.group(3)) if m.group(3) != "*" else None)


class _State:
    """Keeps the partial file and the running hash in step across retries."""

    def __init__(self, partial, algorithms: tuple[str, ...]) -> None:
        self.partial = partial
        self.algorithms = algorithms
        self.hasher: StreamHasher | None = None
        self.transferred = 0
        self.result: DownloadResult | None = None

    def progress_mark(self) -> int:
        return self.transferred

    def reset(self) -> None:
        if self.hasher is not None:
            self.hasher.abort()
        self.hasher = None
        with store_errors("write the download", self.partial.path.parent):
            self.partial.open(0).close()
        self.partial.meta.clear()

    def open_at(self, offset: int):
        """Open the partial for appending at ``offset``, hashing any kept prefix first."""
        with store_errors("write the download", self.partial.path.parent):
            if self.hasher is not None and self.hasher.size != offset:
                self.hasher.abort()
                self.hasher = None
            if self.hasher is None:
                self.hasher = StreamHasher(self.algorithms)
                if offset:
                    with open(self.partial.path, "rb") as kept:
                        hash_stream(kept, self.hasher, limit=offset)
                    if self.hasher.size != offset:       # the kept file was shorter: restart
                        self.hasher.abort()
                        self.hasher = StreamHasher(self.algorithms)
                        offset = 0
            return self.partial.open(offset)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _describe(e: BaseException) -> str:
    """A short, credential-free reason for a network exception."""
    for inner in (e, *getattr(e, "args", ())):
        if isinstance(inner, IncompleteRead):
            return (f"connection closed after {inner.partial} bytes with {inner.expected} more "
                    "promised by Content-Length")
    if isinstance(e, (requests.exceptions.ConnectTimeout,)):
        return "connection timed out"
    if isinstance(e, (requests.exceptions.ReadTimeout, TimeoutError)) or "timed out" in str(e):
        return "read timed out"
    if isinstance(e, requests.exceptions.SSLError):
        return "TLS error (set REQUESTS_CA_BUNDLE if a proxy re-signs traffic)"
    if isinstance(e, requests.exceptions.ConnectionError):
        text = str(e)
        if "Connection refused" in text:
            return "connection refused"
        if "Name or service not known" in text or "getaddrinfo" in text:
            return "host name not found"
        if "reset" in text.lower():
            return "connection reset"
        return "connection failed"
    text = str(e).split("\n")[0]
    text = re.sub(r"https?://\S+", "<url>", text)
    return f"connection broken ({type(e).__name__}: {text[:120]})"
