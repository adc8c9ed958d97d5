"""Fetch the rest of one file over several Range connections, hashed in order.

Some CDNs cap each connection (aria2c users pass ``-x8 -s8`` for a reason).  When
that is what limits a download, the remaining bytes are cut into blocks that N
workers fetch in order with ``Range`` (plus ``If-Range``, so a file that changes
mid-way is caught), each writing at its own offset.  The caller's thread follows
behind, hashing finished blocks in file order from the page cache: the network
is never read twice, and at most the last few blocks are hashed after the final
byte arrives.  The transfer's resume record says which blocks are on disk at
every instant (see ``transfer``), so a kill at any point loses only the blocks
in flight.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Callable

import requests

from ..disk import store_errors
from ..errors import Cancelled, DensezooError, TransferError
from ..hashing import CHUNK
from .transfer import Transfer, same_version
from .wire import NETWORK_ERRORS, Body, RetryPolicy, content_range, describe

BLOCK = 8 << 20
AUTO_CONNECTIONS = 4          # connections when segmentation was chosen automatically

OpenRange = Callable[[Body, int, int], requests.Response]


class RangeRefused(TransferError):
    """A segment's answer was not the bytes asked for: the server ignored Range (a 200),
    sent a wrong Content-Range, or (``changed``) a different version of the file.  The
    downloader falls back to one connection, or restarts when the file changed."""

    def __init__(self, url: str, reason: str, *, changed: bool) -> None:
        super().__init__(url, reason, retryable=False)
        self.changed = changed


@dataclass
class _Block:
    start: int
    end: int                                  # exclusive
    done: threading.Event = field(default_factory=threading.Event)   # finished or given up
    ok: bool = False                          # every byte of the block is on disk


class SegmentedFetch:
    """Download the rest of ``body`` (from ``transfer.hashed`` on) into ``fd``.

    ``open_range(body, first, last)`` makes one Range request the way the
    downloader makes every request; ``retry`` is the same policy its single
    connection uses.
    """

    def __init__(self, open_range: OpenRange, retry: RetryPolicy, cancel: threading.Event,
                 transfer: Transfer, body: Body, fd: int, connections: int | None) -> None:
        assert body.total is not None
        self.open_range = open_range
        self.retry = retry
        self.cancel = cancel
        self.transfer = transfer
        self.body = body
        self.fd = fd
        self.connections = connections or AUTO_CONNECTIONS
        self.blocks = [_Block(s, min(s + BLOCK, body.total))
                       for s in range(transfer.hashed, body.total, BLOCK)]
        kept = transfer.kept_ranges()
        for b in self.blocks:         # completed by an earlier, interrupted run: on disk
            if any(lo <= b.start and b.end <= hi for lo, hi in kept):
                b.ok = True
                b.done.set()
        self._next = 0
        self._lock = threading.Lock()
        self._failed: BaseException | None = None
        self._stop = threading.Event()

    # -- workers --------------------------------------------------------------------------

    def _claim(self) -> _Block | None:
        with self._lock:
            while self._next < len(self.blocks) and self.blocks[self._next].ok:
                self._next += 1               # already on disk from an earlier run
            if self._next >= len(self.blocks) or self._stop.is_set():
                return None
            b = self.blocks[self._next]
            self._next += 1
            return b

    def _worker(self) -> None:
        try:
            while (b := self._claim()) is not None:
                self._fetch_block(b)
        except BaseException as e:  # noqa: BLE001 - handed to the follower thread
            with self._lock:
                if self._failed is None:
                    self._failed = e
                self._stop.set()
                # Blocks nobody holds will never come: release the follower from them.
                # Blocks other workers are streaming still finish and signal themselves,
                # so everything that arrives in order is kept for a resume.
                for b in self.blocks[self._next:]:
                    b.done.set()

    def _fetch_block(self, b: _Block) -> None:
        try:
            pos = [b.start]
            self.retry.run(lambda: self._fetch_from(b, pos), progress_made=lambda: pos[0],
                           give_up=self._stop.is_set)
            self.transfer.block_done(b.start, b.end)
            b.ok = True
        finally:
            b.done.set()

    def _fetch_from(self, b: _Block, pos: list[int]) -> None:
        """One request for the rest of block ``b`` from ``pos[0]`` (advanced as bytes land)."""
        resp = self.open_range(self.body, pos[0], b.end - 1)
        with resp:
            parsed = content_range(resp)
            if same_version(self.body.validators, resp.headers) is False:
                raise RangeRefused(resp.url or "", "the file changed on the server during "
                                   "the download", changed=True)
            if resp.status_code != 206:
                raise RangeRefused(resp.url or "", f"the server answered a Range request "
                                   f"with HTTP {resp.status_code} (it ignores Range)",
                                   changed=False)
            if parsed is None or parsed[0] != pos[0]:
                raise RangeRefused(resp.url or "", "the server answered a Range request with "
                                   f"a wrong Content-Range ({resp.headers.get('Content-Range')!r})",
                                   changed=False)
            read = resp.raw.read1
            while pos[0] < b.end:
                if self.cancel.is_set():
                    raise Cancelled()
                try:
                    chunk = read(min(CHUNK, b.end - pos[0]))
                except NETWORK_ERRORS as e:
                    raise TransferError(resp.url or "", describe(e)) from None
                if not chunk:
                    raise TransferError(resp.url or "", "connection closed early")
                with store_errors("write the download", self.transfer.sink.path.parent,
                                  self._missing):
                    os.pwrite(self.fd, chunk, pos[0])
                pos[0] += len(chunk)
                self.transfer.count(len(chunk))

    def _missing(self) -> int:
        """Bytes of the file not on disk yet (for a disk-full message)."""
        assert self.body.total is not None
        on_disk = sum(b.end - b.start for b in self.blocks if b.ok)
        return max(0, self.body.total - self.blocks[0].start - on_disk) if self.blocks else 0

    # -- the follower ---------------------------------------------------------------------

    def run(self) -> None:
        """Run the workers; hash each block in order as it completes.  Raises on failure;
        every block that completed stays on disk and in the resume record."""
        hasher = self.transfer.hasher
        assert hasher is not None
        self.transfer.begin_segmented()
        threads = [threading.Thread(target=self._worker, name=f"densezoo-seg{i}", daemon=True)
                   for i in range(min(self.connections, len(self.blocks)))]
        for t in threads:
            t.start()
        try:
            for b in self.blocks:
                b.done.wait()
                if not b.ok:          # blocks before it are hashed: a clean prefix to keep
                    break
                pos = b.start
                while pos < b.end:
                    chunk = os.pread(self.fd, min(CHUNK, b.end - pos), pos)
                    if not chunk:
                        raise DensezooError("the partial file shrank during a download")
                    hasher.update(chunk)
                    pos += len(chunk)
        finally:
            self._stop.set()
            for t in threads:
                t.join()
        if self._failed is not None:
            raise self._failed
