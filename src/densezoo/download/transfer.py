"""One file's download across attempts: where its bytes go, what they are, its running hash.

A ``Transfer`` lives for one ``Downloader.download`` call and survives the
retries inside it, so bytes that arrived before a connection broke are kept
(and already hashed) when the next attempt resumes.  The segmented fetch works
on the same object.

What the partial's bytes are is a typed ``ResumeRecord`` beside it, written
only by ``Transfer._save``.  It must hold after a SIGKILL at any instant: a
segmented transfer writes blocks out of order (the file is sparse, and its
apparent size says nothing), so the record says ``segmented`` *before* the
first byte lands past the in-order prefix, and each block is added to it only
once all its bytes are written.  A resume trusts the record, never the size.
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
    meta: dict[str, Any]          # the resume record as last written (raw JSON)

    @property
    def size(self) -> int: ...
    def open(self, offset: int, keep_tail: bool = False) -> BinaryIO: ...
    def save_meta(self, record: dict[str, Any]) -> None: ...
    def drop_meta(self) -> None: ...


@dataclass
class ResumeRecord:
    """What the bytes in a partial are: which version of which URL, and which ranges hold.

    Single-connection writes go in order, so the file's size is its valid prefix
    (``segmented`` False).  Once segmented, only ``ranges`` count: byte ranges
    [start, end) known to be on disk, merged; everything else is a hole.
    """

    url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    segmented: bool = False
    ranges: list[tuple[int, int]] = field(default_factory=list)
    total: int | None = None      # the file's size as the server stated it

    @classmethod
    def load(cls, raw: Any) -> "ResumeRecord":
        """From the JSON on disk; anything damaged or of an older shape vouches for nothing
        it cannot prove (an old segmented record without ranges keeps no bytes)."""
        if not isinstance(raw, dict):
            return cls()

        def text(k: str) -> str | None:
            v = raw.get(k)
            return v if isinstance(v, str) else None

        rec = cls(text("url"), text("etag"), text("last_modified"))
        total = raw.get("total")
        if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
            rec.total = total
        if "blocks" in raw or "prefix" in raw:          # written before records were typed
            rec.segmented = True
        if raw.get("segmented") is True:
            rec.segmented = True
            spans = raw.get("ranges")
            if isinstance(spans, list):
                for s in spans:
                    if (isinstance(s, list) and len(s) == 2
                            and all(isinstance(x, int) and not isinstance(x, bool) for x in s)
                            and 0 <= s[0] < s[1]):
                        rec.add(s[0], s[1])
        return rec

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"url": self.url, "etag": self.etag,
                             "last_modified": self.last_modified}
        if self.total is not None:
            d["total"] = self.total
        if self.segmented:
            d.update(segmented=True, ranges=[list(r) for r in self.ranges])
        return d

    @property
    def validators(self) -> dict[str, str | None]:
        return {"etag": self.etag, "last_modified": self.last_modified}

    def add(self, start: int, end: int) -> None:
        spans = sorted([*self.ranges, (start, end)])
        merged: list[tuple[int, int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        self.ranges = merged

    def prefix(self, size: int) -> int:
        """Bytes from the start that are known to be the file's."""
        if not self.segmented:
            return size
        if self.ranges and self.ranges[0][0] == 0:
            return min(self.ranges[0][1], size)
        return 0

    def kept(self) -> list[tuple[int, int]]:
        """Ranges known on disk past the prefix (blocks an interrupted run completed)."""
        if not self.segmented:
            return []
        return [r for r in self.ranges if r[0] > 0]


@dataclass
class DownloadResult:
    """What one download produced: the digests of every byte, and where they came from."""

    digests: Digests
    url: str                       # the URL finally served (after redirects), redacted
    resumed_from: int              # bytes kept from an earlier attempt
    transferred: int               # bytes that came over the network
    validators: dict[str, str | None] = field(default_factory=dict)   # etag, last_modified
    connections: int = 1           # the most connections that carried bytes at once


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
        self.record = ResumeRecord.load(sink.meta)
        self.algorithms = algorithms
        self.expected_size = expected_size
        self.size_claimed = False      # expected_size is only the source's own claim
        self.file_name = file_name
        self.resume_unvalidated = resume_unvalidated
        self.progress = progress or NoProgress()
        self.hasher: StreamHasher | None = None
        self.transferred = 0           # bytes received over the network, all attempts
        self.connections = 1           # the most at once (a segmented fetch raises it)
        self.best = 0                  # the most bytes ever kept in order
        self.result: DownloadResult | None = None
        self._lock = threading.Lock()  # segmented workers count bytes and finish blocks

    # -- the record: the only writer ------------------------------------------------------

    def _save(self) -> None:
        # The record is small, but on a full disk it may be the write that fails first
        # (a segment filled the disk a moment before): say what is still needed then too.
        with store_errors("write the download", self.sink.path.parent, self._remaining):
            self.sink.save_meta(self.record.to_dict())

    def _remaining(self) -> int | None:
        """Bytes of the file not on disk yet, when its size is known (disk-full messages)."""
        if self.expected_size is None:
            return None
        have = (sum(e - s for s, e in self.record.ranges) if self.record.segmented
                else self.sink.size)
        return max(0, self.expected_size - have)

    def accepted(self, url: str, validators: dict[str, str | None], start: int,
                 total: int | None = None) -> None:
        """A response was accepted for bytes from ``start``: record which version they are.
        Kept blocks continue only this exact response: same version, at the prefix."""
        as_headers = {"ETag": validators.get("etag"),
                      "Last-Modified": validators.get("last_modified")}
        if self.kept_ranges() and (start != self.record.prefix(self.sink.size)
                                   or same_version(self.record.validators, as_headers) is not True):
            self.forget_kept_ranges()
        self.record.url = url
        self.record.etag = validators.get("etag")
        self.record.last_modified = validators.get("last_modified")
        self.record.total = total
        self._save()

    def begin_segmented(self) -> None:
        """Before the first byte is written past the hashed prefix: say so on disk."""
        with self._lock:
            if not self.record.segmented:
                self.record.segmented = True
                self.record.ranges = []
            if self.hashed:
                self.record.add(0, self.hashed)
            self._save()

    def block_done(self, start: int, end: int) -> None:
        """Every byte of [start, end) is written: add it to the record."""
        with self._lock:
            self.record.add(start, end)
            self._save()

    def forget_kept_ranges(self) -> None:
        self.record.ranges = [r for r in self.record.ranges if r[0] == 0]

    # -- resuming -------------------------------------------------------------------------

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
        return self.record.kept()

    def resume_offset(self) -> int:
        """Where the next request starts: the kept bytes, if they can be trusted to belong."""
        if self.record.url is None:
            return 0            # no record (dropped by ``reset``): nothing vouches for the bytes
        if not (validator_of(self.record.validators) or self.resume_unvalidated):
            return 0
        offset = self.record.prefix(self.sink.size)
        if self.expected_size is not None and offset > self.expected_size:
            return 0
        return offset

    def request_headers(self, offset: int) -> dict[str, str]:
        headers = {"Accept-Encoding": "identity"}
        if offset > 0:
            headers["Range"] = f"bytes={offset}-"
            validator = validator_of(self.record.validators)
            if validator:
                headers["If-Range"] = validator
        return headers

    def count(self, n: int) -> None:
        """Bytes received (by any thread): progress and the transferred counter."""
        with self._lock:
            self.transferred += n
            self.progress.advance(n)

    def reset(self) -> None:
        """Forget every kept byte: the next attempt starts from zero.

        The record goes *before* the file is cut: a kill between the two leaves no
        record (which keeps nothing) beside bytes that are still whole, never a record
        that lists kept blocks beside a file truncated under them (a resume trusted
        the holes, published them and pinned them)."""
        if self.hasher is not None:
            self.hasher.abort()
        self.hasher = None
        # Dropping the record needs no space (a full disk is a common reason to reset),
        # and a partial with no record keeps nothing (``resume_offset``).
        with store_errors("write the download", self.sink.path.parent):
            self.sink.drop_meta()
            self.sink.open(0).close()
        self.record = ResumeRecord()
        self._save()

    def open_at(self, offset: int) -> BinaryIO:
        """Open the sink for writing at ``offset``, hashing any kept prefix first.

        Blocks kept past the prefix stay on disk (and in the record) only while the
        transfer goes on segmented; a single-connection continuation drops them and
        says so in the record once the file is cut back to the prefix."""
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
                        self.record = ResumeRecord(self.record.url, self.record.etag,
                                                   self.record.last_modified,
                                                   total=self.record.total)
                        offset = 0
            keep = bool(self.kept_ranges())
            f = self.sink.open(offset, keep_tail=keep)
        if not keep and self.record.segmented:
            self.record.segmented, self.record.ranges = False, []   # in order again from here
            self._save()
        return f

    def finish(self, url: str, resumed_from: int,
               validators: dict[str, str | None]) -> DownloadResult:
        assert self.hasher is not None
        self.result = DownloadResult(self.hasher.finish(), url, resumed_from, self.transferred,
                                     validators, self.connections)
        return self.result

    def close(self) -> None:
        """End of the download call: stop hash threads unless a result was produced."""
        self.progress.close()
        if self.hasher is not None and self.result is None:
            self.hasher.abort()
