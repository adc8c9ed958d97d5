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
    """A key the file may hold: whether it is a list, how a value is checked, and the
    environment variable and flag that win over it."""

    name: str
    many: bool
    env: str
    flag: str
    help: str


# The strength words a bar can name (``results.Strength``), strongest first.
STRENGTH_WORDS = ("verified", "cross-checked", "prefix", "origin-pinned", "copy-pinned",
                  "adopted")

KEYS = {k.name: k for k in (
    Key("cache_dir", False, "DENSEZOO_CACHE_DIR", "--cache-dir", "the store's root folder"),
    Key("manifests", True, "DENSEZOO_MANIFEST", "--manifest",
        "extra manifests, loaded after the shipped ones (flags and the variable add to them)"),
    Key("mirrors", True, "DENSEZOO_MIRROR", "--mirror",
        "mirrors tried before upstream (a flag or the variable replaces them)"),
    Key("strict", False, "DENSEZOO_STRICT", "--strict",
        "refuse bytes weaker than `prefix` (true/false)"),
    Key("require", False, "DENSEZOO_REQUIRE", "--require",
        "refuse bytes weaker than this strength (verified, cross-checked, prefix, ...)"),
)}


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
    """A key's value from the words a user gave (``settings set``) or the file holds."""
    values = [v.strip() for v in values]
    where = f"settings file {path}: " if path else ""
    if key.name in ("manifests", "cache_dir"):
        # Stored absolute: a relative path would mean another file in every folder.
        values = [os.path.abspath(os.path.expanduser(v)) for v in values]
    if key.many:
        return tuple(values)          # mirrors are checked where they are used (settings)
    if len(values) != 1:
        raise UsageError(f"{where}{key.name} takes one value, not {len(values)}",
                         hint=f"densezoo settings set {key.name} VALUE")
    if key.name == "strict":
        low = values[0].lower()
        if low not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise UsageError(f"{where}strict must be true or false, not {values[0]!r}",
                             hint="densezoo settings set strict true")
        return low in ("true", "1", "yes", "on")
    if key.name == "require":
        if values[0].lower() not in STRENGTH_WORDS:
            raise UsageError(f"{where}require must be a strength, not {values[0]!r}",
                             hint="one of " + ", ".join(STRENGTH_WORDS))
        return values[0].lower()
    return values[0]


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
    buf.write("# densezoo settings: `densezoo settings show` says where each value comes from\n")
    cp.write(buf)
    with store_errors("write the settings file", path):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, buf.getvalue())


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
        v = ([str(x) for x in self.value] if isinstance(self.value, tuple)
             else str(self.value) if isinstance(self.value, Path) else self.value)
        return {"name": self.name, "value": v, "source": self.source}


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
