"""YAML manifest -> validated, frozen ``Artifact`` records.

A manifest is data from outside (a user's file, a mirror's file), so it is
loaded with a safe loader and every field is checked before anything trusts it.
Each problem is reported once, naming the file, the entry and what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from .errors import ManifestError
from .hashing import is_hex
from .sources import SOURCES
from .urls import RESERVED_SUFFIXES, has_secret, url_key, valid_host

SCHEMA_VERSION = 1
TOP_KEYS = {"schema", "zoo", "description", "artifacts"}
REQUIRED_KEYS = ("name", "url", "md5")
OPTIONAL_KEYS = {
    "kind", "sha256", "size", "mirrors", "md5_url", "md5_prefix", "legacy_urls", "description",
    "config", "metrics", "license", "filename", "requires", "aliases", "deprecated", "note",
    "advisory", "derived_from",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
MAX_MANIFEST_BYTES = 16 << 20
MAX_EXPANDED_NODES = 2_000_000   # nodes the document would have with aliases expanded


@dataclass(frozen=True)
class Artifact:
    """One downloadable file, as a manifest declares it."""

    name: str
    url: str
    md5: str | None
    kind: str = "file"
    zoo: str = ""
    sha256: str | None = None
    md5_prefix: str | None = None
    size: int | None = None
    mirrors: tuple[str, ...] = ()
    md5_url: str | None = None
    legacy_urls: tuple[str, ...] = ()
    description: str | None = None
    config: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    license: str | None = None
    filename: str | None = None
    requires: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    deprecated: bool = False
    note: str | None = None
    source: str = ""
    # A known problem with the upstream file itself (e.g. a placeholder of zeros): warned
    # about by every command that hands the file out, marked in `list`.
    advisory: str | None = None
    # Not upstream's bytes but made from them (a TorchScript export of a checkpoint): the
    # name of the entry it was made from; its checksum is its host's, never upstream's.
    derived_from: str | None = None

    @property
    def file_name(self) -> str:
        """The name the file is known by: explicit ``filename`` or the URL's last segment."""
        return self.filename or url_key(self.url)[-1]

    @property
    def names_read_as(self) -> tuple[str, ...]:
        """Every name a consumer may open the file by: its ``file_name`` and the URL's last
        segment (iopath's cache keeps that one).  Checks by file type look at all of them."""
        return tuple(dict.fromkeys((self.file_name, url_key(self.url)[-1])))

    @property
    def urls(self) -> tuple[str, ...]:
        """Upstream URLs in the order they are tried (legacy URLs are never tried)."""
        return (self.url, *self.mirrors)


@dataclass(frozen=True)
class Manifest:
    """One manifest file as loaded: which zoo it describes and its entries."""

    source: str
    zoo: str
    description: str | None
    artifacts: tuple[Artifact, ...]


def check_url(url: object, source: str, entry: str | None, what: str = "url",
              schemes: tuple[str, ...] = tuple(s for s in SOURCES if SOURCES[s].origin)) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ManifestError(source, f"{what} must be a non-empty string", entry=entry)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as e:
        raise ManifestError(source, f"{what} {url!r} is not a valid URL ({e})", entry=entry)
    if parts.scheme not in schemes:
        allowed = " or ".join(["http(s)", *[x for x in schemes if x not in ("http", "https")]])
        raise ManifestError(source, f"{what} {url!r} must be {allowed}", entry=entry)
    if not parts.hostname:
        raise ManifestError(source, f"{what} {url!r} has no host", entry=entry)
    if not valid_host(parts.hostname):
        raise ManifestError(source, f"{what} {url!r} has an invalid host {parts.hostname!r} "
                                    "(a DNS name or an IP address)", entry=entry)
    if any(c in url for c in "\x00\r\n\t \\"):
        raise ManifestError(source, f"{what} {url!r} contains whitespace or control characters",
                            entry=entry)
    key = url_key(url)
    if len(key) < 2:
        raise ManifestError(source, f"{what} {url!r} names no file", entry=entry)
    for seg in key[1:]:
        if seg in (".", "..") or seg.startswith("%2e%2e") or seg.lower() in ("%2e", "%2e%2e"):
            raise ManifestError(source, f"{what} {url!r} has a '..' segment that would escape "
                                        "the store", entry=entry)
    if any(mark in key[-1] for mark in RESERVED_SUFFIXES):
        raise ManifestError(source, f"{what} {url!r} uses a file suffix densezoo reserves",
                            entry=entry)
    return url


def _hex(value: object, length: int | None, source: str, entry: str, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ManifestError(source, f"{key} must be a hex string or null, not {value!r}: YAML "
                            "read the digits as a number", entry=entry,
                            hint=f"quote it: {key}: \"<hex digits>\"")
    if not isinstance(value, str):
        raise ManifestError(source, f"{key} must be a hex string or null, not {value!r}",
                            entry=entry)
    v = value.strip().lower()
    if not is_hex(v) or (length is not None and len(v) != length):
        want = f"{length} hex digits" if length else "hex digits"
        raise ManifestError(source, f"{key} {value!r} is not {want}", entry=entry)
    return v


def _str(value: object, source: str, entry: str, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ManifestError(source, f"{key} must be text", entry=entry)
    return str(value)


def _str_list(value: object, source: str, entry: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(source, f"{key} must be a list of strings", entry=entry)
    return tuple(value)


def _metrics(value: object, source: str, entry: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ManifestError(source, "metrics must be a mapping", entry=entry)
    out: dict[str, Any] = {}
    for task, v in value.items():
        if isinstance(v, dict):
            inner = {}
            for metric, number in v.items():
                if not isinstance(number, (int, float)) or isinstance(number, bool):
                    raise ManifestError(source, f"metrics.{task}.{metric} must be a number",
                                        entry=entry)
                inner[str(metric)] = number
            out[str(task)] = inner
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[str(task)] = v
        else:
            raise ManifestError(source, f"metrics.{task} must be a number or a mapping",
                                entry=entry)
    return out


def check_name(name: object, source: str, entry: str | None = None, what: str = "name") -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ManifestError(
            source, f"{what} {name!r} is not allowed (ASCII letters, digits and . _ + - only, "
                    "starting with a letter or digit; no '..')",
            entry=entry if entry is not None else str(name))
    return name


def parse_entry(raw: object, source: str, zoo: str, index: int) -> Artifact:
    if not isinstance(raw, dict):
        raise ManifestError(source, f"artifact #{index + 1} must be a mapping")
    label = raw.get("name") if isinstance(raw.get("name"), str) else f"#{index + 1}"
    unknown = sorted(set(map(str, raw)) - set(REQUIRED_KEYS) - OPTIONAL_KEYS)
    for key in REQUIRED_KEYS:
        if key not in raw:
            also = f"; unknown key(s) {', '.join(map(repr, unknown))}" if unknown else ""
            raise ManifestError(source, f"missing required key {key!r}{also}", entry=label,
                                hint=("check the spelling against docs/manifest.md" if unknown
                                      else None))
    if unknown:
        raise ManifestError(source, "unknown key(s) " + ", ".join(map(repr, unknown)),
                            entry=label, hint="check the spelling against docs/manifest.md")
    name = check_name(raw["name"], source, label)
    url = check_url(raw["url"], source, name)
    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ManifestError(source, f"size must be a non-negative integer, not {size!r}",
                            entry=name)
    kind = _str(raw.get("kind"), source, name, "kind") or "file"
    filename = _str(raw.get("filename"), source, name, "filename")
    if filename is not None:
        _check_filename(filename, source, name)
    md5_url = raw.get("md5_url")
    deprecated = raw.get("deprecated", False)
    if not isinstance(deprecated, bool):
        raise ManifestError(source, "deprecated must be true or false", entry=name)
    return Artifact(
        name=name,
        url=url,
        md5=_hex(raw["md5"], 32, source, name, "md5"),
        kind=kind,
        zoo=zoo,
        sha256=_hex(raw.get("sha256"), 64, source, name, "sha256"),
        md5_prefix=_md5_prefix(raw.get("md5_prefix"), source, name),
        size=size,
        mirrors=tuple(check_url(u, source, name, "mirror", tuple(SOURCES))
                      for u in _str_list(raw.get("mirrors"), source, name, "mirrors")),
        md5_url=check_url(md5_url, source, name, "md5_url") if md5_url is not None else None,
        legacy_urls=_str_list(raw.get("legacy_urls"), source, name, "legacy_urls"),
        description=_str(raw.get("description"), source, name, "description"),
        config=_str(raw.get("config"), source, name, "config"),
        metrics=_metrics(raw.get("metrics"), source, name),
        license=_str(raw.get("license"), source, name, "license"),
        filename=filename,
        requires=tuple(check_name(r, source, name, "requires entry")
                       for r in _str_list(raw.get("requires"), source, name, "requires")),
        aliases=tuple(check_name(a, source, name, "alias")
                      for a in _str_list(raw.get("aliases"), source, name, "aliases")),
        deprecated=deprecated,
        note=_str(raw.get("note"), source, name, "note"),
        source=source,
        advisory=_str(raw.get("advisory"), source, name, "advisory"),
        derived_from=(check_name(raw["derived_from"], source, name, "derived_from")
                      if raw.get("derived_from") is not None else None),
    )


def recorded_artifact(record: Mapping[str, Any]) -> Artifact:
    """An entry as the store recorded it (``store.files.entry_record``), validated like a
    manifest's: the record sits in a cache others may write, so it proves nothing more
    than a manifest entry would."""
    source = record.get("source") or "<store record>"
    raw = {k: v for k, v in record.items() if k != "source" and v is not None}
    raw.setdefault("md5", None)
    return parse_entry(raw, str(source), "recorded", 0)


def is_plain_name(name: str) -> bool:
    """A name that stays one entry in one folder and prints on one line: no separators,
    no ``.``/``..``, no control characters.  The manifest and the store both ask this."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name \
        and not any(ord(c) < 32 or ord(c) == 127 for c in name)


def _check_filename(filename: str, source: str, entry: str) -> None:
    """A plain file name, and none of the suffixes the store keeps for its own files."""
    if not is_plain_name(filename):
        raise ManifestError(source, f"filename {filename!r} must be a plain file name (no "
                                    "path separators or control characters)", entry=entry)
    if any(mark in filename for mark in RESERVED_SUFFIXES):
        raise ManifestError(source, f"filename {filename!r} uses a suffix densezoo reserves "
                                    f"({', '.join(RESERVED_SUFFIXES)})", entry=entry)


def _md5_prefix(value: object, source: str, entry: str) -> str | None:
    v = _hex(value, None, source, entry, "md5_prefix")
    if v is not None and not 6 <= len(v) <= 32:
        raise ManifestError(source, f"md5_prefix {value!r} must be 6 to 32 hex digits",
                            entry=entry)
    return v


def _expanded_size(text: str, loader, source: str = "<string>", *,
                   unique_keys: bool = True) -> int:
    """How many nodes the document has once every alias is expanded, in one event pass;
    a key given twice in one mapping is refused in the same pass.

    A "billion laughs" document is a few lines with ~90 aliases but 10**9 nodes
    once expanded; anything that walks it (a validator, json.dumps) would hang.
    YAML lets a later ``md5: null`` silently replace an earlier ``md5: <hex>``:
    a dropped check nobody sees, so a duplicate key is an invalid manifest.
    """
    import yaml

    sizes: dict[str, int] = {}
    # per open collection: [anchor, nodes so far, keys seen (mappings only), items so far]
    stack: list[list] = [[None, 0, None, 0]]
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.SequenceStartEvent,
                              yaml.MappingStartEvent)):
            parent = stack[-1]
            if parent[2] is not None and parent[3] % 2 == 0:       # a mapping key
                key = event.value if isinstance(event, yaml.ScalarEvent) else None
                if unique_keys and key is not None and key in parent[2]:
                    raise ManifestError(source, f"key {key!r} appears twice in one mapping "
                                                f"(line {event.start_mark.line + 1}); YAML would "
                                                "silently keep only the last one")
                parent[2].add(key)
            parent[3] += 1
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            keys = set() if isinstance(event, yaml.MappingStartEvent) else None
            stack.append([event.anchor, 0, keys, 0])
            continue
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, count, _, _ = stack.pop()
            size = count + 1
        elif isinstance(event, yaml.ScalarEvent):
            anchor, size = event.anchor, 1
        elif isinstance(event, yaml.AliasEvent):
            anchor, size = None, sizes.get(event.anchor, 1)
        else:
            continue
        if anchor:
            sizes[anchor] = size
        stack[-1][1] += size
        if stack[-1][1] > MAX_EXPANDED_NODES:
            break
    return stack[0][1] if len(stack) == 1 else max(s[1] for s in stack)


def safe_load(text: str, source: str, *, unique_keys: bool = True) -> object:
    """Load with a safe loader, after refusing documents that explode when expanded.

    ``unique_keys`` False reads a repeated key as YAML does (the last wins): for a
    detectron2 config, where densezoo must read exactly what detectron2 reads."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        if _expanded_size(text, loader, source, unique_keys=unique_keys) > MAX_EXPANDED_NODES:
            raise ManifestError(source, "YAML aliases expand to more than "
                                        f"{MAX_EXPANDED_NODES} nodes (refused as an alias bomb)")
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ManifestError(source, f"not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ManifestError(source, "YAML nests too deeply") from None
    except (ValueError, TypeError, OverflowError) as e:
        # e.g. a timestamp-looking scalar that is not a real date (2019-02-30)
        raise ManifestError(source, f"a value cannot be read: {e}") from None


def parse_manifest(text: str, source: str = "<string>") -> Manifest:
    """Parse and validate manifest text; raises ManifestError on the first problem."""
    return validate(safe_load(text, source), source)


def validate(data: object, source: str) -> Manifest:
    """Check loaded manifest data (from YAML, or from the compiled catalog) field by field."""
    if not isinstance(data, dict):
        raise ManifestError(source, "the top level must be a mapping with an 'artifacts' list")
    unknown = sorted(set(map(str, data)) - TOP_KEYS)
    if unknown:
        raise ManifestError(source, "unknown top-level key(s) " + ", ".join(map(repr, unknown)))
    schema = data.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION:
        raise ManifestError(source, f"schema {schema!r} is not supported (this densezoo reads "
                                    f"schema {SCHEMA_VERSION})", hint="upgrade densezoo")
    zoo = data.get("zoo") or Path(source).stem
    if not isinstance(zoo, str):
        raise ManifestError(source, "zoo must be text")
    raw_artifacts = data.get("artifacts")
    if not isinstance(raw_artifacts, list):
        raise ManifestError(source, "'artifacts' must be a list")
    artifacts: list[Artifact] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_artifacts):
        art = parse_entry(raw, source, zoo, i)
        low = art.name.lower()
        if low in seen:
            raise ManifestError(source, "duplicate name", entry=art.name)
        seen.add(low)
        artifacts.append(art)
    description = data.get("description")
    return Manifest(source=source, zoo=zoo,
                    description=description if isinstance(description, str) else None,
                    artifacts=tuple(artifacts))


def read_manifest(path: str | Path) -> tuple[bytes, str]:
    """A manifest file's bytes and text, with one clear error for every way reading fails."""
    source = str(path)
    try:
        p = Path(path)
        if p.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(source, f"file is larger than {MAX_MANIFEST_BYTES >> 20} MiB")
        raw = p.read_bytes()
        return raw, raw.decode("utf-8")
    except ManifestError:
        raise
    except UnicodeDecodeError:
        raise ManifestError(source, "file is not UTF-8 text") from None
    except OSError as e:
        raise ManifestError(source, f"cannot read it ({e.strerror or e})",
                            hint="check the path given to --manifest / DENSEZOO_MANIFEST") from None


def load_manifest(path: str | Path) -> Manifest:
    """Read, parse and validate a manifest file (``compiled.load_manifest`` caches the parse)."""
    return parse_manifest(read_manifest(path)[1], str(path))


def has_secret_urls(manifest: Manifest) -> bool:
    """Whether any URL of the manifest carries credentials (never written to a cache)."""
    return any(has_secret(u) for a in manifest.artifacts
               for u in (a.url, *a.mirrors, *a.legacy_urls, a.md5_url or ""))


def store_key(art: Artifact) -> tuple[str, ...]:
    """Which store file an artifact is: host + URL path, its ``filename:`` as the last part.
    Two entries with the same key share one file (see ``Catalog.slot_mates``)."""
    return (*url_key(art.url)[:-1], art.file_name)
