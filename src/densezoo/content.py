"""Recognising bytes that are certainly not the artifact (error pages, LFS pointers).

The downloader looks at the first bytes of every response so a 200 OK error
page is refused before it is written out; ``intake`` uses the same rules.
"""

from __future__ import annotations


def sniff_wrong_content(first: bytes, file_name: str) -> str | None:
    """Recognise payloads that are certainly not the artifact (the 31-byte LFS placeholder trap)."""
    head = first[:512].lstrip().lower()
    if head.startswith(b"version https://git-lfs.github.com/spec/"):
        return "the server sent a git-lfs pointer, not the file"
    if not file_name.lower().endswith((".html", ".htm", ".xml")) and (
            head.startswith(b"<!doctype html") or head.startswith(b"<html")):
        return "the server sent an HTML page, not the file"
    return None
