"""What the API returns: plain frozen records with a ``to_dict`` for ``--json``.

The CLI renders these and nothing else, so a library user gets exactly what a
script reading ``--json`` gets.  Statuses and actions are ``Label`` enums: they
compare equal to, print as and serialise as their plain strings.

This module holds the labels and the error record; ``fetch``, ``verify``, ``info``
(list and info) and ``share`` (config, export, import, pins) hold each operation's
records, loaded on first use: creating a dataclass costs ~0.7 ms, and a command
that runs in ~0.1 s should pay only for its own.  Every name is importable from here
as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DensezooError, Label
from ..urls import redact, redact_text


class Strength(Label):
    """Who vouched for a stored file's bytes, strongest first (docs/cache.md).  Derived
    from the trust record (``store.record``) every time, never stored, so the word can
    never say more than the record."""

    VERIFIED = "verified"            # a published full checksum (or the upstream .md5sum) matched
    CROSS_CHECKED = "cross-checked"  # two independent vouchers agree on a full md5 or sha256
    PREFIX = "prefix"                # only the published md5 prefix; bytes from the origin
    ORIGIN_PINNED = "origin-pinned"  # nothing published; pinned from the origin on first use
    COPY_PINNED = "copy-pinned"      # only a mirror, S3, Hub copy, bundle or co-tenant vouched
    ADOPTED = "adopted"              # found on disk; matched a prefix (and structure) or nothing
    NONE = "none"                    # cached, and nothing vouches for it yet

    @property
    def rank(self) -> int:
        return len(_ORDER) - _ORDER.index(self)

    def meets(self, bar: "Strength | None") -> bool:
        return bar is None or self.rank >= bar.rank

    @classmethod
    def parse(cls, word: str) -> "Strength":
        try:
            return cls(word.strip().lower())
        except ValueError:
            raise ValueError(f"unknown strength {word!r}; one of "
                             + ", ".join(s.value for s in _ORDER[:-1])) from None


_ORDER = tuple(Strength)


def required_strength(strict: bool, require: str | None) -> Strength | None:
    """The weakest strength fetch, path and verify hand out: ``--require``'s word, and at
    least ``prefix`` under ``--strict``; None: any (with a warning when weak)."""
    bars = [Strength.parse(require)] if require else []
    if strict:
        bars.append(Strength.PREFIX)
    return max(bars, key=lambda s: s.rank) if bars else None
WEAK = (Strength.ORIGIN_PINNED, Strength.COPY_PINNED, Strength.ADOPTED, Strength.NONE)


class Checksum(Label):
    """What a manifest entry publishes about its bytes (``list``'s checksum column)."""

    FULL = "full"          # md5 or sha256
    SIDECAR = "sidecar"    # an upstream .md5sum file publishes the md5
    PREFIX = "prefix"      # an md5 prefix (detectron2's file names: 24 bits)
    NONE = "none"


class FetchAction(Label):
    CACHED = "cached"          # a verified copy was already in the store
    DOWNLOADED = "downloaded"
    RESUMED = "resumed"        # continued from bytes kept by an earlier attempt
    COPIED = "copied"          # from a cache of another tool (the HF cache): no network


class VerifyStatus(Label):
    OK = "ok"
    MISSING = "missing"        # not in the cache
    CORRUPT = "corrupt"        # checksum mismatch (moved aside)
    UNSAFE = "unsafe"          # a pickle importing code (moved aside; verify --scan)
    UNPINNED = "unpinned"      # nothing published and nothing pinned to check against
    WEAK = "weak"              # right bytes, vouched for below --strict / --require's bar


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


_ELSEWHERE = {
    **dict.fromkeys(("FetchResult", "ExtractResult", "FetchOutcome"), "fetch"),
    **dict.fromkeys(("VerifyEntry", "VerifyReport"), "verify"),
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
