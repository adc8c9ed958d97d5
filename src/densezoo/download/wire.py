"""The HTTP vocabulary every transfer shares: network errors, ranges, and one retry policy.

Single-connection and segmented transfers both speak it, so they can never
disagree on what a Content-Range means, which failures are worth a retry, or
how long to wait before the next attempt.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

import requests
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import IncompleteRead

from ..errors import TransferError

RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
NETWORK_ERRORS = (requests.exceptions.RequestException, Urllib3HTTPError, ConnectionError,
                  TimeoutError, OSError)
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$")
T = TypeVar("T")


@dataclass(frozen=True)
class Body:
    """What an accepted response will deliver."""

    start: int                     # offset of its first byte in the file
    total: int | None              # the file's size, when known
    encoded: bool                  # a Content-Encoding the server applied anyway
    url: str                       # the URL that answered (after redirects)
    validators: dict[str, str | None]
    ranges_ok: bool                # the rest may be fetched with Range requests


class RetryPolicy:
    """Capped exponential backoff with jitter and ``Retry-After``, for every transfer.

    ``progress_made`` lets a caller say "more bytes were kept than ever before":
    such a failure is a flaky link, not a dead one, and the count starts again.
    """

    def __init__(self, attempts: int, base: float, cap: float,
                 sleep: Callable[[float], None], deadline: float | None = None) -> None:
        self.attempts = max(1, attempts)
        self.base = base
        self.cap = cap
        self.sleep = sleep
        # No new attempt starts once this many seconds passed without a byte kept: a
        # server that accepts and never answers costs one deadline, not five timeouts.
        self.deadline = deadline

    def backoff(self, failures: int) -> float:
        delay = min(self.cap, self.base * (2 ** (failures - 1)))
        return delay * (0.5 + random.random() / 2)

    def run(self, fn: Callable[[], T], *, progress_made: Callable[[], int] | None = None,
            give_up: Callable[[], bool] | None = None) -> T:
        failures = 0
        last_mark = progress_made() if progress_made else 0
        since = time.monotonic()
        while True:
            try:
                return fn()
            except TransferError as e:
                mark = progress_made() if progress_made else 0
                if mark > last_mark:
                    failures, last_mark, since = 0, mark, time.monotonic()
                failures += 1
                delay = self.backoff(failures)
                if e.retry_after is not None:
                    # Honoured in full up to the deadline; with no deadline, capped.
                    delay = max(delay, e.retry_after)
                    if self.deadline is None:
                        delay = min(delay, max(self.cap, 60.0))
                waited = time.monotonic() - since
                late = self.deadline is not None and waited + delay > self.deadline
                if (not e.retryable or failures >= self.attempts or late
                        or (give_up is not None and give_up())):
                    if late and e.retryable:
                        e.reason += self._late(e.retry_after, waited)
                    raise
                from ..events import retrying

                retrying(e.url, delay, failures + 1, self.attempts, e.reason)
                self.sleep(delay)


    def _late(self, asked: float | None, waited: float) -> str:
        """Why no further attempt: the server's own Retry-After, or no data for too long."""
        assert self.deadline is not None
        if asked is not None and waited + asked > self.deadline:
            return (f" (the server asks to retry after {asked:g} s, past DENSEZOO_DEADLINE "
                    f"({self.deadline:g} s): not waiting)")
        return f" (gave up: no data for {self.deadline:g} s; DENSEZOO_DEADLINE sets it)"


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date)."""
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


def content_range(resp) -> tuple[int, int | None] | None:
    """(first byte, total size or None) of a 206 response, or None if the header is bad."""
    m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
    if not m:
        return None
    return int(m.group(1)), (int(m.group(3)) if m.group(3) != "*" else None)


class NoAnswer(TransferError):
    """A request was sent and no complete answer (status line and headers) came within
    the read timeout: the server accepts and stays silent, or drips its headers.  Still
    retried within the deadline, but the host is not asked for other files in this run."""


class LengthConflict(TransferError):
    """Two lengths the server stated for the same file disagree (a Content-Length against
    a Content-Range, one Content-Range's complete-length against the size stated
    before): it cannot be told which is the truth, so that URL fails and its bytes are
    dropped.  A short Content-Length believed got a truncated file published and pinned."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url, f"the server contradicts itself on the file's size: {reason}",
                         retryable=False)


def length_conflict(resp, total: int | None) -> str | None:
    """Why the lengths a 206 states disagree with each other or with ``total`` (the size
    stated earlier for the same file), or None.  Content-Length is compared only for
    identity bodies (an encoded one counts encoded bytes)."""
    header = resp.headers.get("Content-Range", "")
    m = _CONTENT_RANGE.match(header)
    if resp.status_code != 206 or not m:
        return None
    first, last = int(m.group(1)), int(m.group(2))
    whole = int(m.group(3)) if m.group(3) != "*" else None
    length = to_int(resp.headers.get("Content-Length"))
    encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("identity", "")
    if last < first or (whole is not None and last >= whole):
        return f"Content-Range {header!r} is not a range of the file"
    if length is not None and not encoded and length != last - first + 1:
        return f"Content-Length {length} for Content-Range {header!r} ({last - first + 1} bytes)"
    if whole is not None and total is not None and whole != total:
        return f"Content-Range {header!r} says {whole} bytes, an earlier answer said {total}"
    return None


def to_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


UNREACHABLE = ("connection refused", "host name not found", "connection timed out",
               "network unreachable")


def network_error(url: str, e: BaseException, timeout: tuple[float, float]) -> TransferError:
    """The TransferError for a network exception.  A host that cannot be reached at all
    (refused, unknown name, connect timeout, no route) fails at once: retrying a
    refused connection five times with back-off cost ~6 s per artifact and told the
    user nothing.  A timeout names its value and the variable that sets it."""
    reason = describe(e)
    if reason == "read timed out":
        reason = f"read timed out (no data for {timeout[1]:g} s; DENSEZOO_TIMEOUT sets it)"
    elif reason == "connection timed out":
        reason = f"connection timed out (after {timeout[0]:g} s)"
    unreachable = reason.startswith(UNREACHABLE)
    return TransferError(url, reason, retryable=not unreachable, unreachable=unreachable)


def describe(e: BaseException) -> str:
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
        if ("Name or service not known" in text or "getaddrinfo" in text
                or "Temporary failure in name resolution" in text):
            return "host name not found"
        if "Network is unreachable" in text or "No route to host" in text:
            return "network unreachable"
        if "reset" in text.lower():
            return "connection reset"
        return "connection failed"
    text = str(e).split("\n")[0]
    text = re.sub(r"https?://\S+", "<url>", text)
    return f"connection broken ({type(e).__name__}: {text[:120]})"
