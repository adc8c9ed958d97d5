"""What ``fetch`` returns: per artifact, the file (or unpacked folder) and how it got there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DensezooError
from ..hashing import Digests
from . import FetchAction, Strength


@dataclass(frozen=True)
class FetchResult:
    """One artifact fetched: the verified file, whether it was downloaded, resumed or
    already cached, and how strongly its bytes are pinned down."""

    name: str
    path: Path
    action: FetchAction
    url: str | None                # redacted: the URL that served the bytes
    transferred: int
    digests: Digests | None
    strength: Strength
    pinned: bool = False           # True when this call recorded a trust-on-first-use pin
    warnings: tuple[str, ...] = ()
    connections: int | None = None  # the most Range connections at once (None: cached)
    entered: bool = False          # the bytes entered the store (or this user's record) now

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.action, "path": str(self.path),
                "url": self.url, "transferred": self.transferred,
                **(self.digests.as_dict() if self.digests else
                   {"size": None, "md5": None, "sha256": None}),
                "strength": self.strength, "warnings": list(self.warnings),
                "connections": self.connections}


@dataclass(frozen=True)
class ExtractResult:
    """A tarball unpacked once (``fetch --extract``): the folder to hand to the user."""

    name: str
    archive: Path
    path: Path                     # the folder the archive was unpacked into
    action: str                    # extracted | cached | repaired
    changes: tuple[str, ...] = ()  # repaired: what had changed in the folder since unpacking

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "archive": str(self.archive), "path": str(self.path),
                "state": self.action}


@dataclass(frozen=True)
class FetchOutcome:
    """One name of a multi-name fetch: its result, unpacked folder, or the error that stopped it.

    A fetch can succeed and its extraction fail; then ``result`` and ``error`` are both set.
    """

    name: str
    result: FetchResult | None = None
    error: DensezooError | None = None
    extracted: ExtractResult | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def path(self) -> Path | None:
        """What to hand to the user: the unpacked folder if there is one, else the file."""
        if self.error is not None:
            return None
        if self.extracted is not None:
            return self.extracted.path
        return self.result.path if self.result else None

    def to_dict(self) -> dict[str, Any]:
        """The ``items`` record; a failure is ``state: failed`` here and its error is in
        the envelope's ``errors`` (``error_record``), under the same name."""
        d: dict[str, Any] = {"name": self.name, "ok": self.ok, "state": "failed",
                             "path": None, "strength": None}
        if self.result:
            d.update(self.result.to_dict())
        if self.extracted:
            d["extracted"] = self.extracted.to_dict()
        return d
