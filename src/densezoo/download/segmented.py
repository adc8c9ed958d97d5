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

How many connections, when the count was not given (``start_count``): a host whose
last transfer was split and grew without pushback (kept in ``health.json``) gets that
count at once, split from the first chunk; otherwise the probe's rate decides: enough
connections to finish the rest within ``QUICK_FINISH`` seconds at that rate, at least
``AUTO_CONNECTIONS`` and at most ``START_MAX`` (a 64 MiB file on a capped CDN gets its
connections while there is still something to fetch).  After half of ``JUDGE_AFTER``
to settle (new connections opening) and ``JUDGE_AFTER`` to measure, if each
connection still gets at least ``SCALES`` of the rate one connection had alone (the
cap is per connection, so more connections bring more bytes), double the count, up to
``MAX_AUTO_CONNECTIONS``; once the rate per connection falls (the link or the server
is the limit now) it stops growing.  A server that pushes back -- a 429, a 503, a
reset or a dropped connection on any block -- gets one connection fewer at once and
no growth after (and nothing is learned from that transfer): a given
``--connections N`` is a maximum in the same way.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import requests

from ..disk import pwrite_all, store_errors
from ..errors import Cancelled, DensezooError, TransferError
from ..hashing import CHUNK
from .guard import Guard
from .transfer import Transfer, same_version
from .wire import (NETWORK_ERRORS, Body, LengthConflict, RetryPolicy, content_range, describe,
                   length_conflict)

BLOCK = 8 << 20               # the largest block; smaller when the rest is short
MIN_BLOCK = 1 << 20           # aria2c's -k1M: below this a request's overhead shows
AUTO_CONNECTIONS = 4          # the fewest to split into when segmentation was automatic
START_MAX = 8                 # the most to open before a judgement has seen them keep rate
MAX_AUTO_CONNECTIONS = 16     # never more without being asked: aria2c's own ceiling (-x16)
JUDGE_AFTER = 0.2             # seconds measured at one connection count before judging it
QUICK_FINISH = 1.5 * JUDGE_AFTER   # the first judgement's time (settle + measure): a rest
                              # the split finishes before then, growth could not speed up
SCALES = 0.6                  # the share of the one-connection rate each must keep to grow
                              # (a shared link leaves each of 4 a quarter, a per-connection
                              # cap all of it; TCP ramp-up and block hand-offs cost some)


def start_count(one_rate: float | None, remaining: int, learned: int | None = None) -> int:
    """Connections to open at the split (automatic mode).

    ``learned``: the count the host's last split reached without pushback -- trusted
    again as it is (capped to the ceiling).  Otherwise ``one_rate`` (bytes/s of the one
    connection's probe) says how many would finish ``remaining`` bytes within
    QUICK_FINISH s (the time until the first judgement could add any); growing from 4
    by judged doublings took ~1 s per step, the whole download of a 64 MiB file at
    16 MB/s per connection.  Unknown rate: 4.
    """
    if learned:
        return max(1, min(learned, MAX_AUTO_CONNECTIONS))
    if not one_rate or one_rate <= 0:
        return AUTO_CONNECTIONS
    need = math.ceil(remaining / (one_rate * QUICK_FINISH))
    return max(AUTO_CONNECTIONS, min(START_MAX, need))


def block_size(remaining: int, most: int) -> int:
    """Block size for ``remaining`` bytes over at most ``most`` connections: each gets
    at least two blocks (8 MiB blocks gave a 64 MiB file only 8 -- no work for a 9th
    connection), never under MIN_BLOCK nor over BLOCK, whole MiB."""
    per = remaining // (2 * max(most, 1))
    return min(BLOCK, max(MIN_BLOCK, per // MIN_BLOCK * MIN_BLOCK))


OpenRange = Callable[[Body, int, int], requests.Response]


class RangeRefused(TransferError):
    """A segment's answer was not the bytes asked for: the server ignored Range (a 200),
    sent a wrong Content-Range, or (``changed``) a different version of the file.  The
    downloader falls back to one connection, or restarts when the file changed."""

    def __init__(self, url: str, reason: str, *, changed: bool) -> None:
        super().__init__(url, reason, retryable=False)
        self.changed = changed


class _Surplus(Exception):
    """This worker is one more than the server tolerates: it ends, its block handed back."""


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
    connection uses.  ``connections`` None: automatic (see the module docstring);
    ``one_rate``: the bytes/s the single connection had before the split (without
    it the count never grows); ``learned``: the count the host's last split reached
    (``start_count``).  ``pushed_back`` after ``run``: whether the server refused a
    connection (then the count reached is not worth remembering).
    """

    def __init__(self, open_range: OpenRange, retry: RetryPolicy, cancel: threading.Event,
                 transfer: Transfer, body: Body, fd: int, connections: int | None,
                 one_rate: float | None = None,
                 new_guard: Callable[[int], Guard] | None = None,
                 learned: int | None = None) -> None:
        assert body.total is not None
        self.open_range = open_range
        # Each connection's attempt runs under its own guard: an answer in time, then its
        # share of the minimum rate when ``n`` connections run (a Range answer dripping
        # 100 B/s held a fetch for minutes; a link slow for all of them is not cut sooner
        # than one connection would be).
        self.new_guard = new_guard or (lambda n: Guard(60.0))
        self.retry = retry
        self.cancel = cancel
        self.transfer = transfer
        self.body = body
        self.fd = fd
        remaining = body.total - transfer.hashed
        # workers allowed now
        self.limit = connections or start_count(one_rate, remaining, learned)
        # Growing needs the yardstick of one connection alone: a resumed split has none.
        self._grow = connections is None and bool(one_rate)
        self.pushed_back = False
        self._one_rate = one_rate
        self._live = 0
        self._busy = 0                                  # workers with a block in flight
        self._returned: list[_Block] = []               # handed back by a retiring worker
        self._threads: list[threading.Thread] = []
        self._window = (0.0, 0)                         # (since, bytes received then)
        self._warm = False                              # the current count has run a window
        # Automatic: blocks for as many connections as it may grow to; a given count keeps
        # the full BLOCK (the layout a resume of such a run expects).
        size = BLOCK if connections else block_size(remaining, MAX_AUTO_CONNECTIONS)
        self.blocks = [_Block(s, min(s + size, body.total))
                       for s in range(transfer.hashed, body.total, size)]
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
        """The next block to fetch, or None: this worker ends (no work left, a failure,
        or more workers than the server tolerates -- counted under the same lock)."""
        with self._lock:
            while self._next < len(self.blocks) and self.blocks[self._next].ok:
                self._next += 1               # already on disk from an earlier run
            if (self._live > self.limit or self._stop.is_set()
                    or not (self._returned or self._next < len(self.blocks))):
                self._live -= 1
                return None
            if self._returned:                # earlier in the file: the follower waits on it
                return self._returned.pop(0)
            b = self.blocks[self._next]
            self._next += 1
            return b

    def _worker(self) -> None:
        try:
            while (b := self._claim()) is not None:
                self._fetch_block(b)
        except _Surplus:
            return                            # counted out by _pushback; its block handed back
        except BaseException as e:  # noqa: BLE001 - handed to the follower thread
            with self._lock:
                self._live -= 1
                if self._failed is None:
                    self._failed = e
                self._stop.set()
                # Blocks nobody holds will never come: release the follower from them.
                # Blocks other workers are streaming still finish and signal themselves,
                # so everything that arrives in order is kept for a resume.
                for b in [*self._returned, *self.blocks[self._next:]]:
                    b.done.set()

    def _fetch_block(self, b: _Block) -> None:
        with self._lock:              # what the fetch reports: blocks in flight at once
            self._busy += 1
            self.transfer.connections = max(self.transfer.connections, self._busy)
        try:
            self._fetch_whole(b)
        finally:
            with self._lock:
                self._busy -= 1

    def _fetch_whole(self, b: _Block) -> None:
        pos = [b.start]

        def attempt() -> None:
            try:
                self._fetch_from(b, pos)
            except TransferError as e:
                if e.retryable and self._pushback(b):
                    raise _Surplus() from None
                raise

        try:
            self.retry.run(attempt, progress_made=lambda: pos[0], give_up=self._stop.is_set)
            # Recording the block writes a file too: on a full disk this is the write that
            # fails (ENOSPC), and the block must be released like any other failure, or
            # the follower waits on it forever.
            self.transfer.block_done(b.start, b.end)
        except _Surplus:
            raise
        except BaseException:
            b.done.set()
            raise
        b.ok = True
        b.done.set()

    def _fetch_from(self, b: _Block, pos: list[int]) -> None:
        """One request for the rest of block ``b`` from ``pos[0]`` (advanced as bytes land)."""
        with self.new_guard(max(self.limit, 1)) as guard:
            self._fetch_guarded(b, pos, guard)

    def _fetch_guarded(self, b: _Block, pos: list[int], guard: Guard) -> None:
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
            conflict = length_conflict(resp, self.body.total)
            if conflict is not None:
                raise LengthConflict(resp.url or "", conflict)
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
                    guard.raise_if_fired(resp.url or "")
                    raise TransferError(resp.url or "", describe(e)) from None
                if not chunk:
                    guard.raise_if_fired(resp.url or "")
                    raise TransferError(resp.url or "", "connection closed early")
                with store_errors("write the download", self.transfer.sink.path.parent,
                                  self._missing):
                    pwrite_all(self.fd, chunk, pos[0])
                pos[0] += len(chunk)
                self.transfer.count(len(chunk))
                guard.got(len(chunk))

    def _missing(self) -> int:
        """Bytes of the file not on disk yet (for a disk-full message)."""
        assert self.body.total is not None
        on_disk = sum(b.end - b.start for b in self.blocks if b.ok)
        return max(0, self.body.total - self.blocks[0].start - on_disk) if self.blocks else 0

    def _workers_alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    # -- how many connections --------------------------------------------------------------

    def _pushback(self, b: _Block) -> bool:
        """The server refused or dropped a connection: one fewer, and never more again.
        True when the caller is the one too many: it ends, and ``b`` goes back for a
        worker still live to fetch whole (its bytes so far were never recorded); a worker
        retrying in place would be refused again, and cut the count again.

        A handed-back block is never orphaned: it is appended under the lock only while
        ``limit`` >= 1 other workers stay live, and a worker ends only in ``_claim``
        (which takes handed-back blocks first, under the same lock) or by failing (which
        releases them to the follower)."""
        with self._lock:
            self._grow = False
            self.pushed_back = True
            self.limit = max(1, min(self.limit, self._live) - 1)
            # Once another worker has failed, the blocks nobody holds were released to the
            # follower; one handed back now would never be: this worker gives up instead.
            if self._live > self.limit and not self._stop.is_set():
                self._live -= 1
                self._returned.append(b)
                return True
            return False

    def _start_workers(self, n: int) -> None:
        with self._lock:
            self._live += n
        for _ in range(n):
            t = threading.Thread(target=self._worker, daemon=True,
                                 name=f"densezoo-seg{len(self._threads)}")
            self._threads.append(t)
            t.start()

    def _judge(self) -> None:
        """Grow while each connection keeps its rate (see the module docstring)."""
        now = time.monotonic()
        since, then = self._window
        if not self._grow or now - since < (JUDGE_AFTER if self._warm else JUDGE_AFTER / 2):
            return
        with self._lock:
            live = self._live
            unclaimed = sum(not b.ok for b in self.blocks[self._next:])
        received = self.transfer.transferred     # counted once, by ``Transfer.count``
        self._window = (now, received)
        if not self._warm:                   # the first window has every connection opening
            self._warm = True
            return
        per = (received - then) / (now - since) / max(live, 1)
        assert self._one_rate
        if per < SCALES * self._one_rate or live >= MAX_AUTO_CONNECTIONS:
            self._grow = False               # the link or the server is the limit now
            return
        add = min(live, MAX_AUTO_CONNECTIONS - live, unclaimed)
        if add > 0:
            with self._lock:
                if not self._grow:           # a pushback came in meanwhile
                    return
                self.limit += add
            self._start_workers(add)
            self._warm = False

    # -- the follower ---------------------------------------------------------------------

    def run(self) -> None:
        """Run the workers; hash each block in order as it completes.  Raises on failure;
        every block that completed stays on disk and in the resume record."""
        hasher = self.transfer.hasher
        assert hasher is not None
        self.transfer.begin_segmented()
        self.limit = min(self.limit, sum(not b.ok for b in self.blocks))
        self._window = (time.monotonic(), self.transfer.transferred)
        self._start_workers(self.limit)
        try:
            for b in self.blocks:
                self._judge()         # small blocks may land faster than the wait below
                while not b.done.wait(0.1):
                    self._judge()
                    if not b.done.is_set() and not self._workers_alive():
                        break         # nobody left to finish it: never wait unbounded
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
            for t in list(self._threads):
                t.join()
        if self._failed is not None:
            raise self._failed
