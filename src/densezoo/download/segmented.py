"""Fetch the rest of one file over several Range connections, hashed in order.

Some CDNs cap each connection (aria2c users pass ``-x8 -s8`` for a reason).  When
that is what limits a download, the remaining bytes are cut into blocks that N
workers fetch in order with ``Range`` (plus ``If-Range``, so a file that changes
mid-way is caught), each writing at its own offset.  The caller's thread follows
behind, hashing finished blocks in file order from the page cache: the network
is never read twice, and at most the last few blocks are hashed after the final
byte arrives.  If anything fails, the file is cut back to the hashed prefix,
which stays valid for a resume.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..disk import store_errors
from ..errors import Cancelled, DensezooError, TransferError
from ..hashing import CHUNK
from .http import NETWORK_ERRORS, content_range, describe
from .transfer import Transfer, same_version

if TYPE_CHECKING:
    from .http import Downloader, _Body

BLOCK = 8 << 20
AUTO_CONNECTIONS = 4          # connections when segmentation was chosen automatically


@dataclass
class _Block:
    start: int
    end: int                                  # exclusive
    done: threading.Event = field(default_factory=threading.Event)   # finished or given up
    ok: bool = False                          # every byte of the block is on disk


class SegmentedFetch:
    """Download the rest of ``body`` (from ``transfer.hashed`` on) into ``fd``.

    Works on the downloader's own requests, retry schedule and response checks,
    and on the same ``Transfer`` as the single-connection loop it continues.
    """

    def __init__(self, downloader: "Downloader", transfer: Transfer, body: "_Body", fd: int,
                 url: str) -> None:
        assert body.total is not None
        self.downloader = downloader
        self.transfer = transfer
        self.body = body
        self.fd = fd
        self.url = url                        # as the caller named it, for messages
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
            self._fetch_block_bytes(b)
            b.ok = True
        finally:
            b.done.set()

    def _fetch_block_bytes(self, b: _Block) -> None:
        failures = 0
        pos = b.start
        while pos < b.end:
            try:
                resp = self.downloader.open_range(self.body, self.url, pos, b.end - 1)
                with resp:
                    parsed = content_range(resp)
                    if (resp.status_code != 206 or parsed is None or parsed[0] != pos
                            or same_version(self.body.validators, resp.headers) is False):
                        raise TransferError(resp.url or "", "the file changed on the server or "
                                            "Range is not honoured during a segmented download",
                                            retryable=False)
                    read = resp.raw.read1
                    while pos < b.end:
                        if self.downloader.cancel.is_set():
                            raise Cancelled()
                        try:
                            chunk = read(min(CHUNK, b.end - pos))
                        except NETWORK_ERRORS as e:
                            raise TransferError(resp.url or "", describe(e)) from None
                        if not chunk:
                            raise TransferError(resp.url or "", "connection closed early")
                        os.pwrite(self.fd, chunk, pos)
                        pos += len(chunk)
                        failures = 0
                        self.transfer.count(len(chunk))
            except TransferError as e:
                failures += 1
                if (not e.retryable or failures >= self.downloader.attempts
                        or self._stop.is_set()):
                    raise
                self.downloader.sleep(self.downloader.backoff(failures))

    # -- the follower ---------------------------------------------------------------------

    def run(self) -> None:
        """Run the workers; hash each block in order as it completes.  Raises on failure.

        On failure (or Ctrl-C) every block that completed is kept: the prefix hashed
        in order, and the blocks past it recorded in the partial's metadata, so a
        resume fetches only what is missing (``Transfer.kept_ranges``).
        """
        try:
            self._run()
        except BaseException:
            done = [[b.start, b.end] for b in self.blocks
                    if b.ok and b.start >= self.transfer.hashed]
            with store_errors("write the download", self.transfer.sink.path.parent):
                if done:
                    self.transfer.sink.save_meta(prefix=self.transfer.hashed, blocks=done)
                else:
                    os.ftruncate(self.fd, self.transfer.hashed)
            raise

    def _run(self) -> None:
        hasher = self.transfer.hasher
        assert hasher is not None
        connections = self.downloader.connections or AUTO_CONNECTIONS
        threads = [threading.Thread(target=self._worker, name=f"densezoo-seg{i}", daemon=True)
                   for i in range(min(connections, len(self.blocks)))]
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
