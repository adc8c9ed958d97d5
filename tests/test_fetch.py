"""Fetching against a real loopback server: verify, cache, resume, retry, fall back."""

import json
import os

import pytest

from conftest import entry
from densezoo import Zoo
from densezoo.errors import (DownloadFailedError, NotCachedError,
                             StrictModeError)


def zoo_for(manifest, *entries, **kw):
    return Zoo(manifests=[manifest(*entries)], default_manifests=False, **kw)


def files_in(cache_dir):
    return sorted(str(p.relative_to(cache_dir)) for p in cache_dir.rglob("*") if p.is_file())


def test_fetch_downloads_verifies_and_publishes(server, blob, manifest, cache_dir):
    b = blob("alpha", 300_000)
    res = zoo_for(manifest, entry(b)).fetch("alpha")
    assert res.action == "downloaded" and res.transferred == len(b.data)
    assert res.path.read_bytes() == b.data
    # md5 is published, so only md5 is computed: sha256 would cost a core for nothing
    assert res.digests.md5 == b.md5 and res.digests.sha256 is None
    # layout keyed on host and path; metadata beside it; no partial left behind
    assert res.path == cache_dir / "files" / f"127.0.0.1_{server.port}" / "zoo" / "alpha.bin"
    meta = json.loads(res.path.with_name("alpha.bin.dzmeta").read_text())
    assert meta["md5"] == b.md5 and meta["size"] == len(b.data) and meta["etag"]
    assert not [f for f in files_in(cache_dir) if "dzpart" in f]
    assert (cache_dir / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f")


def test_only_the_algorithms_a_check_needs_are_computed(server, blob, manifest):
    b = blob("algos")
    by_sha = zoo_for(manifest, {"name": "algos", "url": b.url, "md5": None,
                                "sha256": b.sha256}).fetch("algos")
    assert by_sha.digests.sha256 == b.sha256 and by_sha.digests.md5 is None
    c = blob("algos2")
    pinned = zoo_for(manifest, entry(c, md5=False)).fetch("algos2")
    assert (pinned.digests.md5, pinned.digests.sha256) == (c.md5, c.sha256)   # a pin gets both


def test_request_asks_for_identity_encoding(server, blob, manifest):
    b = blob("enc")
    zoo_for(manifest, entry(b)).fetch("enc")
    assert server.hits(b.path)[0].headers["Accept-Encoding"] == "identity"


def test_second_fetch_is_served_from_cache_without_network(server, blob, manifest):
    b = blob("beta")
    zoo = zoo_for(manifest, entry(b))
    zoo.fetch("beta")
    again = zoo.fetch("beta")
    assert again.action == "cached" and again.transferred == 0
    assert len(server.hits(b.path)) == 1


def test_download_is_hashed_while_streaming_not_reread(server, blob, manifest, monkeypatch):
    b = blob("once", 3_000_000)
    import densezoo.store.verifier as verifier

    def no_rehash(*args):
        raise AssertionError("the downloaded file was read again")
    monkeypatch.setattr(verifier, "hash_with_identity", no_rehash)
    assert zoo_for(manifest, entry(b)).fetch("once").digests.md5 == b.md5


def test_two_urls_with_the_same_basename_do_not_collide(server, manifest):
    import hashlib
    import pickle
    da, dx = pickle.dumps({"w": "A" * 1000}), pickle.dumps({"w": "X" * 1000})
    a = server.add("/r50/model_final.pkl", da)
    x = server.add("/x101/model_final.pkl", dx)
    zoo = zoo_for(manifest, {"name": "a", "url": a, "md5": hashlib.md5(da).hexdigest()},
                  {"name": "x", "url": x, "md5": hashlib.md5(dx).hexdigest()})
    pa, px = zoo.fetch("a").path, zoo.fetch("x").path
    assert pa != px and pa.read_bytes() == da and px.read_bytes() == dx


def test_checksum_mismatch_publishes_nothing(server, blob, manifest, cache_dir):
    b = blob("gamma")
    zoo = zoo_for(manifest, {"name": "gamma", "url": b.url, "md5": "0" * 32})
    with pytest.raises(DownloadFailedError) as e:
        zoo.fetch("gamma")
    assert e.value.exit_code == 4
    assert "md5 mismatch" in str(e.value) and b.md5 in str(e.value)
    assert zoo.store.cached_path(zoo.catalog.get("gamma")) is None
    assert not [f for f in files_in(cache_dir) if f.startswith("files/") and "dzpart" in f]


def test_size_and_sha256_are_checked_in_the_same_pass(server, blob, manifest):
    b = blob("delta")
    bad_sha = entry(b, sha256="f" * 64)
    with pytest.raises(DownloadFailedError, match="sha256 mismatch"):
        zoo_for(manifest, bad_sha).fetch("delta")
    bad_size = entry(b, size=False)
    bad_size["size"] = len(b.data) + 1
    with pytest.raises(DownloadFailedError, match="different file"):
        zoo_for(manifest, bad_size).fetch("delta")


def test_corrupt_cached_file_is_never_handed_out(server, blob, manifest, cache_dir):
    b = blob("eps")
    zoo = zoo_for(manifest, entry(b))
    p = zoo.fetch("eps").path
    with open(p, "r+b") as f:          # bit rot / tampering after publication
        f.write(b"\0" * 10)
    res = zoo.fetch("eps")
    assert res.action == "downloaded" and res.path.read_bytes() == b.data
    assert any("failed its checksum" in w for w in res.warnings)
    assert list((cache_dir / "bad").rglob("eps.bin"))          # moved aside, not deleted
    assert len(server.hits(b.path)) == 2


def test_resume_after_interrupted_download_uses_range_and_if_range(server, blob, manifest):
    b = blob("big", 5_000_000)
    server.fault(b.path, "reset", after=3_000_000)
    zoo = zoo_for(manifest, entry(b))
    res = zoo.fetch("big")
    hits = server.hits(b.path)
    assert len(hits) == 2
    assert hits[1].headers["Range"].startswith("bytes=")
    kept = int(hits[1].headers["Range"][6:-1])
    assert 1_000_000 <= kept <= 3_000_000       # whole 1 MiB chunks written before the reset
    assert hits[1].headers["If-Range"].startswith('"')
    assert res.action == "resumed" and res.digests.md5 == b.md5
    assert res.transferred == len(b.data)      # kept bytes + the rest, nothing twice


def test_resume_across_runs_from_a_kept_partial(server, blob, manifest):
    b = blob("across", 4_000_000)
    server.fault(b.path, "reset", times=-1, after=2_500_000)
    zoo = Zoo(manifests=[manifest(entry(b))], default_manifests=False, attempts=1)
    with pytest.raises(DownloadFailedError):
        zoo.fetch("across")
    art = zoo.catalog.get("across")
    slot = zoo.store.path_for(art).with_name("across.bin.dzpart")
    kept = slot.stat().st_size
    assert slot.exists() and 1_000_000 <= kept <= 2_500_000
    server.faults.clear()
    res = Zoo(zoo.settings, attempts=5).fetch("across")
    assert res.action == "resumed" and res.path.read_bytes() == b.data
    assert res.transferred == len(b.data) - kept      # only the missing bytes moved
    assert not slot.exists()


def test_server_ignoring_range_restarts_from_zero(server, blob, manifest):
    b = blob("norange", 3_000_000)
    server.fault(b.path, "reset", after=2_000_000)
    server.fault(b.path, "ignore_range")
    res = zoo_for(manifest, entry(b)).fetch("norange")
    assert "Range" in server.hits(b.path)[1].headers      # it asked to resume, got a 200
    assert res.action == "downloaded" and res.path.read_bytes() == b.data


def test_wrong_content_range_restarts(server, blob, manifest):
    b = blob("badcr", 3_000_000)
    server.fault(b.path, "reset", after=2_000_000)
    server.fault(b.path, "bad_content_range")
    res = zoo_for(manifest, entry(b)).fetch("badcr")
    assert res.path.read_bytes() == b.data
    assert "Range" not in server.hits(b.path)[-1].headers


def test_changed_upstream_file_is_not_stitched(server, blob, manifest):
    """If-Range with the old ETag makes the server send the new file whole."""
    b = blob("changing", 3_000_000)
    server.fault(b.path, "reset", times=-1, after=2_000_000)
    zoo = Zoo(manifests=[manifest(entry(b, md5=False, size=False))], default_manifests=False, attempts=1)
    with pytest.raises(DownloadFailedError):
        zoo.fetch("changing")
    server.faults.clear()
    new = bytes(reversed(b.data))
    server.add(b.path, new)
    res = Zoo(zoo.settings, attempts=5).fetch("changing")
    assert res.path.read_bytes() == new
    assert res.action == "downloaded"


def test_retries_503_honouring_retry_after(server, blob, manifest, sleeps):
    b = blob("busy")
    server.fault(b.path, "status", times=2, code=503, retry_after=7)
    res = zoo_for(manifest, entry(b)).fetch("busy")
    assert res.digests.md5 == b.md5
    assert len(sleeps) == 2 and all(s >= 7 for s in sleeps)


def test_retries_429_and_connection_resets_with_capped_backoff(server, blob, manifest, sleeps):
    b = blob("flaky")
    server.fault(b.path, "status", times=1, code=429)
    server.fault(b.path, "reset", times=1, after=0)
    res = zoo_for(manifest, entry(b)).fetch("flaky")
    assert res.digests.md5 == b.md5 and len(sleeps) == 2
    assert all(0 < s <= 30 for s in sleeps)


def test_404_goes_to_next_url_without_retrying(server, blob, manifest, sleeps):
    b = blob("moved")
    dead = server.url("/dead/moved.bin")
    res = zoo_for(manifest, {"name": "moved", "url": dead, "md5": b.md5,
                             "mirrors": [b.url]}).fetch("moved")
    assert res.url == b.url
    assert len(server.hits("/dead/moved.bin")) == 1 and sleeps == []


def test_every_url_failing_lists_each_url_and_why(server, manifest, sleeps):
    u1, u2 = server.url("/a/x.bin"), server.url("/b/x.bin")
    server.fault("/b/x.bin", "status", times=-1, code=403)
    with pytest.raises(DownloadFailedError) as e:
        zoo_for(manifest, {"name": "x", "url": u1, "md5": None, "mirrors": [u2]}).fetch("x")
    msg = str(e.value)
    assert u1 in msg and "404" in msg and u2 in msg and "403" in msg and "check the id" in msg
    assert e.value.exit_code == 5


def test_mirror_env_is_tried_before_upstream(server, blob, manifest, monkeypatch):
    b = blob("mir")
    upstream = "https://dl.example.invalid/densepose/mir.bin"   # never contacted
    server.add("/mirror/dl.example.invalid/densepose/mir.bin", b.data)
    monkeypatch.setenv("DENSEZOO_MIRROR", server.url("/mirror/"))
    res = zoo_for(manifest, {"name": "mir", "url": upstream, "md5": b.md5}).fetch("mir")
    assert res.url == server.url("/mirror/dl.example.invalid/densepose/mir.bin")
    assert res.path.name == "mir.bin" and "dl.example.invalid" in str(res.path)


def test_first_download_pins_and_later_copies_must_match(server, blob, manifest):
    b = blob("tofu")
    zoo = zoo_for(manifest, entry(b, md5=False, size=False))
    res = zoo.fetch("tofu")
    assert res.pinned and res.strength == "origin-pinned"
    assert any("nothing is published" in w and b.md5 in w for w in res.warnings)
    pin = zoo.trust.record_of(zoo.catalog.get("tofu")).pin
    assert (pin.kind, pin.md5, pin.sha256, pin.size) == ("origin", b.md5, b.sha256, len(b.data))
    # upstream changes: a re-download no longer matches the pin
    server.add(b.path, b.data[::-1])
    with pytest.raises(DownloadFailedError) as e:
        zoo.fetch("tofu", force=True)
    assert e.value.exit_code == 4
    assert zoo.fetch("tofu").path.read_bytes() == b.data     # the good copy was kept


def test_strict_refuses_unpublished_checksums(server, blob, manifest, monkeypatch):
    b = blob("loose")
    with pytest.raises(StrictModeError) as e:
        zoo_for(manifest, entry(b, md5=False), strict=True).fetch("loose")
    assert e.value.exit_code == 9
    monkeypatch.setenv("DENSEZOO_STRICT", "1")
    with pytest.raises(StrictModeError):
        zoo_for(manifest, entry(b, md5=False)).fetch("loose")
    assert server.hits(b.path) == []
    assert zoo_for(manifest, entry(b)).fetch("loose").digests.md5 == b.md5   # published: fine


@pytest.mark.parametrize("sidecar", ["{md5}  sidecar.bin\n", "{md5}", "{MD5}\r\n"])
def test_md5_sidecar_is_fetched_parsed_and_used(server, blob, manifest, sidecar):
    b = blob("sidecar")
    server.add(b.path + ".md5sum", sidecar.format(md5=b.md5, MD5=b.md5.upper()).encode())
    zoo = zoo_for(manifest, entry(b, md5=False, size=False, md5_url=b.url + ".md5sum"))
    res = zoo.fetch("sidecar")
    assert res.strength == "verified" and res.digests.md5 == b.md5
    assert zoo.trust.record_of(zoo.catalog.get("sidecar")).sidecar_md5 == b.md5


def test_md5_sidecar_mismatch_is_a_checksum_failure(server, blob, manifest):
    b = blob("sidebad")
    server.add(b.path + ".md5sum", b"0123456789abcdef0123456789abcdef  sidebad.bin\n")
    zoo = zoo_for(manifest, entry(b, md5=False, size=False, md5_url=b.url + ".md5sum"))
    with pytest.raises(DownloadFailedError) as e:
        zoo.fetch("sidebad")
    assert e.value.exit_code == 4 and zoo.store.cached_path(zoo.catalog.get("sidebad")) is None


def test_missing_sidecar_falls_back_to_pin_with_a_warning(server, blob, manifest):
    b = blob("noside")
    zoo = zoo_for(manifest, entry(b, md5=False, size=False, md5_url=b.url + ".md5sum"))
    res = zoo.fetch("noside")
    assert any(".md5sum could not be read" in w for w in res.warnings)
    assert res.pinned
    with pytest.raises(StrictModeError):
        zoo_for(manifest, entry(b, md5=False, size=False, md5_url=b.url + ".md5sum"),
                strict=True, cache_dir=str(zoo.store.root) + "-strict").fetch("noside")


def test_offline_never_downloads(server, blob, manifest):
    b = blob("off")
    with pytest.raises(NotCachedError) as e:
        zoo_for(manifest, entry(b), offline=True).fetch("off")
    assert e.value.exit_code == 6 and server.hits(b.path) == []


def test_html_error_page_and_lfs_pointer_are_rejected(server, blob, manifest):
    for kind in ("html", "lfs_pointer"):
        b = blob(f"fake-{kind}")
        server.fault(b.path, kind, times=-1)
        zoo = zoo_for(manifest, entry(b, md5=False, size=False))
        with pytest.raises(DownloadFailedError, match="HTML page|git-lfs pointer"):
            zoo.fetch(b.name)
        assert zoo.trust.record_of(zoo.catalog.get(b.name)).pin is None    # nothing pinned


def test_fetch_many_keeps_going_after_a_failure(server, blob, manifest):
    good = blob("good")
    zoo = zoo_for(manifest, entry(good), {"name": "bad", "url": server.url("/nope.bin"),
                                          "md5": None})
    outcomes = zoo.fetch_many(["bad", "good"])
    assert outcomes[0].error is not None and outcomes[0].error.exit_code == 5
    assert outcomes[1].result.path.read_bytes() == good.data


def test_read_only_cache_is_a_store_error(server, blob, manifest, cache_dir):
    if os.geteuid() == 0:
        # root ignores directory permissions; a file where the cache dir should be works for all
        cache_dir.parent.mkdir(parents=True, exist_ok=True)
        cache_dir.write_text("not a directory")
    else:
        cache_dir.mkdir(parents=True)
        cache_dir.chmod(0o500)
    b = blob("ro")
    from densezoo.errors import StoreError
    with pytest.raises(StoreError) as e:
        zoo_for(manifest, entry(b)).fetch("ro")
    assert e.value.exit_code == 8 and str(cache_dir) in str(e.value)


# -- redirects, policy, timeouts -------------------------------------------------------------

def test_redirect_chain_is_followed(server, blob, manifest):
    b = blob("red")
    server.fault("/r1", "redirect", times=-1, location="/r2")
    server.fault("/r2", "redirect", times=-1, code=301, location=b.url)
    res = zoo_for(manifest, {"name": "red", "url": server.url("/r1"), "md5": b.md5}).fetch("red")
    assert res.path.read_bytes() == b.data and res.url == b.url


def test_redirect_loop_and_missing_location_fail_that_url(server, manifest):
    server.fault("/l1", "redirect", times=-1, location="/l2")
    server.fault("/l2", "redirect", times=-1, location="/l1")
    server.fault("/dead", "redirect", times=-1, code=301, location=None)
    with pytest.raises(DownloadFailedError) as e:
        zoo_for(manifest, {"name": "loop", "url": server.url("/l1"), "md5": None,
                           "mirrors": [server.url("/dead")]}).fetch("loop")
    assert "redirect loop" in str(e.value) and "without a Location" in str(e.value)


def test_https_to_http_redirect_is_refused(tls_server, server, blob, manifest, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_server.cafile)
    b = blob("down")
    tls_server.fault("/secure.bin", "redirect", times=-1, location=b.url)
    zoo = zoo_for(manifest, {"name": "down", "url": tls_server.url("/secure.bin"), "md5": b.md5})
    with pytest.raises(DownloadFailedError) as e:
        zoo.fetch("down")
    assert e.value.exit_code == 9 and "https to http" in str(e.value)
    assert server.hits(b.path) == []            # the downgraded URL was never requested
    tls_server.faults.clear()
    tls_server.add("/secure.bin", b.data)
    assert zoo.fetch("down").path.read_bytes() == b.data      # plain https works


def test_plain_http_beyond_loopback_is_refused_before_connecting(manifest):
    zoo = zoo_for(manifest, {"name": "ext", "url": "http://mirror.example.invalid/x.bin",
                             "md5": None})
    with pytest.raises(DownloadFailedError) as e:
        zoo.fetch("ext")
    assert e.value.exit_code == 9 and "--allow-http" in e.value.hint


def test_stalled_server_hits_the_read_timeout_then_retries(server, blob, manifest, monkeypatch,
                                                           sleeps):
    monkeypatch.setenv("DENSEZOO_TIMEOUT", "0.3")
    b = blob("stall")
    server.fault(b.path, "stall", times=1, seconds=1.5)
    res = zoo_for(manifest, entry(b)).fetch("stall")
    assert res.digests.md5 == b.md5 and len(sleeps) == 1


def test_manifest_env_var_adds_manifests(server, blob, manifest, monkeypatch):
    b = blob("envm")
    monkeypatch.setenv("DENSEZOO_MANIFEST", str(manifest(entry(b))))
    assert Zoo().fetch("envm").digests.md5 == b.md5
    assert Zoo().catalog.get("ResNet50_FPN_s1x")           # shipped manifests still there
