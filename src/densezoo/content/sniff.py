"""Is this what its name says?  Error pages, LFS pointers, and first-use content checks.

Two uses.  The downloader looks at the first bytes of every response so an
error page served with ``200 OK`` is refused before it is written out.  And
before densezoo pins an artifact that has no published checksum (trust on first
use), ``intake`` asks ``content_problem`` whether the file is what its name
says, so garbage is never pinned as the "right" bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<title")
JSON_PARSE_LIMIT = 64 << 20     # larger JSON files get a structural check, not a full parse
_MAGIC = {
    ".npy": ((0, b"\x93NUMPY"),),
    ".zip": ((0, b"PK\x03\x04"), (0, b"PK\x05\x06")),
    ".mat": ((0, b"MATLAB "), (0, b"\x89HDF\r\n\x1a\n"), (512, b"\x89HDF\r\n\x1a\n")),
    ".gz": ((0, b"\x1f\x8b"),),
}
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def _head(first: bytes) -> bytes:
    head = first[:1024]
    for bom in _BOMS:
        if head.startswith(bom):
            head = head[len(bom):]
            break
    return head.lstrip().lower()


def sniff_wrong_content(first: bytes, file_name: str) -> str | None:
    """Recognise payloads that are certainly not the artifact, from their first bytes."""
    head = _head(first)
    if head.startswith(b"version https://git-lfs.github.com/spec/"):
        return "the server sent a git-lfs pointer, not the file"
    if file_name.lower().endswith((".html", ".htm", ".xml")):
        return None
    if head.startswith(_HTML_STARTS):
        return "the server sent an HTML page, not the file"
    if head.startswith(b"<error>") or (head.startswith(b"<?xml") and b"<error>" in head):
        return "the server sent an XML error document (S3/GCS style), not the file"
    return None


def content_problem(path: Path, file_name: str) -> str | None:
    """Why the file at ``path`` is not what ``file_name`` says it is (None if it is).

    Pickles are checked by ``pickle_scan`` (parsed to their STOP) in ``intake``.
    """
    name = file_name.lower()
    with open(path, "rb") as f:
        first = f.read(1024)
    bad = sniff_wrong_content(first, file_name)
    if bad:
        return bad
    if name.endswith(TAR_SUFFIXES):
        return _tar_problem(path)
    if name.endswith(".json"):
        return _json_problem(path, first)
    for suffix, magics in _MAGIC.items():
        if name.endswith(suffix):
            if not any(_has(path, first, off, magic) for off, magic in magics):
                return f"it does not start like a {suffix} file"
    return None


def _has(path: Path, first: bytes, offset: int, magic: bytes) -> bool:
    if offset + len(magic) <= len(first):
        return first[offset:offset + len(magic)] == magic
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(len(magic)) == magic


def _tar_problem(path: Path) -> str | None:
    """Walk the headers under the unpacker's default caps (``tarstream``): a header
    record that would need hundreds of MB of memory is a problem, not a read."""
    import tarfile

    from .tarstream import DEFAULT_MAX_MEMBERS, Limits, TarBombError, open_tar

    try:
        with open_tar(path, Limits().bytes_for(path.stat().st_size), DEFAULT_MAX_MEMBERS) as tar:
            for _ in tar:
                pass
    except TarBombError as e:
        return e.reason
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        return f"it is not a readable tar archive ({e})"
    except Exception as e:  # noqa: BLE001 - zlib/lzma errors: not a readable archive
        return f"it is not a readable tar archive ({type(e).__name__}: {e})"
    return None


def _json_problem(path: Path, first: bytes) -> str | None:
    size = path.stat().st_size
    if size <= JSON_PARSE_LIMIT:
        try:
            json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError) as e:
            return f"it is not valid JSON ({str(e)[:80]})"
        return None
    with open(path, "rb") as f:            # too large to parse cheaply: check its shape
        f.seek(max(0, size - 1024))
        last = f.read().rstrip()
    start = _head(first)
    if not (start[:1] in (b"{", b"[") and last[-1:] in (b"}", b"]")):
        return "it does not look like JSON (no enclosing object or array)"
    return None
