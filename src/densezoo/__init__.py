"""densezoo: fetch, cache and verify DensePose model-zoo weights and data.

The package root stays cheap to import: the API is loaded on first use, so
``densezoo --help`` and ``densezoo path`` never import requests.
"""

from __future__ import annotations

from typing import Any

from .version import __version__

_API = {"Zoo", "fetch", "info", "verify", "path", "list_artifacts", "scan", "pin", "config",
        "cache_ls", "cache_du", "cache_rm", "cache_prune", "export", "mirror_build", "bundle",
        "import_bundle", "doctor", "adopt", "check", "identify", "manifest_add", "settings_show",
        "settings_set", "settings_unset", "settings_get", "cache_dir", "load_weights", "convert",
        "ledger_export"}
_RESULTS = {"ArtifactInfo", "FetchResult", "FetchOutcome", "ExtractResult", "VerifyReport",
            "VerifyEntry", "PinInfo", "ExportResult", "ImportResult", "FetchAction",
            "VerifyStatus", "Listing"}
_WARNINGS = {"DensezooWarning", "UnverifiedWarning", "PinConflictWarning"}
__all__ = sorted(_API | _RESULTS | _WARNINGS | {"list", "__version__", "errors", "Settings",
                                                "Strength"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in _WARNINGS:
        from . import events

        return getattr(events, name)
    if name in _RESULTS:
        from . import results

        return getattr(results, name)
    if name == "Settings":
        from .settings import Settings

        return Settings
    if name == "Strength":
        from .results import Strength

        return Strength
    if name == "list":
        from .api import list_artifacts

        return list_artifacts
    if name == "errors":
        from . import errors

        return errors
    raise AttributeError(f"module 'densezoo' has no attribute {name!r}")
