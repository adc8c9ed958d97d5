"""Issue 18: "verified" means verified -- after a quarantine, for your own manifests and
imports, for read-only commands, and for a bundle with one bad file.  Each test drives the
CLI as a user would, against the loopback server."""

import json
import shutil
import tarfile
from pathlib import Path

from conftest import entry


def _spoil(path: Path) -> None:
    """Same size, other bytes: what a flipped disk block or a bad copy looks like."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _paths(cli, m, *names) -> list[Path]:
    r = cli("--manifest", str(m), "fetch", *names)
    assert r.code == 0, r.err
    return [Path(p) for p in r.out.split()]


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under the store with its bytes and mtime: what 'wrote nothing' means."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


# -- 2: verify remembers what it quarantined ---------------------------------------------------

def test_verify_keeps_failing_after_it_quarantined_until_fetch_or_cache_rm(
        cli, blob, manifest):
    a, b, c = blob("qa", 40_000), blob("qb", 50_000), blob("qc", 30_000)
    m = manifest(entry(a), entry(b), entry(c))
    pa, pb, _ = _paths(cli, m, "qa", "qb", "qc")
    _spoil(pa)
    _spoil(pb)
    first = cli("--manifest", str(m), "verify")
    assert first.code == 4 and first.out.count("corrupt") == 2
    assert not pa.exists() and not pb.exists()

    for extra in ((), ("--quick",)):          # the CI retry: still red, and says why
        again = cli("--manifest", str(m), "verify", *extra)
        assert again.code == 4, (extra, again.out, again.err)
        lines = {ln.split()[1]: ln for ln in again.out.splitlines()}
        assert lines["qc"].startswith("ok")
        for name in ("qa", "qb"):
            assert lines[name].startswith("missing") and "quarantined at" in lines[name]
            assert "md5 expected" in lines[name] and "moved to" in lines[name]
    report = cli("--manifest", str(m), "verify", "--json").items
    states = {e["name"]: e for e in report}
    assert states["qa"]["state"] == "missing"
    assert states["qa"]["quarantined"]["status"] == "corrupt"
    assert Path(states["qa"]["quarantined"]["moved_to"]).read_bytes() != a.data

    assert _paths(cli, m, "qa")[0].read_bytes() == a.data          # a good copy clears it
    r = cli("--manifest", str(m), "verify")
    assert r.code == 4
    assert [ln.split()[:2] for ln in r.out.splitlines() if ln.startswith("missing")] == \
        [["missing", "qb"]]
    ls = {row["name"]: row["state"] for row in
          cli("--manifest", str(m), "cache", "ls", "--json").items}
    assert ls == {"qa": "verified", "qb": "quarantined", "qc": "verified"}
    assert cli("--manifest", str(m), "cache", "rm", "qb", "-y").code == 0   # explicit forget
    done = cli("--manifest", str(m), "verify")
    assert done.code == 0 and "missing" not in done.out, done.out


def test_a_fetch_that_quarantined_and_then_failed_leaves_verify_red(cli, blob, manifest,
                                                                    server):
    a = blob("qf", 40_000)
    m = manifest(entry(a))
    (pa,) = _paths(cli, m, "qf")
    _spoil(pa)
    server.fault(a.path, "status", -1, code=404)
    assert cli("--manifest", str(m), "fetch", "qf").code == 5
    r = cli("--manifest", str(m), "verify", "--quick")
    assert r.code == 4 and r.out.startswith("missing   qf") and "quarantined" in r.out


# -- 3: your own manifests and imports stay known ----------------------------------------------

def test_a_file_from_your_own_manifest_is_checked_listed_and_kept_without_it(
        cli, blob, manifest, cache_dir):
    a = blob("own", 60_000)
    mine = manifest(entry(a))
    (pa,) = _paths(cli, mine, "own")
    rows = cli("cache", "ls", "--json").items               # no --manifest now
    assert [(r["name"], r["state"], r["loaded"], Path(r["source"]).name) for r in rows] == \
        [("own", "verified", False, mine.name)]
    assert "own*" in cli("cache", "ls").out
    ok = cli("verify")
    assert ok.code == 0 and ok.out.split() == ["ok", "own", "(verified)"], ok.out
    assert cli("cache", "prune", "-y").code == 0 and pa.read_bytes() == a.data
    _spoil(pa)
    bad = cli("verify")
    assert bad.code == 4 and bad.out.startswith("corrupt   own"), bad.out
    assert not pa.exists()
    assert cli("verify").code == 4                                     # and it stays red


def test_a_forged_record_cannot_vouch_for_another_place(cli, blob, manifest, cache_dir):
    """A record is believed only for the file it sits beside (no moving trust around)."""
    a = blob("here", 20_000)
    (pa,) = _paths(cli, manifest(entry(a)), "here")
    meta = pa.with_name(pa.name + ".dzmeta")
    record = json.loads(meta.read_text())
    record["entry"]["url"] = record["entry"]["url"].replace("here.bin", "elsewhere.bin")
    meta.write_text(json.dumps(record))
    # this user's own trust record still says what the file is: the forgery changes nothing
    r = cli("-v", "verify")
    assert r.out.split() == ["ok", "here", "(verified)"], (r.out, r.err)
    # without it, the forged .dzmeta vouches for no place: a stranger, not checked
    shutil.rmtree(cache_dir / "trust")
    meta.write_text(json.dumps(record))     # (the verify above wrote the true entry back)
    r = cli("-v", "verify")
    assert r.out.strip() == "" and "1 file(s) in the store that no loaded manifest names" \
        in r.err, (r.out, r.err)
    assert [x["state"] for x in cli("cache", "ls", "--json").items] == ["unknown"]


def test_imported_manifests_load_automatically(cli, blob, manifest, tmp_path, server):
    a = blob("imp", 70_000)
    m = manifest(entry(a))
    _paths(cli, m, "imp")
    tar = tmp_path / "mine.tar"
    assert cli("--manifest", str(m), "bundle", "imp", "-o", str(tar)).code == 0
    air = str(tmp_path / "air")
    assert cli("--cache-dir", air, "import", str(tar)).code == 0
    server.reset()
    r = cli("--offline", "--cache-dir", air, "path", "imp")            # no --manifest
    assert r.code == 0 and Path(r.out.strip()).read_bytes() == a.data
    assert cli("--cache-dir", air, "verify").out.split() == ["ok", "imp", "(verified)"]
    rows = cli("--cache-dir", air, "cache", "ls", "--json").items
    assert rows[0]["loaded"] and rows[0]["source"].endswith("imported/mine.yaml")
    assert cli("--cache-dir", air, "cache", "prune", "-y").code == 0
    assert cli("--offline", "--cache-dir", air, "path", "imp").code == 0
    assert server.requests == []


# -- 6: read-only commands are read-only -------------------------------------------------------

def test_read_only_commands_never_write_pins_or_metadata(cli, blob, manifest, cache_dir):
    a, b = blob("ro_pinless", 30_000), blob("ro_checked", 30_000)
    m = manifest(entry(a, md5=False, size=False), entry(b))
    pa, pb = _paths(cli, m, "ro_pinless", "ro_checked")
    for pin in (cache_dir / "trust").rglob("*.json"):
        pin.unlink()                       # a cached copy whose pin went missing
    pb.touch()                             # the stat memo no longer matches
    before = _tree(cache_dir)
    r = cli("--manifest", str(m), "path", "ro_pinless")
    assert r.code == 0 and "nothing vouches" in r.err and "densezoo fetch ro_pinless" in r.err
    for args in (("path", "ro_checked"), ("info", "ro_pinless"), ("info", "ro_checked"),
                 ("list",), ("verify", "--quick", "ro_checked"), ("cache", "ls"),
                 ("cache", "du")):
        r = cli("--manifest", str(m), *args)
        assert r.code == 0, (args, r.err)
    assert _tree(cache_dir) == before
    assert not list((cache_dir / "trust").rglob("*.json"))


# -- 9: a bundle with one bad file -------------------------------------------------------------

def test_import_tries_every_entry_and_reports_each(cli, blob, manifest, tmp_path):
    one, two, three = blob("b_one", 30_000), blob("b_two", 40_000), blob("b_three", 50_000)
    m = manifest(entry(one), entry(two), entry(three))
    _paths(cli, m, "b_one", "b_two", "b_three")
    tar = tmp_path / "three.tar"
    assert cli("--manifest", str(m), "bundle", "b_one", "b_two", "b_three",
               "-o", str(tar)).code == 0
    data = bytearray(tar.read_bytes())
    i = data.find(two.data[:64])
    data[i + 100] ^= 0xFF                  # the middle one is damaged
    tar.write_bytes(bytes(data))

    air = tmp_path / "air"
    r = cli("--cache-dir", str(air), "import", str(tar))
    assert r.code == 4, r.err
    assert [ln.split()[:2] for ln in r.out.splitlines()] == [
        ["imported", "b_one"], ["failed", "b_two"], ["imported", "b_three"]]
    assert "md5 mismatch" in r.err and "2 of 3 in the store" in r.err
    published = {p.name: p.read_bytes() for p in (air / "files").rglob("*.bin")}
    assert published == {"b_one.bin": one.data, "b_three.bin": three.data}

    air2 = tmp_path / "air2"
    j = cli("--cache-dir", str(air2), "import", str(tar), "--json").json
    assert [(x["name"], x["ok"], x["state"]) for x in j["items"]] == [
        ("b_one", True, "imported"), ("b_two", False, "failed"), ("b_three", True, "imported")]
    (err,) = j["errors"]
    assert err["name"] == "b_two" and err["exit_code"] == 4 and "md5 mismatch" in err["message"]


def test_bundle_manifest_member_has_a_size_cap(cli, tmp_path):
    tar = tmp_path / "huge.tar"
    with tarfile.open(tar, "w") as t:
        info = tarfile.TarInfo("densezoo-bundle.yaml")
        info.size = 17 * 2**20
        t.addfile(info, _Zeros(info.size))
    r = cli("--cache-dir", str(tmp_path / "air"), "import", str(tar))
    assert r.code == 7 and "at most 16 MiB" in r.err, r.err


class _Zeros:
    def __init__(self, n: int) -> None:
        self.left = n

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"#" * n


# -- 4: published beats pinned -----------------------------------------------------------------

def test_pin_never_overwrites_a_published_checksum_and_reports_the_conflict(
        cli, blob, manifest, tmp_path):
    a = blob("pc", 30_000)
    then = manifest(entry(a, md5=False, size=False))
    _paths(cli, then, "pc")                                # pinned: a.md5, size 30000
    published = "ab" * 16                                  # a manifest later publishes another
    now = manifest(raw=f"schema: 1\nzoo: test\nartifacts:\n  - name: pc\n    url: {a.url}\n"
                       f"    md5: {published}  # published\n")
    out = tmp_path / "out.yaml"
    r = cli("--manifest", str(now), "pin", "--manifest-out", str(out))
    assert r.code == 4, r.err
    assert f"conflict: pc md5: published {published}, pinned {a.md5}" in r.err
    assert "wrote 0 pins" in r.err and "1 conflicting pin left as published" in r.err
    new = out.read_text()
    assert f"md5: {published}  # published" in new and a.md5 not in new
    assert "size:" not in new and "sha256:" not in new        # nothing of a conflicting pin
    info = cli("--manifest", str(now), "info", "pc", "--json").items[0]
    assert info["pin_conflicts"] == [f"md5: published {published}, pinned {a.md5}"]
    assert "CONFLICT" in cli("--manifest", str(now), "info", "pc").out
    # where the manifest leaves a field empty, the pin fills it; published stays as it was
    partly = manifest(raw=f"schema: 1\nzoo: test\nartifacts:\n  - name: pc\n    url: {a.url}\n"
                          f"    md5: {a.md5}\n")
    r = cli("--manifest", str(partly), "pin", "--manifest-out", str(out), "--json")
    assert r.code == 0 and r.items[0]["written"] == ["sha256", "size"]
    assert f"size: {len(a.data)}" in out.read_text()


# -- 8: each URL's cause on its own line -------------------------------------------------------

def test_every_failed_url_gets_its_own_line_and_json_record(cli, blob, manifest, server):
    good, wrong = blob("wc_good", 20_000), blob("wc_wrong", 20_000)
    server.fault(good.path, "status", -1, code=404)
    m = manifest(entry(good, mirrors=[wrong.url]))
    r = cli("--manifest", str(m), "fetch", "wc_good")
    assert r.code == 4, r.err
    lines = r.err.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("error: "))
    assert lines[first].startswith("error: could not fetch wc_good: all 2 URLs failed "
                                   "(the worst cause: checksum)")
    assert lines[first + 1].startswith(f"  {good.url} -> [http]") and "404" in lines[first + 1]
    assert lines[first + 2].startswith(f"  {wrong.url} -> [checksum] md5 mismatch")
    j = cli("--manifest", str(m), "fetch", "wc_good", "--json").json["errors"]
    assert [(c["url"], c["kind"]) for c in j[0]["causes"]] == [(good.url, "http"),
                                                               (wrong.url, "checksum")]
