"""SIGKILL during real multi-connection transfers: a resume never trusts a sparse partial.

The segmented path writes blocks out of order; a kill leaves a file whose apparent
size says nothing about which bytes are there.  Before the typed resume record, the
next run trusted that size, published a file with holes of zeros and *pinned* it
(the entry publishes no checksum).  Each case kills real ``densezoo fetch``
processes at varied times while four connections per file are streaming from a
per-connection rate-limited loopback server, then lets a last run finish and
compares every published byte with the server's file.

``DENSEZOO_KILL_TRIALS`` raises the number of kills per case for a longer run on
demand (the figures in docs/reliability.md come from such runs).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time

import pytest

from conftest import entry
from test_crash_concurrency_disk import densezoo

SIZE = 20_000_000                   # three 8 MiB blocks
TRIALS = int(os.environ.get("DENSEZOO_KILL_TRIALS", "4"))


def _slow(server, *blobs) -> None:
    for b in blobs:                  # ~2.5 MB/s per connection, on every connection
        server.fault(b.path, "trickle", times=-1, step=64 * 1024, delay=0.025)


def _unpublished(b) -> dict:
    return entry(b, md5=False, size=False)          # nothing published: the pin is all there is


def _kill_runs(args, cache, rng, trials) -> int:
    kills = 0
    for _ in range(trials):
        p = densezoo(*args, cache=cache)
        time.sleep(rng.uniform(0.5, 2.2))
        if p.poll() is None:
            p.kill()
            kills += 1
        p.wait(timeout=30)
    return kills


def _finish(args, cache):
    p = densezoo(*args, "--json", cache=cache)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    return json.loads(out)["items"]


def _assert_exact(rows, blobs, cache) -> None:
    by_name = {r["name"]: r for r in rows}
    for b in blobs:
        row = by_name[b.name]
        data = open(row["path"], "rb").read()
        assert data == b.data, f"{b.name}: published bytes differ from the server's file"
        assert row["md5"] == hashlib.md5(b.data).hexdigest()
        pin = next((cache / "trust").rglob(b.path.rsplit("/", 1)[1] + ".json"))
        assert json.loads(pin.read_text())["vouchers"][0]["md5"] == b.md5   # the record is the truth


@pytest.mark.parametrize("seed", [1, 2])
def test_killed_segmented_fetch_resumes_into_the_right_bytes(seed, server, blob, manifest,
                                                             cache_dir):
    b = blob(f"seg{seed}", SIZE)
    _slow(server, b)
    args = ("-q", "--manifest", str(manifest(_unpublished(b))), "fetch", b.name,
            "--connections", "4")
    kills = _kill_runs(args, cache_dir, random.Random(seed), TRIALS)
    assert kills >= 1
    server.faults.clear()
    _assert_exact(_finish(args, cache_dir), [b], cache_dir)


def test_killed_parallel_fetch_of_three_files(server, blob, manifest, cache_dir):
    bs = [blob(f"par{i}", SIZE) for i in range(3)]
    _slow(server, *bs)
    args = ("-q", "--manifest", str(manifest(*[_unpublished(b) for b in bs])), "fetch",
            *[b.name for b in bs], "-j", "3", "--connections", "4")
    assert _kill_runs(args, cache_dir, random.Random(7), TRIALS) >= 1
    server.faults.clear()
    _assert_exact(_finish(args, cache_dir), bs, cache_dir)


def test_a_second_process_takes_over_a_killed_ones_partial(server, blob, manifest, cache_dir):
    """Two processes share one cache; the one holding the download dies, the other
    takes its partial over (after the marker and partial go stale) and finishes."""
    b = blob("shared", SIZE)
    _slow(server, b)
    args = ("-q", "--manifest", str(manifest(_unpublished(b))), "fetch", b.name,
            "--connections", "4")
    first = densezoo(*args, cache=cache_dir)
    time.sleep(1.5)
    first.kill()
    first.wait(timeout=30)
    partials = [p for p in (cache_dir / "files").rglob("shared.bin.dzpart-*")
                if not p.name.endswith(".dzmeta")]
    assert partials, "the killed process left its partial"
    record = json.loads(partials[0].with_name(partials[0].name + ".dzmeta").read_text())
    assert record["segmented"] is True            # it said so before writing past the prefix
    second = densezoo(*args, cache=cache_dir)     # takes over the dead holder's partial
    time.sleep(1.0)
    second.kill()
    second.wait(timeout=30)
    server.faults.clear()
    _assert_exact(_finish(args, cache_dir), [b], cache_dir)
