"""A loopback server speaking the Hugging Face Hub's resolve protocol, for tests.

``HEAD|GET /[spaces/|datasets/]OWNER/REPO/resolve/REVISION/PATH`` answers as the Hub
does for an LFS file: a 302 whose headers say what the file is (``X-Linked-Etag`` = its
sha256, ``X-Linked-Size``, ``X-Repo-Commit``) and whose ``Location`` is a CDN on
another port (the ordinary test server), which carries none of those headers.  Every
request's headers are recorded, so a test can see where a token went.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


@dataclass
class HubFile:
    data: bytes
    commit: str = "c0ffee" * 6 + "c0ff"
    claim_sha256: str | None = None      # what X-Linked-Etag says (default: the real one)
    claim_size: int | None = None        # what X-Linked-Size says (default: the real one)
    token: str | None = None             # a gated repo: 401 without this bearer token
    cdn_data: bytes | None = None        # what the CDN serves (default: data)
    xet_hash: str | None = None          # an X-Xet-Hash header (never with the real client:
                                         # it would then speak Xet, which this stand-in does not)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Hub:
    cdn: object                           # tests/server.TestServer serving /cdn/...
    files: dict[str, HubFile] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    url: str = ""

    def add(self, repo_path: str, f: HubFile) -> None:
        """``repo_path``: e.g. ``spaces/owner/repo/resolve/<rev>/dir/file.pkl``."""
        self.files[repo_path] = f
        sha = hashlib.sha256(f.data).hexdigest()
        self.cdn.add(cdn_path(sha), f.cdn_data if f.cdn_data is not None else f.data)


def cdn_path(sha: str) -> str:
    """Where the CDN serves a blob: signed, as the Hub's CDN URLs are."""
    return f"/cdn/{sha}?X-Amz-Signature=sig{sha[:6]}"


def start(cdn) -> tuple[Hub, ThreadingHTTPServer]:
    hub = Hub(cdn)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _answer(self) -> None:
            path = unquote(self.path.split("?", 1)[0]).lstrip("/")
            hub.requests.append(Seen(self.command, path, dict(self.headers.items())))
            f = hub.files.get(path)
            if f is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if f.token and self.headers.get("Authorization") != f"Bearer {f.token}":
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            sha = hashlib.sha256(f.data).hexdigest()
            self.send_response(302)
            self.send_header("Location", hub.cdn.url(cdn_path(sha)))
            self.send_header("X-Linked-Etag", f'"{f.claim_sha256 or sha}"')
            self.send_header("X-Linked-Size", str(f.claim_size if f.claim_size is not None
                                                  else len(f.data)))
            self.send_header("X-Repo-Commit", f.commit)
            if f.xet_hash:
                self.send_header("X-Xet-Hash", f.xet_hash)
            self.send_header("ETag", '"' + "e" * 64 + '"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = _answer
        do_GET = _answer

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    hub.url = f"http://127.0.0.1:{srv.server_address[1]}"
    return hub, srv
