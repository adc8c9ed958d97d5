"""Broken servers, odd caches and interruptions never wedge, corrupt or lose work.
or lose work.  Real loopback servers, real tmpfs mounts, real processes and signals."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from conftest import entry, read_only
from test_crash_concurrency_disk import densezoo, published


def mirrored(server, monkeypatch, b, path="/mirror"):
    """Point DENSEZOO_MIRROR at ``path`` on the server; return the mirror's path for ``b``."""
    host = b.url.split("/")[2].replace(":", "_")
    monkeypatch.setenv("DENSEZOO_MIRROR", server.url(path))
    return f"{path}/{host}{b.path}"


def partials(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if ".dzpart" in p.name and p.is_file()
            and not p.name.endswith(".dzmeta")]


# -- 1. retry budget --------------------------------------------------------------------------

def test_a_server_that_ignores_range_and_closes_early_yields_to_the_next_url(
        server, blob, manifest, cli, monkeypatch):
    b = blob("broken", 400_000)
    mp = mirrored(server, monkeypatch, b)
    server.add(mp, b.data)
    server.fault(mp, "truncate", -1, ignore_range=True, after=100_000)
    r = cli("--manifest", str(manifest(entry(b))), "fetch", b.name, "--json")
    assert r.code == 0, r.err
    assert 1 <= len(server.hits(mp)) <= 5                  # the retry budget, then upstream
    assert r.items[0]["md5"] == b.md5
    monkeypatch.delenv("DENSEZOO_MIRROR")
    server.fault(b.path, "truncate", -1, ignore_range=True, after=100_000)
    r = cli("--manifest", str(manifest(entry(b))), "fetch", b.name, "--force")
    assert r.code == 5 and "connection closed" in r.err and len(server.hits(b.path)) <= 6


# -- 2. misbehaving mirrors never fill the disk or block the fallback --------------------------

def test_a_body_of_no_length_stops_at_the_manifest_size(server, blob, manifest, cli,
                                                       monkeypatch, tmpfs):
    disk = tmpfs("16m")
    b = blob("sized", 1000)
    mp = mirrored(server, monkeypatch, b)
    server.fault(mp, "no_length", -1, size=50 << 20)          # more than the disk holds
    r = cli("--cache-dir", str(disk), "--manifest", str(manifest(entry(b))), "fetch", b.name)
    assert r.code == 0, r.err
    assert not partials(disk)                                 # the junk was not kept


def test_a_gzip_bomb_on_a_small_disk_is_that_urls_failure(server, blob, manifest, cli,
                                                         monkeypatch, tmpfs):
    disk = tmpfs("16m")
    b, c = blob("unsized", 200_000), blob("next", 200_000)
    mp = mirrored(server, monkeypatch, b)
    server.fault(mp, "gzip_bomb", -1, inflated=64 << 20)
    m = manifest(entry(b, md5=False, size=False), entry(c, md5=False, size=False))
    r = cli("--cache-dir", str(disk), "--manifest", str(m), "fetch", b.name, c.name, "--json")
    assert r.code == 0, r.err
    rows = r.items
    assert [row["md5"] for row in rows] == [b.md5, c.md5]     # upstream served both
    assert not partials(disk)


def test_a_huge_declared_length_fails_that_url_not_the_run(server, blob, manifest, cli,
                                                          monkeypatch, tmpfs):
    disk = tmpfs("8m")
    b = blob("lying", 100_000)
    mp = mirrored(server, monkeypatch, b)
    server.fault(mp, "huge_length", -1)
    m = manifest(entry(b, md5=False, size=False))
    r = cli("--cache-dir", str(disk), "--manifest", str(m), "fetch", b.name)
    assert r.code == 0, r.err
    monkeypatch.delenv("DENSEZOO_MIRROR")
    c = blob("lying-alone", 100_000)
    server.fault(c.path, "huge_length", -1)
    m = manifest(entry(c, md5=False, size=False))
    r = cli("--cache-dir", str(disk), "--manifest", str(m), "fetch", c.name, "--json")
    assert r.code == 8 and "a size only the server states" in r.err
    assert "not enough space in" in r.err            # the disk's facts, not a verdict on the URL
    assert r.items[0]["ok"] is False                 # --json still reports it


def test_every_name_of_a_batch_gets_an_outcome(server, blob, manifest, cli, tmpfs):
    disk = tmpfs("4m")
    big, small = blob("toobig", 6_000_000), blob("fits", 10_000)
    m = manifest(entry(big), entry(small))
    r = cli("--cache-dir", str(disk), "--manifest", str(m), "fetch", "-j", "1", big.name,
            small.name, "--json")
    rows = {row["name"]: row for row in r.items}
    assert r.code == 8 and not rows["toobig"]["ok"] and rows["fits"]["ok"]


# -- 3. resumes never stitch two versions ------------------------------------------------------

def test_a_resume_from_another_version_restarts(server, blob, manifest):
    from densezoo import Zoo

    a, other = blob("ver-a", 600_000), blob("ver-b", 600_000)
    server.fault(a.path, "swap_version", 2, other=other.data)
    zoo = Zoo(manifests=[manifest(entry(a, md5=False, size=False))], default_manifests=False)
    res = zoo.fetch(a.name)
    assert res.path.read_bytes() == a.data                     # never A[:half] + B[half:]
    ranged = [h for h in server.hits(a.path) if "Range" in h.headers]
    assert ranged and ranged[0].headers.get("If-Range") == '"v1"'


# -- 4. an object store labelling a .tar.gz as gzip-encoded -------------------------------------

@pytest.mark.parametrize("published_md5", [True, False])
def test_content_encoding_on_a_compressed_file_keeps_the_bytes(published_md5, server, manifest,
                                                              cli):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("UV_data/x.mat")
        info.size = 5
        t.addfile(info, io.BytesIO(b"hello"))
    data = buf.getvalue()
    url = server.add("/d/densepose_uv_data.tar.gz", data)
    server.fault("/d/densepose_uv_data.tar.gz", "label_gzip", -1)
    m = manifest({"name": "uv", "url": url,
                  "md5": hashlib.md5(data).hexdigest() if published_md5 else None})
    r = cli("--manifest", str(m), "fetch", "uv", "--json")
    assert r.code == 0, r.err
    row = r.items[0]
    assert Path(row["path"]).read_bytes() == data and row["md5"] == hashlib.md5(data).hexdigest()


# -- 5. shared slots and read-only commands -----------------------------------------------------

def test_entries_sharing_a_slot_with_different_checksums_are_a_manifest_error(blob, manifest, cli):
    b = blob("slot")
    m = manifest({"name": "one", "url": b.url, "md5": b.md5},
                 {"name": "two", "url": b.url, "md5": "0" * 32})
    r = cli("--manifest", str(m), "list")
    assert r.code == 7 and "one" in r.err and "two" in r.err


def test_read_only_commands_never_move_anything(server, blob, manifest, cli, cache_dir):
    b = blob("ro")
    m = str(manifest(entry(b)))
    path = Path(cli("--manifest", m, "fetch", b.name).out.strip())
    path.write_bytes(b"x" + b.data[1:])                        # corrupt it in place
    assert cli("--manifest", m, "path", b.name).code == 6
    r = cli("--manifest", m, "verify", "--quick", b.name)
    assert r.code == 4 and "left in place" in r.out
    for args in (("info", b.name), ("list",)):
        assert cli("--manifest", m, *args).code == 0
    assert path.exists() and not (cache_dir / "bad").exists()
    r = cli("--manifest", m, "verify", b.name)                  # a full verify repairs
    assert r.code == 4 and "moved to" in r.out and not path.exists()


def test_a_copy_verified_for_another_entry_is_not_moved_for_one_that_published_nothing(
        server, blob, manifest, cli, cache_dir):
    b, x = blob("shared"), blob("earlier")
    loose = manifest({"name": "loose", "url": b.url, "md5": None})
    server.files[b.path] = x.data                              # "loose" first pins other bytes
    assert cli("--manifest", str(loose), "fetch", "loose").code == 0
    server.files[b.path] = b.data
    both = manifest({"name": "loose", "url": b.url, "md5": None},
                    {"name": "strict", "url": b.url, "md5": b.md5})
    path = Path(cli("--manifest", str(both), "fetch", "strict").out.strip())
    assert path.read_bytes() == b.data
    r = cli("--manifest", str(both), "fetch", "loose")
    assert r.code == 7 and "strict" in r.err and "filename" in r.err
    assert path.read_bytes() == b.data                         # the verified copy stayed
    assert cli("--manifest", str(both), "path", "strict").code == 0


# -- 6. read-only caches -----------------------------------------------------------------------

def test_verify_and_path_work_on_a_read_only_cache(server, blob, manifest, cli, tmpfs):
    disk = tmpfs("8m")
    a, u = blob("roa"), blob("rou")
    m = str(manifest(entry(a), entry(u, md5=False, size=False)))
    assert cli("--cache-dir", str(disk), "--manifest", m, "fetch", a.name, u.name).code == 0
    read_only(disk)
    base = ("--cache-dir", str(disk), "--manifest", m)
    for args in (("verify",), ("verify", "--quick"), ("path", a.name), ("fetch", a.name),
                 ("path", u.name)):
        r = cli(*base, *args)
        assert r.code == 0, (args, r.err)


def test_a_cache_copied_with_cp_a_onto_read_only_storage(server, blob, manifest, cli, tmpfs,
                                                        cache_dir):
    a = blob("copied")
    m = str(manifest(entry(a)))
    assert cli("--manifest", m, "fetch", a.name).code == 0
    disk = tmpfs("8m")
    subprocess.run(["cp", "-a", f"{cache_dir}/.", str(disk)], check=True)   # new inodes
    read_only(disk)
    base = ("--cache-dir", str(disk), "--manifest", m)
    for args in (("path", a.name), ("fetch", a.name), ("verify", "--quick"), ("verify",)):
        assert cli(*base, *args).code == 0, args
    r = cli(*base, "-v", "verify")
    assert r.code == 0 and r.err.count("note:") == 1 and "could not be recorded" in r.err


# -- 7. verify never quarantines a freshly repaired file ----------------------------------------

def test_verify_leaves_a_file_repaired_while_it_was_hashed(server, blob, manifest, monkeypatch,
                                                          cache_dir):
    from densezoo import Zoo
    from densezoo.store import verifier

    b = blob("race", 300_000)
    zoo = Zoo(manifests=[manifest(entry(b))], default_manifests=False)
    path = zoo.fetch(b.name).path
    path.write_bytes(b"x" * len(b.data))                       # corrupt copy
    real = verifier.hash_with_identity

    def hash_then_repair(p, algorithms, progress=None):
        result = real(p, algorithms, progress)
        fresh = Path(str(p) + ".fresh")
        fresh.write_bytes(b.data)
        os.replace(fresh, p)                                   # what a concurrent fetch does
        return result

    monkeypatch.setattr(verifier, "hash_with_identity", hash_then_repair)
    report = zoo.verify([b.name])
    monkeypatch.setattr(verifier, "hash_with_identity", real)
    assert path.read_bytes() == b.data and not (cache_dir / "bad").exists()
    assert report.entries[0].moved_to is None


# -- 9. a trickling URL yields -----------------------------------------------------------------

def test_a_trickling_mirror_yields_to_upstream(server, blob, manifest, cli, monkeypatch):
    b = blob("slow", 50_000)
    mp = mirrored(server, monkeypatch, b)
    server.add(mp, b.data)
    server.fault(mp, "trickle", -1, step=1, delay=0.5)
    monkeypatch.setenv("DENSEZOO_TIMEOUT", "2")
    r = cli("--manifest", str(manifest(entry(b))), "fetch", b.name, "--json")
    assert r.code == 0, r.err
    assert r.items[0]["url"].endswith(b.path) and "/mirror/" not in r.items[0]["url"]
    assert len(server.hits(mp)) == 1


# -- 10. signals ---------------------------------------------------------------------------------

@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_keep_partials_release_markers_and_exit(sig, code, server, blob, manifest,
                                                       cache_dir):
    b = blob(f"sig{code}", 4_000_000)
    server.fault(b.path, "trickle", -1, step=100_000, delay=0.1)
    p = densezoo("--manifest", str(manifest(entry(b))), "fetch", b.name, cache=cache_dir)
    time.sleep(1.5)
    p.send_signal(sig)
    out, err = p.communicate(timeout=30)
    assert p.returncode == code and err.count("error:") == 1 and "resume" in err
    assert partials(cache_dir) and not list(cache_dir.rglob("*.dzlock"))


def test_ctrl_c_with_several_downloads_stops_them_all(server, blob, manifest, cache_dir):
    blobs = [blob(f"par{i}", 3_000_000) for i in range(3)]
    for b in blobs:
        server.fault(b.path, "trickle", -1, step=50_000, delay=0.1)   # ~6 s each
    p = densezoo("--manifest", str(manifest(*[entry(b) for b in blobs])), "fetch", "-j", "3",
                 *[b.name for b in blobs], cache=cache_dir)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert len(partials(cache_dir)) == 3 and not published(cache_dir)


# -- 11. every error is one line with its own exit code -----------------------------------------

def test_long_requires_chains_and_cycles(manifest, cli):
    n = 2000
    chain = [{"name": f"c{i}", "url": f"https://h.example/c{i}.bin", "md5": None,
              **({"requires": [f"c{i + 1}"]} if i + 1 < n else {})} for i in range(n)]
    m = manifest(*chain)
    r = cli("--no-default-manifests", "--manifest", str(m), "info", "c0", "--json")
    assert r.code == 0 and len(r.items[0]["requires_closure"]) == n - 1
    chain[-1]["requires"] = ["c0"]
    r = cli("--no-default-manifests", "--manifest", str(manifest(*chain)), "list")
    assert r.code == 7 and "cycle" in r.err


@pytest.mark.parametrize("var, value", [
    ("DENSEZOO_TIMEOUT", "inf"), ("DENSEZOO_TIMEOUT", "1e309"), ("DENSEZOO_TIMEOUT", "soon"),
    ("DENSEZOO_MIRROR", "http://[::1"), ("DENSEZOO_MIRROR", "http://h.example:99999/"),
    ("DENSEZOO_MIRROR", "abc"), ("DENSEZOO_MIRROR", "ftp://x/"), ("DENSEZOO_MIRROR", "file:///m"),
    ("DENSEZOO_MIN_RATE", "-1"), ("DENSEZOO_MAX_UNPACK_MEMBERS", "0"),
])
def test_a_bad_setting_is_exit_2_naming_the_variable(var, value, cli, monkeypatch, blob,
                                                     manifest):
    b = blob("setting")
    monkeypatch.setenv(var, value)
    r = cli("--manifest", str(manifest(entry(b))), "fetch", b.name)
    assert r.code == 2 and var in r.err and r.err.count("\n") == 1, r.err


def test_a_damaged_metadata_file_counts_as_missing(server, blob, manifest, cli):
    b = blob("damaged")
    m = str(manifest(entry(b)))
    path = Path(cli("--manifest", m, "fetch", b.name).out.strip())
    meta = path.with_name(path.name + ".dzmeta")
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "size": "1e5"}))
    assert cli("--manifest", m, "path", b.name).code == 0
    assert cli("--manifest", m, "verify", "--quick").code == 0


def test_a_long_legal_file_name(server, manifest, cli):
    data = b"long name\n" * 100
    name = "n" * 240 + ".bin"                                   # 244 characters
    url = server.add(f"/l/{name}", data)
    m = manifest({"name": "long", "url": url, "md5": hashlib.md5(data).hexdigest()})
    r = cli("--manifest", str(m), "fetch", "long")
    assert r.code == 0, r.err
    assert Path(r.out.strip()).name == name


# -- 12. hints fit their cause -------------------------------------------------------------------

def test_hints_fit_their_cause(server, manifest, cli):
    from test_extract import serve, tarball
    from test_pickle_scan import Planted

    m = str(serve(server, manifest, "dot", tarball([({"name": "."}, b"x")])))
    r = cli("--manifest", m, "fetch", "dot", "--extract")
    assert r.code == 9 and "free some space" not in r.err and "folder itself" in r.err
    evil = pickle.dumps(Planted())
    url = server.add("/h/evil.pkl", evil)
    r = cli("--manifest", str(manifest({"name": "evil", "url": url,
                                        "md5": hashlib.md5(evil).hexdigest()})), "fetch", "evil")
    assert r.code == 9 and "allow-http" not in r.err and "unsafe" in r.err
    r = cli("--manifest", str(manifest({"name": "héllo", "url": url, "md5": None})), "list")
    assert r.code == 7 and "ASCII" in r.err
