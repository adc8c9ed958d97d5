"""What the API returns: plain frozen records with a ``to_dict`` for ``--json``.

The CLI renders these and nothing else, so a library user gets exactly what a
script reading ``--json`` gets.  Statuses and actions are ``Label`` enums: they
compare equal to, print as and serialise as their plain strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DensezooError, Label
from .hashing import Digests
from .manifest import Artifact
from .urls import redact, redact_text


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


def artifact_dict(a: Artifact) -> dict[str, Any]:
    """An artifact as the manifest declares it, with credentials redacted from its URLs."""
    return {
        "name": a.name, "zoo": a.zoo, "kind": a.kind, "file_name": a.file_name,
        "url": redact(a.url), "mirrors": [redact(m) for m in a.mirrors],
        "legacy_urls": [redact(u) for u in a.legacy_urls], "md5": a.md5,
        "md5_prefix": a.md5_prefix, "sha256": a.sha256,
        "md5_url": redact(a.md5_url) if a.md5_url else None, "size": a.size,
        "description": a.description, "config": a.config, "metrics": dict(a.metrics),
        "license": a.license, "requires": list(a.requires), "aliases": list(a.aliases),
        "deprecated": a.deprecated, "note": a.note, "advisory": a.advisory,
        "manifest": a.source,
    }


# Which DensePose number each zoo's tables report, shown beside the AP column.
AP_METRIC = {"densepose-v1": "AP (GPS)", "detectron2": "AP (GPSm)"}


def percent(values: dict[str, Any]) -> dict[str, float]:
    """A task's accuracy numbers in percent: v1 published fractions (0.4748), detectron2's
    tables percent (65.3); a table whose every value is at most 1 is a fraction table."""
    nums = {k: float(v) for k, v in values.items() if isinstance(v, (int, float))}
    scale = 100.0 if nums and all(v <= 1.0 for v in nums.values()) else 1.0
    return {k: round(v * scale, 2) for k, v in nums.items()}


def headline_ap(art: Artifact) -> tuple[float | None, str | None]:
    """The one DensePose AP a browsing user compares, in percent, and which metric it is."""
    dp = art.metrics.get("densepose")
    if not isinstance(dp, dict):
        return None, None
    scaled = percent(dp)
    for key, label in (("GPSm", "AP (GPSm)"), ("AP", "AP (GPS)"), ("GPS", "AP (GPS)")):
        if key in scaled:
            return scaled[key], label
    return None, None


def inference_time(art: Artifact) -> float | None:
    speed = art.metrics.get("speed")
    value = speed.get("inference_s_per_im") if isinstance(speed, dict) else None
    return float(value) if value is not None else None


@dataclass(frozen=True)
class ArtifactInfo:
    """An artifact as the manifest declares it, plus what the local store knows of it."""

    artifact: Artifact
    strength: Strength
    path: Path | None              # the cached file, if present
    pin: dict[str, Any] | None
    requires: tuple[str, ...] = ()  # full dependency closure, dependencies first
    pin_conflicts: tuple[str, ...] = ()   # the pin disagrees with a published value
    mirrors: tuple[str, ...] = ()   # configured mirror prefixes (--mirror, DENSEZOO_MIRROR)

    @property
    def name(self) -> str:
        return self.artifact.name

    def sources(self) -> list[dict[str, str]]:
        """Every place the bytes may come from, in the order a fetch tries them, and what
        verifies bytes from each: the origin is the trust root; any other copy (a
        configured mirror, a manifest mirror, a Hub copy) is transport, verified only
        by a full published checksum -- with an md5 prefix alone it is a mirror copy."""
        from .urls import url_key

        a = self.artifact
        full = [k for k in ("sha256", "md5") if getattr(a, k)]
        size = " and size" if a.size is not None else ""
        if full:
            origin_check = copy_check = f"published {' and '.join(full)}{size}"
        elif a.md5_url:
            origin_check = "the md5 published next to it (.md5sum), then a first-use pin"
            copy_check = "the upstream .md5sum when upstream answers, else a mirror copy"
        elif a.md5_prefix:
            origin_check = f"md5 prefix {a.md5_prefix} (24 bits), then a first-use pin"
            copy_check = (f"md5 prefix {a.md5_prefix} only: a mirror copy (warned; --strict "
                          "refuses)")
        else:
            origin_check = "nothing published: a first-use pin"
            copy_check = "nothing published: a mirror copy (warned; --strict refuses)"
        key = "/".join(url_key(a.url))
        out = [{"role": "mirror", "url": redact(m.rstrip("/") + "/" + key),
                "verified_by": copy_check} for m in self.mirrors]
        out.append({"role": "origin", "url": redact(a.url), "verified_by": origin_check})
        for m in a.mirrors:
            hub = m.startswith("hf://")
            out.append({"role": "hub copy" if hub else "mirror", "url": redact(m),
                        "verified_by": copy_check + ("; the Hub's own sha256 and size are "
                                                     "checked before and after" if hub
                                                     else "")})
        out += [{"role": "legacy", "url": redact(u), "verified_by": "not tried (historical)"}
                for u in a.legacy_urls]
        return out

    def to_dict(self) -> dict[str, Any]:
        d = artifact_dict(self.artifact)
        pin = dict(self.pin) if self.pin else None
        if pin and pin.get("url"):
            pin["url"] = redact(pin["url"])
        ap, metric = headline_ap(self.artifact)
        d.update({"strength": self.strength, "cached": self.path is not None,
                  "path": str(self.path) if self.path else None, "pin": pin,
                  "requires_closure": list(self.requires), "ap": ap, "ap_metric": metric,
                  "pin_conflicts": list(self.pin_conflicts), "sources": self.sources(),
                  "inference_s_per_im": inference_time(self.artifact)})
        return d


# Kinds ``list`` leaves out unless asked: entries that only carry another entry's metrics.
HIDDEN_KINDS = ("metrics",)


class Listing(list):
    """``list``'s artifacts (a plain list of ``ArtifactInfo``), and how many entries of
    ``HIDDEN_KINDS`` were left out (``hidden``), for a footer that says so."""

    hidden: int = 0


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


@dataclass(frozen=True)
class PinInfo:
    name: str
    manifest: str
    md5: str | None
    sha256: str | None
    size: int | None
    pinned_at: str | None
    conflicts: tuple[str, ...] = ()    # "md5: published X, pinned Y" (published wins)
    written: tuple[str, ...] = ()      # fields ``write_pins`` filled in (never published ones)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["conflicts"], d["written"] = list(self.conflicts), list(self.written)
        return d


@dataclass(frozen=True)
class ExportResult:
    name: str
    path: Path
    mode: str                 # symlink | hardlink | copy | unchanged

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "mode": self.mode}


@dataclass(frozen=True)
class ImportResult:
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
