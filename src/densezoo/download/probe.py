"""Is a host answering?  One ``HEAD`` per host, short timeout, all hosts at once.

``doctor`` used to say "mode online" without contacting anything; an operator wants
to know which of the origins and mirrors answer from this machine, and how fast,
before a 200-node job finds out.  Any HTTP answer (even 403 or 404) means the host is
reachable; the status is reported beside it, since a 403 from an origin is exactly
what "Access Denied" looks like.  Redirects are not followed: the first answer says
enough, and a probe must not wander to other hosts.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .health import host_of


@dataclass(frozen=True)
class Probe:
    url: str                   # what was asked (credentials already redacted by the caller)
    host: str
    status: int | None         # the HTTP status, None when nothing answered
    latency_ms: float | None   # time to the response headers
    error: str | None = None   # why nothing answered

    @property
    def reachable(self) -> bool:
        return self.status is not None


def probe(urls: list[str], *, timeout: float = 3.0, jobs: int = 8) -> list[Probe]:
    """HEAD each URL (the caller picks one per host) in parallel; never raises."""
    from .http import new_session
    from .wire import describe

    session = new_session()

    def one(url: str) -> Probe:
        start = time.perf_counter()
        try:
            r = session.head(url, timeout=(timeout, timeout), allow_redirects=False)
            r.close()
            return Probe(url, host_of(url), r.status_code,
                         round((time.perf_counter() - start) * 1000, 1))
        except Exception as e:  # noqa: BLE001 - a probe reports, it never fails the caller
            return Probe(url, host_of(url), None, None, describe(e))

    if not urls:
        return []
    with ThreadPoolExecutor(max_workers=min(jobs, len(urls))) as pool:
        return list(pool.map(one, urls))
