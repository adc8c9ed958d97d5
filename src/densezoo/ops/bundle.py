"""Air-gapped transfer: a tar of verified files, a manifest subset and an md5 list.

A bundle's bytes are checked again on import, against the bundle's own
checksums and against any the local manifests publish, and go through the
same ``Intake`` as a download (pickle scan included): a bundle is as untrusted
as any mirror.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import uuid
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Iterable

from ..disk import store_errors, write_text_atomic
from ..errors import BundleError, DensezooError, PolicyError, StoreError
from ..hashing import ALGORITHMS, CHUNK, Expected, StreamHasher
from ..manifest import Artifact, parse_manifest
from .mirror import entry_json, known_digests
from ..results.share import ImportResult
from ..store.trust import declared, has_full, voucher_for
from ..urls import redact, url_key

if TYPE_CHECKING:
    from ..core import Core

BUNDLE_MANIFEST = "densezoo-bundle.yaml"


def bundle(core: "Core", names: Iterable[str], out: Path) -> list[str]:
    """Write a tar with the verified files, a manifest subset and an md5 list."""
    arts = core.resolve(names)
    lines = ["schema: 1", "zoo: bundle", "artifacts:"]
    sums = []
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    paths = [(art, core.fetch(art).path) for art in arts]     # fetched before anything is written
    try:
        with store_errors("write the bundle", out.parent), tarfile.open(tmp, "w") as tar:
            for art, src in paths:
                digests = known_digests(core, art, src)
                arc = "files/" + "/".join(url_key(art.url))
                tar.add(src, arcname=arc)
                lines.append("  - " + entry_json(art, digests, art.url, list(art.mirrors)))
                sums.append(f"{digests['md5']}  {arc}")
            for name, text in ((BUNDLE_MANIFEST, "\n".join(lines) + "\n"),
                               ("MD5SUMS", "\n".join(sums) + "\n")):
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        with store_errors("write the bundle", out.parent):
            os.replace(tmp, out)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return [a.name for a in arts]


MAX_BUNDLE_MANIFEST = 16 * 1024 * 1024   # a manifest of ~50,000 entries; read into memory


def import_bundle(core: "Core", tar_path: Path) -> tuple[list[ImportResult], Path]:
    """Add a bundle's files to the store, each admitted only if right and safe.

    Every entry is attempted, and each gets its own result (imported,
    already-cached or failed, with the error): one bad file neither hides the
    others nor stops them.  Returns the results and where the bundle's manifest was
    saved; it loads automatically from then on (``Catalog.load``'s ``imported``).
    """
    results = []
    try:
        tar = tarfile.open(tar_path)
    except tarfile.TarError:
        raise BundleError(str(tar_path), "not a tar archive",
                          hint="pass a .tar written by `densezoo bundle`") from None
    except OSError as e:
        raise StoreError(f"cannot read {tar_path}: {e.strerror or e}", path=str(tar_path),
                         hint="check the path and its permissions") from None
    with tar:
        text = _read_manifest(tar, tar_path)
        manifest = parse_manifest(text, f"{tar_path}:{BUNDLE_MANIFEST}")
        saved = core.store.layout.imported_dir / f"{tar_path.stem}.yaml"
        with store_errors("save the bundle's manifest", saved.parent):
            saved.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_text_atomic(saved, text)
        for art in manifest.artifacts:
            try:
                results.append(_import_entry(core, tar, tar_path, art))
            except DensezooError as e:
                results.append(ImportResult(art.name, core.store.path_for(art), "failed", e))
    return results, saved


def _read_manifest(tar: tarfile.TarFile, tar_path: Path) -> str:
    try:
        member = tar.getmember(BUNDLE_MANIFEST)
    except KeyError:
        raise BundleError(str(tar_path), f"no {BUNDLE_MANIFEST} inside: this tar is not a "
                          "densezoo bundle", hint="pass a .tar written by `densezoo bundle`"
                          " (for files of your own: `densezoo manifest add FILE`)"
                          ) from None
    if not member.isfile() or member.size > MAX_BUNDLE_MANIFEST:
        raise BundleError(str(tar_path), f"{BUNDLE_MANIFEST} is not a regular file of at most "
                                           f"{MAX_BUNDLE_MANIFEST // 2**20} MiB")
    f = tar.extractfile(member)
    try:
        assert f is not None
        return f.read(MAX_BUNDLE_MANIFEST + 1).decode("utf-8")
    except (AssertionError, UnicodeDecodeError, OSError, tarfile.TarError):
        raise BundleError(str(tar_path), f"{BUNDLE_MANIFEST} is not readable UTF-8") from None


def _import_entry(core: "Core", tar: tarfile.TarFile, tar_path: Path,
                  art: Artifact) -> ImportResult:
    arc = "files/" + "/".join(url_key(art.url))
    if ".." in PurePosixPath(arc).parts:
        raise BundleError(str(tar_path), "unsafe path in bundle", entry=art.name)
    local = _local_twin(core, art)
    expected = declared(art)
    weak = False
    if local is not None:          # the local manifest's published values must hold too
        mine = core.trust.expected(local)
        expected = expected.merged(mine)
        # A bundle is transport, like a mirror: its own md5 vouches for nothing the
        # local manifest only checks by a prefix.
        weak = not has_full(mine)
        if weak and core.settings.strict:
            raise PolicyError(f"{art.name}: the local manifest checks it by an md5 prefix at "
                              "most, and a bundle's own checksums are no trust root; strict "
                              "mode refuses it", hint="fetch it from its own URL instead")
    target = local or art
    if core.store.cached_path(target) is not None:
        return ImportResult(art.name, core.store.path_for(target), "already-cached")
    try:
        member = tar.getmember(arc)
        src = tar.extractfile(member) if member.isfile() else None
    except KeyError:
        src = None
    if src is None:
        raise DensezooError(f"bundle {tar_path} lists {art.name} but holds no file {arc}",
                            hint="the bundle is incomplete; write it again with "
                                 "`densezoo bundle`")
    path = _import_one(core, target, src, expected, str(tar_path))
    warnings = (f"{art.name}: copy-pinned -- only the bundle {tar_path} vouched for it (the "
                "local manifest checks an md5 prefix at most)",) if weak else ()
    return ImportResult(art.name, path, "imported", warnings=warnings)


def _local_twin(core: "Core", art: Artifact) -> Artifact | None:
    for a in core.catalog.artifacts:
        if url_key(a.url) == url_key(art.url):
            return a
    return None


def _import_one(core: "Core", art: Artifact, src: IO[bytes], expected: Expected,
                origin: str) -> Path:
    if not expected.has_checksum:
        raise DensezooError(f"bundle entry {art.name} carries no checksum",
                            hint="bundles written by `densezoo bundle` always do")
    partial = core.store.claim_partial(art)
    hasher = StreamHasher(ALGORITHMS)
    try:
        with store_errors("import", partial.path.parent), partial.open(0) as f:
            while chunk := src.read(CHUNK):
                f.write(chunk)
                hasher.update(chunk)
        digests = hasher.finish()
        return core.intake.admit(
            art, partial, digests, expected, url=redact(art.url),
            validators={"etag": None, "last_modified": None}, origin=origin,
            record=core.trust.record_of(art),
            voucher=voucher_for("copy", f"bundle {origin}", digests),
            mismatch_hint="the bundle is damaged or was altered; nothing was imported for "
                          "this artifact").path
    finally:
        hasher.abort()
        partial.discard()
