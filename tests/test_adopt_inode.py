"""Issue 32.4 (adopt never lends the user's inode to a partial a later fetch could claim) and
33.7 (``adopt --known`` looks only in folders the user owns): real processes, a real
SIGKILL, two real uids."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import missing

SIZE = 48 << 20          # hashing it takes long enough to kill adopt while it holds a partial


def _store_partials(cache_dir: Path) -> list[Path]:
    files = cache_dir / "files"
    return [p for p in files.rglob("*") if ".dzpart" in p.name] if files.exists() else []


def test_a_killed_adopt_never_lets_a_fetch_write_into_the_users_file(server, manifest, cli,
                                                                    cache_dir, tmp_path):
    data = random.Random(7).randbytes(SIZE)
    wrong = random.Random(8).randbytes(SIZE)              # what a bad server answers
    url = server.add("/densepose/big/model_final_big.bin", wrong)
    m = manifest({"name": "big", "url": url, "md5": hashlib.md5(data).hexdigest(),
                  "sha256": hashlib.sha256(data).hexdigest(), "size": SIZE})
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    users = mine / "weights.bin"                   # the user's own file, in their own folder
    users.write_bytes(data)
    users.chmod(0o644)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed_holding = 0
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-m", "densezoo", "--manifest", str(m),
                                 "adopt", str(users)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if _store_partials(cache_dir):
                os.kill(proc.pid, signal.SIGKILL)      # adopt dies holding its partial
                break
            time.sleep(0.002)
        proc.wait()
        if _store_partials(cache_dir):                 # (it may have finished just before)
            killed_holding += 1
            break
        shutil.rmtree(cache_dir, ignore_errors=True)      # it finished first: try again
    assert killed_holding, "adopt never seen holding a partial"
    left = _store_partials(cache_dir)
    assert left and all("+adopt-" in p.name for p in left)     # a name no fetch claims
    # A later fetch: a wrong-bytes server (416 to a resume, then other bytes of the
    # right size).  It must download into a partial of its own.
    r = cli("--manifest", str(m), "fetch", "big")
    assert r.code == 4, r.err
    assert users.stat().st_size == SIZE
    assert hashlib.sha256(users.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    # The leftover is a stale partial that prune removes; the user's file stays.
    assert cli("--manifest", str(m), "cache", "prune", "-y").code == 0
    assert not _store_partials(cache_dir) and users.read_bytes() == data


@pytest.mark.system
def test_adopt_known_ignores_a_tmp_iopath_cache_another_user_made(server, manifest, cli,
                                                                 cache_dir, tmp_path,
                                                                 monkeypatch):
    """Two real uids: a co-tenant (uid 65534) creates ``$TMPDIR/iopath_cache`` with a 0666
    copy of a real file; ``adopt --known`` does not look there (they could rewrite it
    between our check and our load).  Named as a PATH it is adopted -- copied, never
    linked: the co-tenant's inode never enters the store."""
    if os.geteuid() != 0:
        missing("root (two real uids on one machine)", "privilege")
    data = random.Random(3).randbytes(200_000)
    up = "/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_abc.bin"
    m = manifest({"name": "r50", "url": server.url(up), "md5": hashlib.md5(data).hexdigest(),
                  "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    shared_tmp = Path(tempfile.mkdtemp(prefix="dz-shared-tmp-", dir="/tmp"))
    try:
        shared_tmp.chmod(0o1777)                                  # like /tmp
        planted = shared_tmp / "iopath_cache" / up.lstrip("/")
        co_tenant = 'umask 0 && mkdir -p "$(dirname "$1")" && cat > "$1"'
        subprocess.run(["/bin/sh", "-c", co_tenant, "sh", str(planted)], input=data,
                       user=65534, group=65534, check=True, env={"PATH": "/usr/bin:/bin"})
        assert planted.stat().st_uid == 65534 and planted.stat().st_mode & 0o777 == 0o666
        monkeypatch.setenv("TMPDIR", str(shared_tmp))
        monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "no-fvcore"))
        r = cli("--manifest", str(m), "adopt", "--known", "--json")
        assert r.code == 0, r.err
        skipped = [i for i in r.items if i["state"] == "skipped"]
        assert [i["path"] for i in skipped] == [str(shared_tmp / "iopath_cache")]
        assert "owned by uid 65534" in skipped[0]["reason"]
        assert r.json["summary"]["adopted"] == 0
        assert cli("--manifest", str(m), "--offline", "path", "r50").code == 6
        # Named explicitly: adopted by its bytes, as a copy of our own.
        r = cli("--manifest", str(m), "adopt", str(planted), "--json")
        (item,) = r.items
        assert item["state"] == "adopted" and item["mode"] in ("reflink", "copy"), item
        stored = Path(cli("--manifest", str(m), "--offline", "path", "r50").out.strip())
        assert os.stat(stored).st_ino != planted.stat().st_ino and planted.stat().st_nlink == 1
    finally:
        shutil.rmtree(shared_tmp, ignore_errors=True)


def test_a_file_you_own_alone_is_hard_linked_and_one_others_can_write_is_copied(
        server, manifest, cli, tmp_path):
    data = random.Random(5).randbytes(100_000)
    m = manifest({"name": "w", "url": server.url("/x/w.bin"), "md5": hashlib.md5(data).hexdigest(),
                  "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    private = tmp_path / "private"
    private.mkdir(mode=0o755)
    f = private / "w.bin"
    f.write_bytes(data)
    f.chmod(0o644)
    r = cli("--manifest", str(m), "adopt", str(f), "--json")
    assert r.items[0]["mode"] in ("reflink", "hardlink"), r.items
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)                                    # others can swap files here
    g = shared / "w.bin"
    g.write_bytes(data)
    assert cli("--manifest", str(m), "cache", "rm", "w", "-y").code == 0
    r = cli("--manifest", str(m), "adopt", str(g), "--json")
    assert r.items[0]["state"] == "adopted" and r.items[0]["mode"] in ("reflink", "copy")
    assert g.stat().st_nlink == 1
