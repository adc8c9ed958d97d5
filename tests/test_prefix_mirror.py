"""Issue 19.2: a 6-hex md5 prefix is no checksum against an adversary.  The entry's own
URL is the origin; bytes from anywhere else that only a prefix (or nothing) checks are
`copy-pinned`, warned about, refused under --strict, and accepted silently only when a
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
    assert row["strength"] == "copy-pinned" and row["url"].endswith(mirror_path)
    assert f"pm_model: copy-pinned -- only {row['url']} vouched for it (a 6-hex md5 prefix " \
           "at most)" in r.err
    assert len([ln for ln in r.err.splitlines() if ln.startswith("warning:")]) == 1   # one line
    info = cli("--manifest", str(m), "info", "pm_model", "--json").items[0]
    assert info["strength"] == "copy-pinned" and info["pin"]["kind"] == "copy"
    # cached, and strict: refused (exit 9), nothing moved
    r = cli("--manifest", str(m), "--strict", "fetch", "pm_model")
    assert r.code == 9 and "cached as copy-pinned, below the required prefix" in r.err
    # the origin is the trust root: its bytes bind now; the mirror served the same bytes,
    # so two parties agree on the full md5
    monkeypatch.delenv("DENSEZOO_MIRROR")
    r = cli("--manifest", str(m), "fetch", "--force", "pm_model", "--json")
    assert r.code == 0 and r.items[0]["strength"] == "cross-checked"
    info = cli("--manifest", str(m), "info", "pm_model", "--json").items[0]
    assert info["strength"] == "cross-checked" and info["pin"]["kind"] == "origin"
    assert {v["kind"] for v in info["vouchers"]} == {"published", "origin", "copy"}


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
    assert r.code == 9 and "a copy's bytes are copy-pinned at best, below the required " \
                           "prefix" in r.err


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
    assert "/mirror/" in rows["pm_full"]["url"] and rows["pm_full"]["strength"] == "verified"
    # the mirror's bytes match the origin's own pin: two parties agree on the full md5
    assert "/mirror/" in rows["pm_pinned"]["url"]
    assert rows["pm_pinned"]["strength"] == "cross-checked"
    assert "copy-pinned" not in r.err
