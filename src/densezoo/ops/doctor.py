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


@dataclass(frozen=True)
class Diagnosis:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.__dict__ for c in self.checks]}


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def diagnose(core: "Core") -> Diagnosis:
    checks = [Check("versions", True, f"python {platform.python_version()}, " + ", ".join(
        f"{p} {_version(p)}" for p in ("densezoo", "requests", "urllib3", "click", "rich",
                                       "PyYAML", "tqdm", "platformdirs")))]
    root = core.store.root
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".doctor-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"x")
        probe.unlink()
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
    return Diagnosis(tuple(checks))

