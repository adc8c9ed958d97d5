"""Remembered URL health: try hosts that worked recently first, skip ones that just failed.

aria2c's ``--uri-selector=feedback`` keeps a server-stat file for the same reason.
Records expire (HEALTH_TTL), so a mirror that was down an hour ago gets another
chance; and since every file is verified, the order only affects speed, never
what is accepted.  The file is advisory: a lost update costs one slow try.

A host whose last download was split over several connections (a per-connection cap)
and never pushed back also keeps that count and the rate one connection had: the next
download from it splits at once (``segmented.start_count``) instead of probing.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

from ..disk import read_json, write_json_atomic

HEALTH_TTL = 15 * 60


def host_of(url: str) -> str:
    """``host:port`` (default ports filled in): the unit health and dead-host memory use."""
    p = urlsplit(url)
    return f"{p.hostname}:{p.port or (443 if p.scheme == 'https' else 80)}"


class Health:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict:
        data = read_json(self.path) or {}
        now = time.time()
        return {h: r for h, r in data.items()
                if isinstance(r, dict) and now - r.get("at", 0) < HEALTH_TTL}

    def record(self, url: str, ok: bool, bytes_per_s: float | None = None,
               ranges: bool | None = None,
               split: tuple[int, float] | bool | None = None) -> None:
        """``ranges`` False: the host misanswered a Range request (kept for the TTL, so a
        later run goes to one connection at once).  ``split``: (connections, bytes/s per
        connection) an automatic split reached without pushback; False: a split was pushed
        back, forget it; None (a small file, a failure): the old one stays."""
        data = self._load()
        old = data.get(host_of(url), {})
        no_ranges = ranges is False or (ranges is None and old.get("ranges") is False)
        kept = split if split else (None if split is False else old.get("split"))
        data[host_of(url)] = {"ok": ok, "at": time.time(), "rate": bytes_per_s,
                            **({"ranges": False} if no_ranges else {}),
                            **({"split": list(kept)} if kept and not no_ranges else {})}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.path, data)
        except OSError:
            pass          # advisory only: a read-only cache still downloads

    def learned_split(self, url: str) -> tuple[int, float] | None:
        """(connections, bytes/s per connection) the host's last split reached, or None
        (none recorded, expired, or not two positive numbers: the file is advisory)."""
        got = self._load().get(host_of(url), {}).get("split")
        try:
            n, rate = int(got[0]), float(got[1])
        except (TypeError, ValueError, IndexError, KeyError):
            return None
        return (n, rate) if n > 1 and rate > 0 else None

    def ranges_refused(self, url: str) -> bool:
        return self._load().get(host_of(url), {}).get("ranges") is False

    def order(self, urls: list[str]) -> list[str]:
        """Recently failed hosts last; otherwise the configured order (mirrors first)."""
        data = self._load()

        def rank(item: tuple[int, str]) -> tuple[int, int]:
            i, url = item
            rec = data.get(host_of(url))
            return (1 if rec and not rec.get("ok") else 0, i)
        return [u for _, u in sorted(enumerate(urls), key=rank)]
