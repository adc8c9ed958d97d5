"""What the API returns: plain frozen records with a ``to_dict`` for ``--json``.

The CLI renders these and nothing else, so a library user gets exactly what a
script reading ``--json`` gets.  Statuses and actions are ``Label`` enums: they
compare equal to, print as and serialise as their plain strings.

This module holds what every fetch and verify needs; ``info`` what list and info
show, ``share`` what config, export, import and pins return.  Those load on first
use (a dataclass costs ~0.7 ms to create, and CI runs fetch and verify), and every
name is importable from here as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DensezooError, Label
from ..hashing import Digests
from ..urls import redact, redact_text


class Strength(Label):
    """How strongly an artifact's bytes are pinned down, strongest first."""

    FULL = "full"          # the manifest publishes md5 or sha256
    SIDECAR = "sidecar"    # an upstream .md5sum file publishes the md5
    PREFIX = "prefix"      # the manifest publishes an md5 prefix (detectron2's file names)
    PINNED = "pinned"      # nothing published; checked against the first download
    # At most an md5 prefix checked, on bytes that came from a mirror, S3 or a bundle:
    # not verified against an adversary (24 bits are forged in ~20 s; docs/security.md).
    MIRROR = "prefix-mirror"
    NONE = "none"          # nothing published and nothing pinned yet


class FetchAction(Label):
    CACHED = "cached"          # a verified copy was already in the store
    DOWNLOADED = "downloaded"
    RESUMED = "resumed"        # continued from bytes kept by an earlier attempt


class VerifyStatus(Label):
    OK = "ok"
    MISSING = "missing"        # not in the cache
    CORRUPT = "corrupt"        # checksum mismatch (moved aside)
    UNSAFE = "unsafe"          # a pickle importing code (moved aside; verify --scan)
    UNPINNED = "unpinned"      # nothing published and nothing pinned to check against


def error_record(error: DensezooError, name: str | None = None) -> dict[str, Any]:
    """An error as every ``--json`` envelope lists it under ``errors``: which artifact (if
    one), which kind of error, the exit code it maps to, the message and the hint, and the
    facts it carries (url, path, expected, actual; each URL tried under ``causes``)."""
    d: dict[str, Any] = {"name": name, "type": type(error).__name__,
                         "exit_code": error.exit_code, "message": redact_text(str(error)),
                         "hint": redact_text(error.hint) if error.hint else None}
    for key in ("url", "path", "expected", "actual"):
        value = getattr(error, key, None)
        if isinstance(value, (str, Path)):
            d[key] = redact_text(str(value))
    failures = getattr(error, "failures", None)
    if failures:
        d["causes"] = [{"url": redact(f.url), "kind": str(f.kind), "reason": f.reason}
                       for f in failures]
    return d


@dataclass(frozen=True)
class FetchResult:
    name: str
    path: Path
    action: FetchAction
    url: str | None                # redacted: the URL that served the bytes
    transferred: int
    digests: Digests | None
    strength: Strength
    pinned: bool = False           # True when this call recorded a trust-on-first-use pin
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.action, "path": str(self.path),
                "url": self.url, "transferred": self.transferred,
                **(self.digests.as_dict() if self.digests else
                   {"size": None, "md5": None, "sha256": None}),
                "strength": self.strength, "warnings": list(self.warnings)}


@dataclass(frozen=True)
class ExtractResult:
    name: str
    archive: Path
    path: Path                     # the folder the archive was unpacked into
    action: str                    # extracted | cached

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


@dataclass(frozen=True)
class VerifyEntry:
    name: str
    status: VerifyStatus
    path: str | None = None
    detail: str | None = None
    moved_to: str | None = None
    method: str | None = None      # full (re-hashed) | quick (stat memo)
    # missing because a verify or fetch moved it aside: {at, moved_to, status, reason}
    quarantined: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["state"] = d.pop("status")
        return {"name": d.pop("name"), "state": d.pop("state"), **d}


@dataclass(frozen=True)
class VerifyReport:
    entries: tuple[VerifyEntry, ...]
    notes: tuple[str, ...] = ()    # said once with -v (e.g. a read-only cache's memo)

    @property
    def ok(self) -> bool:
        return all(e.status is VerifyStatus.OK for e in self.entries)

    def count(self, status: str) -> int:
        return sum(e.status == status for e in self.entries)

    def with_note(self, note: str) -> "VerifyReport":
        return VerifyReport(self.entries, (*self.notes, note))

    def to_dict(self) -> dict[str, Any]:
        counts = {str(s): self.count(s) for s in VerifyStatus}
        return {"ok": self.ok, "counts": counts, "items": [e.to_dict() for e in self.entries],
                "notes": list(self.notes)}


_ELSEWHERE = {
    **dict.fromkeys(("ArtifactInfo", "Listing", "HIDDEN_KINDS", "AP_METRIC", "artifact_dict",
                     "percent", "headline_ap", "inference_time"), "info"),
    **dict.fromkeys(("PinInfo", "ExportResult", "ImportResult", "RefState",
                     "ResolvedReference", "ConfigResult"), "share"),
}


def __getattr__(name: str) -> Any:
    where = _ELSEWHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{where}"), name)
