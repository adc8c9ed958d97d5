"""The table of source types: which URL schemes densezoo fetches from, and who speaks each.

A plain ``http(s)`` URL is fetched as it is.  Any other scheme names a module
in the download wing that turns such a URL into a request (an ``s3://`` mirror
becomes a presigned GET) and explains its failures in its own terms.  Manifest
validation, ``DENSEZOO_MIRROR`` parsing and the fetcher all read this table, so
a new source is its module plus one line here.  Modules are named, not
imported: nothing is loaded until a URL of that scheme is fetched.

A source module provides ``check(url) -> bool`` (is the address well formed),
``connect(downloader) -> resolver`` (set up once per fetcher; its requests obey the
downloader's transport policy) where the resolver has
``request_url(url)``, and ``explain(url, TransferError) -> TransferError``.
``request_url`` answers the URL to GET, or an object with ``url`` and what the source
says of the file before its body (``size``, ``sha256``; the Hub's ``hf.Resolved``),
which the fetcher checks against the manifest and then against the bytes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Source:
    """One kind of address (``https://``, ``s3://``, ``hf://``...) and the module that
    turns it into a request; plain HTTP needs none."""

    scheme: str
    spelling: str                  # how an address is written, for messages
    module: str | None = None      # None: plain HTTP, fetched as it is
    origin: bool = False           # may be an entry's own ``url:`` (else mirrors only)

    def load(self) -> ModuleType | None:
        return importlib.import_module(self.module) if self.module else None


SOURCES: dict[str, Source] = {s.scheme: s for s in (
    Source("https", "https://HOST[:PORT]/PATH", origin=True),
    Source("http", "http://HOST[:PORT]/PATH", origin=True),
    Source("s3", "s3://BUCKET/PREFIX", "densezoo.download.s3"),
    Source("hf", "hf://[datasets/|spaces/]OWNER/NAME[@REVISION][/PATH]", "densezoo.download.hf"),
)}


def scheme_of(url: str) -> str:
    """The scheme, read without parsing the rest (a malformed host is not an error here)."""
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else ""


def source_for(url: str) -> Source | None:
    return SOURCES.get(scheme_of(url))


def mirror_spellings() -> str:
    """Every accepted mirror spelling, for one error message."""
    return " or ".join(s.spelling.replace("https://", "http(s)://") for s in SOURCES.values()
                       if s.scheme != "http")


def is_special(url: str) -> bool:
    """A URL that a source module must turn into a request (not plain HTTP)."""
    src = source_for(url)
    return src is not None and src.module is not None
