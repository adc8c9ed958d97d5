"""``densezoo ledger export`` and ``verify --signature``: a ledger of the store, signed
and checked offline in the OpenSSF model-signing format.

The ledger (``ledger.json``) lists files by store-relative path with their size, md5,
sha256 and vouchers (who vouched for the bytes).  model-signing signs a *folder*: its
payload carries one sha256 per file and nothing else (md5, sizes and vouchers cannot
travel in it, and its public API takes no prebuilt digests).  So both sides stage the
same folder in a temporary directory -- ``ledger.json`` plus one symlink per listed
file, named by its store-relative path and pointing into the store -- and hand it to
model-signing with symlinks allowed: the signature covers every file's bytes *and* the
ledger that says what they are.  Signing and checking never use the network (the
key-based method); model-signing hashes the files itself.

model-signing is an optional dependency (``pip install 'densezoo[sign]'``), imported
only here and only when signing or checking.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Iterable

from ..disk import store_errors, utc_now, write_text_atomic
from ..errors import (ChecksumMismatchError, DensezooError, NotCachedError, PolicyError,
                      UsageError)
from ..hashing import ALGORITHMS, Digests, hash_file
from ..manifest import Artifact, is_plain_name
from ..results import VerifyStatus

if TYPE_CHECKING:
    from ..core import Core

LEDGER_FORMAT = "densezoo-ledger"
LEDGER_SCHEMA = 1
LEDGER_NAME = "ledger.json"          # its name inside the signed folder
STAGE_NAME = "densezoo-ledger"       # the signed folder's name (the payload's subject)


@dataclass(frozen=True)
class LedgerFile:
    """One file of the ledger: where it sits in the store and what its bytes are."""

    path: str                        # store-relative, e.g. files/<host>/<path>/<file>
    name: str                        # the entry it belongs to
    size: int
    md5: str
    sha256: str
    vouchers: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "name": self.name, "size": self.size, "md5": self.md5,
                "sha256": self.sha256, "vouchers": [dict(v) for v in self.vouchers]}


@dataclass(frozen=True)
class LedgerExport:
    """What ``ledger export`` wrote: the ledger, its signature (if signed), the files."""

    ledger: Path
    signature: Path | None
    files: tuple[LedgerFile, ...]


@dataclass(frozen=True)
class LedgerCheck:
    """A signed ledger that checked out: every file it lists is in the store with the
    bytes that were signed (a failure is raised, never returned)."""

    ledger: Path
    signature: Path
    files: tuple[LedgerFile, ...]
    root: Path                       # the store root the paths are relative to

    def to_dict(self) -> dict[str, Any]:
        """``verify --signature --json``'s items and counts, in verify's own shape."""
        items = [{"name": f.name, "state": "ok", "path": str(self.root / f.path),
                  "detail": f"sha256 {f.sha256} signed in {self.signature.name}",
                  "moved_to": None, "method": "signature", "quarantined": None,
                  "strength": None}          # the signer vouched; the store's word is apart
                 for f in self.files]
        return {"items": items, "counts": {"ok": len(items)}, "strengths": {}}


# -- vouchers --------------------------------------------------------------------------------

def vouchers(core: "Core", art: Artifact) -> tuple[dict[str, Any], ...]:
    """Who vouched for a stored file's bytes: the manifest entry's published checksums,
    then this user's trust record (origin, copy, adopted, hub-claim, structure), as
    ``info`` lists them (``store.record.listed``)."""
    from ..store.record import listed

    return listed(art, core.trust.record_of(art), core.manifest_kind(art))


# -- export ----------------------------------------------------------------------------------

def export(core: "Core", names: Iterable[str], out: Path, *, key: Path | None = None,
           signature: Path | None = None) -> LedgerExport:
    """Write the ledger of the named cached files (all of the store's with none) to
    ``out``; with ``key`` (an EC private key, PEM) also sign it with model-signing to
    ``signature`` (default: ``out`` with the suffix ``.sig``)."""
    names = list(names)
    if names:
        arts = core.resolve(names)
        for a in arts:
            if core.store.cached_path(a) is None:
                raise NotCachedError(a.name, hint=f"run `densezoo fetch {a.name}` first: a "
                                                  "ledger lists only files in the store")
    else:
        arts = [a for a in core.stored()[0] if core.store.cached_path(a) is not None]
    root = core.store.root
    files = []
    for art in arts:
        path = core.store.cached_path(art)
        assert path is not None
        d = _checked_digests(core, art)
        files.append(LedgerFile(path.relative_to(root).as_posix(), art.name, d.size,
                                str(d.md5), str(d.sha256), vouchers(core, art)))
    files.sort(key=lambda f: f.path)
    text = json.dumps({"format": LEDGER_FORMAT, "schema": LEDGER_SCHEMA,
                       "created": utc_now(), "files": [f.to_dict() for f in files]},
                      indent=1, sort_keys=True) + "\n"
    with store_errors("write the ledger", out.parent):
        write_text_atomic(out, text)
    if key is None:
        return LedgerExport(out, None, tuple(files))
    signature = signature or out.with_suffix(".sig")
    _sign(root, files, text.encode(), key, signature)
    return LedgerExport(out, signature, tuple(files))


def _checked_digests(core: "Core", art: Artifact) -> Digests:
    """size, md5 and sha256 of a cached file that still matches what vouches for it
    (published checksums or its pin): the store's memo while the file is unchanged since
    its last full hash, else one pass for all three, recorded for the next export.  A
    ledger never lists bytes its store would call corrupt."""
    expected = core.trust.expected(art)
    check = core.verifier.check(art, expected, quick=True, want=ALGORITHMS)
    if check.status is VerifyStatus.CORRUPT:
        alg, want, got = expected.mismatch(check.digests) or ("checksum", "?", "?")
        raise ChecksumMismatchError(f"{art.name} ({core.store.path_for(art)})", alg, want,
                                    got, path=str(core.store.path_for(art)),
                                    hint="the store's copy is not the file its manifest or "
                                         "pin vouches for; `densezoo verify` moves it aside, "
                                         f"`densezoo fetch {art.name}` gets a good copy")
    assert check.digests is not None
    return check.digests


def _sign(root: Path, files: list[LedgerFile], ledger: bytes, key: Path,
          signature: Path) -> None:
    ms = _model_signing()
    if not key.is_file():
        raise UsageError(f"no private key at {key}", hint="pass an EC P-256 private key "
                                                         "(PEM) with --key")
    tmp_sig = signature.with_name(f".{signature.name}.tmp")
    with tempfile.TemporaryDirectory(prefix="densezoo-ledger-") as tmp:
        stage = _stage(Path(tmp), root, files, ledger)
        try:
            with contextlib.redirect_stdout(io.StringIO()), \
                    store_errors("write the signature", signature.parent):
                ms.signing.Config().use_elliptic_key_signer(private_key=key) \
                    .set_hashing_config(_hashing(ms)).sign(stage, tmp_sig)
        except DensezooError:
            raise
        except (ValueError, TypeError) as e:
            raise UsageError(f"cannot sign with {key}: {e}", hint=(
                "model-signing's key method takes an EC private key (P-256, P-384 or P-521) "
                "in PEM, e.g. `openssl ecparam -name prime256v1 -genkey -noout -out "
                "key.pem`")) from None
    try:
        signed = _signed_digests(tmp_sig.read_bytes())
        # The files were hashed twice (by the store and by model-signing): a file that
        # changed in between would leave a ledger saying other bytes than were signed.
        for f in files:
            if signed.get(f.path) != f.sha256:
                raise ChecksumMismatchError(f"{f.name} ({f.path})", "sha256", f.sha256,
                                            signed.get(f.path) or "nothing",
                                            hint="the file changed while the ledger was "
                                                 "signed; export it again")
        with store_errors("write the signature", signature.parent):
            os.replace(tmp_sig, signature)
    finally:
        with contextlib.suppress(OSError):
            tmp_sig.unlink()


# -- check -----------------------------------------------------------------------------------

def check(core: "Core", signature: Path, key: Path, ledger: Path | None = None) -> LedgerCheck:
    """Check, offline, a signed ledger against the store: the signature (model-signing,
    key-based) over the ledger and every file it lists, each found in the store with
    the bytes that were signed.  ``ledger`` defaults to ``signature`` with the suffix
    ``.json``.

    Raises ``PolicyError`` (exit 9) for a bad signature -- tampered, made with another
    key, or over another ledger -- and ``ChecksumMismatchError`` (exit 4) naming the
    first listed file (in ledger order) that is missing or holds other bytes."""
    ms = _model_signing()
    ledger = ledger or signature.with_suffix(".json")
    sig_bytes, ledger_bytes = _read(signature, "signature"), _read(ledger, "ledger")
    if not key.is_file():
        raise UsageError(f"no public key at {key}", hint="pass the signer's EC public key "
                                                         "(PEM) with --key")
    files = _parse(ledger_bytes, ledger)
    root = core.store.root
    for f in files:              # a link planted below the root is refused (exit 9)
        core.store.layout.check_no_links(root / f.path)
    with tempfile.TemporaryDirectory(prefix="densezoo-ledger-") as tmp:
        sig_copy = Path(tmp) / "ledger.sig"            # the bytes checked are the bytes read
        sig_copy.write_bytes(sig_bytes)
        stage = _stage(Path(tmp), root, files, ledger_bytes)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                ms.verifying.Config().use_elliptic_key_verifier(public_key=key) \
                    .set_hashing_config(_hashing(ms)).verify(stage, sig_copy)
        except ValueError as e:
            if not str(e).startswith("Signature mismatch"):
                raise _bad_signature(signature, key, e) from None
            # The signature itself is good; something it covers is not.
            _first_difference(root, files, ledger_bytes, _signed_digests(sig_bytes), ledger)
        except DensezooError:
            raise
        except Exception as e:  # noqa: BLE001 - InvalidSignature, a damaged bundle, ...
            raise _bad_signature(signature, key, e) from None
    return LedgerCheck(ledger, signature, tuple(files), root)


class SignedFileMissingError(ChecksumMismatchError):
    """A file the signed ledger lists that the store does not hold: exit 4, as for a
    file with other bytes (the store is not what was signed)."""

    def __init__(self, name: str, path: Path, expected: str) -> None:
        super().__init__(f"{name} ({path})", "sha256", expected, "no file", path=str(path),
                         hint=f"fetch it (`densezoo fetch {name}`) and check again")
        self.message = (f"{name} is in the signed ledger but not in the store: {path} "
                        f"(signed sha256 {expected})")


def _bad_signature(signature: Path, key: Path, e: Exception) -> PolicyError:
    if isinstance(e, json.JSONDecodeError):
        why = "not a model-signing signature file (not JSON)"
    else:
        why = str(e).strip() or f"the signature does not match ({type(e).__name__})"
    return PolicyError(f"bad signature {signature}: {why.splitlines()[0]}",
                       hint=f"it was not made with the private key of {key} over this "
                            "ledger, or it was altered; get the signature and ledger "
                            "again from the signer")


def _first_difference(root: Path, files: list[LedgerFile], ledger_bytes: bytes,
                      signed: dict[str, str], ledger: Path) -> None:
    """Raise for what made a good signature not match, in ledger order."""
    if signed.get(LEDGER_NAME) != hashlib.sha256(ledger_bytes).hexdigest():
        raise PolicyError(f"{ledger} is not the ledger that was signed",
                          hint="use the ledger.json written with the signature")
    for f in files:
        want = signed.get(f.path, f.sha256)
        path = root / f.path
        if not _present(path):
            raise SignedFileMissingError(f.name, path, want)
        actual = hash_file(path).sha256
        if actual != want:
            raise ChecksumMismatchError(f"{f.name} ({path})", "sha256", want, str(actual),
                                        path=str(path), hint=(
                                            "the store's copy is not the file that was "
                                            f"signed; `densezoo fetch --force {f.name}` "
                                            "replaces it"))
    raise PolicyError(f"the signature lists files {ledger} does not",
                      hint="use the ledger.json written with the signature")


# -- the signed folder -----------------------------------------------------------------------

def _stage(tmp: Path, root: Path, files: list[LedgerFile], ledger: bytes) -> Path:
    """The folder model-signing signs and checks: ledger.json plus a symlink per file
    present in the store, named by its store-relative path (a missing file is left
    out, so model-signing reports it missing)."""
    stage = tmp / STAGE_NAME
    stage.mkdir()
    (stage / LEDGER_NAME).write_bytes(ledger)
    for f in files:
        target = root / f.path
        if _present(target):
            link = stage / f.path
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.abspath(target), link)
    return stage


def _present(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _hashing(ms):
    """sha256 per file, symlinks followed.  ``set_allow_symlinks`` as well: model-signing
    1.1.1's ``hash()`` resets the serializer's flag from it, ignoring the one given to
    ``use_file_serialization``."""
    return ms.hashing.Config().use_file_serialization(
        hashing_algorithm="sha256", allow_symlinks=True).set_allow_symlinks(True)


def _signed_digests(signature: bytes) -> dict[str, str]:
    """The payload's resources (name -> sha256 hex) of a model-signing signature (a
    Sigstore bundle with a DSSE envelope holding an in-toto statement).  Read only
    after model-signing has checked the envelope, or to compare with what was just
    signed."""
    try:
        bundle = json.loads(signature)
        statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        return {str(r["name"]): str(r["digest"]) for r in statement["predicate"]["resources"]
                if r.get("algorithm") == "sha256"}
    except (ValueError, KeyError, TypeError) as e:
        raise PolicyError(f"not a model-signing signature ({e})") from None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read the {what} {path}: {e.strerror or e}",
                         hint="`densezoo ledger export -o ledger.json --key KEY` writes "
                              "ledger.json and ledger.sig") from None


def _parse(data: bytes, source: Path) -> list[LedgerFile]:
    """The ledger's files, each path a plain store-relative path under ``files/``.  The
    ledger is unauthenticated until the signature is checked: nothing in it is used
    but to name what to stage."""
    def bad(why: str) -> PolicyError:
        return PolicyError(f"{source} is not a densezoo ledger: {why}",
                           hint="pass the ledger.json written by `densezoo ledger export`")

    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise bad("not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != LEDGER_FORMAT \
            or not isinstance(doc.get("files"), list):
        raise bad(f"no {LEDGER_FORMAT!r} format with a files list")
    if doc.get("schema") != LEDGER_SCHEMA:
        raise bad(f"schema {doc.get('schema')!r} (this densezoo reads {LEDGER_SCHEMA})")
    out = []
    for raw in doc["files"]:
        try:
            parts = PurePosixPath(raw["path"]).parts
            if len(parts) < 2 or parts[0] != "files" or not all(map(is_plain_name, parts)):
                raise ValueError(f"path {raw['path']!r} is not a store file")
            out.append(LedgerFile(raw["path"], str(raw["name"]), int(raw["size"]),
                                  str(raw["md5"]), str(raw["sha256"]),
                                  tuple(raw.get("vouchers") or ())))
        except (KeyError, TypeError, ValueError) as e:
            raise bad(f"a file record is not valid ({e})") from None
    return out


def _model_signing():
    try:
        import model_signing.hashing
        import model_signing.signing
        import model_signing.verifying
    except ImportError as e:
        raise DensezooError(f"signing needs the model-signing package ({e})",
                            hint="pip install 'densezoo[sign]'") from None
    return model_signing
