"""URL helpers shared by every layer: store keys, host checks, redaction, the loopback test."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
REDACTED = "***"
# densezoo's bookkeeping suffixes: a manifest file name (or URL segment) may not contain them,
# so no artifact can be mistaken for a partial, its metadata or a marker.
PART = ".dzpart"
META = ".dzmeta"
LOCK = ".dzlock"
RESERVED_SUFFIXES = (PART, META, LOCK)


def valid_host(host: str) -> bool:
    """A DNS name (labels of letters, digits, '-' and '_') or an IP address; never '..'."""
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.lower().rstrip(".").split(".")
    return len(host) <= 253 and all(_LABEL.match(label) for label in labels)


def url_key(url: str) -> tuple[str, ...]:
    """Host plus path segments: the store key, so equal basenames never collide.

    Percent-escapes stay as they are (``%3A`` is a literal ``:`` in the S3 key and
    must not be decoded or encoded twice); empty segments from ``//`` are dropped.
    Callers take keys only from validated URLs (``manifest.check_url``);
    ``layout`` refuses any key that could leave its folder all the same.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.port:
        host = f"{host}_{parts.port}"
    segments = [s for s in parts.path.split("/") if s]
    return (host, *segments)


def key_is_safe(key: tuple[str, ...]) -> bool:
    """No segment can step out of the folder the key is joined onto."""
    return bool(key) and all(s not in ("", ".", "..") and "/" not in s and "\\" not in s
                             and "\x00" not in s for s in key)


def redact(url: str) -> str:
    """A URL fit to print or store: no user:password, and no value of a query parameter
    whose name looks secret (token, sig, signature, key, password, X-Amz-*, ...);
    other parameters (``?v=2``) are kept, so the URL still names the same file."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        # Not parseable (``hf://[datasets/|spaces/]...`` in a message, a bad port): drop
        # the query and any user:password@ before the first '/', keep the rest as written.
        scheme, sep, rest = url.split("?", 1)[0].partition("://")
        netloc, slash, path = rest.partition("/")
        return scheme + sep + netloc.rsplit("@", 1)[-1] + slash + path
    netloc = parts.netloc
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    query = parts.query
    if query and any(_secret_name(k) for k, _ in parse_qsl(query, keep_blank_values=True)):
        query = urlencode([(k, REDACTED if v and _secret_name(k) else v) for k, v in
                           parse_qsl(query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secret_name(name: str) -> bool:
    low = name.lower()
    return any(w in low for w in _SECRET_WORDS)


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>,]+")
_BARE_USERINFO = re.compile(r"(?<![\w/@])[^\s/@'\":,=]+:[^\s/@'\"]*@(?=[\w\[])")


def redact_text(text: str) -> str:
    """Any message with the URLs inside it redacted (``redact``), and a scheme-less
    ``user:password@host`` (a proxy variable's usual form) too: the one filter every
    line densezoo prints goes through, whatever put a URL into it."""
    text = _URL_IN_TEXT.sub(lambda m: redact(m.group()), text)
    return _BARE_USERINFO.sub("", text)


_SECRET_WORDS = ("token", "sig", "key", "pass", "secret", "auth", "credential", "x-amz-")


def has_secret(url: str) -> bool:
    """Whether a URL carries credentials (user:password, or a token-like query value):
    such a URL may be used for a request, never written to a file densezoo owns."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return True
    if parts.username or parts.password:
        return True
    return any(_secret_name(k) and v
               for k, v in parse_qsl(parts.query, keep_blank_values=True))


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


DEFAULT_PORTS = {"http": "80", "https": "443", "ftp": "21"}


def url_identity(url: str) -> str:
    """One spelling per URL, as the server sees it: scheme and host lower-cased, a
    trailing dot and the scheme's default port dropped (``HTTPS://Host.:443/p`` is
    ``https://host/p``), credentials ignored.  The path stays as written."""
    scheme, _, rest = url.partition("://")
    netloc, _, path = rest.partition("/")
    scheme = scheme.lower()
    host = netloc.rsplit("@", 1)[-1].lower()
    port = ""
    if host.startswith("["):                          # [v6]:port
        end = host.find("]")
        host, port = host[:end + 1], host[end + 2:] if host[end + 1:end + 2] == ":" else ""
    elif ":" in host:
        host, port = host.rsplit(":", 1)
    host = host.rstrip(".")
    if port == DEFAULT_PORTS.get(scheme):
        port = ""
    return f"{scheme}://{host}{':' + port if port else ''}/{path}"
