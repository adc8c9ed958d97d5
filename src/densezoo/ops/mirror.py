"""``mirror build``: a tree any web server or object store can serve as a densezoo mirror.

The tree has the store's key layout (``<target>/<host>/<path>``), so a client only
needs ``DENSEZOO_MIRROR=<base url>`` (or ``s3://bucket/prefix``).  A mirror is
transport, never a trust root: clients check what it serves against their own
manifests.  Beside the files go ``densezoo-mirror.yaml`` (full checksums, for people
who want to adopt them; no credentials, the tree is meant to be served) and
``index.html``, a self-contained page to browse and pick a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..disk import store_errors, sweep_temps, write_text_atomic
from ..errors import DensezooError, NotCachedError, PolicyError
from .export import place
from ..hashing import hash_file
from ..progress import ProgressArg, progress_for
from ..manifest import Artifact
from .mirror_page import render_index
from ..results.info import headline_ap, inference_time
from ..urls import has_secret, redact, url_key

if TYPE_CHECKING:
    from ..core import Core
    from ..progress import Progress

MIRROR_MANIFEST = "densezoo-mirror.yaml"
INDEX = "index.html"


def entry_json(art: Artifact, digests: dict[str, Any], url: str, mirrors: list[str]) -> str:
    """One manifest entry as a JSON object: YAML reads it as a flow mapping, and JSON
    quoting is always safe (no YAML type guessing on hex digests or names)."""
    fields = {"name": art.name, "kind": art.kind, "url": redact(url), "md5": digests.get("md5"),
              "sha256": digests.get("sha256"), "size": digests.get("size"),
              "mirrors": [redact(m) for m in mirrors] or None, "md5_prefix": art.md5_prefix,
              "description": art.description, "filename": art.filename}
    # md5 is always stated (null: nothing this writer may publish for it).
    return json.dumps({k: v for k, v in fields.items() if v is not None or k == "md5"})


def known_digests(core: "Core", art: Artifact, path: Path) -> dict[str, Any]:
    """md5, sha256 and size of a verified cached file (hashing it if the store lacks one)."""
    meta = core.store.read_meta(art) or {}
    if meta.get("md5") and meta.get("sha256") and core.store.memo_valid(art, meta):
        return {"md5": meta["md5"], "sha256": meta["sha256"], "size": meta["size"]}
    return hash_file(path).as_dict()


def publishable(core: "Core", art: Artifact, digests: dict[str, Any]) -> dict[str, Any]:
    """The digests a written manifest (a bundle's, a mirror's) may state as md5/sha256:
    what the entry publishes, or what the origin's own bytes were pinned as.  A copy's
    digests (a mirror's, the Hub's, another user's) are left out: an importer would
    read them as published and call the copy's bytes verified."""
    from ..hashing import Digests
    from ..store.trust import declared, has_full

    d = Digests(digests["size"], digests.get("md5"), digests.get("sha256"))
    pin = core.trust.record_of(art).pin
    if (has_full(declared(art)) and declared(art).mismatch(d) is None) or (
            pin is not None and pin.kind == "origin" and pin.agrees(d)):
        return digests
    return {"md5": None, "sha256": None, "size": art.size}


class _Folder:
    """Writes the tree into a local folder (links by default: no second copy)."""

    def __init__(self, root: Path, link: str) -> None:
        self.root, self.link = root, link

    def put_file(self, src: Path, key: tuple[str, ...], digests: dict[str, Any],
                 progress: "Progress | None" = None) -> bool:
        dest = self.root.joinpath(*key)
        with store_errors("build the mirror", dest.parent):
            return place(src, dest, self.link, force=True, progress=progress) != "unchanged"

    def put_text(self, key: tuple[str, ...], text: str, content_type: str) -> None:
        dest = self.root.joinpath(*key)
        with store_errors("build the mirror", dest.parent):
            dest.parent.mkdir(parents=True, exist_ok=True)
            sweep_temps(dest.parent, dest.name)      # a killed build's leftover
            write_text_atomic(dest, text)            # the tree may be served live

    def location(self, name: str) -> str:
        return str(self.root / name)


class _Bucket:
    """Uploads the tree under ``s3://bucket/prefix`` (see s3.py)."""

    def __init__(self, url: str) -> None:
        from ..download.s3 import Bucket, split

        self.bucket, prefix = split(url)
        self.prefix = prefix.strip("/")
        self.s3 = Bucket.connect()

    def _key(self, key: tuple[str, ...]) -> str:
        return "/".join(filter(None, (self.prefix, *key)))

    def put_file(self, src: Path, key: tuple[str, ...], digests: dict[str, Any],
                 progress: "Progress | None" = None) -> bool:
        # (an upload's own progress is s3.py's; not reported here yet)
        return self.s3.upload(src, self.bucket, self._key(key), md5=digests["md5"],
                              sha256=digests.get("sha256"), size=digests["size"])

    def put_text(self, key: tuple[str, ...], text: str, content_type: str) -> None:
        self.s3.put_text(self.bucket, self._key(key), text, content_type)

    def location(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key((name,))}"


def page_row(core: "Core", art: Artifact, digests: dict[str, Any]) -> dict[str, Any]:
    ap, metric = headline_ap(art)
    return {"name": art.name, "zoo": art.zoo, "kind": art.kind, "size": digests.get("size"),
            "strength": str(core.strength_of(art) or "-"), "md5": digests.get("md5"),
            "sha256": digests.get("sha256"), "ap": ap, "ap_metric": metric,
            "inference": inference_time(art), "description": art.description or "",
            "command": f"densezoo fetch {art.name}"}


@dataclass(frozen=True)
class MirrorResult:
    manifest: str             # where densezoo-mirror.yaml went
    index: str                # where index.html went
    written: tuple[str, ...]  # artifacts whose file was written or uploaded now
    unchanged: tuple[str, ...]  # already there with the same bytes (skipped)
    # not in the mirror: (name, why) -- a failed fetch, or with ``cached`` not cached
    missing: tuple[tuple[str, DensezooError], ...] = ()

    @property
    def failed(self) -> tuple[tuple[str, DensezooError], ...]:
        """Missing for a reason other than "not cached" under ``cached``."""
        return tuple((n, e) for n, e in self.missing if not isinstance(e, NotCachedError))

    def to_dict(self) -> dict[str, Any]:
        return {"manifest": self.manifest, "index": self.index, "written": list(self.written),
                "unchanged": list(self.unchanged),
                "missing": [{"name": n, "error": str(e), "exit_code": e.exit_code}
                            for n, e in self.missing]}


def mirror_build(core: "Core", target: str | Path, names: Iterable[str] | None,
                 base_url: str | None = None, link: str = "hardlink",
                 cached: bool = False, progress: ProgressArg = None) -> MirrorResult:
    """Write ``<target>/<host>/<path>`` for each artifact, the mirror manifest and the
    index page; ``target`` is a folder or ``s3://bucket/prefix``.  Only verified store
    files are written.  An artifact that cannot be fetched does not stop the others:
    the manifest and page describe what the mirror holds, and ``missing`` says what it
    lacks and why.  ``cached``: only what the cache holds (verified), no network.  The
    bytes fetched and copied are reported on ``progress`` (links are instant)."""
    target = str(target)
    writer = _Bucket(target) if target.startswith("s3://") else _Folder(Path(target), link)
    arts = core.resolve(names) if names else list(core.catalog.artifacts)
    lines = ["# written by `densezoo mirror build`: every checksum below was verified",
             "schema: 1", "zoo: mirror", "artifacts:"]
    rows, written, unchanged = [], [], []
    missing: list[tuple[str, DensezooError]] = []
    for art in arts:
        if base_url is None and has_secret(art.url):
            # A redacted URL in a manifest people fetch from would name another file.
            missing.append((art.name, PolicyError(
                f"{art.name}: its URL carries credentials, which a served mirror manifest "
                "must not hold; its redacted form would name another file",
                hint="pass --base-url so the manifest points at the mirror's own copy")))
            continue
        try:
            src = core.path(art) if cached else core.fetch(art, progress=progress).path
        except DensezooError as e:
            missing.append((art.name, e))
            continue
        key = url_key(art.url)
        digests = known_digests(core, art, src)
        put = writer.put_file(src, key, digests, progress_for(progress, art))
        (written if put else unchanged).append(art.name)
        vouched = publishable(core, art, digests)
        if art.md5_url and vouched["md5"]:   # the sidecar too, for tools that read it
            writer.put_text(url_key(art.md5_url), f"{digests['md5']}  {art.file_name}\n",
                            "text/plain")
        url = art.url if base_url is None else base_url.rstrip("/") + "/" + "/".join(key)
        lines.append("  - " + entry_json(art, vouched, url, [art.url] if base_url else []))
        rows.append(page_row(core, art, digests))
    writer.put_text((INDEX,), render_index(rows, base_url), "text/html; charset=utf-8")
    writer.put_text((MIRROR_MANIFEST,), "\n".join(lines) + "\n", "text/yaml")
    return MirrorResult(writer.location(MIRROR_MANIFEST), writer.location(INDEX),
                        tuple(written), tuple(unchanged), tuple(missing))
