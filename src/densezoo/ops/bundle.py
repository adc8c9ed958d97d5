"""Air-gapped transfer: a tar of verified files, a manifest subset and an md5 list.

A bundle's bytes are checked again on import, against the bundle's own
checksums and against any the local manifests publish, and go through the
same ``Intake`` as a download (pickle scan included): a bundle is as untrusted
as any mirror.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import lzma
import os
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Iterable, Iterator

from ..disk import store_errors, sweep_temps, temp_path, write_text_under
from ..errors import BundleError, DensezooError, PolicyError, StoreError
from ..hashing import ALGORITHMS, CHUNK, Expected, StreamHasher
from ..catalog import claim_index, clashes
from ..manifest import Artifact, Manifest, parse_manifest
from ..progress import NoProgress, Progress, ProgressArg, Reading, progress_for
from .mirror import entry_json, known_digests, publishable
from ..results.share import ImportResult
from ..store.trust import declared, has_full, voucher_for
from ..urls import redact, url_key

if TYPE_CHECKING:
    from ..core import Core

BUNDLE_MANIFEST = "densezoo-bundle.yaml"


def bundle(core: "Core", names: Iterable[str], out: Path,
           progress: ProgressArg = None) -> list[str]:
    """Write a tar with the verified files, a manifest subset and an md5 list; the bytes
    fetched and copied into it are reported on ``progress``."""
    arts = core.resolve(names)
    lines = ["schema: 1", "zoo: bundle", "artifacts:"]
    sums = []
    sweep_temps(out.parent, out.name)       # a killed bundle's leftover (its writer is gone)
    tmp = temp_path(out)
    paths = [(art, core.fetch(art, progress=progress).path)   # fetched before anything
             for art in arts]                                  # is written
    try:
        with store_errors("write the bundle", out.parent), tarfile.open(tmp, "w") as tar:
            for art, src in paths:
                digests = known_digests(core, art, src)
                arc = "files/" + "/".join(url_key(art.url))
                _add(tar, src, arc, progress_for(progress, art))
                lines.append("  - " + entry_json(art, publishable(core, art, digests), art.url,
                                                 list(art.mirrors)))
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


def _add(tar: tarfile.TarFile, src: Path, arc: str, progress: Progress) -> None:
    """``tar.add`` of one regular file, its bytes reported (``copy <file>``)."""
    info = tar.gettarinfo(src, arcname=arc)
    progress.start(f"copy {src.name}", info.size)
    try:
        with open(src, "rb") as f:
            tar.addfile(info, Reading(f, progress))
    finally:
        progress.close()


MAX_BUNDLE_MANIFEST = 16 * 1024 * 1024   # a manifest of ~50,000 entries; read into memory


def import_bundle(core: "Core", tar_path: Path,
                  progress: ProgressArg = None) -> tuple[list[ImportResult], Path]:
    """Add a bundle's files to the store, each admitted only if right and safe.

    Every entry is attempted, and each gets its own result (imported,
    already-cached or failed, with the error): one bad file neither hides the
    others nor stops them.  Returns the results and where the bundle's manifest was
    saved; it loads automatically from then on (``Catalog.load``'s ``imported``).
    The bytes read from the bundle are reported on ``progress`` (``import <file>``).
    """
    with _open_bundle(core, tar_path) as tar:
        return _import_all(core, tar, tar_path, progress)


@contextlib.contextmanager
def _open_bundle(core: "Core", tar_path: Path) -> Iterator[tarfile.TarFile]:
    """The bundle through the guarded tar reader ``--extract`` uses (``open_tar``): a
    header record declaring a huge long name or PAX body is refused before it is read
    into memory (a 0.3 MB bundle took plain ``tarfile`` to ~344 MB)."""
    from ..content.tarstream import Limits, open_tar

    s = core.settings
    limits = Limits(max_bytes=s.max_unpack_bytes, max_members=s.max_unpack_members)
    try:
        size = tar_path.stat().st_size
        with open_tar(tar_path, limits.bytes_for(size), limits.max_members) as tar:
            yield tar
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile):
        raise BundleError(str(tar_path), "not a readable tar archive",
                          hint="pass a .tar written by `densezoo bundle`") from None
    except OSError as e:
        if isinstance(e, DensezooError):
            raise
        raise StoreError(f"cannot read {tar_path}: {e.strerror or e}", path=str(tar_path),
                         hint="check the path and its permissions") from None


def _import_all(core: "Core", tar: tarfile.TarFile, tar_path: Path,
                progress: ProgressArg = None) -> tuple[list[ImportResult], Path]:
    results = []
    text = _read_manifest(tar, tar_path)
    manifest = parse_manifest(text, f"{tar_path}:{BUNDLE_MANIFEST}")
    _refuse_shadowing(core, manifest)
    lay = core.store.layout
    saved = lay.private_folder(lay.imported_dir) / f"{tar_path.stem}.yaml"
    with store_errors("save the bundle's manifest", saved.parent):
        write_text_under(lay.root, saved, text, private=True)   # fds: no link followed
    sums = _read_sums(tar)
    for art in manifest.artifacts:
        try:
            results.append(_import_entry(core, tar, tar_path, art, sums,
                                         progress_for(progress, art)))
        except DensezooError as e:
            results.append(ImportResult(art.name, core.store.path_for(art), "failed", e))
    return results, saved


def _refuse_shadowing(core: "Core", manifest: Manifest) -> None:
    """Refuse the whole import, before anything is saved or admitted, when an entry claims
    a key a loaded entry (shipped, your own, imported earlier) answers to: a name, alias,
    file name, URL, store file or config (``catalog.claims``).  Otherwise `fetch <URL>`,
    `config` and detectron2's PathManager would hand out the bundle's bytes where they
    asked for the shipped file.  An entry with a loaded entry's own URL is a copy of that
    entry, not a clash: its bytes are checked against the local manifest and its entry
    never loads (``catalog._imported``)."""
    taken = claim_index(core.catalog.artifacts)
    for art in manifest.artifacts:
        found = [] if _local_twin(core, art) is not None else clashes(art, taken)
        if found:
            what, other = found[0]
            more = f" (and {len(found) - 1} more key(s))" if len(found) > 1 else ""
            raise BundleError(manifest.source, f"claims {what}{more}, which "
                              f"{other.zoo}:{other.name} ({other.source}) answers to: an "
                              "imported manifest never shadows a loaded entry; nothing was "
                              "imported", entry=art.name,
                              hint="rename the entry and give it its own URL and config in "
                                   "the bundle, or, if you trust it to replace "
                                   f"{other.name}, load that manifest yourself with "
                                   "--manifest")


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
        data = b""
        while len(data) <= MAX_BUNDLE_MANIFEST and (chunk := f.read(CHUNK)):
            data += chunk
        return data.decode("utf-8")
    except (AssertionError, UnicodeDecodeError, OSError, tarfile.TarError):
        raise BundleError(str(tar_path), f"{BUNDLE_MANIFEST} is not readable UTF-8") from None


def _read_sums(tar: tarfile.TarFile) -> dict[str, str]:
    """The bundle's MD5SUMS (``md5  files/<host>/<path>``): what the bundler's bytes were,
    for entries whose manifest line may not publish it (a copy's digest never is)."""
    from ..hashing import is_hex

    try:
        f = tar.extractfile(tar.getmember("MD5SUMS"))
        text = f.read(MAX_BUNDLE_MANIFEST).decode("utf-8") if f else ""
    except (KeyError, OSError, UnicodeDecodeError, tarfile.TarError):
        return {}
    out = {}
    for line in text.splitlines():
        md5, _, arc = line.partition("  ")
        if is_hex(md5, 32) and arc:
            out[arc] = md5
    return out


def _import_entry(core: "Core", tar: tarfile.TarFile, tar_path: Path,
                  art: Artifact, sums: dict[str, str],
                  progress: Progress | None = None) -> ImportResult:
    arc = "files/" + "/".join(url_key(art.url))
    if ".." in PurePosixPath(arc).parts:
        raise BundleError(str(tar_path), "unsafe path in bundle", entry=art.name)
    local = _local_twin(core, art)
    expected = declared(art)
    weak = False
    if not has_full(expected) and sums.get(arc):
        # The bundler could not publish a digest (its bytes were a copy's): the MD5SUMS
        # line still checks the transport, and the bytes are a copy's word here too.
        expected = expected.merged(Expected(md5=sums[arc], sources={"md5": "the bundle"}))
        weak = True
    if local is not None:          # the local manifest's published values must hold too
        mine = core.trust.expected(local)
        expected = expected.merged(mine)
        # A bundle is transport, like a mirror: its own md5 vouches for nothing the
        # local manifest only checks by a prefix.
        weak = weak or not has_full(mine)
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
    path = _import_one(core, target, src, expected, str(tar_path),
                       progress or NoProgress(), member.size)
    warnings = (f"{art.name}: copy-pinned -- only the bundle {tar_path} vouched for it "
                "(nothing stronger than an md5 prefix is published for it)",) if weak else ()
    return ImportResult(art.name, path, "imported", warnings=warnings)


def _local_twin(core: "Core", art: Artifact) -> Artifact | None:
    for a in core.catalog.artifacts:
        if url_key(a.url) == url_key(art.url):
            return a
    return None


def _import_one(core: "Core", art: Artifact, src: IO[bytes], expected: Expected,
                origin: str, progress: Progress, size: int) -> Path:
    if not expected.has_checksum:
        raise DensezooError(f"bundle entry {art.name} carries no checksum",
                            hint="bundles written by `densezoo bundle` always do")
    partial = core.store.claim_partial(art)
    hasher = StreamHasher(ALGORITHMS)
    progress.start(f"import {art.file_name}", size)
    try:
        with store_errors("import", partial.path.parent), partial.open(0) as f:
            while chunk := src.read(CHUNK):
                f.write(chunk)
                hasher.update(chunk)
                progress.advance(len(chunk))
        digests = hasher.finish()
        return core.intake.admit(
            art, partial, digests, expected, url=redact(art.url),
            validators={"etag": None, "last_modified": None}, origin=origin,
            record=core.trust.record_of(art),
            voucher=voucher_for("copy", f"bundle {origin}", digests),
            mismatch_hint="the bundle is damaged or was altered; nothing was imported for "
                          "this artifact").path
    finally:
        progress.close()
        hasher.abort()
        partial.discard()
