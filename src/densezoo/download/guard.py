"""One watch per connection attempt: an answer in time, then bytes at a minimum rate.

A socket read timeout is per read: a server that sends its status line and then
one header byte every 5 s, or a Range answer dripping 100 B/s, never trips it, and
held fetches for minutes.  So every attempt (the single connection, and each
segment's connection) runs under a ``Guard``: the status line and headers must be
complete within the read timeout, and after that at least ``min_rate`` bytes/s
must arrive over every window of that length.  When a rule is broken, a watcher
thread shuts the attempt's socket down: the blocked read returns at once, and the
attempt fails with the guard's reason instead of whatever the torn socket says.

The socket is learnt from inside urllib3: the pool's connection class registers
itself with the calling thread's current guard when it starts reading a response
(``GuardedAdapter``), so redirects, keep-alive reuse and TLS are all covered.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

POLL = 0.1                       # how often the watcher looks (seconds)

_local = threading.local()       # .guard: the calling thread's current attempt
_active: set["Guard"] = set()
_lock = threading.Lock()
_watcher: threading.Thread | None = None


class Guard:
    """The rules for one attempt (see the module docstring); use as a context manager.

    ``answer_within``: seconds for the status line and headers (the read timeout);
    ``min_rate``: body bytes/s over each ``answer_within``-long window (0: no floor).
    """

    def __init__(self, answer_within: float, min_rate: float = 0.0) -> None:
        self.answer_within = answer_within
        self.window = max(answer_within, 1.0)
        self.min_rate = min_rate
        self.received = 0                 # body bytes (written by the attempt's thread)
        self.fired: str | None = None     # why the socket was shut down
        self.in_headers = False           # fired while waiting for the answer's headers
        self._asked = 0.0                 # when the current request was sent, or 0
        self._mark = (0.0, 0)             # (window start, bytes received then)
        self._socks: list[Any] = []

    def __enter__(self) -> "Guard":
        self._outer = getattr(_local, "guard", None)
        _local.guard = self
        _watch(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _local.guard = self._outer
        self.stop()

    def stop(self) -> None:
        """Stop watching (the attempt handed its remaining bytes to other connections)."""
        with _lock:
            _active.discard(self)
            self._socks.clear()

    # -- the attempt's thread -------------------------------------------------------------

    def answered(self) -> None:
        """Headers are in: the body's rate is watched from now."""
        self._asked = 0.0
        self._mark = (time.monotonic(), self.received)

    def got(self, n: int) -> None:
        self.received += n

    def raise_if_fired(self, url: str) -> None:
        """After a read failed or ended: if this guard cut it, say why (the torn socket's
        own error says nothing useful).  Too slow is no reason to ask this URL again."""
        if self.fired is not None:
            from ..errors import TransferError

            raise TransferError(url, self.fired, retryable=False)

    # -- the watcher ----------------------------------------------------------------------

    def _register(self, sock: Any) -> None:
        """A request went out on ``sock`` (connected: the connect timeout is urllib3's);
        its answer is due within ``answer_within`` from now."""
        with _lock:
            self._socks.append(sock)
            self._asked = time.monotonic()

    def _check(self, now: float) -> None:
        if self.fired is not None:
            return
        if self._asked:
            if now - self._asked > self.answer_within:
                self._fire(no_answer(self.answer_within), headers=True)
            return
        since, then = self._mark
        if self.min_rate <= 0 or not since or now - since < self.window:
            return
        if self.received - then < self.min_rate * (now - since):
            self._fire(f"slower than {self.min_rate:g} bytes/s for {self.window:g} s; trying "
                       "the next URL (the bytes so far are kept)", headers=False)
        else:
            self._mark = (now, self.received)

    def _fire(self, reason: str, *, headers: bool) -> None:
        self.fired, self.in_headers = reason, headers
        for sock in self._socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)     # the blocked read returns now
            except OSError:
                pass


def _watch(guard: Guard) -> None:
    global _watcher
    with _lock:
        _active.add(guard)
        if _watcher is None or not _watcher.is_alive():
            _watcher = threading.Thread(target=_run, name="densezoo-guard", daemon=True)
            _watcher.start()


def _run() -> None:
    """Look at every live guard every POLL seconds; end when none is left."""
    global _watcher
    while True:
        time.sleep(POLL)
        with _lock:
            if not _active:
                _watcher = None
                return
            now = time.monotonic()
            for g in list(_active):
                g._check(now)


def no_answer(seconds: float) -> str:
    """The reason given when a request's answer never came complete (a read timeout on
    the status line, or this guard cutting a server that drips its headers)."""
    return (f"no complete answer within {seconds:g} s (the server accepts but does not "
            "answer, or drips its headers; DENSEZOO_TIMEOUT sets it)")


def current() -> Guard | None:
    """The calling thread's current guard, if an attempt is running under one."""
    return getattr(_local, "guard", None)


# -- urllib3: connections that tell the current guard their socket -------------------------


class _Registering:
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        guard = current()
        sock = getattr(self, "sock", None)
        if guard is not None and sock is not None:
            guard._register(sock)
        return super().getresponse(*args, **kwargs)    # type: ignore[misc]


class _HTTPConnection(_Registering, HTTPConnection):
    pass


class _HTTPSConnection(_Registering, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class GuardedAdapter(HTTPAdapter):
    """requests' adapter whose connections register with the thread's current guard
    (direct and plain-proxy connections; a SOCKS proxy keeps its own classes)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager
