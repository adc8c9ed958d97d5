"""Shared fixtures: an isolated cache per test, a loopback server, synthetic artifacts."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from densezoo.download import http as download

sys.path.insert(0, str(Path(__file__).parent))
from server import TestServer  # noqa: E402


@pytest.fixture(scope="session")
def _server():
    with TestServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory):
    """An https server with a throw-away self-signed certificate for 127.0.0.1."""
    import subprocess

    openssl = need_tool("openssl")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    with TestServer(certfile=str(cert), keyfile=str(key)) as srv:
        srv.cafile = str(cert)
        yield srv


@pytest.fixture
def server(_server):
    _server.reset()
    yield _server
    _server.reset()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own cache and no DENSEZOO_* settings from the outside world."""
    for k in list(os.environ):
        if k.startswith("DENSEZOO_"):
            monkeypatch.delenv(k)
    cache = tmp_path / "cache"
    monkeypatch.setenv("DENSEZOO_CACHE_DIR", str(cache))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))   # no user settings
    # A safety net: anything not on loopback goes to a closed local port (no DNS lookup,
    # no traffic off this machine), e.g. a doctor probe of the shipped manifests' hosts.
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    sleeps: list[float] = []
    monkeypatch.setattr(download, "_sleep", sleeps.append)
    return {"cache": cache, "sleeps": sleeps}


@pytest.fixture
def sleeps(isolated) -> list[float]:
    return isolated["sleeps"]


@pytest.fixture
def cache_dir(isolated) -> Path:
    return isolated["cache"]


@dataclass
class Blob:
    name: str
    data: bytes
    url: str
    path: str

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@pytest.fixture
def blob(server):
    """Make a synthetic artifact served at /zoo/<name>.bin (deterministic bytes per name)."""
    def make(name: str, size: int = 100_000, *, path: str | None = None) -> Blob:
        seed = hashlib.sha256(name.encode()).digest()
        reps = size // len(seed) + 1
        # Vary the bytes so a shifted or stitched copy never hashes the same.
        data = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest()
                        for i in range(reps))[:size]
        p = path or f"/zoo/{name}.bin"
        return Blob(name, data, server.add(p, data), p)
    return make


@pytest.fixture
def manifest(tmp_path):
    """Write a manifest from entry dicts; returns its path."""
    counter = {"n": 0}

    def write(*entries: dict[str, Any], zoo: str = "test", raw: str | None = None) -> Path:
        counter["n"] += 1
        p = tmp_path / f"manifest{counter['n']}.yaml"
        p.write_text(raw if raw is not None else yaml.safe_dump(
            {"schema": 1, "zoo": zoo, "artifacts": list(entries)}, sort_keys=False))
        return p
    return write


def entry(b: Blob, *, md5: bool = True, size: bool = True, **extra: Any) -> dict[str, Any]:
    """A manifest entry for a blob (published md5 and size unless told otherwise)."""
    e: dict[str, Any] = {"name": b.name, "url": b.url, "md5": b.md5 if md5 else None}
    if size:
        e["size"] = len(b.data)
    e.update(extra)
    return e


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict[str, Any]:
        """The ``--json`` envelope, validated against its command's schema (docs/json.md):
        every test that reads JSON also checks the documented shape."""
        import json

        import jsonschema

        from densezoo.cli.schema import schema_for

        doc = json.loads(self.out)
        jsonschema.validate(doc, schema_for(doc["command"]))
        assert doc["exit_code"] == self.code and doc["ok"] == (self.code == 0), doc
        return doc

    @property
    def items(self) -> list[dict[str, Any]]:
        return self.json["items"]


def run_cli(*args: str) -> Run:
    """Run the real entry point in-process, as a shell would see it (exit code, stdout, stderr)."""
    from densezoo.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_cli


def missing(what: str, kind: str = "optional system tool") -> None:
    """A part this test needs is not on this machine: skipped on a developer's machine
    (the README's test command passes without system tools), a failure under ``CI=true``
    (CI installs them, so a missing one is a broken CI, not a skip)."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} is needed; .ci/run installs it")
    pytest.skip(f"{what} is not installed ({kind}; .ci/run installs it)")


def need_tool(*names: str) -> str:
    """The path of the first of ``names`` on PATH, or skip/fail as ``missing`` says."""
    import shutil

    for name in names:
        found = shutil.which(name)
        if found:
            return found
    missing(names[0])
    raise AssertionError("unreachable")


def need_root() -> None:
    if os.geteuid() != 0:
        missing("root (to mount a tmpfs)")


SYSTEM_FIXTURES = {"tmpfs", "small_fs", "nginx_bin", "chromium_bin", "cotenant"}


def pytest_collection_modifyitems(items):
    """Tests that need root, nginx, chromium or a tmpfs are ``system`` tests:
    ``pytest -m "not system"`` is the fast inner loop."""
    for item in items:
        if SYSTEM_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.system)


@pytest.fixture
def nginx_bin() -> str:
    return need_tool("nginx")


@pytest.fixture
def chromium_bin() -> str:
    return need_tool("chromium", "chromium-browser")


@pytest.fixture
def tmpfs(tmp_path):
    """Mount real tmpfs filesystems (``tmpfs("16m")``); unmounted after the test."""
    import subprocess

    need_root()
    mounted = []

    def mount(size: str) -> Path:
        mnt = tmp_path / f"fs{len(mounted)}"
        mnt.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"these tests mount a tmpfs and need root: {r.stderr}"
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def read_only(mnt: Path) -> None:
    import subprocess

    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)


def start_moto(auth: bool = False):
    """moto's standalone S3 server (an emulator over real HTTP) on 127.0.0.1.

    With ``auth`` it checks every signature and knows no keys, so any credentials
    are wrong (a 403, as from a real bucket).  Returns (process, endpoint URL).
    """
    import socket
    import subprocess
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"} if auth else None
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def moto_endpoint():
    """One moto server for the whole run."""
    proc, endpoint = start_moto()
    yield endpoint
    proc.terminate()
    proc.wait(timeout=10)


def aws_env(monkeypatch, endpoint: str, tmp_path: Path) -> None:
    """Credentials and endpoint for the emulator, and no AWS files of the machine's."""
    for k, v in {"AWS_ACCESS_KEY_ID": "densezoo-test", "AWS_SECRET_ACCESS_KEY": "s3cretkey",
                 "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                 "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
                 "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials")}.items():
        monkeypatch.setenv(k, v)


def run_in_pty(argv: list[str], env: dict, *, columns: int = 80,
               rows: int = 40) -> tuple[int, str]:
    """Run a command on a real terminal of ``columns`` x ``rows`` (a pty opened with no
    size is 0 columns wide: rich and tqdm then draw nothing); its exit code and output."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    p = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, env=env,
                         close_fds=True)
    os.close(child)
    out = read_to_end(main)
    return p.wait(timeout=60), out.decode(errors="replace")


def read_to_end(main: int) -> bytes:
    """Everything a pty's other side writes until it closes; closes ``main``."""
    import os

    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    return out


COTENANT = "dz-cotenant"


@dataclass
class Cotenant:
    """A second real user of a shared cache (issue 33: the attacker acts as another uid)."""

    uid: int
    gid: int
    home: Path            # a folder under /tmp both users can reach (tmp_path is root's 0700)

    def run(self, *argv: str, check: bool = True) -> "subprocess.CompletedProcess[str]":
        import subprocess

        r = subprocess.run(list(argv), user=self.uid, group=self.gid, extra_groups=[],
                           capture_output=True, text=True, cwd="/")
        if check:
            assert r.returncode == 0, (argv, r.stderr)
        return r

    def shared(self, path: Path, mode: int = 0o777) -> Path:
        """Make ``path`` (and its parents up to ``home``) a folder the co-tenant can write."""
        path.mkdir(parents=True, exist_ok=True)
        for p in [path, *path.parents]:
            if p == self.home.parent:
                break
            p.chmod(mode if p == path else max(p.stat().st_mode & 0o777, 0o755))
        return path


@pytest.fixture
def cotenant():
    """Root's tests of a shared cache: creates the user ``dz-cotenant`` if needed and a
    folder under /tmp (mode 0755) for the cache; skipped with a reason when not root
    (a failure under CI=true, as ``missing`` says)."""
    import pwd
    import shutil
    import subprocess
    import tempfile

    if os.geteuid() != 0:
        missing("root (to act as a second uid on a shared cache)")
    try:
        pw = pwd.getpwnam(COTENANT)
    except KeyError:
        r = subprocess.run(["useradd", "-M", "-r", "-s", "/usr/sbin/nologin", COTENANT],
                           capture_output=True, text=True)
        if r.returncode != 0 and "already exists" not in r.stderr:
            missing(f"useradd (to create {COTENANT}): {r.stderr.strip()}")
        pw = pwd.getpwnam(COTENANT)
    home = Path(tempfile.mkdtemp(prefix="dz-shared-", dir="/tmp"))
    home.chmod(0o755)
    yield Cotenant(pw.pw_uid, pw.pw_gid, home)
    shutil.rmtree(home, ignore_errors=True)
