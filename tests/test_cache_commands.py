"""Operating densezoo: cache ls/du/rm/prune."""

import os
import subprocess
import sys
from pathlib import Path


from conftest import entry


def fetched(cli, m, *names):
    r = cli("--manifest", str(m), "fetch", *names)
    assert r.code == 0, r.err
    return r.out.split()


# -- cache ---------------------------------------------------------------------------------

def test_cache_ls_du_rm_keep_pins(cli, blob, manifest, cache_dir):
    a, b = blob("ca", 50_000), blob("cb", 70_000)
    m = manifest(entry(a), entry(b, md5=False, size=False))
    fetched(cli, m, "ca", "cb")
    rows = cli("--manifest", str(m), "cache", "ls", "--json").items
    assert {(r["name"], r["size"], r["state"]) for r in rows} == {
        ("ca", 50_000, "verified"), ("cb", 70_000, "origin-pinned")}
    du = cli("--manifest", str(m), "cache", "du", "--json").json["summary"]
    assert du["files"] == 2 and du["file_bytes"] == 120_000
    r = cli("--manifest", str(m), "cache", "rm", "cb", "--dry-run")
    assert r.code == 0 and "would remove" in r.out and cli("--manifest", str(m), "path",
                                                          "cb").code == 0
    assert cli("--manifest", str(m), "cache", "rm", "cb").code == 2     # no terminal, no -y
    assert cli("--manifest", str(m), "cache", "rm", "cb", "-y").code == 0
    assert cli("--manifest", str(m), "path", "cb").code == 6
    assert cli("--manifest", str(m), "info", "cb", "--json").items[0]["pin"]["md5"] == b.md5


def test_cache_prune(cli, blob, manifest, cache_dir):
    """prune removes what nobody vouches for; a file fetched with a manifest that is not
    loaded now keeps its recorded entry and stays, unless --orphans."""
    a, gone = blob("keep"), blob("forgotten")
    m_all = manifest(entry(a), entry(gone))
    fetched(cli, m_all, "keep", "forgotten")
    m_keep = manifest(entry(a))
    files = cache_dir / "files"
    keep_path = Path(cli("--manifest", str(m_keep), "path", "keep").out.strip())
    stranger = keep_path.with_name("dropped-here-by-hand.bin")
    stranger.write_bytes(b"z" * 10)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = keep_path.with_name(f"keep.bin.dzpart-{dead.pid}@{os.uname().nodename}.abcd1234")
    stale.write_bytes(b"x" * 10)
    (cache_dir / "bad" / "x").mkdir(parents=True)
    (cache_dir / "bad" / "x" / "old.bin").write_bytes(b"y")
    only_keep = ("--no-default-manifests", "--manifest", str(m_keep))
    r = cli(*only_keep, "cache", "prune", "--json", "--dry-run")
    reasons = {Path(i["path"]).name: i["reason"] for i in r.items}
    assert reasons == {
        "dropped-here-by-hand.bin": "no loaded manifest names this file and no record "
                                    "vouches for it",
        stale.name: "stale partial download",
        "bad": "corrupt or unsafe copies kept aside"}
    assert cli(*only_keep, "cache", "prune", "-y").code == 0
    assert keep_path.read_bytes() == a.data and not stale.exists()
    assert sorted(p.name for p in files.rglob("*.bin")) == ["forgotten.bin", "keep.bin"]
    r = cli(*only_keep, "cache", "prune", "--orphans", "--json", "--dry-run")
    assert [Path(i["path"]).name for i in r.items] == ["forgotten.bin"]
    assert cli(*only_keep, "cache", "prune", "--orphans", "-y").code == 0
    assert [p.name for p in files.rglob("*.bin")] == ["keep.bin"]
