"""Issue 39.2: what a killed operation leaves behind is named for its writer and removed.

Each operation runs as a real subprocess under ``tests/inject.py``, which SIGKILLs it
at the moment its temp is complete and about to be renamed into place (the most a
kill can leave).  Then ``cache du`` counts the leftover, and ``cache prune`` (for the
cache) or the next run of the same operation (for a bundle, mirror or export folder
outside the cache) removes it; a live writer's temp is never touched.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from conftest import entry
from densezoo.disk import TEMP, temp_path
from densezoo.store.layout import Layout

INJECT = Path(__file__).with_name("inject.py")
UV = "densepose_uv_data.tar.gz"


def killed(name: str, *args: str) -> subprocess.CompletedProcess:
    """Run densezoo ``args``, SIGKILLed as its temp is about to become ``name``."""
    r = subprocess.run([sys.executable, str(INJECT), "kill-before-a-temp-is-renamed", "--",
                        *args], env={**os.environ, "DZ_KILL_NAME": name},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr)
    return r


def temps_in(folder: Path) -> list[Path]:
    return [Path(d) / n for d, dirs, files in os.walk(folder) for n in dirs + files
            if TEMP in n]


def archive(n: int = 200_000) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = os.urandom(n)
        info = tarfile.TarInfo("UV_data/UV_Processed.mat")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_a_killed_extract_leaves_a_folder_cache_du_counts_and_prune_removes(
        server, manifest, cli, cache_dir):
    import hashlib

    data = archive()
    url = server.add("/densepose/densepose_uv_data.tar.gz", data)
    m = str(manifest({"name": "densepose_uv_data", "url": url,
                      "md5": hashlib.md5(data).hexdigest()}))
    killed(UV, "--manifest", m, "fetch", "densepose_uv_data", "--extract")
    (left,) = temps_in(cache_dir / "extracted")
    assert left.is_dir() and (left / "UV_data" / "UV_Processed.mat").stat().st_size == 200_000
    du = cli("--manifest", m, "cache", "du", "--json").json["summary"]
    assert du["temp_bytes"] >= 200_000, du
    r = cli("--manifest", m, "cache", "prune", "--yes", "--json")
    assert r.code == 0, r.err
    assert any("process that is gone" in i["reason"] for i in r.json["items"])
    assert temps_in(cache_dir) == []
    assert cli("--manifest", m, "cache", "du", "--json").json["summary"]["temp_bytes"] == 0


def test_the_next_extract_removes_a_killed_extracts_folder(server, manifest, cli, cache_dir):
    import hashlib

    data = archive()
    url = server.add("/densepose/densepose_uv_data.tar.gz", data)
    m = str(manifest({"name": "densepose_uv_data", "url": url,
                      "md5": hashlib.md5(data).hexdigest()}))
    killed(UV, "--manifest", m, "fetch", "densepose_uv_data", "--extract")
    killed(UV, "--manifest", m, "fetch", "densepose_uv_data", "--extract")
    assert len(temps_in(cache_dir / "extracted")) == 1      # the second swept the first
    r = cli("--manifest", m, "fetch", "densepose_uv_data", "--extract")
    assert r.code == 0, r.err
    assert temps_in(cache_dir) == []
    assert Path(r.out.strip(), "UV_data", "UV_Processed.mat").stat().st_size == 200_000


def test_a_killed_bundle_leaves_a_temp_the_next_bundle_removes(blob, manifest, cli,
                                                               tmp_path):
    b = blob("bundled", 300_000)
    m = str(manifest(entry(b)))
    out = tmp_path / "out" / "b.tar"
    out.parent.mkdir()
    killed("b.tar", "--manifest", m, "bundle", b.name, "-o", str(out))
    (left,) = temps_in(out.parent)
    assert left.stat().st_size > 300_000 and not out.exists()
    r = cli("--manifest", m, "bundle", b.name, "-o", str(out))
    assert r.code == 0, r.err
    assert temps_in(out.parent) == [] and out.stat().st_size > 300_000


def test_a_killed_mirror_build_and_export_leave_temps_the_next_run_removes(
        blob, manifest, cli, tmp_path):
    b = blob("mirrored", 300_000)
    m = str(manifest(entry(b)))
    target, dest = tmp_path / "mirror", tmp_path / "export"
    name = b.url.rsplit("/", 1)[1]
    killed(name, "--manifest", m, "mirror", "build", str(target), b.name, "--link", "copy")
    killed(name, "--manifest", m, "export", b.name, "--to", str(dest), "--link", "copy")
    assert len(temps_in(target)) == 1 and len(temps_in(dest)) == 1
    assert cli("--manifest", m, "mirror", "build", str(target), b.name, "--link",
               "copy").code == 0
    assert cli("--manifest", m, "export", b.name, "--to", str(dest), "--link", "copy").code == 0
    assert temps_in(target) == [] and temps_in(dest) == []


def test_prune_never_removes_a_live_writers_temp(blob, manifest, cli, cache_dir):
    b = blob("held", 1000)
    m = str(manifest(entry(b)))
    assert cli("--manifest", m, "fetch", b.name).code == 0
    folder = Layout(cache_dir).files_dir
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        host = temp_path(folder / "x").name.split("@", 1)[1].rsplit(".", 2)[0]
        live = folder / f".x{TEMP}{writer.pid}@{host}.abcd1234.tmp"
        live.write_bytes(b"w" * 5000)
        assert cli("--manifest", m, "cache", "du", "--json").json["summary"][
            "temp_bytes"] == 5000
        assert cli("--manifest", m, "cache", "prune", "--yes").code == 0
        assert live.exists(), "a live writer's temp was removed"
    finally:
        writer.kill()
        writer.wait()
    assert cli("--manifest", m, "cache", "prune", "--yes").code == 0
    assert not live.exists(), "its writer is dead: prune removes it"


def test_prune_removes_an_older_densezoos_unpack_leftovers_by_age(blob, manifest, cli,
                                                                  cache_dir):
    """Before temps named their writer, a killed unpack left ``<name>.tmp-<hex>``: with no
    writer to ask, prune removes one untouched for 15 minutes and keeps a fresh one."""
    b = blob("aged", 1000)
    m = str(manifest(entry(b)))
    host = cache_dir / "extracted" / "127.0.0.1_1"
    old, fresh = host / "x.tar.gz.tmp-0123abcd", host / "y.tar.gz.old-89abcdef"
    for folder in (old, fresh):
        (folder / "UV_data").mkdir(parents=True)
        (folder / "UV_data" / "a.mat").write_bytes(b"u" * 4000)
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    assert cli("--manifest", m, "cache", "du", "--json").json["summary"]["temp_bytes"] == 8000
    assert cli("--manifest", m, "cache", "prune", "--yes").code == 0
    assert not old.exists() and fresh.exists()
