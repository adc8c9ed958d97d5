"""Crashes, concurrent processes, full and read-only disks: real processes, real filesystems."""

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import entry

INTERNAL = (".dzpart", ".dzmeta", ".dzlock", ".meta", ".tmp")


def published(cache_dir: Path) -> list[Path]:
    files = cache_dir / "files"
    if not files.exists():
        return []
    return [p for p in files.rglob("*") if p.is_file() and not any(m in p.name for m in INTERNAL)]


def assert_only_verified(cache_dir: Path, good: dict[str, str]) -> None:
    """Every file the store publishes has the md5 it must have: nothing unverified, no torn file."""
    for p in published(cache_dir):
        assert hashlib.md5(p.read_bytes()).hexdigest() == good[p.name], p


def densezoo(*args: str, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "DENSEZOO_CACHE_DIR": str(cache)}
    return subprocess.Popen([sys.executable, "-m", "densezoo", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_sigkill_at_random_points_then_resume(server, blob, manifest, cache_dir):
    b = blob("crash", 8_000_000)
    server.fault(b.path, "trickle", times=-1, step=64 * 1024, delay=0.05)   # ~1.3 MB/s
    m = str(manifest(entry(b)))
    rng = random.Random(20261123)
    kills = 0
    for _ in range(8):                      # bounded: 8 kills, each within ~1.2 s
        p = densezoo("-q", "--manifest", m, "fetch", "crash", cache=cache_dir)
        time.sleep(rng.uniform(0.4, 1.2))
        p.kill()
        p.wait(timeout=10)
        kills += 1
        assert_only_verified(cache_dir, {"crash.bin": b.md5})
        assert not published(cache_dir)     # too slow to finish: nothing may be published yet
    partials = [p for p in (cache_dir / "files").rglob("crash.bin.dzpart*")
                if not p.name.endswith(".dzmeta")]
    kept = sum(p.stat().st_size for p in partials)
    assert kills == 8 and kept > 0
    server.faults.clear()
    p = densezoo("--manifest", m, "fetch", "crash", "--json", cache=cache_dir)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    (row,) = json.loads(out)["items"]
    assert row["state"] == "resumed" and row["md5"] == b.md5
    assert row["transferred"] == len(b.data) - kept       # the bytes kept were not fetched again
    assert_only_verified(cache_dir, {"crash.bin": b.md5})
    leftovers = [p.name for p in (cache_dir / "files").rglob("*") if ".dzpart" in p.name]
    assert leftovers == []


@pytest.mark.parametrize("markers", [True, False], ids=["markers", "no-markers"])
def test_concurrent_processes_share_one_cache(server, blob, manifest, cache_dir, markers):
    """Four processes fetch one artifact at once: all succeed, one verified copy, no torn file.

    Without markers (as on a filesystem where locking silently does nothing) every
    process downloads; correctness must not change, only bandwidth.
    """
    b = blob("shared", 3_000_000)
    server.fault(b.path, "trickle", times=-1, step=128 * 1024, delay=0.02)
    m = str(manifest(entry(b)))
    env_extra = {} if markers else {"DENSEZOO_NO_MARKERS": "1"}
    procs = []
    for _ in range(4):
        env = {**os.environ, "DENSEZOO_CACHE_DIR": str(cache_dir), **env_extra}
        procs.append(subprocess.Popen([sys.executable, "-m", "densezoo", "--manifest", m,
                                       "fetch", "shared"], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=env))
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [o[1] for o in outs]
    paths = {o[0].strip() for o in outs}
    assert len(paths) == 1
    assert hashlib.md5(Path(paths.pop()).read_bytes()).hexdigest() == b.md5
    assert [p.name for p in published(cache_dir)] == ["shared.bin"]
    assert not [p for p in (cache_dir / "files").rglob("*") if ".dzpart" in p.name
                or p.name.endswith(".dzlock")]
    gets = len(server.hits(b.path))
    if markers:
        assert gets == 1          # the others waited for the first and found it cached
    else:
        assert 1 <= gets <= 4


def test_a_crashed_marker_holder_does_not_block(server, blob, manifest, cache_dir):
    b = blob("stale")
    zoo_manifest = manifest(entry(b))
    from densezoo import Zoo
    zoo = Zoo(manifests=[zoo_manifest], default_manifests=False)
    marker = zoo.store.marker(zoo.catalog.get("stale"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    marker.path.write_text(f"{dead.pid}@{os.uname().nodename}.deadbeef")  # a holder that died
    t0 = time.monotonic()
    assert zoo.fetch("stale").digests.md5 == b.md5
    assert time.monotonic() - t0 < 20
    assert not marker.path.exists()


@pytest.fixture
def small_fs(tmpfs):
    """A real 4 MiB tmpfs: ENOSPC and EROFS come from the kernel, not from a mock."""
    return tmpfs("4m")


def test_preflight_space_check_refuses_before_the_first_byte(server, blob, manifest, small_fs, cli):
    b = blob("huge", 6_000_000)
    m = str(manifest(entry(b)))
    r = cli("--cache-dir", str(small_fs), "--manifest", m, "fetch", "huge")
    assert r.code == 8 and "not enough space" in r.err and str(small_fs) in r.err
    assert "6000000" in r.err and "--no-space-check" in r.err
    assert not published(small_fs)
    assert not [p for p in small_fs.rglob("*") if p.is_file() and p.stat().st_size > 0
                and ".dz" in p.name and "part" in p.name]


def test_disk_full_midway_is_exit_8_and_publishes_nothing(server, blob, manifest, small_fs, cli):
    b = blob("fill", 6_000_000)
    m = str(manifest(entry(b)))
    r = cli("--cache-dir", str(small_fs), "--manifest", m, "fetch", "fill", "--no-space-check")
    assert r.code == 8 and "No space left on device" in r.err and "more needed" in r.err
    assert str(small_fs) in r.err and r.err.count("\n") == 1
    assert not published(small_fs)


def test_read_only_cache_is_exit_8_and_keeps_good_files(server, blob, manifest, small_fs, cli):
    a, b = blob("kept", 100_000), blob("new", 100_000)
    m = str(manifest(entry(a), entry(b)))
    assert cli("--cache-dir", str(small_fs), "--manifest", m, "fetch", "kept").code == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    r = cli("--cache-dir", str(small_fs), "--manifest", m, "fetch", "new")
    assert r.code == 8 and "Read-only file system" in r.err
    r = cli("--cache-dir", str(small_fs), "--manifest", m, "fetch", "kept")
    assert r.code == 0 and Path(r.out.strip()).read_bytes() == a.data
