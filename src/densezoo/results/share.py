"""What ``config``, ``export``, ``import`` and ``pins`` return."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DensezooError, Label
from ..urls import redact
from . import Strength
from .fetch import FetchOutcome


@dataclass(frozen=True)
class PinInfo:
    """What was trusted on first use for an entry with nothing published, and where it
    disagrees with the manifest (published values win)."""

    name: str
    manifest: str
    md5: str | None
    sha256: str | None
    size: int | None
    pinned_at: str | None
    conflicts: tuple[str, ...] = ()    # "md5: published X, pinned Y" (published wins)
    written: tuple[str, ...] = ()      # fields ``write_pins`` filled in (never published ones)
    vouched_by: str | None = None      # the pin's voucher: "origin URL" or "copy SOURCE"
    skipped: str | None = None         # why ``write_pins`` writes none of it (a copy's word)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["conflicts"], d["written"] = list(self.conflicts), list(self.written)
        return d


@dataclass(frozen=True)
class ExportResult:
    """One verified file placed where another tool looks for it (iopath, a folder)."""

    name: str
    path: Path
    mode: str                 # symlink | hardlink | copy | unchanged

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "mode": self.mode}


@dataclass(frozen=True)
class ImportResult:
    """One bundle member admitted into the store -- or why it was not."""

    name: str
    path: Path
    action: str               # imported | already-cached | failed
    error: DensezooError | None = None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "state": self.action, "path": str(self.path),
                "warnings": list(self.warnings)}


class RefState(Label):
    """What ``densezoo config`` did with one reference -- exactly that, no more."""

    LISTED = "listed"                  # a manifest knows it; not checked (dry run)
    VERIFIED = "verified"              # bytes checked now, against ``strength``
    PINNED = "pinned"                  # nothing published: pinned on this first use
    NOT_LISTED = "not in any manifest"  # left as written, never downloaded by densezoo
    FAILED = "failed"                  # could not be fetched or verified (``error``)


@dataclass(frozen=True)
class ResolvedReference:
    """One reference of a config: what it is in the zoo and what was done with it."""

    key: str                       # e.g. MODEL.WEIGHTS
    value: str                     # as written in the config
    name: str | None               # the artifact, or None: in no manifest (not verified)
    url: str | None                # the artifact's URL (redacted)
    strength: Strength | None
    path: Path | None              # verified copy; a dry run: the cached copy, unchecked
    state: RefState = RefState.LISTED
    warnings: tuple[str, ...] = ()
    error: DensezooError | None = None
    size: int | None = None        # bytes, when the manifest or a pin knows it

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "value": redact(self.value),
                "url": self.url, "size": self.size, "strength": self.strength,
                "state": self.state, "path": str(self.path) if self.path else None,
                "verified": self.state in (RefState.VERIFIED, RefState.PINNED),
                "warnings": list(self.warnings)}


@dataclass(frozen=True)
class ConfigResult:
    """``densezoo config``: every reference, the rewritten config, and the fetch outcomes."""

    source: Path
    references: tuple[ResolvedReference, ...]
    text: str | None               # the config with local paths: only when ``complete``
    outcomes: tuple[FetchOutcome, ...] = ()
    runtime: tuple[str, ...] = ()  # artifacts the model's code downloads at run time
    trained: str | None = None     # --trained: the model MODEL.WEIGHTS was set to
    safetensors: str | None = None  # --safetensors: the converted file MODEL.WEIGHTS names

    @property
    def unverified(self) -> tuple[ResolvedReference, ...]:
        return tuple(r for r in self.references if r.state is RefState.NOT_LISTED)

    @property
    def failed(self) -> tuple[ResolvedReference, ...]:
        return tuple(r for r in self.references if r.state is RefState.FAILED)

    @property
    def complete(self) -> bool:
        """Every reference a manifest lists was fetched and checked now."""
        return all(r.state in (RefState.VERIFIED, RefState.PINNED, RefState.NOT_LISTED)
                   for r in self.references)

    @property
    def errors(self) -> tuple[FetchOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)

    def counts(self) -> dict[str, int]:
        return {str(s): sum(r.state is s for r in self.references) for s in RefState}

    def to_dict(self) -> dict[str, Any]:
        return {"config": str(self.source), "complete": self.complete, "counts": self.counts(),
                "references": [r.to_dict() for r in self.references],
                "fetched": [o.to_dict() for o in self.outcomes]}
