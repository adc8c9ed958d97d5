"""The JSON Schema of every command's ``--json`` answer: one envelope, one record per item.

The schemas are data, written once here: ``docs/json.md`` prints them (a test keeps
the two equal) and the test suite validates every ``--json`` output it produces
against them, so a renamed key or a new dialect fails a test instead of a pipeline.
``python -m densezoo.cli.schema`` prints the reference page.
"""

from __future__ import annotations

import json
from typing import Any

S, I, N, B = "string", "integer", "number", "boolean"
NULL = "null"


def _t(*types: str) -> dict[str, Any]:
    return {"type": list(types) if len(types) > 1 else types[0]}


def record(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """An object with exactly these keys (``optional`` ones may be absent)."""
    props = {k: (v if isinstance(v, dict) else _t(*v) if isinstance(v, tuple) else _t(v))
             for k, v in {**required, **(optional or {})}.items()}
    return {"type": "object", "required": sorted(required), "properties": props,
            "additionalProperties": False}


STRINGS = {"type": "array", "items": _t(S)}
# The strength words (results.Strength), strongest first; null where no bytes are cached.
STRENGTH = {"enum": ["verified", "cross-checked", "prefix", "origin-pinned", "copy-pinned",
                     "adopted", "none", None]}
VOUCHER = {"type": "object", "required": ["kind", "source"], "properties": {
    "kind": {"enum": ["published", "origin", "copy", "adopted", "hub-claim", "structure"]},
    "source": _t(S), "size": _t(I), "md5": _t(S), "sha256": _t(S), "md5_prefix": _t(S),
    "at": _t(S), "detail": _t(S), "sidecar_md5": _t(S, NULL)}, "additionalProperties": False}
OBJECT = _t("object")
ANY_OBJECT = {"type": "object"}

ERROR = record({"name": (S, NULL), "type": S, "exit_code": I, "message": S, "hint": (S, NULL)},
               {"url": S, "path": S, "expected": S, "actual": S,
                "causes": {"type": "array", "items": record(
                    {"url": S, "kind": S, "reason": S})}})

ARTIFACT = record({
    "name": S, "zoo": S, "kind": S, "file_name": S, "url": S, "mirrors": STRINGS,
    "legacy_urls": STRINGS, "md5": (S, NULL), "md5_prefix": (S, NULL), "sha256": (S, NULL),
    "md5_url": (S, NULL), "size": (I, NULL), "description": (S, NULL), "config": (S, NULL),
    "metrics": ANY_OBJECT, "license": (S, NULL), "requires": STRINGS, "aliases": STRINGS,
    "deprecated": B, "note": (S, NULL), "advisory": (S, NULL), "manifest": (S, NULL),
    "derived_from": (S, NULL),
    "strength": STRENGTH, "checksum": {"enum": ["full", "sidecar", "prefix", "none"]},
    "vouchers": {"type": "array", "items": VOUCHER}, "shadows": (S, NULL),
    "cached": B, "path": (S, NULL), "pin": {"anyOf": [VOUCHER, _t(NULL)]},
    "requires_closure": STRINGS, "ap": (N, NULL), "ap_metric": (S, NULL),
    "pin_conflicts": STRINGS, "inference_s_per_im": (N, NULL),
    "sources": {"type": "array", "items": record({"role": S, "url": S, "verified_by": S})}})

_FETCHED = {"state": S, "path": (S, NULL), "url": (S, NULL), "transferred": I,
            "size": (I, NULL), "md5": (S, NULL), "sha256": (S, NULL), "strength": STRENGTH,
            "warnings": STRINGS, "connections": (I, NULL)}
FETCH = record({"name": S, "ok": B, "state": S, "path": (S, NULL), "strength": STRENGTH},
               {**_FETCHED, "extracted": record({"name": S, "archive": S, "path": S,
                                                 "state": S}), "placed": S})
PATH = record({"name": S, **_FETCHED})
VERIFY = record({"name": S, "state": S, "path": (S, NULL), "detail": (S, NULL),
                 "moved_to": (S, NULL), "method": (S, NULL), "quarantined": ("object", NULL),
                 "strength": STRENGTH})
SCAN = record({"name": S, "state": S, "path": S, "ok": B, "globals": STRINGS,
               "findings": {"type": "array", "items": record(
                   {"position": I, "opcode": S, "detail": S})}, "error": (S, NULL)})
PIN = record({"name": S, "manifest": S, "md5": (S, NULL), "sha256": (S, NULL),
              "size": (I, NULL), "pinned_at": (S, NULL), "conflicts": STRINGS,
              "written": STRINGS, "vouched_by": (S, NULL), "skipped": (S, NULL)})
REFERENCE = record({"name": (S, NULL), "key": S, "value": S, "url": (S, NULL),
                    "size": (I, NULL), "strength": STRENGTH, "state": S, "path": (S, NULL),
                    "verified": B, "warnings": STRINGS})
CHECK = record({"name": S, "ok": B, "detail": S},
               {"host": S, "latency_ms": (N, NULL), "status": (I, NULL)})
CACHE_ENTRY = record({"name": (S, NULL), "path": S, "size": I, "state": S,
                      "last_used": (S, NULL), "source": (S, NULL), "loaded": B})
REMOVAL = record({"path": S, "size": I, "reason": S})
EXPORT = record({"name": S, "path": S, "mode": S})
NAMED_STATE = record({"name": S, "state": S})
IMPORT = record({"name": S, "ok": B, "state": S, "path": S, "warnings": STRINGS})
ADOPT = record({"path": S, "state": S, "name": (S, NULL), "reason": (S, NULL),
                "mode": (S, NULL)})
STRUCTURE = record({"name": S, "path": S, "against": S, "config": (S, NULL),
                   "structure": {"enum": ["match", "mismatch", "unknown"]},
                   "model": (S, NULL), "tensors": I, "expected_tensors": I, "missing": I,
                   "unexpected": I, "shape_mismatch": I, "differences": STRINGS, "reason": S})
IDENTIFY = record({"path": S, "size": I, "what": {"enum": [
                       "artifact", "placeholder", "lfs-pointer", "html-page", "all-zero",
                       "unknown"]},
                   "names": STRINGS, "by": (S, NULL), "detail": S,
                   "structure": {"enum": ["match", "mismatch", "unknown", None]}})
SETTING = record({"name": S, "value": {}, "source": S})
ADDED = record({"name": S, "url": S, "file_name": S, "size": I, "md5": (S, NULL),
                "sha256": (S, NULL), "manifest": S, "pinned_from": (S, NULL), "state": S})
CONVERT = record({"name": (S, NULL), "source": S, "source_sha256": S, "path": S, "format": S,
                  "layout": S, "tensors": I, "nbytes": I, "stored": B, "reused": B})

LEDGER_FILE = record({"path": S, "name": S, "size": I, "md5": S, "sha256": S,
                      "vouchers": {"type": "array", "items": VOUCHER}})

_REMOVAL_SUMMARY = record({"total": I, "freed": I, "removed": B},
                          {"skipped": {"type": "array", "items": record({"path": S,
                                                                         "reason": S})}})

# command -> (item schema, summary schema); summary None: an empty object.
COMMANDS: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {
    "list": (ARTIFACT, record({"count": I, "hidden_metrics": I})),
    "info": (ARTIFACT, None),
    "fetch": (FETCH, record({"fetched": I, "cached": I, "failed": I})),
    "path": (PATH, None),
    "verify": (VERIFY, record({"counts": ANY_OBJECT, "strengths": ANY_OBJECT,
                               "notes": STRINGS})),
    "scan": (SCAN, record({"safe": I, "unsafe": I})),
    "check": (STRUCTURE, record({"structure": S})),
    "identify": (IDENTIFY, ANY_OBJECT),
    "pin": (PIN, record({"manifest_out": (S, NULL), "written": I, "conflicts": I})),
    "config": (REFERENCE, record({
        "config": S, "complete": B, "trained": (S, NULL), "safetensors": (S, NULL),
        "counts": ANY_OBJECT,
        "output": (S, NULL),
        "fetched": {"type": "array", "items": FETCH},
        "seeded": {"type": "array", "items": EXPORT},
        "runtime": {"type": "array", "items": record({
            "name": S, "url": S, "size": (I, NULL), "cached": B, "strength": STRENGTH})}})),
    "doctor": (CHECK, None),
    "cache ls": (CACHE_ENTRY, record({"count": I, "size": I})),
    "cache dir": (OBJECT, record({"path": S})),
    "cache du": (None, record({"root": S, "files": I, "file_bytes": I, "partial_bytes": I,
                               "extracted_bytes": I, "bad_bytes": I, "temp_bytes": I,
                               "total": I})),
    "cache rm": (REMOVAL, _REMOVAL_SUMMARY),
    "cache prune": (REMOVAL, _REMOVAL_SUMMARY),
    "export": (EXPORT, record({"copied_instead": I})),
    "mirror build": (NAMED_STATE, record({"manifest": S, "index": S})),
    "bundle": (NAMED_STATE, record({"path": S})),
    "import": (IMPORT, record({"manifest": S})),
    "adopt": (ADOPT, record({"looked_at": I, "adopted": I, "would_adopt": I,
                             "already_cached": I, "refused": I, "no_match": I,
                             "skipped": I, "places": STRINGS})),
    "manifest add": (ADDED, record({"manifest": S, "written": B})),
    "ledger export": (LEDGER_FILE, record({"ledger": S, "signature": (S, NULL), "files": I})),
    "settings show": (SETTING, record({"file": S})),
    "settings get": (SETTING, None),
    "settings set": (SETTING, record({"file": S})),
    "settings unset": (SETTING, record({"file": S})),
    "convert": (CONVERT, None),
}


def schema_for(command: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``densezoo COMMAND --json``."""
    item, summary = COMMANDS[command]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"densezoo {command} --json",
        "type": "object",
        "required": ["schema", "command", "ok", "exit_code", "items", "errors", "summary"],
        "properties": {
            "schema": {"const": 1},
            "command": {"const": command},
            "ok": _t(B),
            "exit_code": _t(I),
            "items": {"type": "array", "items": item} if item else {"type": "array",
                                                                    "maxItems": 0},
            "errors": {"type": "array", "items": ERROR},
            "summary": {"anyOf": [summary, {"type": "object", "maxProperties": 0}]}
            if summary else {"type": "object", "maxProperties": 0},
        },
        "additionalProperties": False,
    }


def markdown() -> str:
    """The schema part of docs/json.md: one fenced block per command."""
    parts = []
    for command in COMMANDS:
        parts.append(f"### `densezoo {command} --json`\n\n```json\n"
                     + json.dumps(schema_for(command), indent=2) + "\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover - prints the reference page's schemas
    print(markdown())
