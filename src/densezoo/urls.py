"""URL helpers shared by every layer: store keys, credential redaction, loopback test."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit


def url_key(url: str) -> tuple[str, ...]:
    """Host plus path segments: the store key, so equal basenames never collide.

    Percent-escapes stay as they are (``%3A`` is a literal ``:`` in the S3 key and
    must not be decoded or encoded twice); empty segments from ``//`` are dropped.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.port:
        host = f"{host}_{parts.port}"
    segments = [s for s in parts.path.split("/") if s]
    return (host, *segments)


def redact(url: str) -> str:
    """A URL with any user:password removed, for messages and logs."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
