"""Issue 31: who vouched for these bytes -- one trust record per file, one strength word
derived from it everywhere, checksums that never launder, and the Hub's claim as a second
voucher.  Each test fails on the code before the record (round 3 forgot a mirror's word
after the first fetch, wrote copy digests into manifests, believed a co-tenant's pin)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import warnings
from pathlib import Path

import pytest

from conftest import entry
from hub_server import HubFile, start

COMMIT = "585a32e74aee241cbc0d0cc3ab21392ca58c916a"


def _mirror(server, b, monkeypatch, data: bytes | None = None) -> str:
    host = b.url.split("/")[2].replace(":", "_")
    server.add(f"/mirror/{host}{b.path}", b.data if data is None else data)
    monkeypatch.setenv("DENSEZOO_MIRROR", server.url("/mirror"))
    return f"/mirror/{host}{b.path}"


def _prefix(b, **extra):
    return entry(b, md5=False, size=False, md5_prefix=hashlib.md5(b.data).hexdigest()[:6],
                 **extra)


def _warnings(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("warning:")]


# -- 1 + 2: a mirror's word is remembered as a mirror's, in every command -----------------

def test_a_mirror_copy_stays_copy_pinned_after_the_first_fetch(server, blob, manifest, cli,
                                                               monkeypatch):
    b = blob("tr_mirror", 40_000)
    _mirror(server, b, monkeypatch)
    m = str(manifest(_prefix(b)))
    first = cli("--manifest", m, "fetch", "tr_mirror", "--json")
    assert first.code == 0 and first.items[0]["strength"] == "copy-pinned"
    assert len(_warnings(first.err)) == 1 and len(first.err.splitlines()[0]) < 200
    # warm: silent, and still the mirror's word -- in fetch, path, verify, cache ls, info
    warm = cli("--manifest", m, "fetch", "tr_mirror", "--json")
    assert warm.code == 0 and warm.items[0]["strength"] == "copy-pinned" and warm.err == ""
    path = cli("--manifest", m, "path", "tr_mirror", "--json")
    assert path.items[0]["strength"] == "copy-pinned" and _warnings(path.err) == []
    v = cli("--manifest", m, "verify", "--json")
    assert v.code == 0 and v.items[0]["strength"] == "copy-pinned"
    assert v.json["summary"]["strengths"] == {"copy-pinned": 1}
    assert cli("--manifest", m, "verify").err.strip() == "1 copy-pinned"
    ls = cli("--manifest", m, "cache", "ls", "--json")
    assert [i["state"] for i in ls.items] == ["copy-pinned"]
    info = cli("--manifest", m, "info", "tr_mirror", "--json").items[0]
    assert info["strength"] == "copy-pinned" and info["checksum"] == "prefix"
    assert [v["kind"] for v in info["vouchers"]] == ["published", "copy"]
    assert "/mirror/" in info["vouchers"][1]["source"]
    # --strict and --require refuse it everywhere (exit 9), naming it
    for args in (("--strict", "fetch", "tr_mirror"), ("--strict", "path", "tr_mirror"),
                 ("--require", "prefix", "verify")):
        r = cli("--manifest", m, *args)
        assert r.code == 9 and "tr_mirror" in (r.err + r.out), (args, r.err)


def test_the_python_api_warns_once_when_weak_bytes_enter(server, blob, manifest, monkeypatch):
    import densezoo

    b = blob("tr_api", 20_000)
    _mirror(server, b, monkeypatch)
    m = manifest(_prefix(b))
    zoo = densezoo.Zoo(manifests=[m])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = zoo.fetch("tr_api")
        again = zoo.fetch("tr_api")
        where = zoo.locate("tr_api")
    unverified = [w for w in caught if issubclass(w.category, densezoo.UnverifiedWarning)]
    assert len(unverified) == 1 and "copy-pinned" in str(unverified[0].message)
    assert first.strength == again.strength == where.strength == "copy-pinned"


def test_a_multi_file_fetch_says_one_line_per_file_and_one_grouped_line(server, blob, manifest,
                                                                         cli, monkeypatch):
    bs = [blob(f"tr_many{i}", 10_000) for i in range(3)]
    for b in bs:
        _mirror(server, b, monkeypatch)
    m = str(manifest(*(_prefix(b) for b in bs)))
    r = cli("--manifest", m, "fetch", *(b.name for b in bs))
    assert r.code == 0, r.err
    lines = _warnings(r.err)
    assert len(lines) == 4, r.err                           # 3 files + 1 grouped line
    assert lines[-1] == ("warning: 3 files only a copy (mirror, Hub, bundle, another user) "
                         "vouched for (copy-pinned): tr_many0, tr_many1, tr_many2")


def test_verify_counts_files_by_who_vouched(server, blob, manifest, cli, monkeypatch):
    full, loose, mirrored = blob("tr_full"), blob("tr_loose"), blob("tr_copy")
    m = str(manifest(entry(full), entry(loose, md5=False, size=False), _prefix(mirrored)))
    assert cli("--manifest", m, "fetch", "tr_full", "tr_loose").code == 0
    _mirror(server, mirrored, monkeypatch)
    assert cli("--manifest", m, "fetch", "tr_copy").code == 0
    r = cli("--manifest", m, "verify")
    assert r.code == 0 and r.err.strip() == "1 verified, 1 origin-pinned, 1 copy-pinned"


# -- 3: a co-tenant's pin vouches for nothing ---------------------------------------------

NOBODY = 65534


def _as_nobody(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", script], user=NOBODY, group=NOBODY,
                          capture_output=True, text=True)


@pytest.fixture
def shared_cache(tmp_path_factory, monkeypatch):
    """A cache every user may write (the victim runs with umask 0), outside /tmp/pytest-of-*
    (which only root may enter); the co-tenant is uid 65534."""
    import shutil
    import tempfile

    if os.geteuid() != 0:
        from conftest import missing

        missing("root (to act as a second user on a shared cache)", "privilege")
    top = Path(tempfile.mkdtemp(prefix="dz-shared-", dir="/tmp"))
    top.chmod(0o777)
    monkeypatch.setenv("DENSEZOO_CACHE_DIR", str(top / "cache"))
    old = os.umask(0)
    yield top / "cache"
    os.umask(old)
    shutil.rmtree(top, ignore_errors=True)


def test_a_co_tenants_swap_and_forged_pin_are_caught(server, blob, manifest, cli, shared_cache):
    b = blob("tr_shared", 30_000)
    m = str(manifest(entry(b, md5=False, size=False)))
    assert cli("--manifest", m, "fetch", "tr_shared").code == 0
    f = next((shared_cache / "files").rglob("tr_shared.bin"))
    evil = b"E" * len(b.data)
    evil_md5 = hashlib.md5(evil).hexdigest()
    pin_dir = shared_cache / "pins" / f.parent.relative_to(shared_cache / "files")
    trust = shared_cache / "trust"
    script = f"""
        set -e
        rm -f '{f}' && printf '{'E' * len(b.data)}' > '{f}'
        rm -f '{f}.dzmeta' && printf '{{"md5": "{evil_md5}", "url": "{b.url}"}}' > '{f}.dzmeta'
        mkdir -p '{pin_dir}' && printf '{{"md5": "{evil_md5}", "origin": true}}' \\
            > '{pin_dir}/tr_shared.bin.json'
        mv '{trust}/0' '{trust}/0.gone' 2>/dev/null && echo RENAMED || echo KEPT
    """
    done = _as_nobody(script)
    assert done.returncode == 0, done.stderr
    assert "KEPT" in done.stdout                     # trust/ is sticky: not renamed
    assert f.read_bytes() == evil
    info = cli("--manifest", m, "info", "tr_shared", "--json").items[0]
    assert info["strength"] is None and info["cached"]     # unverified: never the old word
    v = cli("--manifest", m, "verify", "--json")
    assert v.code == 4 and v.items[0]["state"] == "corrupt", v.out
    r = cli("--manifest", m, "fetch", "tr_shared")
    assert r.code == 0 and Path(r.out.strip()).read_bytes() == b.data


def test_a_file_only_a_co_tenant_vouched_for_is_copy_pinned(server, blob, manifest, cli,
                                                            shared_cache):
    b = blob("tr_theirs", 30_000)
    m = str(manifest(entry(b, md5=False, size=False)))
    # the co-tenant "fetched" it: the file, its metadata and a pin, all theirs
    where = shared_cache / "files" / b.url.split("/")[2].replace(":", "_") / "zoo"
    pins = shared_cache / "pins" / where.relative_to(shared_cache / "files")
    payload = b.data.hex()
    done = _as_nobody(f"""
        set -e
        mkdir -p '{where}' '{pins}'
        printf '%s' '{payload}' | xxd -r -p > '{where}/tr_theirs.bin' 2>/dev/null || \\
            python3 -c "import sys; sys.stdout.buffer.write(bytes.fromhex('{payload}'))" \\
            > '{where}/tr_theirs.bin'
        printf '{{"md5": "{b.md5}", "origin": true, "url": "{b.url}"}}' \\
            > '{pins}/tr_theirs.bin.json'
    """)
    if done.returncode != 0 or not (where / "tr_theirs.bin").exists():
        (where / "tr_theirs.bin").write_bytes(b.data)          # no xxd: root writes it ...
        os.chown(where / "tr_theirs.bin", NOBODY, NOBODY)      # ... as the co-tenant's
    assert (where / "tr_theirs.bin").read_bytes() == b.data
    info = cli("--manifest", m, "info", "tr_theirs", "--json").items[0]
    assert info["strength"] == "none" and info["pin"] is None     # their pin is not mine
    assert any("owned by uid 65534" in w for w in cli("--manifest", m, "info",
                                                     "tr_theirs").out.splitlines())
    r = cli("--manifest", m, "fetch", "tr_theirs", "--json")
    assert r.code == 0 and r.items[0]["strength"] == "copy-pinned"
    assert "written by nobody" in r.err or "uid 65534" in r.err, r.err
    strict = cli("--manifest", m, "--require", "origin-pinned", "fetch", "tr_theirs")
    assert strict.code == 9 and "as copy-pinned, below the required origin-pinned" in strict.err
    assert server.hits(b.path) == []


# -- 4: manifests never launder -----------------------------------------------------------

def test_manifest_add_writes_only_the_origins_digests(server, blob, cli, monkeypatch, tmp_path):
    b = blob("tr_add", 20_000)
    other = b"M" * 20_000
    mirror_path = _mirror(server, b, monkeypatch, data=other)   # the mirror serves other bytes
    out = tmp_path / "mine.yaml"
    r = cli("manifest", "add", b.url, "--name", "tr_add", "--to", str(out), "--json")
    assert r.code == 0, r.err
    assert r.items[0]["md5"] == b.md5 and r.items[0]["sha256"] == b.sha256
    assert server.hits(mirror_path) == [] and server.hits(b.path)
    # only the mirror answers: the entry is written without md5/sha256, and says so
    c = blob("tr_add_copy", 20_000)
    _mirror(server, c, monkeypatch)
    server.fault(c.path, "status", -1, code=404)
    r = cli("manifest", "add", c.url, "--name", "tr_add_copy", "--to", str(out), "--json")
    assert r.code == 0, r.err
    (item,) = r.items
    assert item["md5"] is None and item["sha256"] is None and "/mirror/" in item["pinned_from"]
    assert "md5/sha256 not written" in r.err
    assert c.md5 not in out.read_text() and c.sha256 not in out.read_text()


def test_pin_manifest_out_skips_a_copys_pin_and_refuses_forged_values(server, blob, manifest,
                                                                     cli, monkeypatch, cache_dir,
                                                                     tmp_path):
    b = blob("tr_pinout", 20_000)
    _mirror(server, b, monkeypatch)
    src = manifest(entry(b, md5=False, size=False))
    assert cli("--manifest", str(src), "fetch", "tr_pinout").code == 0
    out = tmp_path / "out.yaml"
    r = cli("--manifest", str(src), "pin", "--manifest-out", str(out))
    assert r.code == 0 and "not written" in r.err and "copy" in r.err
    assert b.md5 not in out.read_text()                  # a mirror's digest is never "published"
    # a record edited by hand: a newline in a digest would inject manifest keys
    rec = next((cache_dir / "trust").rglob("tr_pinout.bin.json"))
    data = json.loads(rec.read_text())
    data["vouchers"][0].update(kind="origin", sha256="a" * 64 + "\n    mirrors: [http://x]")
    rec.write_text(json.dumps(data))
    r = cli("--manifest", str(src), "pin", "--manifest-out", str(out))
    assert "mirrors: [http://x]" not in out.read_text()
    assert cli("--manifest", str(src), "info", "tr_pinout", "--json").items[0]["pin"] is None


# -- 6: the Hub's claim as a second voucher -----------------------------------------------

@pytest.fixture
def hub(server, monkeypatch):
    h, srv = start(server)
    monkeypatch.setenv("HF_ENDPOINT", h.url)
    yield h
    srv.shutdown()


def _hubbed(server, hub, blob, manifest, name, claim=None):
    b = blob(name, 30_000)
    hub.add(f"owner/zoo/resolve/{COMMIT}/{name}.bin", HubFile(b.data, commit=COMMIT,
                                                             claim_sha256=claim))
    m = str(manifest(_prefix(b, mirrors=[f"hf://owner/zoo@{COMMIT}/{name}.bin"])))
    return b, m


def test_origin_bytes_that_match_the_hubs_claim_are_cross_checked(server, hub, blob,
                                                                   manifest, cli):
    b, m = _hubbed(server, hub, blob, manifest, "tr_agree")
    r = cli("--manifest", m, "--require", "cross-checked", "fetch", "tr_agree", "--json")
    assert r.code == 0 and r.items[0]["strength"] == "cross-checked", r.err
    assert r.items[0]["url"] == b.url                               # the origin's bytes
    assert [q.method for q in hub.requests] == ["HEAD"]             # the claim, no body
    assert not [q for q in server.requests if q.path.startswith("/cdn/")]
    info = cli("--manifest", m, "info", "tr_agree", "--json").items[0]
    kinds = {v["kind"]: v for v in info["vouchers"]}
    assert kinds["hub-claim"]["sha256"] == b.sha256 and COMMIT in kinds["hub-claim"]["detail"]
    assert cli("--manifest", m, "--offline", "verify").err.strip() == "1 cross-checked"


def test_a_hub_claim_that_disagrees_is_one_loud_line(server, hub, blob, manifest, cli):
    b, m = _hubbed(server, hub, blob, manifest, "tr_disagree", claim="f" * 64)
    r = cli("--manifest", m, "fetch", "tr_disagree", "--json")
    assert r.code == 0 and r.items[0]["strength"] == "prefix"
    (line,) = [w for w in _warnings(r.err) if "disagree" in w]
    assert "f" * 64 in line and b.sha256 in line and "hf://owner/zoo" in line
    again = cli("--manifest", m, "--require", "cross-checked", "fetch", "tr_disagree")
    assert again.code == 9 and "below the required cross-checked" in again.err


def test_an_unreachable_hub_changes_nothing(server, blob, manifest, cli, monkeypatch):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                           # nothing listens there
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    b = blob("tr_nohub", 30_000)
    m = str(manifest(_prefix(b, mirrors=[f"hf://owner/zoo@{COMMIT}/tr_nohub.bin"])))
    r = cli("--manifest", m, "fetch", "tr_nohub", "--json")
    assert r.code == 0 and r.items[0]["strength"] == "prefix" and "disagree" not in r.err


def test_verify_cross_check_asks_the_hub_for_cached_weak_files(server, blob, manifest, cli,
                                                               monkeypatch):
    b = blob("tr_later", 30_000)
    m = str(manifest(_prefix(b, mirrors=[f"hf://owner/zoo@{COMMIT}/tr_later.bin"])))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")         # no Hub at first
    assert cli("--manifest", m, "fetch", "tr_later", "--json").items[0]["strength"] == "prefix"
    h, srv = start(server)
    try:
        monkeypatch.setenv("HF_ENDPOINT", h.url)
        h.add(f"owner/zoo/resolve/{COMMIT}/tr_later.bin", HubFile(b.data, commit=COMMIT))
        assert cli("--manifest", m, "verify").err.strip() == "1 prefix"   # offline: no ask
        assert h.requests == []
        r = cli("--manifest", m, "verify", "--cross-check", "--json")
        assert r.code == 0 and r.items[0]["strength"] == "cross-checked", r.err
    finally:
        srv.shutdown()


# -- the attack pass on this record (second reviewer), each finding a test ----------------

def test_a_co_tenants_dzmeta_entry_cannot_make_verify_green(server, blob, manifest, cli,
                                                            shared_cache):
    """Plain `verify` (the manifest not loaded) used to believe the entry a co-tenant wrote
    into the file's .dzmeta -- with the md5 of their swapped bytes: 'verified', exit 0."""
    b = blob("tr_meta", 30_000)
    m = str(manifest(entry(b, md5=False, size=False)))
    assert cli("--manifest", m, "fetch", "tr_meta").code == 0
    f = next((shared_cache / "files").rglob("tr_meta.bin"))
    entry_json = json.loads(f.with_name("tr_meta.bin.dzmeta").read_text())["entry"]
    evil = "E" * len(b.data)
    entry_json["md5"] = hashlib.md5(evil.encode()).hexdigest()
    done = _as_nobody(f"""
        set -e
        rm -f '{f}' && printf '{evil}' > '{f}'
        rm -f '{f}.dzmeta' && printf '%s' '{json.dumps({"entry": entry_json})}' > '{f}.dzmeta'
    """)
    assert done.returncode == 0, done.stderr
    r = cli("verify", "--json")                          # no --manifest: the store's word
    assert r.code == 4 and r.items[0]["state"] == "corrupt", r.out


def test_two_copies_never_cross_check_each_other(server, blob, manifest, cli):
    """One mirror under two host names (127.0.0.1 and localhost) is one party's word."""
    b = blob("tr_twice", 20_000)
    server.add("/m1/tr_twice.bin", b.data)
    server.add("/m2/tr_twice.bin", b.data)
    server.fault(b.path, "status", -1, code=404)
    port = server.url("/").split(":")[2].split("/")[0]
    m = str(manifest(_prefix(b, mirrors=[server.url("/m1/tr_twice.bin"),
                                         f"http://localhost:{port}/m2/tr_twice.bin"])))
    assert cli("--manifest", m, "fetch", "tr_twice").code == 0
    server.fault("/m1/tr_twice.bin", "status", -1, code=404)
    r = cli("--manifest", m, "fetch", "--force", "tr_twice", "--json")
    assert r.code == 0 and r.items[0]["strength"] == "copy-pinned", r.items
    assert cli("--manifest", m, "--strict", "path", "tr_twice").code == 9


def test_a_bundle_never_publishes_a_copys_digests(server, blob, manifest, cli, monkeypatch,
                                                  tmp_path):
    b = blob("tr_bundled", 20_000)
    _mirror(server, b, monkeypatch)
    server.fault(b.path, "status", -1, code=404)
    m = str(manifest(_prefix(b)))
    assert cli("--manifest", m, "fetch", "tr_bundled").code == 0     # copy-pinned
    out = tmp_path / "b.tar"
    assert cli("--manifest", m, "bundle", "tr_bundled", "-o", str(out)).code == 0
    import tarfile

    with tarfile.open(out) as tar:
        text = tar.extractfile("densezoo-bundle.yaml").read().decode()
    assert b.md5 not in text and b.sha256 not in text
    monkeypatch.delenv("DENSEZOO_MIRROR")
    monkeypatch.setenv("DENSEZOO_CACHE_DIR", str(tmp_path / "elsewhere"))
    r = cli("import", str(out), "--json")
    assert r.code == 0 and "copy-pinned" in r.err, (r.out, r.err)
    assert cli("verify").err.strip() == "1 copy-pinned"


def test_only_a_loopback_address_is_a_loopback_origin():
    from densezoo.store.trust import authentic

    assert authentic("https://example.org/x") and authentic("http://127.0.0.1:8/x")
    assert authentic("http://localhost/x") and authentic("http://[::1]/x")
    assert not authentic("http://127.attacker.example/x")
    assert not authentic("http://evil.example/x")


def test_a_malformed_record_is_ignored_not_a_traceback(server, blob, manifest, cli, cache_dir):
    b = blob("tr_bad", 10_000)
    m = str(manifest(entry(b, md5=False, size=False)))
    assert cli("--manifest", m, "fetch", "tr_bad").code == 0
    rec = next((cache_dir / "trust").rglob("tr_bad.bin.json"))
    rec.write_text(json.dumps({"vouchers": 5}))
    r = cli("--manifest", m, "info", "tr_bad")
    assert r.code == 0 and "'vouchers' is not a list" in r.out
    assert cli("--manifest", m, "verify").code == 1          # nothing vouches: unpinned
