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
    COPIED = "copied"          # from a cache of another tool (the HF cache): no network


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
