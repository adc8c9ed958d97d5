"""Getting verified files out of the store: export, static mirrors, air-gapped bundles.

All three start from verified copies (``Zoo.fetch``), so what leaves the store is
what was checked.  A bundle's import checks every file again, against the
bundle's own checksums and against any the local manifests publish, before it
is published into the store.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Iterable

from .errors import ChecksumMismatchError, DensezooError, ManifestError
from .hashing import ALGORITHMS, CHUNK, Expected, StreamHasher
from .manifest import Artifact, parse_manifest
from .store import store_errors, write_text_atomic
from .urls import url_key

if TYPE_CHECKING:
    from .api import Zoo

LINK_MODES = ("symlink", "hardlink", "copy")
# Where the DensePose v1 code looks for things, relative to the repo root.
DENSEPOSE_LAYOUT = {
    "densepose_coco_2014_train": "DensePoseData/DensePose_COCO",
    "densepose_coco_2014_valminusminival": "DensePoseData/DensePose_COCO",
    "densepose_coco_2014_minival": "DensePoseData/DensePose_COCO",
    "densepose_coco_2014_test": "DensePoseData/DensePose_COCO",
    "densepose_uv_data": "DensePoseData",          # the tarball holds UV_data/
    "densepose_eval_data": "DensePoseData",        # the tarball holds eval_data/
}


@dataclass(frozen=True)
class ExportResult:
    name: str
    path: Path
    mode: str                 # symlink | hardlink | copy | unchanged

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "mode": self.mode}


def _place(src: Path, dest: Path, mode: str, force: bool) -> str:
    """Link or copy src to dest atomically; falls back to a copy where links fail."""
    if dest.is_symlink() and os.path.realpath(dest) == str(src.resolve()):
        return "unchanged"
    if dest.exists() and not dest.is_symlink() and dest.is_file() and (
            os.path.samefile(src, dest) or _same_bytes(src, dest)):
        return "unchanged"
    if (dest.exists() or dest.is_symlink()) and not force:
        raise DensezooError(f"{dest} already exists and is not this artifact's file",
                            hint="pass --force to replace it, or export somewhere else")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    used = mode
    try:
        if mode == "symlink":
            try:
                os.symlink(src.resolve(), tmp)
            except OSError:
                used = "copy"
        elif mode == "hardlink":
            try:
                os.link(src, tmp)
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                used = "copy"
        if used == "copy":
            shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
    return used


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    from .hashing import hash_file

    return hash_file(a, ("sha256",)).sha256 == hash_file(b, ("sha256",)).sha256


def export(zoo: "Zoo", names: Iterable[str], to: Path, *, link: str = "symlink",
           layout: str | None = None, force: bool = False) -> list[ExportResult]:
    """Put verified copies (links by default) of artifacts into ``to``."""
    if link not in LINK_MODES:
        raise DensezooError(f"unknown link mode {link!r}", hint="use symlink, hardlink or copy")
    arts = zoo.resolve(names)
    counts: dict[str, int] = {}
    for a in arts:
        counts[a.file_name] = counts.get(a.file_name, 0) + 1
    out = []
    for art in arts:
        sub = DENSEPOSE_LAYOUT.get(art.name, "") if layout == "densepose" else ""
        if layout == "densepose" and sub and art.kind == "data":
            unpacked = zoo.extract(art).path
            for child in sorted(unpacked.iterdir()):
                if child.name.startswith(".densezoo"):
                    continue
                dest = to / sub / child.name
                if child.is_dir():
                    mode = _place_tree(child, dest, link, force)
                else:
                    mode = _place(child, dest, link, force)
                out.append(ExportResult(art.name, dest, mode))
            continue
        src = zoo.fetch(art).path
        folder = to / sub if sub else to
        if counts[art.file_name] > 1:       # two model_final.pkl: one folder each
            folder = folder / art.name
        dest = folder / art.file_name
        with store_errors("export", dest.parent):
            out.append(ExportResult(art.name, dest, _place(src, dest, link, force)))
    return out


def _place_tree(src: Path, dest: Path, mode: str, force: bool) -> str:
    if mode == "symlink":
        return _place(src, dest, "symlink", force)
    used = mode
    for p in src.rglob("*"):
        if p.is_file():
            used = _place(p, dest / p.relative_to(src), mode, force)
    return used


# -- mirrors ----------------------------------------------------------------------------

def _entry_yaml(art: Artifact, digests: dict[str, Any], url: str, mirrors: list[str]) -> str:
    fields = {"name": art.name, "kind": art.kind, "url": url, "md5": digests.get("md5"),
              "sha256": digests.get("sha256"), "size": digests.get("size"),
              "mirrors": mirrors or None, "md5_prefix": art.md5_prefix,
              "description": art.description, "filename": art.filename}
    return json.dumps({k: v for k, v in fields.items() if v is not None})


def _known_digests(zoo: "Zoo", art: Artifact, path: Path) -> dict[str, Any]:
    """md5, sha256 and size of a verified cached file (hashing it if the store lacks one)."""
    meta = zoo.store.read_meta(art) or {}
    if meta.get("md5") and meta.get("sha256") and zoo.store.memo_valid(art, meta):
        return {"md5": meta["md5"], "sha256": meta["sha256"], "size": meta["size"]}
    from .hashing import hash_file

    return hash_file(path).as_dict()


def mirror_build(zoo: "Zoo", directory: Path, names: Iterable[str] | None,
                 base_url: str | None = None, link: str = "hardlink") -> Path:
    """A static tree ``<dir>/<host>/<path>`` any web server can serve, plus a manifest.

    Point clients at it with ``DENSEZOO_MIRROR=<base url>``; the written manifest
    (``densezoo-mirror.yaml``) lists each file at ``base_url`` with full checksums
    and the upstream URL as a fallback, so a mirror also publishes the pins.
    """
    arts = zoo.resolve(names) if names else list(zoo.catalog.artifacts)
    lines = ["# written by `densezoo mirror build`: every checksum below was verified",
             "schema: 1", "zoo: mirror", "artifacts:"]
    for art in arts:
        src = zoo.fetch(art).path
        key = url_key(art.url)
        dest = directory.joinpath(*key)
        with store_errors("build the mirror", dest.parent):
            _place(src, dest, link, force=True)
        digests = _known_digests(zoo, art, src)
        if art.md5_url:        # serve the sidecar too: clients ask the mirror for it first
            side = directory.joinpath(*url_key(art.md5_url))
            side.parent.mkdir(parents=True, exist_ok=True)
            side.write_text(f"{digests['md5']}  {art.file_name}\n")
        url = art.url if base_url is None else base_url.rstrip("/") + "/" + "/".join(key)
        lines.append("  - " + _entry_yaml(art, digests, url, [art.url] if base_url else []))
    out = directory / "densezoo-mirror.yaml"
    write_text_atomic(out, "\n".join(lines) + "\n")     # the tree may be served live
    return out


# -- bundles ----------------------------------------------------------------------------

BUNDLE_MANIFEST = "densezoo-bundle.yaml"


def bundle(zoo: "Zoo", names: Iterable[str], out: Path) -> list[str]:
    """Write a tar with the verified files, a manifest subset and an md5 list."""
    arts = zoo.resolve(names, with_deps=False)
    lines = ["schema: 1", "zoo: bundle", "artifacts:"]
    sums = []
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tarfile.open(tmp, "w") as tar:
            for art in arts:
                src = zoo.fetch(art).path
                digests = _known_digests(zoo, art, src)
                arc = "files/" + "/".join(url_key(art.url))
                tar.add(src, arcname=arc)
                lines.append("  - " + _entry_yaml(art, digests, art.url, list(art.mirrors)))
                sums.append(f"{digests['md5']}  {arc}")
            for name, text in ((BUNDLE_MANIFEST, "\n".join(lines) + "\n"),
                               ("MD5SUMS", "\n".join(sums) + "\n")):
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return [a.name for a in arts]


@dataclass(frozen=True)
class ImportResult:
    name: str
    path: Path
    action: str               # imported | already-cached

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "action": self.action}


def import_bundle(zoo: "Zoo", tar_path: Path) -> tuple[list[ImportResult], Path]:
    """Add a bundle's files to the store, each verified before it is published.

    Returns the results and where the bundle's manifest was saved (pass it to
    ``--manifest`` for artifacts the shipped manifests do not know).
    """
    results = []
    try:
        tar = tarfile.open(tar_path)
    except (OSError, tarfile.TarError) as e:
        raise DensezooError(f"cannot read bundle {tar_path}: {e}") from None
    with tar:
        try:
            member = tar.getmember(BUNDLE_MANIFEST)
            text = tar.extractfile(member).read().decode("utf-8")  # type: ignore[union-attr]
        except (KeyError, AttributeError, UnicodeDecodeError):
            raise ManifestError(str(tar_path), f"no readable {BUNDLE_MANIFEST} inside") from None
        manifest = parse_manifest(text, f"{tar_path}:{BUNDLE_MANIFEST}")
        saved = zoo.store.root / "imported" / f"{tar_path.stem}.yaml"
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(text)
        for art in manifest.artifacts:
            arc = "files/" + "/".join(url_key(art.url))
            if ".." in PurePosixPath(arc).parts:
                raise ManifestError(str(tar_path), "unsafe path in bundle", entry=art.name)
            local = _local_twin(zoo, art)
            expected = zoo.published(art)
            if local is not None:          # the local manifest's published values must hold too
                expected = expected.merged(zoo.expected(local))
            target = local or art
            if zoo.store.cached_path(target) is not None:
                results.append(ImportResult(art.name, zoo.store.path_for(target),
                                            "already-cached"))
                continue
            try:
                src = tar.extractfile(arc)
            except KeyError:
                src = None
            if src is None:
                raise DensezooError(f"bundle {tar_path} lists {art.name} but lacks {arc}")
            results.append(ImportResult(art.name, _import_one(zoo, target, src, expected,
                                                              str(tar_path)), "imported"))
    return results, saved


def _local_twin(zoo: "Zoo", art: Artifact) -> Artifact | None:
    for a in zoo.catalog.artifacts:
        if url_key(a.url) == url_key(art.url):
            return a
    return None


def _import_one(zoo: "Zoo", art: Artifact, src, expected: Expected, origin: str) -> Path:
    if not expected.has_checksum:
        raise DensezooError(f"bundle entry {art.name} carries no checksum",
                            hint="bundles written by `densezoo bundle` always do")
    partial = zoo.store.claim_partial(art)
    hasher = StreamHasher(ALGORITHMS)
    try:
        with store_errors("import", partial.path.parent), partial.open(0) as f:
            while chunk := src.read(CHUNK):
                f.write(chunk)
                hasher.update(chunk)
        digests = hasher.finish()
        bad = expected.mismatch(digests)
        if bad:
            raise ChecksumMismatchError(f"{art.name} in {origin}", *bad,
                                        hint="the bundle is damaged or was altered; "
                                             "nothing was imported for this artifact")
        path = zoo.store.publish(art, partial, digests, url=art.url,
                                 headers={"etag": None, "last_modified": None})
        if zoo.needs_pin(art):
            zoo.store.write_pin(art, digests, art.url)
        return path
    finally:
        hasher.abort()
        partial.discard()

