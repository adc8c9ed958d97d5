"""The compiled catalog: a manifest's YAML parsed once per content, kept as JSON.

Parsing the shipped YAML (and walking it for alias bombs) was most of a
command's start-up.  The compiled file keeps the *loaded data*, not artifacts,
and every load runs it through the same ``manifest.validate`` as the YAML path,
so a compiled file can never say more than a manifest could.  It lives in the
per-user cache (``Settings.compiled_dir``) and is used only when the current user
owns it and nobody else can write it: a shared store is not a trust root.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from pathlib import Path

from .disk import mine_alone, write_text_under
from .errors import DensezooError, ManifestError
from .manifest import Manifest, safe_load, has_secret_urls, read_manifest, validate
from .version import __version__

COMPILED_FORMAT = 3


def load_manifest(path: str | Path, compiled: Path | None = None) -> Manifest:
    """Read, parse and validate a manifest file.

    With ``compiled`` (a folder only this user writes), the YAML parse and the
    alias-bomb walk are done once per manifest *content*: the loaded data is kept as
    JSON under the hash of the file's bytes and densezoo's version, and validated
    again on every load.  A missing, corrupt, foreign or unsafe compiled file is
    ignored and rebuilt.
    """
    source = str(path)
    raw, text = read_manifest(path)
    if compiled is None:
        return validate(safe_load(text, source), source)
    key = hashlib.sha256(raw + b"\0" + __version__.encode()).hexdigest()
    cached = compiled / f"{key}.json"
    data = _read(cached, key)
    if data is not None:
        try:
            return validate(data, source)
        except ManifestError:
            pass                                # damaged: parse the YAML, rebuild
    data = safe_load(text, source)
    manifest = validate(data, source)
    if not has_secret_urls(manifest):           # the cache never holds a secret
        _write(cached, key, data)
    return manifest


def owned_privately(path: Path) -> bool:
    """A regular file (and its folder) owned by this user that nobody else can write: the
    only kind of cache file densezoo lets decide what an artifact is."""
    try:
        st = os.lstat(path)
        return stat.S_ISREG(st.st_mode) and mine_alone(st) and mine_alone(os.stat(path.parent))
    except OSError:
        return False


def _read(path: Path, key: str) -> object | None:
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not (stat.S_ISREG(st.st_mode) and mine_alone(st)
                    and mine_alone(os.stat(path.parent))):
                return None
            doc = json.loads(f.read())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != COMPILED_FORMAT or doc.get("key") != key:
        return None
    return {k: v for k, v in doc.items() if k not in ("format", "key")}


def _write(path: Path, key: str, data: object) -> None:
    """Best-effort: a read-only cache just means no speed-up.  ``data`` passed ``validate``,
    so it is a mapping of the manifest's top-level keys only.  Written through fds
    (``write_text_under``): a ``catalog/`` that is a link is never written through, and
    one that is not this user's alone is left to its owner (it would not be read anyway)."""
    try:
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(path.parent)
            if not (stat.S_ISDIR(st.st_mode) and mine_alone(st)):
                return
        text = json.dumps({**data, "format": COMPILED_FORMAT, "key": key})  # type: ignore[dict-item]
        write_text_under(path.parent.parent, path, text, private=True)
    except (OSError, TypeError, ValueError, DensezooError):
        return
