"""A real HTTP/1.1 server on 127.0.0.1 for densezoo's tests.

It serves in-memory files with Range, ETag/If-Range and Last-Modified, and can be
told, per path, to misbehave the ways real servers and CDNs do: error statuses
with Retry-After, redirects, a connection reset or truncation mid-body, a stall,
wrong bytes, an ignored Range, a wrong Content-Range, an HTML page or git-lfs
pointer instead of the file, gzip it was not asked for, or a slow trickle.

Transport behaviour is tested against this real socket server rather than mocks,
so urllib3 raises the same exceptions it raises in the field.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:f5950ffd00000000000000000000000000000000000000000000000000004672\n"
               b"size 31\n")
HTML_PAGE = b"<!DOCTYPE html><html><body><h1>Access Denied</h1></body></html>\n"


@dataclass
class Fault:
    kind: str
    times: int = 1                 # how many requests it applies to (-1: forever)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    method: str = "GET"
    fault: str | None = None       # the kind of fault this request was served, if any


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    # -- helpers --------------------------------------------------------------------------

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              head: bool = False, reason: str | None = None) -> None:
        self.send_response(status, reason)
        hdrs = {"Content-Length": str(len(body))}
        hdrs.update(headers or {})
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _stream(self, block: bytes, size: int) -> None:
        sent = 0
        try:
            while sent < size:
                chunk = block[: size - sent]
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass                     # the client stopped reading: that is the point

    def _reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), as a dying proxy would."""
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _serve(self, head: bool) -> None:
        owner = self.server.owner
        with owner._lock:
            owner.active += 1
            owner.max_active = max(owner.max_active, owner.active)
            crowded = owner.tolerate is not None and owner.active > owner.tolerate
            self._crowded = crowded
            if crowded:
                owner.refused += 1
            else:
                owner.max_served = max(owner.max_served, owner.active)
            # A block of a segmented download: a Range with an end.
            self._block = bool(re.match(r"bytes=\d+-\d+$", self.headers.get("Range", "")))
            if self._block and not crowded:
                owner.blocks_now += 1
                owner.max_blocks = max(owner.max_blocks, owner.blocks_now)
        self._counted = True
        try:
            if crowded:     # a CDN's per-client connection limit
                self._send(503, b"too many connections\n", {"Retry-After": "1"}, head)
                return
            self._serve_counted(head, owner)
        finally:
            self._uncount(owner)

    def _uncount(self, owner: "TestServer") -> None:
        """No longer 'being served'.  A trickle calls this before its last write: once the
        client has every byte it may start its next request before this thread runs again."""
        if self._counted:
            self._counted = False
            with owner._lock:
                owner.active -= 1
                if self._block and not self._crowded:
                    owner.blocks_now -= 1

    def _serve_counted(self, head: bool, owner: "TestServer") -> None:
        path = self.path
        seen = Seen(path, {k: v for k, v in self.headers.items()}, self.command)
        owner._record(seen)
        rng = _RANGE.match(self.headers.get("Range", "").strip())
        start = int(rng.group(1)) if rng else None
        fault = owner._take_fault(path, start) or owner._take_fault(path.split("?")[0], start)
        seen.fault = fault.kind if fault is not None else None
        data = owner.files.get(path)
        if fault is not None and self._fault(fault, data, head):
            return
        if data is None:
            self._send(404, b"not found\n", head=head)
            return
        self._normal(data, head, ignore_range=False)

    def _validators(self, data: bytes) -> dict[str, str]:
        return {"ETag": '"' + hashlib.md5(data).hexdigest() + '"',
                "Last-Modified": formatdate(self.server.owner.mtime, usegmt=True),
                "Accept-Ranges": "bytes"}

    def _normal(self, data: bytes, head: bool, *, ignore_range: bool,
                body_override: bytes | None = None) -> None:
        headers = self._validators(data)
        start = 0
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if rng and not ignore_range and (if_range is None or if_range in (
                headers["ETag"], headers["Last-Modified"])):
            m = _RANGE.match(rng.strip())
            if m:
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else len(data) - 1
                if start >= len(data):
                    self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"}, head)
                    return
                end = min(end, len(data) - 1)
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                body = (body_override or data)[start:end + 1]
                self._send(206, body, headers, head)
                return
        self._send(200, body_override or data, headers, head)

    # -- faults ---------------------------------------------------------------------------

    def _fault(self, f: Fault, data: bytes | None, head: bool) -> bool:
        """Apply a fault; return True if the response was fully handled."""
        p = f.params
        if f.kind == "status":
            time.sleep(p.get("delay", 0))
            extra = {}
            if "retry_after" in p:
                extra["Retry-After"] = str(p["retry_after"])
            self._send(p["code"], p.get("body", b"error\n"), extra, head, p.get("reason"))
            return True
        if f.kind == "redirect":
            self._send(p.get("code", 302), b"", {"Location": p["location"]}
                       if p.get("location") is not None else {}, head)
            return True
        if f.kind in ("reset", "truncate") and data is not None:
            start = 0
            rng = _RANGE.match(self.headers.get("Range", "").strip())
            headers = self._validators(data)
            status = 200
            if rng and not p.get("ignore_range"):
                start = int(rng.group(1))
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            body = data[start:]
            self.send_response(status)
            headers["Content-Length"] = str(len(body))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body[: p.get("after", len(body) // 2)])
            if f.kind == "reset":
                # Give the client time to read what was sent: a RST makes the peer's
                # kernel drop data still unread, which would make the test depend on timing.
                time.sleep(p.get("pause", 0.2))
                self._reset()
            else:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_WR)
            return True
        if f.kind == "stall":
            time.sleep(p.get("seconds", 5))
            return False
        if f.kind == "wrong_bytes" and data is not None:
            bad = bytes((b ^ 0xFF) for b in data[:64]) + data[64:]
            self._normal(data, head, ignore_range=False, body_override=bad)
            return True
        if f.kind == "ignore_range" and data is not None:
            self._normal(data, head, ignore_range=True)
            return True
        if f.kind == "replaced" and data is not None:
            # The object was replaced on the server: other bytes, other validators (an
            # If-Range for the old version gets the whole new file, as RFC 9110 says).
            self._normal(p["other"], head, ignore_range=False)
            return True
        if f.kind == "bad_content_range" and data is not None:
            headers = self._validators(data)
            headers["Content-Range"] = f"bytes 0-{len(data) - 1}/{len(data)}"
            self._send(206, data, headers, head)
            return True
        if f.kind == "html":
            self._send(200, HTML_PAGE, {"Content-Type": "text/html"}, head)
            return True
        if f.kind == "lfs_pointer":
            self._send(200, LFS_POINTER, {"Content-Type": "text/plain"}, head)
            return True
        if f.kind == "gzip" and data is not None:
            body = gzip.compress(data)
            self._send(200, body, {"Content-Encoding": "gzip", **self._validators(data)}, head)
            return True
        if f.kind == "no_length":
            # A close-delimited body (no Content-Length), ``size`` bytes of junk.
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            self._stream(b"J" * (1 << 16), p.get("size", 1 << 20))
            return True
        if f.kind == "huge_length":
            self.send_response(200)
            self.send_header("Content-Length", str(p.get("length", 10 ** 15)))
            self.end_headers()
            self.close_connection = True
            self._stream(b"J" * (1 << 16), p.get("size", 1 << 16))
            return True
        if f.kind == "gzip_bomb":
            body = gzip.compress(b"\x00" * p.get("inflated", 64 << 20), compresslevel=9)
            self._send(200, body, {"Content-Encoding": "gzip"}, head)
            return True
        if f.kind == "label_gzip" and data is not None:
            # The S3 misconfiguration: the stored .tar.gz bytes, labelled as encoded.
            self._send(200, data, {"Content-Encoding": "gzip", **self._validators(data)}, head)
            return True
        if f.kind == "swap_version" and data is not None:
            # First request: half of ``data`` (validator v1), then the connection drops.
            # A resume: a 206 with another file's bytes and validator v2 (a replaced object).
            other = p["other"]
            rng = _RANGE.match(self.headers.get("Range", "").strip())
            if not rng:
                self.send_response(200)
                self.send_header("ETag", '"v1"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_WR)
                return True
            start = int(rng.group(1))
            self._send(206, other[start:], {"ETag": '"v2"', "Accept-Ranges": "bytes",
                                            "Content-Range": f"bytes {start}-{len(other) - 1}/"
                                                             f"{len(other)}"}, head)
            return True
        if f.kind == "short_length" and data is not None:
            # A whole-file answer whose Content-Length (and body) is ``short`` bytes short,
            # while Range answers state the true size in Content-Range (a broken cache).
            if self.headers.get("Range"):
                self._normal(data, head, ignore_range=False)
            else:
                self._send(200, data[: len(data) - p.get("short", 1000)],
                           self._validators(data), head)
            return True
        if f.kind == "lie_total" and data is not None and self.headers.get("Range"):
            # A Range answer with the right bytes whose Content-Range claims ``extra`` more.
            m = _RANGE.match(self.headers["Range"].strip())
            start = int(m.group(1)) if m else 0
            end = int(m.group(2)) if m and m.group(2) else len(data) - 1
            headers = self._validators(data)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data) + p.get('extra', 1000)}"
            self._send(206, data[start:end + 1], headers, head)
            return True
        if f.kind == "trickle" and data is not None:
            headers = self._validators(data)
            start, stop, status = 0, len(data), 200
            rng = _RANGE.match(self.headers.get("Range", "").strip())
            if rng:
                start, status = int(rng.group(1)), 206
                if rng.group(2):
                    stop = min(len(data), int(rng.group(2)) + 1)
                headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(stop - start))
            self.end_headers()
            step = p.get("step", 1024)
            try:
                for i in range(start, stop, step):
                    if i + step >= stop:
                        self._uncount(self.server.owner)
                    self.wfile.write(data[i:min(i + step, stop)])
                    self.wfile.flush()
                    if i + step < stop:      # no pause after the last bytes: done is done
                        time.sleep(p.get("delay", 0.01))
            except OSError:
                self.close_connection = True      # the client went away (killed)
            return True
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: "TestServer"

    def handle_error(self, request, client_address) -> None:
        pass    # faults close sockets under the handler's feet on purpose


class TestServer:
    """Start with ``with TestServer() as srv:``; add files with ``srv.add(path, data)``."""

    __test__ = False   # not a pytest test class

    def __init__(self, host: str = "127.0.0.1", *, certfile: str | None = None,
                 keyfile: str | None = None) -> None:
        self.active = 0              # requests being served right now
        self.max_active = 0
        self.tolerate: int | None = None   # more requests at once than this get a 503
        self.refused = 0             # requests turned away by ``tolerate``
        self.max_served = 0          # the most requests served at once (not refused)
        self.blocks_now = 0          # Range requests with an end being served
        self.max_blocks = 0          # ... the most at once (a segmented download's width)
        self.host = host
        self.certfile, self.keyfile = certfile, keyfile
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list[Fault]] = {}
        self.requests: list[Seen] = []
        self.mtime = time.time() - 3600
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "TestServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._httpd = _Server((self.host, 0), _Handler)
        self._httpd.owner = self
        if self.certfile:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.certfile, self.keyfile)
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        scheme = "https" if self.certfile else "http"
        return f"{scheme}://{self.host}:{self.port}{path}"

    def reset(self) -> None:
        with self._lock:
            self.max_active = self.max_served = self.refused = self.max_blocks = 0
            self.tolerate = None
            self.files.clear()
            self.faults.clear()
            self.requests.clear()

    def add(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return self.url(path)

    def fault(self, path: str, kind: str, times: int = 1, **params: Any) -> None:
        with self._lock:
            self.faults.setdefault(path, []).append(Fault(kind, times, params))

    def hits(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def _take_fault(self, path: str, range_start: int | None = 0) -> Fault | None:
        """The next fault for this path; one with ``from_byte`` only hits requests whose
        Range starts at or after that byte, one with ``until_byte`` only Range requests
        starting before it (so a test can break exactly one block)."""
        with self._lock:
            queue = self.faults.get(path)
            if not queue:
                return None
            f = queue[0]
            start = range_start or 0
            if start < f.params.get("from_byte", 0):
                return None
            if "until_byte" in f.params and (range_start is None
                                             or start >= f.params["until_byte"]):
                return None
            if f.times > 0:
                f.times -= 1
                if f.times == 0:
                    queue.pop(0)
            return f
