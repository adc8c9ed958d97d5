"""Every setting in one frozen object, resolved once from arguments and the environment.

Environment variables are read when ``Settings.resolve`` is called, never at
import, so a test (or a long-lived notebook) that changes ``DENSEZOO_CACHE_DIR``
sees the change on the next ``Zoo``.  Nothing mutates a Settings after it is
built: a caller that wants another value asks for ``settings.replace(...)``
and a new ``Zoo``, so no component can see half of a change.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

from .errors import UsageError
from .sources import mirror_spellings, source_for
from .urls import valid_host
from .user_settings import FALSE_WORDS, STRENGTH_WORDS, TRUE_WORDS


ENV_CACHE_DIR = "DENSEZOO_CACHE_DIR"
ENV_MANIFEST = "DENSEZOO_MANIFEST"
ENV_MIRROR = "DENSEZOO_MIRROR"
ENV_STRICT = "DENSEZOO_STRICT"
ENV_REQUIRE = "DENSEZOO_REQUIRE"
ENV_OFFLINE = "DENSEZOO_OFFLINE"
ENV_DEBUG = "DENSEZOO_DEBUG"
ENV_TIMEOUT = "DENSEZOO_TIMEOUT"
ENV_DEADLINE = "DENSEZOO_DEADLINE"
ENV_MARKER_WAIT = "DENSEZOO_MARKER_WAIT"
ENV_ALLOW_HTTP = "DENSEZOO_ALLOW_HTTP"
ENV_NO_MARKERS = "DENSEZOO_NO_MARKERS"
ENV_SCAN = "DENSEZOO_SCAN"
ENV_MIN_RATE = "DENSEZOO_MIN_RATE"
ENV_MAX_UNPACK_BYTES = "DENSEZOO_MAX_UNPACK_BYTES"
ENV_MAX_UNPACK_MEMBERS = "DENSEZOO_MAX_UNPACK_MEMBERS"
ENV_JOBS = "DENSEZOO_JOBS"
ENV_CONNECTIONS = "DENSEZOO_CONNECTIONS"
ENV_NO_PROGRESS = "DENSEZOO_NO_PROGRESS"

_TRUE, _FALSE = set(TRUE_WORDS), set(FALSE_WORDS)   # one vocabulary with the settings file


def env_flag(name: str) -> bool:
    """True for 1/true/yes/on in any case; everything else (or unset) is False."""
    return os.environ.get(name, "").strip().lower() in _TRUE


def debug() -> bool:
    """DENSEZOO_DEBUG: show tracebacks (read by the CLI's error handler, not by Settings)."""
    return env_flag(ENV_DEBUG)


def default_cache_dir(from_file: str | None = None) -> Path:
    """DENSEZOO_CACHE_DIR, else the settings file's, else the platform cache dir.

    platformdirs already knows XDG_CACHE_HOME, ~/Library/Caches and AppData;
    hand-writing those rules is how tools end up ignoring XDG.
    """
    env = os.environ.get(ENV_CACHE_DIR) or from_file
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("densezoo", appauthor=False))


def _env_manifests() -> tuple[Path, ...]:
    """DENSEZOO_MANIFEST: one or more paths separated by the OS path separator."""
    raw = os.environ.get(ENV_MANIFEST, "")
    return tuple(Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip())


def _bad_setting(name: str, raw: str, accepted: str):
    if name.startswith("--"):
        return UsageError(f"{name} {raw!r} is not valid: expected {accepted}",
                          hint=f"fix the {name} value")
    if name.startswith("settings "):
        key = name.split()[1]
        return UsageError(f"{key} {raw!r} in the settings file is not valid: expected "
                          f"{accepted}", hint=f"densezoo settings set {key} ... (or unset it)")
    return UsageError(f"{name}={raw!r} is not valid: expected {accepted}",
                      hint=f"fix or unset {name}")


def check_mirror(url: str, name: str = ENV_MIRROR) -> str:
    """A mirror prefix: an http(s) URL with a real host (and a real port, if any), or an
    S3 bucket ``s3://BUCKET/PREFIX``."""
    accepted = mirror_spellings() + (", comma-separated" if name == ENV_MIRROR else "")
    src = source_for(url)
    if src is not None and src.module is not None:      # s3://... and other source types
        if not src.load().check(url):
            raise _bad_setting(name, url, accepted)
        return url
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise _bad_setting(name, url, accepted) from None
    if parts.scheme not in ("http", "https") or not valid_host(parts.hostname or ""):
        raise _bad_setting(name, url, accepted)
    return url


def check_setting(key: Any, value: Any, *, allow_http: bool = False) -> None:
    """A settings-file value, checked as it would be when used (``settings set``): a
    plain-http mirror beyond loopback is refused unless http is allowed (``allow_http``
    given, or set in the environment or the file), as every fetch would refuse it."""
    if key.name == "mirrors":
        for m in value:
            check_mirror(m, "settings mirrors")
            if urlsplit(m).scheme == "http" and not allow_http and not _http_allowed():
                from .urls import is_loopback

                if not is_loopback(m):
                    raise UsageError(f"mirror {m!r} is plain http: every fetch would refuse it",
                                     hint="use https, or first `densezoo settings set "
                                          "allow_http true` (or export DENSEZOO_ALLOW_HTTP=1)")


def _http_allowed() -> bool:
    from . import user_settings

    if os.environ.get(ENV_ALLOW_HTTP, "").strip():
        return env_flag(ENV_ALLOW_HTTP)
    return bool(user_settings.read().get("allow_http"))


def _env_mirrors(from_file: tuple[str, ...] = ()) -> tuple[str, ...]:
    """DENSEZOO_MIRROR: one or more URL prefixes (comma-separated), tried before upstream;
    unset: the settings file's."""
    raw = os.environ.get(ENV_MIRROR, "")
    if not raw.strip():
        return tuple(check_mirror(m, "settings mirrors") for m in from_file)
    return tuple(check_mirror(m.strip()) for m in raw.split(",") if m.strip())


def _env_number(name: str, kind: type, low: float, high: float, accepted: str):
    """A numeric variable within [low, high], or None when unset; anything else (text,
    nan, inf, 1e309, out of range) is a usage error naming the variable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not (low <= value <= high):      # nan compares false: refused
        raise _bad_setting(name, raw, accepted)
    return value


def _env_timeout() -> tuple[float, float]:
    """(connect, read) seconds; DENSEZOO_TIMEOUT sets the read timeout."""
    read = _env_number(ENV_TIMEOUT, float, 0.1, 86400, "a number of seconds from 0.1 to 86400")
    read = 60.0 if read is None else read
    return (min(10.0, read), read)


def _env_int(name: str, minimum: int) -> int | None:
    return _env_number(name, int, minimum, sys.maxsize, f"a whole number >= {minimum}")


@dataclass(frozen=True)
class Settings:
    """What a ``Zoo`` does; see ``resolve`` for where each value comes from."""

    cache_dir: Path
    manifests: tuple[Path, ...] = ()          # extra manifests, after the shipped ones
    default_manifests: bool = True            # load the manifests shipped in the wheel
    strict: bool = False                      # refuse bytes weaker than `prefix` (--strict)
    require: str | None = None                # refuse bytes weaker than this strength word
    offline: bool = False                     # never touch the network
    allow_http: bool = False                  # plain http beyond loopback
    mirrors: tuple[str, ...] = ()             # URL prefixes tried before upstream
    markers: bool = True                      # wait for another process fetching the same file
    scan: bool = True                         # scan .pkl files before publishing them
    space_check: bool = True                  # refuse a download that cannot fit
    connections: int | None = None            # per file: None = automatic, 1 = never segment
    jobs: int = 4                             # artifacts the CLI's `fetch` gets at once
    no_progress: bool = False                 # the CLI draws no progress bars
    attempts: int = 5                         # tries per URL before the next one
    timeout: tuple[float, float] = (10.0, 60.0)
    min_rate: float = 1024.0                  # bytes/s over a read timeout, else next URL
    max_unpack_bytes: int | None = None       # an archive's unpacked size cap (None: 100x)
    max_unpack_members: int = 100_000         # an archive's member count cap
    deadline: float = 60.0                    # no new attempt on a URL after this long
                                              # without a byte kept (DENSEZOO_DEADLINE)
    marker_wait: float = 300.0                # wait this long for another process's
                                              # download, then fetch anyway

    @classmethod
    def resolve(cls, *, manifests: Sequence[str | os.PathLike[str]] = (),
                cache_dir: str | os.PathLike[str] | None = None,
                mirrors: Sequence[str] | None = None, **explicit: Any) -> "Settings":
        """Explicit arguments win; ``None`` falls back to the environment, then the default.

        Manifests add up: the ones given here, then DENSEZOO_MANIFEST's, then the settings
        file's.  For the other keys the settings file (``user_settings``) is the layer
        between the environment and the default.
        """
        from . import user_settings

        file = user_settings.read()

        def flag(name: str, var: str) -> bool | None:
            """The variable when it is set (1/true/yes/on), else the file's value."""
            return env_flag(var) if os.environ.get(var, "").strip() else file.get(name)

        env: dict[str, Any] = {
            "strict": flag("strict", ENV_STRICT),
            "require": os.environ.get(ENV_REQUIRE, "").strip() or file.get("require"),
            "offline": flag("offline", ENV_OFFLINE),
            "allow_http": flag("allow_http", ENV_ALLOW_HTTP),
            "no_progress": flag("no_progress", ENV_NO_PROGRESS),
            "markers": not env_flag(ENV_NO_MARKERS),
            # DENSEZOO_SCAN is on unless it says 0/false/no/off
            "scan": (os.environ[ENV_SCAN].strip().lower() not in _FALSE
                     if os.environ.get(ENV_SCAN, "").strip() else file.get("scan")),
            "jobs": _env_number(ENV_JOBS, int, 1, 32, "a whole number from 1 to 32")
            or file.get("jobs"),
            "connections": _env_number(ENV_CONNECTIONS, int, 1, 16,
                                       "a whole number from 1 to 16") or file.get("connections"),
            "timeout": _env_timeout(),
            "min_rate": _env_int(ENV_MIN_RATE, 0),
            "max_unpack_bytes": _env_int(ENV_MAX_UNPACK_BYTES, 1),
            "max_unpack_members": _env_int(ENV_MAX_UNPACK_MEMBERS, 1),
            "deadline": _env_number(ENV_DEADLINE, float, 1, 86400,
                                    "a number of seconds from 1 to 86400"),
            "marker_wait": _env_number(ENV_MARKER_WAIT, float, 0, 86400,
                                       "a number of seconds from 0 to 86400"),
        }
        unknown = set(explicit) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values = {k: v for k, v in explicit.items() if v is not None}
        for key, value in env.items():
            if value is not None:
                values.setdefault(key, value)
        return cls(
            cache_dir=(Path(cache_dir).expanduser() if cache_dir
                       else default_cache_dir(file.get("cache_dir"))),
            manifests=(tuple(Path(p) for p in manifests) + _env_manifests()
                       + tuple(Path(p).expanduser() for p in file.get("manifests", ()))),
            mirrors=(tuple(check_mirror(m, "--mirror") for m in mirrors) if mirrors is not None
                     else _env_mirrors(file.get("mirrors", ()))),
            **values)

    def __post_init__(self) -> None:
        if self.require is not None and self.require.strip().lower() not in STRENGTH_WORDS:
            raise UsageError(f"--require / {ENV_REQUIRE}: unknown strength {self.require!r}",
                             hint="one of " + ", ".join(STRENGTH_WORDS))

    def replace(self, **changes: Any) -> "Settings":
        """A copy with ``changes`` applied (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
