"""One file's download across attempts: where its bytes go, its running hash, its counters.

A ``Transfer`` lives for one ``Downloader.download`` call and survives the
retries inside it, so bytes that arrived before a connection broke are kept
(and already hashed) when the next attempt resumes.  The segmented fetch works
on the same object, which is where the boundary between the two lies.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from ..disk import store_errors
from ..hashing import Digests, StreamHasher, hash_stream
from ..progress import NoProgress, Progress


class Sink(Protocol):
    """Where a download's bytes go (the store's ``Partial`` is one)."""

    path: Path
    meta: dict[str, Any]          # url, etag, last_modified of the bytes already in it

    @property
    def size(self) -> int: ...
    def open(self, offset: int, keep_tail: bool = False) -> BinaryIO: ...
    def save_meta(self, **fields: Any) -> None: ...


@dataclass
class DownloadResult:
    digests: Digests
    url: str                       # the URL finally served (after redirects), redacted
    resumed_from: int              # bytes kept from an earlier attempt
    transferred: int               # bytes that came over the network
    validators: dict[str, str | None] = field(default_factory=dict)   # etag, last_modified


def validator_of(validators: dict) -> str | None:
    """The ETag (or else Last-Modified) that If-Range needs to resume the same file."""
    return validators.get("etag") or validators.get("last_modified")


def same_version(sent: dict, headers) -> bool | None:
    """Whether a 206 answers for the version we asked for (``If-Range``): True, False, or
    None when the response carries no validator of that kind to compare."""
    if sent.get("etag"):
        got = headers.get("ETag")
        return None if got is None else got == sent["etag"]
    if sent.get("last_modified"):
        got = headers.get("Last-Modified")
        return None if got is None else got == sent["last_modified"]
    return None


class Transfer:
    """The state of one file's download; see the module docstring."""

    def __init__(self, sink: Sink, *, algorithms: tuple[str, ...], expected_size: int | None,
                 file_name: str, resume_unvalidated: bool,
                 progress: Progress | None = None) -> None:
        self.sink = sink
        self.algorithms = algorithms
        self.expected_size = expected_size
        self.file_name = file_name
        self.resume_unvalidated = resume_unvalidated
        self.progress = progress or NoProgress()
        self.hasher: StreamHasher | None = None
        self.transferred = 0           # bytes received over the network, all attempts
        self.best = 0                  # the most bytes ever kept in order
        self.result: DownloadResult | None = None
        self._lock = threading.Lock()  # segmented workers count bytes concurrently

    @property
    def hashed(self) -> int:
        """Bytes hashed in order from the start: the prefix a resume can keep."""
        return self.hasher.size if self.hasher is not None else 0

    def progress_mark(self) -> int:
        """What counts as progress between retries: *new* bytes kept in order.

        Bytes received are not enough: a server that ignores Range and always
        closes early sends more bytes on every attempt and keeps none.
        """
        self.best = max(self.best, self.hashed)
        return self.best

    def kept_ranges(self) -> list[tuple[int, int]]:
        """Blocks past the in-order prefix that an interrupted segmented run completed."""
        blocks = self.sink.meta.get("blocks")
        if not isinstance(blocks, list):
            return []
        return [(int(lo), int(hi)) for lo, hi in (b for b in blocks if isinstance(b, list)
                                                  and len(b) == 2)]

    def forget_kept_ranges(self) -> None:
        self.sink.meta.pop("blocks", None)
        self.sink.meta.pop("prefix", None)

    def resume_offset(self) -> int:
        """Where the next request starts: the kept bytes, if they can be trusted to belong."""
        if not (validator_of(self.sink.meta) or self.resume_unvalidated):
            return 0
        prefix = self.sink.meta.get("prefix")
        offset = prefix if isinstance(prefix, int) and 0 <= prefix <= self.sink.size \
            else self.sink.size
        if self.expected_size is not None and offset > self.expected_size:
            return 0
        return offset

    def request_headers(self, offset: int) -> dict[str, str]:
        headers = {"Accept-Encoding": "identity"}
        if offset > 0:
            headers["Range"] = f"bytes={offset}-"
            validator = validator_of(self.sink.meta)
            if validator:
                headers["If-Range"] = validator
        return headers

    def count(self, n: int) -> None:
        """Bytes received (by any thread): progress and the transferred counter."""
        with self._lock:
            self.transferred += n
            self.progress.advance(n)

    def reset(self) -> None:
        """Forget every kept byte: the next attempt starts from zero."""
        if self.hasher is not None:
            self.hasher.abort()
        self.hasher = None
        with store_errors("write the download", self.sink.path.parent):
            self.sink.open(0).close()
        self.sink.meta.clear()

    def open_at(self, offset: int) -> BinaryIO:
        """Open the sink for appending at ``offset``, hashing any kept prefix first
        (blocks kept past the prefix stay on disk; ``Downloader._accept`` decides whether
        they still belong)."""
        with store_errors("write the download", self.sink.path.parent):
            if self.hasher is not None and self.hasher.size != offset:
                self.hasher.abort()
                self.hasher = None
            if self.hasher is None:
                self.hasher = StreamHasher(self.algorithms)
                if offset:
                    with open(self.sink.path, "rb") as kept:
                        hash_stream(kept, self.hasher, limit=offset)
                    if self.hasher.size != offset:       # the kept file was shorter: restart
                        self.hasher.abort()
                        self.hasher = StreamHasher(self.algorithms)
                        self.forget_kept_ranges()
                        offset = 0
            return self.sink.open(offset, keep_tail=bool(self.kept_ranges()))

    def finish(self, url: str, resumed_from: int,
               validators: dict[str, str | None]) -> DownloadResult:
        assert self.hasher is not None
        self.result = DownloadResult(self.hasher.finish(), url, resumed_from, self.transferred,
                                     validators)
        return self.result

    def close(self) -> None:
        """End of the download call: stop hash threads unless a result was produced."""
        self.progress.close()
        if self.hasher is not None and self.result is None:
            self.hasher.abort()
