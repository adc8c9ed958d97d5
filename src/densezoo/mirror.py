"""``mirror build``: a static tree any web server can serve as a densezoo mirror.

The tree has the store's key layout (``<dir>/<host>/<url path>``), so a client
only needs ``DENSEZOO_MIRROR=<base url>``.  A mirror is transport, never a
trust root: clients check what it serves against their own manifests.  The
``densezoo-mirror.yaml`` written beside the files lists full checksums for
people who want to adopt them, and contains no credentials (the tree is
meant to be served).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .disk import store_errors, write_text_atomic
from .export import place
from .hashing import hash_file
from .manifest import Artifact
from .urls import redact, url_key

if TYPE_CHECKING:
    from .api import Zoo

MIRROR_MANIFEST = "densezoo-mirror.yaml"


def entry_json(art: Artifact, digests: dict[str, Any], url: str, mirrors: list[str]) -> str:
    """One manifest entry as a JSON object: YAML reads it as a flow mapping, and JSON
    quoting is always safe (no YAML type guessing on hex digests or names)."""
    fields = {"name": art.name, "kind": art.kind, "url": redact(url), "md5": digests.get("md5"),
              "sha256": digests.get("sha256"), "size": digests.get("size"),
              "mirrors": [redact(m) for m in mirrors] or None, "md5_prefix": art.md5_prefix,
              "description": art.description, "filename": art.filename}
    return json.dumps({k: v for k, v in fields.items() if v is not None})


def known_digests(zoo: "Zoo", art: Artifact, path: Path) -> dict[str, Any]:
    """md5, sha256 and size of a verified cached file (hashing it if the store lacks one)."""
    meta = zoo.store.read_meta(art) or {}
    if meta.get("md5") and meta.get("sha256") and zoo.store.memo_valid(art, meta):
        return {"md5": meta["md5"], "sha256": meta["sha256"], "size": meta["size"]}
    return hash_file(path).as_dict()


def mirror_build(zoo: "Zoo", directory: Path, names: Iterable[str] | None,
                 base_url: str | None = None, link: str = "hardlink") -> Path:
    """Write ``<dir>/<host>/<path>`` for each artifact plus ``densezoo-mirror.yaml``."""
    arts = zoo.resolve(names) if names else list(zoo.catalog.artifacts)
    lines = ["# written by `densezoo mirror build`: every checksum below was verified",
             "schema: 1", "zoo: mirror", "artifacts:"]
    for art in arts:
        src = zoo.fetch(art).path
        key = url_key(art.url)
        dest = directory.joinpath(*key)
        with store_errors("build the mirror", dest.parent):
            place(src, dest, link, force=True)
        digests = known_digests(zoo, art, src)
        if art.md5_url:        # the sidecar too, for tools that read it beside the file
            side = directory.joinpath(*url_key(art.md5_url))
            side.parent.mkdir(parents=True, exist_ok=True)
            side.write_text(f"{digests['md5']}  {art.file_name}\n")
        url = art.url if base_url is None else base_url.rstrip("/") + "/" + "/".join(key)
        lines.append("  - " + entry_json(art, digests, url, [art.url] if base_url else []))
    out = directory / MIRROR_MANIFEST
    write_text_atomic(out, "\n".join(lines) + "\n")     # the tree may be served live
    return out
