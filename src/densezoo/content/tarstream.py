"""A tar archive's decompressed stream, read under caps ``tarfile`` does not apply itself.

``tarfile`` reads a GNU long-name (``L``/``K``) or PAX (``x``/``g``) member's body in
one ``read(size)`` of whatever size the header declares, before anything can look
at it: a 0.3 MB ``.tar.gz`` of zeros declaring a 346 MB long name took densezoo's
content check and ``--extract`` to ~346 MB of memory, whatever the unpacked-size cap
said.  ``tarfile`` is therefore handed this stream instead of the file: a single read
larger than any legitimate header record is refused, and so is decompressing more
than the archive may unpack to (counted as it is decompressed, not from headers).
Member data is read in ``CHUNK``-sized pieces by densezoo itself, so the read cap
never touches it.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

from ..errors import PolicyError
from ..hashing import CHUNK

MAX_SINGLE_READ = 4 * CHUNK       # a long name or PAX record is a few KiB; 4 MiB is generous
DEFAULT_RATIO = 100                 # unpacked bytes allowed per archive byte
DEFAULT_FLOOR = 1 << 30             # ... but never less than this
DEFAULT_MAX_MEMBERS = 100_000


@dataclass(frozen=True)
class Limits:
    """Caps on what one archive may unpack to (``None``: a multiple of its size)."""

    max_bytes: int | None = None
    max_members: int = DEFAULT_MAX_MEMBERS

    def bytes_for(self, archive_size: int) -> int:
        if self.max_bytes is not None:
            return self.max_bytes
        return max(DEFAULT_FLOOR, DEFAULT_RATIO * archive_size)


class TarBombError(PolicyError):
    def __init__(self, archive: str, reason: str) -> None:
        self.archive = archive
        self.reason = reason
        super().__init__(f"refused to read {archive}: {reason}",
                         hint="a hostile or damaged archive; raise DENSEZOO_MAX_UNPACK_BYTES "
                              "if it is genuine and large")


def _opener(path: Path) -> Callable[[], IO[bytes]]:
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"\x1f\x8b"):
        return lambda: gzip.open(path, "rb")
    if magic.startswith(b"BZh"):
        return lambda: bz2.open(path, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lambda: lzma.open(path, "rb")
    return lambda: open(path, "rb")


class CappedStream(io.RawIOBase):
    """The decompressed bytes of ``path``, seekable (a backward seek decompresses again
    from the start; an uncompressed file seeks directly), refusing a single read over ``max_read`` and more than
    ``max_total`` decompressed bytes in one pass."""

    def __init__(self, path: Path, max_total: int, max_read: int = MAX_SINGLE_READ) -> None:
        super().__init__()
        self.path = Path(path)
        self.max_total = max_total
        self.max_read = max_read
        self._open = _opener(self.path)
        self._f = self._open()
        self._plain = not isinstance(self._f, (gzip.GzipFile, bz2.BZ2File, lzma.LZMAFile))
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0 or n > self.max_read:
            raise TarBombError(self.path.name, f"a header record asks for {n} bytes at once "
                                               f"(more than {self.max_read}): a memory bomb")
        data = self._f.read(n)
        self._pos += len(data)
        if self._pos > self.max_total:
            raise TarBombError(self.path.name, f"it decompresses past {self.max_total} bytes")
        return data

    def readinto(self, buffer) -> int:                    # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self._pos + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target < 0:
            raise OSError("CappedStream seeks from the start or the current position only")
        if self._plain:          # an uncompressed tar (a bundle): no bytes to inflate
            self._pos = self._f.seek(target)
            return self._pos
        if target < self._pos:
            self._f.close()
            self._f = self._open()
            self._pos = 0
        while self._pos < target:
            if not self.read(min(CHUNK, target - self._pos)):
                break
        return self._pos

    def close(self) -> None:
        self._f.close()
        super().close()


@contextlib.contextmanager
def open_tar(path: Path, max_unpacked: int, max_members: int) -> Iterator["tarfile.TarFile"]:
    """``tarfile.open`` over a ``CappedStream``: the members' bytes may total
    ``max_unpacked``, plus room for a header per member and the archive's end."""
    slack = 1536 * (max_members + 2) + 20 * 512
    with CappedStream(path, max_unpacked + slack) as stream:
        with tarfile.open(fileobj=stream, mode="r:") as tar:  # type: ignore[arg-type]
            yield tar
