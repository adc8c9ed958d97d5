"""The settings file: values a user would otherwise repeat on every command.

``densezoo settings set KEY VALUE...`` writes them; every invocation reads them as the
lowest layer: a flag wins over an environment variable, which wins over this file, which
wins over the default (as ``pip config`` does).  The file is INI, like pip's: a
``[densezoo]`` section, one value per line for lists.  INI rather than YAML because
it is read on every command and ``configparser`` costs a tenth of importing PyYAML.

Where: ``DENSEZOO_SETTINGS`` if set, else the platform's user config dir
(platformdirs: ``$XDG_CONFIG_HOME/densezoo/settings.ini`` on Linux).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import UsageError

ENV_SETTINGS = "DENSEZOO_SETTINGS"
SECTION = "densezoo"


@dataclass(frozen=True)
class Key:
    """A key the file may hold: what type its value is (``path``, ``paths``, ``urls``,
    ``bool``, ``int``), the bounds of an ``int``, and the environment variable and flag
    that win over it.  Every global option with an environment variable has one."""

    name: str
    type: str
    env: str
    flag: str
    help: str
    low: int = 0
    high: int = 0

    @property
    def many(self) -> bool:
        return self.type in ("paths", "urls")


# The strength words a bar can name (``results.Strength``), strongest first.
STRENGTH_WORDS = ("verified", "cross-checked", "prefix", "origin-pinned", "copy-pinned",
                  "adopted")

KEYS = {k.name: k for k in (
    Key("cache_dir", "path", "DENSEZOO_CACHE_DIR", "--cache-dir", "the store's root folder"),
    Key("manifests", "paths", "DENSEZOO_MANIFEST", "--manifest",
        "extra manifests, loaded after the shipped ones (flags and the variable add to them)"),
    Key("mirrors", "urls", "DENSEZOO_MIRROR", "--mirror",
        "mirrors tried before upstream (a flag or the variable replaces them)"),
    Key("strict", "bool", "DENSEZOO_STRICT", "--strict",
        "refuse bytes weaker than `prefix` (true/false)"),
    Key("require", "strength", "DENSEZOO_REQUIRE", "--require",
        "refuse bytes weaker than this strength (verified, cross-checked, prefix, ...)"),
    Key("allow_http", "bool", "DENSEZOO_ALLOW_HTTP", "--allow-http",
        "allow plain-http URLs (and mirrors) beyond loopback (true/false)"),
    Key("offline", "bool", "DENSEZOO_OFFLINE", "--offline",
        "never touch the network (true/false)"),
    Key("no_progress", "bool", "DENSEZOO_NO_PROGRESS", "--no-progress",
        "never draw progress bars (true/false)"),
    Key("scan", "bool", "DENSEZOO_SCAN", "--no-scan",
        "scan .pkl downloads for disallowed imports (true/false)"),
    Key("jobs", "int", "DENSEZOO_JOBS", "--jobs",
        "artifacts `fetch` downloads at the same time (1-32)", 1, 32),
    Key("connections", "int", "DENSEZOO_CONNECTIONS", "--connections",
        "range connections per file, at most (1-16; unset: automatic)", 1, 16),
)}

TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def settings_path() -> Path:
    env = os.environ.get(ENV_SETTINGS)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("densezoo", appauthor=False)) / "settings.ini"


def _bad_file(path: Path, problem: str) -> UsageError:
    return UsageError(f"settings file {path}: {problem}",
                      hint="fix it, or reset a key with `densezoo settings unset KEY`")


def _parser():
    import configparser

    return configparser.ConfigParser(interpolation=None)


def read(path: Path | None = None) -> dict[str, Any]:
    """The file's values ({} when there is no file); a list key is a tuple of strings.
    A file that cannot be parsed, or holds a key densezoo does not know, is an error
    naming the file (a typo there would otherwise be silently ignored)."""
    path = path or settings_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise _bad_file(path, f"cannot be read ({e.strerror or e})") from None
    import configparser        # only when there is a file: every command runs this

    cp = _parser()
    try:
        cp.read_string(text, source=str(path))
    except configparser.Error as e:
        raise _bad_file(path, f"not a valid settings file ({str(e).splitlines()[0]})") from None
    if not cp.has_section(SECTION):
        return {}
    out: dict[str, Any] = {}
    for name, raw in cp.items(SECTION):
        key = KEYS.get(name)
        if key is None:
            raise _bad_file(path, f"unknown key {name!r} (known: {', '.join(KEYS)})")
        out[name] = parse(key, [v for v in raw.splitlines() if v.strip()], path)
    return out


def parse(key: Key, values: list[str], path: Path | None = None) -> Any:
    """A key's value from the words a user gave (``settings set``) or the file holds,
    checked: a bad value is refused before it is written, naming what was wrong."""
    where = f"settings file {path}: " if path else ""
    for v in values:
        if "\n" in v or "\r" in v or "\x00" in v:
            raise UsageError(f"{where}{key.name} values are one line each, without control "
                             "characters", hint=f"densezoo settings set {key.name} VALUE")
    values = [v.strip() for v in values]
    if key.type in ("path", "paths"):
        if not all(values):
            # '' would make whichever folder a command runs in the cache (or a manifest).
            raise UsageError(f"{where}{key.name}: an empty path is not a folder or a file",
                             hint=f"densezoo settings set {key.name} /some/path "
                                  f"(or `densezoo settings unset {key.name}`)")
        # Stored absolute: a relative path would mean another file in every folder.
        values = [os.path.abspath(os.path.expanduser(v)) for v in values]
    if key.many:
        return tuple(v for v in values if v)   # mirrors are checked where they are used
    if len(values) != 1:
        raise UsageError(f"{where}{key.name} takes one value, not {len(values)}",
                         hint=f"densezoo settings set {key.name} VALUE")
    value = values[0]
    if key.type == "bool":
        low = value.lower()
        if low not in TRUE_WORDS + FALSE_WORDS:
            raise UsageError(f"{where}{key.name} must be true or false, not {value!r}",
                             hint=f"densezoo settings set {key.name} true")
        return low in TRUE_WORDS
    if key.type == "int":
        if not value.isdigit() or not key.low <= int(value) <= key.high:
            raise UsageError(f"{where}{key.name} must be a whole number from {key.low} to "
                             f"{key.high}, not {value!r}",
                             hint=f"densezoo settings set {key.name} {key.low}")
        return int(value)
    if key.type == "strength":
        if value.lower() not in STRENGTH_WORDS:
            raise UsageError(f"{where}{key.name} must be a strength, not {value!r}",
                             hint="one of " + ", ".join(STRENGTH_WORDS))
        return value.lower()
    return value


def _write(path: Path, data: dict[str, Any]) -> None:
    from .disk import store_errors, write_text_atomic

    cp = _parser()
    cp.add_section(SECTION)
    for name, value in data.items():
        if isinstance(value, tuple):
            cp.set(SECTION, name, "\n" + "\n".join(value))
        elif isinstance(value, bool):
            cp.set(SECTION, name, "true" if value else "false")
        else:
            cp.set(SECTION, name, str(value))
    import io

    buf = io.StringIO()
    buf.write("# densezoo settings: `densezoo settings show` says where each value comes from\n"
              "# keys (a flag or an environment variable wins over this file):\n")
    for key in KEYS.values():
        buf.write(f"#   {key.name:<12} {key.help} [{key.env}]\n")
    cp.write(buf)
    with store_errors("write the settings file", path):
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0600: a mirror URL may carry a password or a token (doctor and show redact it).
        write_text_atomic(path, buf.getvalue(), mode=0o600)


def ensure_file() -> Path:
    """The settings file, created (0600, with the header and no keys) if missing: what
    ``settings edit`` opens."""
    path = settings_path()
    if not path.exists():
        _write(path, {})
    return path


def key_named(name: str) -> Key:
    key = KEYS.get(name.replace("-", "_"))
    if key is None:
        import difflib

        close = difflib.get_close_matches(name, list(KEYS), n=3)
        raise UsageError(f"no setting {name!r}" + (f"; did you mean: {', '.join(close)}"
                                                   if close else ""),
                         hint=f"settings: {', '.join(KEYS)}")
    return key


def set_value(name: str, values: list[str],
              check: Callable[[Key, Any], None] | None = None) -> tuple[Key, Any]:
    """Write ``name`` = ``values`` (checked first, also by ``check``; nothing is written
    for a bad value)."""
    key = key_named(name)
    if not values:
        raise UsageError(f"give a value for {key.name}",
                         hint=f"densezoo settings set {key.name} VALUE"
                              + ("..." if key.many else ""))
    value = parse(key, values)
    if check is not None:
        check(key, value)
    path = settings_path()
    data = read(path)
    data[key.name] = value
    _write(path, data)
    return key, value


def unset_value(name: str) -> Key:
    key = key_named(name)
    path = settings_path()
    data = read(path)
    if key.name in data:
        del data[key.name]
        _write(path, data)
    return key


@dataclass(frozen=True)
class Origin:
    """One setting's effective value and where it came from."""

    name: str
    value: Any
    source: str          # "flag --x" | "env VAR" | "file PATH" | "default"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with a mirror's password or ``?token=`` redacted (as doctor does)."""
        from .urls import redact_text

        v = ([redact_text(str(x)) for x in self.value] if isinstance(self.value, tuple)
             else redact_text(str(self.value)) if isinstance(self.value, (str, Path))
             else self.value)
        return {"name": self.name, "value": v, "source": self.source}

    @property
    def text(self) -> str:
        """The value as ``settings show``/``get`` print it: lists comma-separated, booleans
        as true/false, nothing as ``-``, secrets redacted."""
        v = self.to_dict()["value"]
        if isinstance(v, list):
            v = ", ".join(v)
        elif isinstance(v, bool):
            v = "true" if v else "false"
        return "-" if v in ("", None) else str(v)


def origins(flags: dict[str, Any], effective: Callable[[str], Any]) -> list[Origin]:
    """Where each key's value comes from: ``flags`` holds what the command line gave
    (None/empty: not given); ``effective(name)`` is the value the settings resolved to."""
    path = settings_path()
    data = read(path)
    out = []
    for key in KEYS.values():
        if flags.get(key.name):
            source = f"flag {key.flag}"
        elif os.environ.get(key.env, "").strip():
            source = f"env {key.env}"
        elif key.name in data:
            source = f"file {path}"
        else:
            source = "default"
        out.append(Origin(key.name, effective(key.name), source))
    return out
