"""`densezoo doctor`: the facts a bug report (or a cluster admin) needs, checked."""

from __future__ import annotations

import os
import platform
import shutil
import uuid
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from ..errors import DensezooError
from ..urls import redact, redact_text

if TYPE_CHECKING:
    from ..core import Core

NETWORK_ENV = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "https_proxy",
               "http_proxy", "no_proxy", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    host: str | None = None          # a probed host (host:port)
    status: int | None = None        # its HTTP answer to HEAD
    latency_ms: float | None = None  # time to that answer

    @property
    def word(self) -> str:
        """What the line says of itself: FAIL breaks the setup; warn is a host that does
        not serve files (no answer, or 4xx/5xx) while the setup still works; else ok."""
        if not self.ok:
            return "FAIL"
        if self.host is not None and (self.status is None or self.status >= 400):
            return "warn"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "ok": self.ok, "detail": self.detail}
        if self.host is not None:           # a probe: its answer, or None for none
            d.update(host=self.host, status=self.status, latency_ms=self.latency_ms)
        return d


@dataclass(frozen=True)
class Diagnosis:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def _probe_targets(core: "Core") -> list[tuple[str, str]]:
    """(role, URL) pairs: one artifact URL per origin host of the loaded manifests, and
    each http(s) mirror's densezoo-mirror.yaml (any answer, even 404, means it is up)."""
    from ..download.health import host_of
    from ..sources import is_special

    seen: dict[str, str] = {}
    try:
        arts = core.catalog.artifacts
    except DensezooError:
        arts = ()
    for a in arts:
        if not is_special(a.url):
            seen.setdefault(host_of(a.url), a.url)
    targets = [("origin", url) for url in seen.values()]
    targets += [("mirror", m.rstrip("/") + "/densezoo-mirror.yaml")
                for m in core.settings.mirrors if not is_special(m)]
    return targets


def _probes(core: "Core") -> list[Check]:
    if core.settings.offline:
        return [Check("network", True, "offline: no host probed")]
    from ..download.probe import probe

    targets = _probe_targets(core)
    results = probe([url for _, url in targets])
    # A host that does not answer fails the check only when nothing else can serve the
    # files: a dead origin behind a working mirror is the situation mirrors exist for.
    any_mirror = any(p.reachable for (role, _), p in zip(targets, results) if role == "mirror")
    checks = []
    for (role, url), p in zip(targets, results):
        if p.reachable:
            note = {403: " (access denied)", 404: " (not found)"}.get(p.status or 0, "")
            detail = f"{p.host} answers HTTP {p.status}{note} in {p.latency_ms:.0f} ms"
        else:
            detail = f"{p.host} does not answer: {p.error}" + (
                "; a mirror answers, fetches use it" if role == "origin" and any_mirror else "")
        ok = p.reachable or (role == "origin" and any_mirror)
        checks.append(Check(role, ok, redact_text(detail), host=p.host, status=p.status,
                            latency_ms=p.latency_ms))
    return checks


def _setting_checks(core: "Core", flags: dict[str, Any]) -> list[Check]:
    from ..user_settings import origins

    s = core.settings
    rows = origins(flags, lambda key: getattr(s, key))
    def shown(value: Any) -> str:
        text = ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)
        return text or "-"

    return [Check(f"setting {r.name}", True, redact_text(f"{shown(r.value)} ({r.source})"))
            for r in rows]


def _hub_check(core: "Core") -> Check:
    """The Hugging Face Hub variables in effect: where hf:// sources are asked, with which
    credentials (named, never shown), and which HF cache a fetch reads through."""
    from ..download import hf
    from ..store.hf_cache import hub_cache, hub_offline
    from ..urls import is_loopback

    base = hf.endpoint()
    where = hf.token_source()
    cache = hub_cache()
    parts = [f"HF_ENDPOINT={redact(base)}" + ("" if os.environ.get("HF_ENDPOINT") else
                                              " (default)"),
             f"token: {'from ' + where if where else 'none (gated repos need `hf auth login` or HF_TOKEN)'}",
             f"HF cache: {cache}" + ("" if cache.is_dir() else " (not there yet)"),
             f"HF_HUB_OFFLINE={'1: the Hub is not asked' if hub_offline() else 'unset'}"]
    clear = base.startswith("http://") and not is_loopback(base)
    ok = not clear or core.settings.allow_http
    if clear:
        parts.append("plain http: " + ("allowed by --allow-http" if ok else
                                       "refused without --allow-http (the token would travel "
                                       "in clear text)"))
    return Check("hugging face hub", ok, "; ".join(parts))


def diagnose(core: "Core", *, probe_hosts: bool = True,
             flags: dict[str, Any] | None = None) -> Diagnosis:
    checks = [Check("versions", True, f"python {platform.python_version()}, " + ", ".join(
        f"{p} {_version(p)}" for p in ("densezoo", "requests", "urllib3", "click", "rich",
                                       "PyYAML", "tqdm", "platformdirs")))]
    root = core.store.root
    try:
        root.mkdir(parents=True, exist_ok=True)
        scratch = root / f".doctor-{uuid.uuid4().hex[:8]}"
        scratch.write_bytes(b"x")
        scratch.unlink()
        checks.append(Check("cache dir", True, f"{root} (writable)"))
    except OSError as e:
        checks.append(Check("cache dir", False, f"{root} is not writable: {e.strerror or e}"))
    try:
        free = shutil.disk_usage(root if root.exists() else root.parent).free
        checks.append(Check("free space", free > 1 << 30, f"{free / 2**30:.1f} GiB free"))
    except OSError as e:
        checks.append(Check("free space", False, str(e)))
    env = {k: v for k, v in os.environ.items() if k in NETWORK_ENV or k.startswith("DENSEZOO_")}
    checks.append(Check("environment", True, ", ".join(
        f"{k}={redact_text(v)}" for k, v in sorted(env.items())) or "no proxy, CA or "
        "DENSEZOO_* variables set"))
    ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    if ca:
        checks.append(Check("CA bundle", os.path.isfile(ca), ca if os.path.isfile(ca)
                            else f"{ca} does not exist"))
    try:
        cat = core.catalog
        checks.append(Check("manifests", True, f"{len(cat.manifests)} loaded, "
                            f"{len(cat.artifacts)} artifacts, zoos: {', '.join(cat.zoos())}"))
    except DensezooError as e:
        checks.append(Check("manifests", False, str(e)))
    s = core.settings
    mode = "offline" if s.offline else "online"
    checks.append(Check("mode", True, f"{mode}; strict={s.strict}; mirrors: "
                        + (", ".join(redact(m) for m in s.mirrors) or "none")))
    checks.append(_hub_check(core))
    try:
        checks += _setting_checks(core, flags or {})
    except DensezooError as e:
        checks.append(Check("settings file", False, str(e)))
    if probe_hosts:
        checks += _probes(core)
    return Diagnosis(tuple(checks))

