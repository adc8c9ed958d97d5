"""Issue 19.2: a 6-hex md5 prefix is no checksum against an adversary.  The entry's own
URL is the origin; bytes from anywhere else that only a prefix (or nothing) checks are
`prefix-mirror`, warned about, refused under --strict, and accepted silently only when a
full checksum (published, or a pin taken from the origin) matches."""

import hashlib

from conftest import entry


def _mirrored(server, b, monkeypatch):
    host = b.url.split("/")[2].replace(":", "_")
    server.add(f"/mirror/{host}{b.path}", b.data)
    monkeypatch.setenv("DENSEZOO_MIRROR", server.url("/mirror"))
    return f"/mirror/{host}{b.path}"


def _prefix_entry(b):
    return entry(b, md5=False, size=False, md5_prefix=hashlib.md5(b.data).hexdigest()[:6])


def test_prefix_checked_bytes_from_a_mirror_are_not_verified(server, blob, manifest, cli,
                                                             monkeypatch, cache_dir):
    b = blob("pm_model", 30_000)
    mirror_path = _mirrored(server, b, monkeypatch)
    m = manifest(_prefix_entry(b))
    r = cli("--manifest", str(m), "fetch", "pm_model", "--json")
    assert r.code == 0, r.err
    (row,) = r.items
    assert row["strength"] == "prefix-mirror" and row["url"].endswith(mirror_path)
    assert "came from a mirror" in r.err and "6-hex md5 prefix (24 bits)" in r.err
    info = cli("--manifest", str(m), "info", "pm_model", "--json").items[0]
    assert info["strength"] == "prefix-mirror" and info["pin"]["origin"] is False
    # cached, and strict: refused (exit 9), nothing moved
    r = cli("--manifest", str(m), "--strict", "fetch", "pm_model")
    assert r.code == 9 and "strict mode" in r.err
    # the origin is the trust root: its bytes replace the mirror's pin
    monkeypatch.delenv("DENSEZOO_MIRROR")
    r = cli("--manifest", str(m), "fetch", "--force", "pm_model", "--json")
    assert r.code == 0 and r.items[0]["strength"] == "prefix"
    info = cli("--manifest", str(m), "info", "pm_model", "--json").items[0]
    assert info["strength"] == "prefix" and info["pin"]["origin"] is True


def test_strict_refuses_the_mirror_and_takes_the_origin(server, blob, manifest, cli,
                                                        monkeypatch):
    """(The worst cause decides: a policy refusal outranks the origin's 404.)"""
    b = blob("pm_strict", 30_000)
    mirror_path = _mirrored(server, b, monkeypatch)
    m = manifest(_prefix_entry(b))
    r = cli("--manifest", str(m), "--strict", "fetch", "pm_strict", "--json")
    assert r.code == 0, r.err
    (row,) = r.items
    assert row["strength"] == "prefix" and row["url"] == b.url
    assert server.hits(mirror_path) == []                      # never downloaded from it
    # its origin pin now vouches for the mirror's bytes in full
    assert cli("--manifest", str(m), "cache", "rm", "pm_strict", "-y").code == 0
    r = cli("--manifest", str(m), "--strict", "fetch", "pm_strict", "--json")
    assert r.code == 0 and r.items[0]["url"].endswith(mirror_path)
    # with no origin pin and the origin gone, strict has nothing it may take
    gone = blob("pm_gone", 30_000)
    _mirrored(server, gone, monkeypatch)
    server.fault(gone.path, "status", -1, code=404)
    m2 = manifest(_prefix_entry(gone))
    r = cli("--manifest", str(m2), "--strict", "fetch", "pm_gone")
    assert r.code == 9 and "--strict refuses a mirror's bytes" in r.err


def test_a_full_checksum_makes_a_mirror_silent(server, blob, manifest, cli, monkeypatch):
    full, pinned = blob("pm_full", 20_000), blob("pm_pinned", 20_000)
    m = manifest(entry(full), _prefix_entry(pinned))
    assert cli("--manifest", str(m), "fetch", "pm_pinned").code == 0     # origin pin first
    assert cli("--manifest", str(m), "cache", "rm", "pm_pinned", "-y").code == 0
    _mirrored(server, full, monkeypatch)
    _mirrored(server, pinned, monkeypatch)
    r = cli("--manifest", str(m), "--strict", "fetch", "pm_full", "pm_pinned", "--json")
    assert r.code == 0, r.err
    rows = {x["name"]: x for x in r.items}
    assert "/mirror/" in rows["pm_full"]["url"] and rows["pm_full"]["strength"] == "full"
    assert "/mirror/" in rows["pm_pinned"]["url"] and rows["pm_pinned"]["strength"] == "prefix"
    assert "came from a mirror" not in r.err
