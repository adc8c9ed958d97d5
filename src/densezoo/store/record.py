"""The trust record: who vouched for each digest of an artifact's bytes.

A checksum that does not remember who vouched for it gets re-trusted by every later
reader: a mirror's md5 read as "verified" after the first fetch, a co-tenant's pin
believed, a copy's digest written into a manifest as if published.  So every digest
densezoo keeps about an artifact is a ``Voucher`` (kind, source, digests, when), and
the strength word is derived from them (``trust.strength``), never stored.

Kinds: ``origin`` (bytes downloaded from the entry's own URL over https or loopback),
``copy`` (bytes from a mirror, S3, an ``hf://`` copy, a bundle, or a file another user
or process left in the store), ``adopted`` (found on disk at a path), ``hub-claim`` (the
sha256/size the Hub publishes for a copy, read from its resolve headers, no body),
``structure`` (the tensors match the model's expected structure).  ``published``
vouchers are not stored: they are the manifest entry itself (``published``).

Where records live: ``<root>/trust/<uid>/<host>/<url path>.json``, one folder per user,
created 0700.  A record counts only if this user owns it and every folder from
``trust/<uid>`` down is this user's and writable by nobody else: a co-tenant of a
group-writable cache cannot create a file owned by you, so the worst they can do is
delete your record (a downgrade, never an upgrade).  Records of round 3 (``pins/``) are
read the same way, owner-checked, and never written again.

This module is the only reader and writer of those files: a command loads an
artifact's record once (``Records.load``) and passes the frozen ``Record`` down.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..disk import read_json, store_errors, utc_now, write_json_atomic
from ..hashing import Digests, is_hex
from ..manifest import Artifact
from ..urls import is_loopback, redact
from .layout import Layout, with_suffix

KINDS = ("origin", "copy", "adopted", "hub-claim", "structure")
DIGEST_KINDS = ("origin", "copy", "adopted")     # vouchers for bytes densezoo received
VERSION = 2
_LENGTHS = {"md5": 32, "sha256": 64}


class BadValue(ValueError):
    """A digest or size that is not what it claims to be (wrong length, not hex, not an int)."""


def check_digest(algorithm: str, value: object) -> str | None:
    """A digest as records and manifests may hold it: lowercase hex of the right length."""
    if value is None:
        return None
    if not isinstance(value, str) or not is_hex(value, _LENGTHS[algorithm]):
        raise BadValue(f"{algorithm} {value!r} is not {_LENGTHS[algorithm]} lowercase hex digits")
    return value


def check_size(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadValue(f"size {value!r} is not a whole number of bytes")
    return value


@dataclass(frozen=True)
class Voucher:
    """One party's word for some bytes: what it says (digests) and who said it (source)."""

    kind: str
    source: str                    # a URL (redacted), hf://repo@commit/path, a path, "uid N"
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    at: str | None = None
    detail: str | None = None      # e.g. the Hub's commit and Xet hash, the structure's model

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise BadValue(f"voucher kind {self.kind!r} is not one of {', '.join(KINDS)}")
        check_digest("md5", self.md5)
        check_digest("sha256", self.sha256)
        check_size(self.size)

    @property
    def party(self) -> str:
        """Who stands behind it: two vouchers from one party are one voucher."""
        if self.kind == "origin":
            return "origin"
        if self.kind == "adopted":
            return "disk"
        src = self.source
        if src.startswith("hf://"):          # one repo is one party, at any revision
            parts = src[len("hf://"):].split("/")
            if parts and parts[0] in ("datasets", "spaces"):
                parts = parts[1:]
            return "hf://" + "/".join(p.split("@", 1)[0] for p in parts[:2])
        if "://" in src:
            return src.split("://", 1)[1].split("/", 1)[0]
        return src

    def agrees(self, d: Digests) -> bool:
        """Every digest both know is equal, and at least one of them is a full digest."""
        shared = [(a, getattr(self, a)) for a in ("md5", "sha256")
                  if getattr(self, a) is not None and getattr(d, a) is not None]
        if self.size is not None and d.size is not None and self.size != d.size:
            return False
        return bool(shared) and all(getattr(d, a) == v for a, v in shared)

    def digests(self) -> Digests | None:
        return Digests(self.size if self.size is not None else -1, self.md5, self.sha256) \
            if self.md5 or self.sha256 else None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def parse(cls, raw: object) -> "Voucher":
        if not isinstance(raw, dict) or not isinstance(raw.get("source"), str):
            raise BadValue("a voucher is an object with a kind and a source")
        for k in ("at", "detail"):
            if raw.get(k) is not None and not isinstance(raw[k], str):
                raise BadValue(f"voucher {k} must be text")
        return cls(str(raw.get("kind")), raw["source"], raw.get("size"), raw.get("md5"),
                   raw.get("sha256"), raw.get("at"), raw.get("detail"))


@dataclass(frozen=True)
class Record:
    """What this user's record says of one artifact (empty when there is none)."""

    vouchers: tuple[Voucher, ...] = ()
    sidecar_md5: str | None = None           # the md5 read from the upstream .md5sum
    ignored: tuple[str, ...] = ()            # records on disk not believed, and why
    legacy: bool = False                     # read from round 3's pins/ folder

    @property
    def pin(self) -> Voucher | None:
        """The voucher that binds the bytes (their first-use pin): the origin's word over
        a copy's, a copy's over a file found on disk."""
        for kind in DIGEST_KINDS:
            for v in self.vouchers:
                if v.kind == kind and v.md5:
                    return v
        return None

    def of(self, kind: str) -> tuple[Voucher, ...]:
        return tuple(v for v in self.vouchers if v.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        return {"vouchers": [v.to_dict() for v in self.vouchers],
                "sidecar_md5": self.sidecar_md5, "ignored": list(self.ignored)}


def published(art: Artifact, sidecar_md5: str | None = None,
              which: str | None = None) -> tuple[dict[str, Any], ...]:
    """The manifest entry's own word, as ``info`` and the ledger list it: which manifest
    (``which``: shipped, your own, or imported) and which digests."""
    out = []
    digests = {k: getattr(art, k) for k in ("size", "md5", "sha256", "md5_prefix")
               if getattr(art, k) is not None}
    if digests:
        out.append({"kind": "published", "source": f"{art.source or '?'}#{art.name}",
                    **digests, **({"detail": f"{which} manifest"} if which else {})})
    if sidecar_md5:
        out.append({"kind": "published", "source": redact(art.md5_url or ""),
                    "md5": sidecar_md5})
    return tuple(out)


def listed(art: Artifact, record: Record,
           which: str | None = None) -> tuple[dict[str, Any], ...]:
    """Every voucher of ``art``'s bytes as plain records, the manifest's word first
    (``which``: whose manifest, as ``published``): what ``info`` shows and the ledger
    signs."""
    return (*published(art, record.sidecar_md5, which),
            *(v.to_dict() for v in record.vouchers))


def _uid() -> int | None:
    getuid = getattr(os, "getuid", None)
    return getuid() if getuid else None


def _mine(st: os.stat_result) -> bool:
    uid = _uid()
    return (uid is None or st.st_uid == uid) and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


@dataclass
class Records:
    """The one reader and writer of trust records under one cache root."""

    layout: Layout
    _made: set[Path] = field(default_factory=set)

    @property
    def folder(self) -> Path:
        uid = _uid()
        return self.layout.root / "trust" / (str(uid) if uid is not None else "user")

    def path(self, art: Artifact) -> Path:
        return with_suffix(self.folder.joinpath(*self.layout.key(art.url)), ".json")

    def _believed(self, path: Path, top: Path) -> str | None:
        """None when ``path`` and every folder from ``top`` down to it are this user's
        alone; else why the file vouches for nothing."""
        try:
            rel = path.relative_to(top)
        except ValueError:
            return "outside its folder"
        cur = top
        for part in ("", *rel.parts):
            cur = cur / part if part else cur
            try:
                st = os.lstat(cur)
            except FileNotFoundError:
                return "missing"
            except OSError as e:
                return f"unreadable ({e.strerror})"
            if stat.S_ISLNK(st.st_mode):
                return f"{cur} is a symlink"
            if not _mine(st):
                return (f"{cur} is owned by uid {st.st_uid}" if st.st_uid != _uid() else
                        f"{cur} is writable by other users")
        return None

    @staticmethod
    def _holder_ok(folder: Path) -> str | None:
        """``trust/`` (or ``pins/``) may not be a link: the records would live wherever
        it points.  (Whoever owns it, or the cache root, can still remove your records:
        a downgrade to ``copy-pinned`` at most, never an upgrade.)"""
        try:
            return f"{folder} is a symlink" if os.path.islink(folder) else None
        except OSError as e:
            return f"{folder}: unreadable ({e})"

    def load(self, art: Artifact) -> Record:
        """This user's record of ``art``; a record another user could have written is
        named in ``ignored`` and vouches for nothing."""
        path = self.path(art)
        held = self._holder_ok(self.folder.parent)
        if held is not None:
            return Record(ignored=(f"no record believed: {held}",))
        why = self._believed(path, self.folder)
        if why is None:
            return _parse(read_json(path), path)
        ignored = () if why == "missing" else (f"{path}: {why}",)
        legacy = self.layout.pin(art)
        if legacy.exists():
            lwhy = self._holder_ok(self.layout.pins_dir) or \
                self._believed(legacy, self.layout.pins_dir)
            if lwhy is None:
                rec = _legacy(read_json(legacy), art)
                return replace(rec, ignored=ignored + rec.ignored)
            ignored += (f"{legacy}: {lwhy}",)
        return Record(ignored=ignored)

    def entries(self) -> list[Artifact]:
        """The manifest entries this user's records were written for: this user's own
        word for what a stored file is (``verify`` believes it over a ``.dzmeta`` another
        user could have written)."""
        from .files import artifact_from_record

        top = self.folder
        if self._holder_ok(top.parent) is not None or self._believed(top, top) is not None:
            return []
        out = []
        for dirpath, _, names in os.walk(top):
            for n in names:
                path = Path(dirpath) / n
                if not n.endswith(".json") or self._believed(path, top) is not None:
                    continue
                art = artifact_from_record((read_json(path) or {}).get("entry"))
                if art is not None:
                    out.append(art)
        return out

    # -- the one writer -------------------------------------------------------------------

    def add(self, art: Artifact, record: Record, *vouchers: Voucher) -> Record:
        """``record`` plus ``vouchers``, saved.  A digest voucher for other bytes than the
        record's pin replaces the digest vouchers that disagree with it (the caller
        admitted these bytes against the expectation: they are the artifact now); a
        hub-claim or structure voucher replaces the one from the same source."""
        kept = list(record.vouchers)
        for v in vouchers:
            if v.kind in DIGEST_KINDS and v.digests() is not None:
                d = v.digests()
                kept = [k for k in kept if k.kind not in DIGEST_KINDS or k.agrees(d)]
            kept = [k for k in kept if not (k.kind == v.kind and k.source == v.source)]
            kept.append(v)
        new = replace(record, vouchers=tuple(kept), ignored=(), legacy=False)
        self._save(art, new)
        return new

    def remember_sidecar(self, art: Artifact, record: Record, md5: str) -> Record:
        check_digest("md5", md5)
        if record.sidecar_md5 == md5 and not record.legacy:
            return record
        new = replace(record, sidecar_md5=md5, ignored=(), legacy=False)
        self._save(art, new)
        return new

    def _save(self, art: Artifact, record: Record) -> None:
        path = self.path(art)
        self._ensure(path.parent)
        from .files import entry_record

        data = {"version": VERSION, "name": art.name, "url": redact(art.url),
                "entry": entry_record(art), "saved_at": utc_now(), **record.to_dict()}
        data.pop("ignored")
        with store_errors("write a trust record", path.parent):
            write_json_atomic(path, data)
            os.chmod(path, 0o600)

    def _ensure(self, directory: Path) -> None:
        """Create the user's record folders 0700, refusing any that are not theirs alone."""
        if directory in self._made:
            return
        top = self.folder
        self.layout.check_no_links(top)     # trust/ itself planted as a link (issue 33.1)
        with store_errors("create a trust record folder", directory):
            if self._holder_ok(top.parent) is not None:
                from ..errors import PlantedLinkError

                raise PlantedLinkError(str(top.parent))
            top.parent.mkdir(parents=True, exist_ok=True)
            _sticky_if_shared(top.parent)
            cur = top
            for part in ("", *directory.relative_to(top).parts):
                cur = cur / part if part else cur
                try:
                    os.mkdir(cur, 0o700)
                except FileExistsError:
                    pass
                st = os.lstat(cur)
                if stat.S_ISLNK(st.st_mode) or not _mine(st):
                    from ..errors import PlantedLinkError

                    raise PlantedLinkError(str(cur))
        self._made.add(directory)


def _sticky_if_shared(folder: Path) -> None:
    """``trust/`` in a cache others can write gets the sticky bit (as /tmp has): each user
    can add their own folder, none can rename or delete another's."""
    try:
        st = os.lstat(folder)
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX \
                and st.st_uid == _uid():
            os.chmod(folder, stat.S_IMODE(st.st_mode) | stat.S_ISVTX)
    except OSError:
        pass


def _parse(data: dict[str, Any] | None, path: Path) -> Record:
    if not data:
        return Record()
    vouchers, ignored = [], []
    raws = data.get("vouchers") or []
    if not isinstance(raws, list):
        ignored.append(f"{path}: 'vouchers' is not a list")
        raws = []
    for raw in raws:
        try:
            vouchers.append(Voucher.parse(raw))
        except BadValue as e:
            ignored.append(f"{path}: a voucher was not valid ({e})")
    try:
        side = check_digest("md5", data.get("sidecar_md5"))
    except BadValue as e:
        side, ignored = None, [*ignored, f"{path}: {e}"]
    return Record(tuple(vouchers), side, tuple(ignored))


def _legacy(pin: dict[str, Any] | None, art: Artifact) -> Record:
    """A round-3 pin (``pins/``): ``origin`` says whose bytes it pinned."""
    if not pin:
        return Record(legacy=True)
    try:
        side = check_digest("md5", pin.get("sidecar_md5"))
    except BadValue:
        side = None
    try:
        md5, sha = check_digest("md5", pin.get("md5")), check_digest("sha256", pin.get("sha256"))
        size = check_size(pin.get("size"))
    except BadValue as e:
        return Record((), side, (f"the pin of {art.name} is not valid ({e})",), legacy=True)
    if not md5:
        return Record((), side, legacy=True)
    url = pin.get("url") if isinstance(pin.get("url"), str) else ""
    # Round 3 took "origin" from a .dzmeta nobody owner-checked: believe it only when
    # it is literally true and names the entry's own URL.
    origin = pin.get("origin", True) is True and url == redact(art.url) and (
        art.url.startswith("https://") or is_loopback(art.url))
    at = pin.get("pinned_at") if isinstance(pin.get("pinned_at"), str) else None
    return Record((Voucher("origin" if origin else "copy", url or "?", size, md5, sha, at),),
                  side, legacy=True)
