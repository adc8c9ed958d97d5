"""Operating densezoo: a mirror tree served by a real nginx, with fallback to upstream."""

import json
import os
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path


from conftest import entry, need_tool


def fetched(cli, m, *names):
    r = cli("--manifest", str(m), "fetch", *names)
    assert r.code == 0, r.err
    return r.out.split()


# -- mirrors with a real nginx ---------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    def __init__(self, root: Path, work: Path) -> None:
        need_tool("nginx")
        self.port = free_port()
        self.work = work
        (work / "tmp").mkdir(parents=True, exist_ok=True)
        self.log = work / "access.log"
        self.conf = work / "nginx.conf"
        self.conf.write_text(textwrap.dedent(f"""\
            worker_processes 1; user root; daemon on; pid {work}/nginx.pid;
            error_log {work}/error.log;
            events {{ worker_connections 64; }}
            http {{
              access_log {self.log};
              client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp;
              fastcgi_temp_path {work}/tmp; uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
              server {{ listen 127.0.0.1:{self.port}; root {root}; }}
            }}
            """))

    def start(self) -> None:
        subprocess.run(["nginx", "-c", str(self.conf)], check=True)
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)

    def stop(self) -> None:
        pid_file = self.work / "nginx.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                    time.sleep(0.05)
                except ProcessLookupError:
                    break

    def hits(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0


def test_mirror_build_serve_with_nginx_and_fall_back(cli, blob, manifest, server, tmp_path, nginx_bin,
                                                     monkeypatch):
    b = blob("mirrored", 500_000)
    m = manifest(entry(b))
    fetched(cli, m, "mirrored")
    tree = tmp_path / "mirror"
    r = cli("--manifest", str(m), "mirror", "build", str(tree), "mirrored")
    assert r.code == 0, r.err
    for p in [tmp_path, *tree.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    mirror_manifest = json.dumps(open(r.out.strip()).read())
    assert b.md5 in mirror_manifest
    server.requests.clear()          # the fetch that filled the mirror does not count
    nginx = Nginx(tree, tmp_path / "nginx")
    nginx.start()
    try:
        monkeypatch.setenv("DENSEZOO_MIRROR", f"http://127.0.0.1:{nginx.port}/")
        fresh = str(tmp_path / "client-cache")
        r = cli("-v", "--cache-dir", fresh, "--manifest", str(m), "fetch", "mirrored")
        assert r.code == 0 and f"127.0.0.1:{nginx.port}" in r.err
        assert server.hits(b.path) == [] and nginx.hits() == 1     # upstream untouched
        nginx.stop()
        r = cli("--cache-dir", fresh, "--manifest", str(m), "fetch", "mirrored", "--force")
        assert r.code == 0 and len(server.hits(b.path)) == 1        # fell back to upstream
        nginx.start()
        before = nginx.hits()
        r = cli("--cache-dir", fresh, "--manifest", str(m), "fetch", "mirrored", "--force")
        assert r.code == 0 and len(server.hits(b.path)) == 2        # the failed mirror waits
        assert nginx.hits() == before
    finally:
        nginx.stop()
