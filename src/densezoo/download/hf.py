"""Hugging Face Hub copies: ``hf://[datasets/|spaces/]OWNER/NAME[@REVISION][/PATH]``.

The spelling is huggingface_hub's own file-system one.  A copy is fetched the way the
Hub's client fetches it, in plain HTTP: one ``HEAD`` of
``$HF_ENDPOINT/[spaces/|datasets/]OWNER/REPO/resolve/REVISION/PATH`` **without**
following absolute redirects, whose 302 carries what the Hub says of the file --
``X-Linked-Etag`` (the sha256 of an LFS/Xet file), ``X-Linked-Size`` and
``X-Repo-Commit`` -- then a GET of the ``Location`` (the CDN) through densezoo's own
verified downloader, without the token.  A size or sha256 that contradicts the
manifest or the pin refuses the copy before its body; the body must then match the
Hub's sha256 too (a pointer file or a truncated copy fails there).  The Hub vouching
for its own bytes adds no trust: the strength still comes from the manifest or a pin.

Plain HTTP rather than huggingface_hub: the only parts of it needed are the URL
template and the token lookup (a few lines each), while its downloader would bypass
densezoo's resume, segmenting, hashing and intake -- and it would make the core heavy.

``HF_ENDPOINT`` (default ``https://huggingface.co``; mirrors such as hf-mirror.com are
another endpoint for the same sources) and ``HF_TOKEN`` (else ``HF_TOKEN_PATH``, else
``$HF_HOME/token``) are read when a copy is fetched.  The token goes to the endpoint
only -- never to the CDN the resolve URL redirects to -- and is never printed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urljoin, urlsplit

from ..errors import FailureKind, PolicyError, TransferError
from ..urls import redact

if TYPE_CHECKING:
    from .http import Downloader

DEFAULT_ENDPOINT = "https://huggingface.co"
REPO_TYPES = ("spaces", "datasets")
MAX_RELATIVE_REDIRECTS = 5
HEAD_TIMEOUT = 10.0
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class HubPath:
    repo_type: str | None     # None (a model), "spaces" or "datasets"
    repo: str                 # OWNER/REPO
    revision: str             # a branch, tag or 40-hex commit ("main" when not given)
    path: str                 # the file's path in the repo

    def resolve_url(self, endpoint: str) -> str:
        prefix = f"{self.repo_type}/" if self.repo_type else ""
        return (f"{endpoint.rstrip('/')}/{prefix}{self.repo}/resolve/"
                f"{quote(self.revision, safe='')}/{quote(self.path)}")


GRAMMAR = "hf://[datasets/|spaces/]OWNER/NAME[@REVISION][/PATH]"


def parse(url: str, *, need_path: bool = True) -> HubPath:
    """Split an ``hf://`` URL (huggingface_hub's grammar: models by default, revision
    ``main`` by default); ValueError for one that is not well formed.  Without
    ``need_path`` a repo root is accepted (a mirror: files are then at
    ``<host>/<url path>`` inside it, as in an http mirror)."""
    if not url.startswith("hf://"):
        raise ValueError("not an hf:// URL")
    parts = url[len("hf://"):].rstrip("/").split("/")
    repo_type = parts.pop(0) if parts and parts[0] in REPO_TYPES else None
    if len(parts) < (3 if need_path else 2):
        raise ValueError(f"expected {GRAMMAR}")
    owner, name = parts[0], parts[1]
    revision = "main"
    if "@" in name:
        name, revision = name.split("@", 1)
        revision = unquote(revision)          # refs%2Fpr%2F3, as the Hub's client writes it
    path = "/".join(parts[2:])
    if not (_PART.match(owner) and _PART.match(name) and revision
            and ".." not in parts and "" not in parts[2:] and ".." not in revision.split("/")):
        raise ValueError(f"expected {GRAMMAR}")
    return HubPath(repo_type, f"{owner}/{name}", revision, path)


def check(url: str) -> bool:
    """Well formed as a mirror: a repo root, or a folder inside one."""
    try:
        parse(url, need_path=False)
    except ValueError:
        return False
    return True


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def token() -> str | None:
    """HF_TOKEN, else the Hub's token file (HF_TOKEN_PATH, else $HF_HOME/token)."""
    return _token()[0]


def token_source() -> str | None:
    """Where the token comes from (a variable's name or the token file), never its value."""
    return _token()[1]


def _token() -> tuple[str | None, str | None]:
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        value = os.environ.get(var)
        if value and value.strip():
            return value.strip(), var
    path = os.environ.get("HF_TOKEN_PATH") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"),
        "token")
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None, None
    return (text, path) if text else (None, None)


@dataclass(frozen=True)
class Resolved:
    """What a source module answers for one candidate URL: where to GET the bytes, and
    what the source says of them before any byte was read (each may be None)."""

    url: str                   # the request URL (the CDN; no credentials needed)
    sha256: str | None = None  # the Hub's X-Linked-Etag, when it is a sha256
    size: int | None = None    # X-Linked-Size
    commit: str | None = None  # X-Repo-Commit
    served_as: str | None = None   # how to name the source in messages (the hf:// URL)
    xet_hash: str | None = None    # X-Xet-Hash (Xet-backed files)

    def pinned_url(self) -> str:
        """The source as it was served: ``hf://[TYPE/]OWNER/NAME@<commit>/PATH``."""
        if not (self.commit and self.served_as):
            return self.served_as or self.url
        hp = parse(self.served_as)
        kind = f"{hp.repo_type}/" if hp.repo_type else ""
        return f"hf://{kind}{hp.repo}@{self.commit}/{hp.path}"

    def provenance(self) -> dict[str, str | None]:
        """What is recorded with the copy: the commit the revision resolved to, the Xet hash."""
        return {"hub_commit": self.commit, "xet_hash": self.xet_hash}


def connect(downloader: "Downloader | None" = None) -> "Hub":
    return Hub(downloader)


class Hub:
    """Resolves hf:// URLs against the endpoint (read at each call, as every variable).

    Its requests go through the downloader's session and transport policy: a plain-http
    ``HF_ENDPOINT`` off loopback is refused without ``--allow-http`` before the token is
    sent, as any plain-http URL is."""

    def __init__(self, downloader: "Downloader | None" = None) -> None:
        from .http import Downloader

        self.downloader = downloader or Downloader()
        self.session = self.downloader.session

    def request_url(self, url: str) -> Resolved:
        try:
            hp = parse(url)
        except ValueError as e:
            raise TransferError(url, f"not a valid hf:// address ({e})", retryable=False,
                                kind=FailureKind.POLICY) from None
        base = endpoint()
        target = hp.resolve_url(base)
        headers = {"Accept-Encoding": "identity"}
        secret = token()
        for _ in range(MAX_RELATIVE_REDIRECTS + 1):
            try:
                self.downloader.check_url_allowed(target)
            except PolicyError as e:
                raise TransferError(url, f"the Hub endpoint {redact(target)}: {e.message}"
                                    f"{f' ({e.hint})' if e.hint else ''}", retryable=False,
                                    kind=FailureKind.POLICY) from None
            # The token only ever goes to the endpoint's own host.
            same_host = urlsplit(target).netloc == urlsplit(base).netloc
            send = {**headers, **({"Authorization": f"Bearer {secret}"}
                                  if secret and same_host else {})}
            try:
                r = self.session.head(target, headers=send, allow_redirects=False,
                                      timeout=(min(HEAD_TIMEOUT, 10.0), HEAD_TIMEOUT))
            except Exception as e:  # noqa: BLE001 - reported as this URL's failure
                from .wire import network_error

                err = network_error(url, e, (HEAD_TIMEOUT, HEAD_TIMEOUT))
                raise TransferError(url, err.reason, retryable=False,
                                    unreachable=err.unreachable) from None
            r.close()
            location = r.headers.get("Location")
            if r.status_code in (301, 302, 303, 307, 308) and location:
                absolute = urljoin(target, location)
                if urlsplit(location).netloc == "":          # a renamed repo, a small file
                    target = absolute
                    continue
                return self._resolved(url, r, absolute)
            if r.status_code == 200:
                return self._resolved(url, r, target)
            raise explain(url, TransferError(url, f"HTTP {r.status_code} from the Hub",
                                             status=r.status_code, retryable=r.status_code
                                             in (429, 500, 502, 503, 504)))
        raise TransferError(url, "too many relative redirects from the Hub", retryable=False)

    @staticmethod
    def _resolved(url: str, r, location: str) -> Resolved:
        if not r.headers.get("X-Repo-Commit"):
            raise TransferError(url, "the endpoint answered without X-Repo-Commit: not a "
                                     "Hugging Face Hub (check HF_ENDPOINT)", retryable=False,
                                kind=FailureKind.CONTENT)
        etag = (r.headers.get("X-Linked-Etag") or "").strip()
        etag = etag[2:] if etag.startswith("W/") else etag
        etag = etag.strip('"').lower()
        size = r.headers.get("X-Linked-Size")
        if size is None and r.status_code == 200:
            size = r.headers.get("Content-Length")
        return Resolved(location, etag if _SHA256.match(etag) else None,
                        int(size) if size and re.fullmatch(r"[0-9]{1,20}", size) else None,
                        r.headers.get("X-Repo-Commit"), url,
                        (r.headers.get("X-Xet-Hash") or "").strip() or None)


def explain(url: str, e: TransferError) -> TransferError:
    """The same failure, in the Hub's terms (a gated repo needs a token, ...)."""
    if e.status in (401, 403):
        why = ("access denied by the Hub: the repo is gated or private -- accept its terms "
               "and set HF_TOKEN (or run `hf auth login`)")
    elif e.status == 404:
        why = "not on the Hub at that revision (repo, revision or path gone)"
    else:
        why = e.reason
    return TransferError(url, why, status=e.status, retryable=e.retryable, kind=e.kind,
                         unreachable=e.unreachable)
