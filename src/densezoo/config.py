"""Settings from the environment, read when asked for, never at import.

Reading env vars lazily means a test (or a long-lived notebook) that changes
``DENSEZOO_CACHE_DIR`` sees the change on the next call, and importing the
package has no side effects.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE_DIR = "DENSEZOO_CACHE_DIR"
ENV_MANIFEST = "DENSEZOO_MANIFEST"
ENV_MIRROR = "DENSEZOO_MIRROR"
ENV_STRICT = "DENSEZOO_STRICT"
ENV_OFFLINE = "DENSEZOO_OFFLINE"
ENV_DEBUG = "DENSEZOO_DEBUG"
ENV_TIMEOUT = "DENSEZOO_TIMEOUT"
ENV_ALLOW_HTTP = "DENSEZOO_ALLOW_HTTP"
ENV_NO_MARKERS = "DENSEZOO_NO_MARKERS"
ENV_SCAN = "DENSEZOO_SCAN"

_TRUE = {"1", "true", "yes", "on"}


def env_flag(name: str) -> bool:
    """True for 1/true/yes/on in any case; everything else (or unset) is False."""
    return os.environ.get(name, "").strip().lower() in _TRUE


def cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The store root: explicit argument, then DENSEZOO_CACHE_DIR, then the platform cache dir.

    platformdirs already knows XDG_CACHE_HOME, ~/Library/Caches and AppData;
    hand-writing those rules is how tools end up ignoring XDG.
    """
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("densezoo", appauthor=False))


def manifest_paths_from_env() -> list[Path]:
    """DENSEZOO_MANIFEST: one or more paths separated by the OS path separator."""
    raw = os.environ.get(ENV_MANIFEST, "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def mirrors() -> list[str]:
    """DENSEZOO_MIRROR: one or more URL prefixes (comma-separated), tried before upstream."""
    raw = os.environ.get(ENV_MIRROR, "")
    return [m.strip() for m in raw.split(",") if m.strip()]


def strict() -> bool:
    return env_flag(ENV_STRICT)


def offline() -> bool:
    return env_flag(ENV_OFFLINE)


def debug() -> bool:
    return env_flag(ENV_DEBUG)


def scan() -> bool:
    """Scan downloaded .pkl files for disallowed imports (DENSEZOO_SCAN=0 turns it off)."""
    return os.environ.get(ENV_SCAN, "1").strip().lower() not in ("0", "false", "no", "off")


def markers() -> bool:
    """Whether to wait for another process already fetching the same file (saves bandwidth)."""
    return not env_flag(ENV_NO_MARKERS)


def allow_http() -> bool:
    return env_flag(ENV_ALLOW_HTTP)


def timeout() -> tuple[float, float]:
    """(connect, read) timeouts in seconds; DENSEZOO_TIMEOUT sets the read timeout."""
    raw = os.environ.get(ENV_TIMEOUT)
    read = 60.0
    if raw:
        try:
            read = max(0.1, float(raw))
        except ValueError:
            pass
    return (min(10.0, read), read)
