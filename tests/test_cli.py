"""The CLI as a user runs it: results on stdout, one-line errors on stderr, exit codes."""

import subprocess
import sys


from conftest import entry


def test_list_shows_every_v1_artifact_with_metrics(cli):
    r = cli("list", "--zoo", "densepose-v1")
    assert r.code == 0
    row = next(line.split("\t") for line in r.out.splitlines() if line.startswith("ResNet50_FPN_s1x\t"))
    assert row[4:7] == ["none", "47.48", "AP (GPS)"] and "sidecar" in r.out
    assert "29 artifacts" in r.err          # chatter goes to stderr, the table to stdout


def test_list_json_and_filters(cli):
    r = cli("list", "--zoo", "densepose-v1", "--json")
    rows = r.items
    assert len(rows) == 29 and {"name", "strength", "cached", "metrics"} <= set(rows[0])
    models = cli("list", "--zoo", "densepose-v1", "--kind", "model", "--json").items
    assert len(models) == 7
    posetrack = cli("list", "--zoo", "densepose-v1", "PoseTrack", "--json").items
    assert {x["kind"] for x in posetrack} == {"annotations"} and len(posetrack) == 5
    x101 = cli("list", "x-101-32x8d-fpn", "--kind", "proposals", "--json").items
    assert len(x101) == 3


def test_info_shows_urls_checksum_state_metrics(cli):
    r = cli("info", "ResNet50_FPN_s1x")
    assert r.code == 0
    assert "https://dl.fbaipublicfiles.com/densepose/DensePose_ResNet50_FPN_s1x.pkl" in r.out
    assert "s3.amazonaws.com" in r.out and "not tried" in r.out
    assert "checksum      none" in r.out and "AP 47.5" in r.out
    d = cli("info", "DensePoseKeyPointsMask_ResNet50_FPN_s1x-e2e", "--json").items[0]
    assert d["md5_url"].endswith(".pkl.md5sum") and d["checksum"] == "sidecar"
    assert d["strength"] is None                    # nothing cached: no bytes to vouch for
    assert d["metrics"]["keypoint"]["AP"] == 0.6159


def test_unknown_artifact_exit_3_with_suggestion(cli):
    r = cli("info", "resnet50_fpn_s1")
    assert r.code == 3 and r.out == ""
    assert r.err.count("\n") == 1 and "did you mean: ResNet50_FPN_s1x" in r.err


def test_invalid_manifest_exit_7(cli, manifest):
    m = manifest(raw="artifacts:\n  - {name: a, url: 'https://h/x', md5: 'nothex'}\n")
    r = cli("--manifest", str(m), "list")
    assert r.code == 7 and str(m) in r.err and "entry 'a'" in r.err and r.err.count("\n") == 1


def test_usage_error_exit_2(cli):
    assert cli("fetch").code == 2
    assert cli("verify", "--quick", "--full").code == 2
    assert cli("--no-such-option").code == 2


def test_fetch_prints_only_the_path_on_stdout(cli, blob, manifest):
    b = blob("one")
    m = manifest(entry(b))
    r = cli("--manifest", str(m), "fetch", "one")
    assert r.code == 0
    path = r.out.strip()
    assert r.out.count("\n") == 1 and open(path, "rb").read() == b.data
    assert "downloaded one" in r.err
    assert cli("--manifest", str(m), "path", "one").out.strip() == path
    assert cli("-q", "--manifest", str(m), "fetch", "one").err == ""


def test_fetch_json(cli, blob, manifest):
    b = blob("js")
    r = cli("--manifest", str(manifest(entry(b))), "fetch", "js", "--json")
    (row,) = r.items
    assert row["ok"] and row["md5"] == b.md5 and row["state"] == "downloaded"


def test_fetch_several_names_one_failure_does_not_lose_the_others(cli, blob, manifest, server):
    a, c = blob("a1"), blob("c1")
    m = manifest(entry(a), {"name": "b1", "url": server.url("/missing.bin"), "md5": None},
                 entry(c))
    r = cli("--manifest", str(m), "fetch", "a1", "b1", "c1")
    assert r.code == 5
    assert len(r.out.split()) == 2 and "could not fetch b1" in r.err


def test_checksum_mismatch_exit_4(cli, blob, manifest):
    b = blob("mm")
    m = manifest({"name": "mm", "url": b.url, "md5": "f" * 32})
    r = cli("--manifest", str(m), "fetch", "mm")
    assert r.code == 4 and "md5 mismatch" in r.err and r.out == ""


def test_strict_exit_9(cli, blob, manifest):
    b = blob("st")
    r = cli("--strict", "--manifest", str(manifest(entry(b, md5=False))), "fetch", "st")
    assert r.code == 9 and "no published checksum" in r.err


def test_path_not_cached_exit_6(cli):
    r = cli("path", "ResNet50_FPN_s1x")
    assert r.code == 6 and "densezoo fetch ResNet50_FPN_s1x" in r.err


def test_offline_fetch_exit_6(cli, blob, manifest, server):
    b = blob("offl")
    r = cli("--offline", "--manifest", str(manifest(entry(b))), "fetch", "offl")
    assert r.code == 6 and server.hits(b.path) == []


def test_verify_reports_ok_corrupt_missing_unpinned(cli, blob, manifest, server, cache_dir):
    good, bad, gone, loose = blob("vgood"), blob("vbad"), blob("vgone"), blob("vloose")
    m = str(manifest(entry(good), entry(bad), entry(gone), entry(loose, md5=False, size=False)))
    assert cli("--manifest", m, "fetch", "vgood", "vbad", "vloose").code == 0
    n_requests = len(server.requests)

    r = cli("--manifest", m, "verify")
    assert r.code == 0 and "ok        vgood" in r.out and "vgone" not in r.out

    bad_path = cli("--manifest", m, "path", "vbad").out.strip()
    with open(bad_path, "r+b") as f:
        f.write(b"XX")
    r = cli("--manifest", m, "verify", "--json")
    status = {e["name"]: e["state"] for e in r.items}
    assert r.code == 4 and status == {"vgood": "ok", "vbad": "corrupt", "vloose": "ok"}
    moved = next(e["moved_to"] for e in r.items if e["name"] == "vbad")
    assert open(moved, "rb").read()[:2] == b"XX"           # kept as evidence, out of the way
    assert cli("--manifest", m, "path", "vbad").code == 6  # never handed out

    r = cli("--manifest", m, "verify", "vgood", "vgone")
    assert r.code == 6 and "missing   vgone" in r.out

    for pin in (cache_dir / "trust").rglob("vloose.bin.json"):
        pin.unlink()
    r = cli("--manifest", m, "verify", "vloose")
    assert r.code == 1 and "unpinned" in r.out
    assert len(server.requests) == n_requests                # verify never touched the network


def test_verify_quick_trusts_only_unchanged_files(cli, blob, manifest):
    b = blob("q")
    m = str(manifest(entry(b)))
    path = cli("--manifest", m, "fetch", "q").out.strip()
    r = cli("--manifest", m, "verify", "--quick", "--json").json
    assert r["items"][0]["method"] == "quick" and r["ok"]
    with open(path, "r+b") as f:          # same size, new bytes: the memo must not hide it
        f.write(b"\0")
    r = cli("--manifest", m, "verify", "--quick", "--json")
    assert r.code == 4 and r.items[0]["method"] == "full"


def test_store_error_exit_8(cli, blob, manifest, cache_dir):
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    cache_dir.write_text("a file where the cache directory should be")
    b = blob("st8")
    r = cli("--manifest", str(manifest(entry(b))), "fetch", "st8")
    assert r.code == 8 and str(cache_dir) in r.err and r.err.count("\n") == 1


def test_pin_writes_back_into_a_manifest_keeping_comments_and_order(cli, blob, manifest, tmp_path):
    a, b = blob("pa"), blob("pb")
    text = ("# my zoo\nschema: 1\nzoo: mine\nartifacts:\n"
            f"  # first one\n  - name: pa\n    url: {a.url}\n    md5: null   # unpublished\n"
            "    kind: model\n"
            f"  - {{name: pb, url: '{b.url}', md5: null}}\n")
    m = manifest(raw=text)
    assert cli("--manifest", str(m), "fetch", "pa", "pb").code == 0
    out = tmp_path / "pinned.yaml"
    r = cli("--manifest", str(m), "pin", "--manifest-out", str(out))
    assert r.code == 0, r.err
    new = out.read_text()
    assert new.startswith("# my zoo\n") and "# first one" in new and "# unpublished" in new
    assert f"md5: {a.md5}   # unpublished\n    sha256: {a.sha256}\n    size: {len(a.data)}\n" \
           "    kind: model" in new
    assert f"md5: {b.md5}, sha256: {b.sha256}, size: {len(b.data)}}}" in new
    # the written manifest is valid and now publishes what was pinned
    info = cli("--no-default-manifests", "--manifest", str(out), "info", "pa", "--json").items[0]
    assert info["md5"] == a.md5 and info["strength"] == "verified"


def test_pin_lists_pins(cli, blob, manifest):
    a = blob("pl")
    m = str(manifest(entry(a, md5=False, size=False)))
    cli("--manifest", m, "fetch", "pl")
    (row,) = cli("--manifest", m, "pin", "--json").items
    assert row["md5"] == a.md5 and row["size"] == len(a.data)


def test_debug_env_shows_traceback(cli, monkeypatch):
    monkeypatch.setenv("DENSEZOO_DEBUG", "1")
    r = cli("info", "nope-nope")
    assert r.code == 3 and "Traceback" in r.err


def test_version_and_help_document_exit_codes(cli):
    assert cli("--version").out.startswith("densezoo, version ")
    h = cli("--help").out
    assert "Exit codes:" in h and "checksum mismatch" in h and "DENSEZOO_MIRROR" in h


def test_console_script_end_to_end(blob, manifest, tmp_path):
    """The installed entry point, in a real process, as a shell user runs it."""
    b = blob("proc")
    m = manifest(entry(b))
    env = {"DENSEZOO_CACHE_DIR": str(tmp_path / "proc-cache"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "densezoo", "--manifest", str(m), "fetch", "proc"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert open(r.stdout.strip(), "rb").read() == b.data
    r = subprocess.run([sys.executable, "-m", "densezoo", "info", "no-such-thing"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 3 and "Traceback" not in r.stderr
