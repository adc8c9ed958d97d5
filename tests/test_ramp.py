"""Issue 38 (2): how many connections a capped download opens, and when.

The decision logic is tested as functions (no clock involved); the remembered split
through a real loopback server (the widths the server saw, not a speed)."""

from __future__ import annotations

import json

from conftest import entry
from densezoo import Zoo
from densezoo.download import segmented
from densezoo.download.health import Health
from densezoo.download.segmented import (AUTO_CONNECTIONS, BLOCK, MAX_AUTO_CONNECTIONS,
                                         MIN_BLOCK, START_MAX, block_size, start_count)

MiB = 1 << 20


def test_a_64_mib_file_on_a_16_mb_s_cap_gets_its_connections_at_the_split():
    # 60 MB left at 16 MB/s per connection: 4 would take ~0.9 s, far longer than the
    # first judgement (0.3 s) -- start at the most that opens unjudged.
    assert start_count(16e6, 60 * MiB) == START_MAX


def test_a_short_rest_is_split_no_wider_than_it_needs_but_never_under_four():
    assert start_count(16e6, 20 * MiB) == 5          # ceil(20 MiB / (16 MB/s * 0.3 s))
    assert start_count(100e6, 9 * MiB) == AUTO_CONNECTIONS


def test_without_a_probe_rate_the_split_starts_at_four():
    assert start_count(None, 500 * MiB) == AUTO_CONNECTIONS
    assert start_count(0.0, 500 * MiB) == AUTO_CONNECTIONS


def test_a_learned_count_is_used_as_is_within_the_ceiling():
    assert start_count(16e6, 60 * MiB, learned=16) == 16
    assert start_count(None, 60 * MiB, learned=5) == 5
    assert start_count(None, 60 * MiB, learned=99) == MAX_AUTO_CONNECTIONS


def test_blocks_leave_every_connection_two_and_stay_between_1_and_8_mib():
    assert block_size(60 * MiB, 16) == MIN_BLOCK          # 8 MiB blocks: only 8 of them
    assert block_size(252 * MiB, 16) == 7 * MiB
    assert block_size(4 << 30, 16) == BLOCK
    assert block_size(3 * MiB, 4) == MIN_BLOCK
    assert all(block_size(n * MiB, 16) % MIN_BLOCK == 0 for n in range(1, 600, 7))


def test_health_keeps_a_split_until_it_is_pushed_back(tmp_path):
    h = Health(tmp_path / "health.json")
    url = "https://cdn.example/a.bin"
    h.record(url, ok=True, bytes_per_s=1e8, split=(16, 16e6))
    assert h.learned_split("https://cdn.example/b.bin") == (16, 16e6)      # per host
    h.record(url, ok=True, bytes_per_s=1e8)                 # a small file: nothing learned
    assert h.learned_split(url) == (16, 16e6)
    h.record(url, ok=False)                                 # a failure is no lesson either
    assert h.learned_split(url) == (16, 16e6)
    h.record(url, ok=True, split=False)                     # pushed back: forgotten
    assert h.learned_split(url) is None
    h.record(url, ok=True, split=(8, 4e6))
    h.record(url, ok=True, ranges=False)                    # misanswers Range: one connection
    assert h.learned_split(url) is None and h.ranges_refused(url)


def test_a_malformed_remembered_split_is_ignored(tmp_path):
    path = tmp_path / "health.json"
    h = Health(path)
    url = "https://cdn.example/a.bin"
    h.record(url, ok=True, split=(8, 4e6))
    for bad in (["x", 1], [8], [1, 4e6], [8, -1], "8", None):
        data = json.loads(path.read_text())
        data["cdn.example:443"]["split"] = bad
        path.write_text(json.dumps(data))
        assert h.learned_split(url) is None


def test_the_next_download_from_a_capped_host_splits_at_once_to_what_it_learned(
        server, blob, manifest, monkeypatch, tmp_path):
    """First download: probe, split, grow to 16 (the server never pushes back) --
    health.json keeps it.  Then growth is switched off: a download from the same host
    still runs 16 wide (it started there); with the lesson deleted it runs 8 wide."""
    monkeypatch.setattr(segmented, "BLOCK", 256 << 10)
    monkeypatch.setattr(segmented, "MIN_BLOCK", 256 << 10)
    blobs = [blob(f"ramp{i}", 12_000_000) for i in range(3)]
    for b in blobs:
        server.fault(b.path, "trickle", -1, step=8 * 1024, delay=0.05)
    cache = tmp_path / "cache"
    zoo = Zoo(manifests=[manifest(*[entry(b) for b in blobs])], cache_dir=cache)
    assert zoo.fetch("ramp0").connections == 16
    health = Health(cache / "health.json")
    assert health.learned_split(server.url(blobs[0].path))[0] == 16

    monkeypatch.setattr(segmented, "JUDGE_AFTER", 1e9)        # no growth from here on
    server.max_blocks = 0
    res = zoo.fetch("ramp1")
    assert res.digests.md5 == blobs[1].md5 and res.path.read_bytes() == blobs[1].data
    assert server.max_blocks == 16 and res.connections == 16 and server.refused == 0

    (cache / "health.json").unlink()
    server.max_blocks = 0
    assert zoo.fetch("ramp2").connections == 8 and server.max_blocks == 8
