"""Issue 22 (in part): filters that suggest, names that may be URLs, every name of a batch
attempted, warnings that -q keeps, and clear errors where 'unexpected' used to be."""

from __future__ import annotations


from conftest import entry


def test_a_filter_typo_suggests_like_a_name(blob, manifest, cli):
    m = manifest(entry(blob("ft_model", 1000), kind="model"))
    r = cli("--no-default-manifests", "--manifest", str(m), "list", "--kind", "modle")
    assert r.code == 2 and "no kind 'modle'; did you mean: model" in r.err
    r = cli("--no-default-manifests", "--manifest", str(m), "fetch", "--kind", "model",
            "--zoo", "nozoo")
    assert r.code == 2 and "no zoo 'nozoo'" in r.err


def test_a_url_is_a_name(blob, manifest, cli):
    b = blob("by_url", 1000)
    legacy = "https://s3.amazonaws.com/densepose/by_url.bin"
    m = manifest(entry(b, legacy_urls=[legacy]))
    for spelling in (b.url, legacy, legacy.replace("s3.amazonaws.com", "S3.AMAZONAWS.COM")):
        r = cli("--no-default-manifests", "--manifest", str(m), "info", spelling, "--json")
        assert r.code == 0 and r.items[0]["name"] == "by_url", spelling


def test_unknown_names_are_reported_together_before_any_download(blob, manifest, cli,
                                                                 server):
    a, b = blob("bt_a", 1000), blob("bt_b", 1000)
    m = manifest(entry(a), entry(b))
    r = cli("--no-default-manifests", "--manifest", str(m), "fetch", "bt_a", "nosuch", "bt_b",
            "bt_x*", "--json")
    assert r.code == 3, r.err
    assert r.items == [] and server.requests == []                 # nothing downloaded
    errors = {e["name"]: e for e in r.json["errors"]}
    assert set(errors) == {"nosuch", "bt_x*"} and errors["nosuch"]["exit_code"] == 3
    assert "no artifact matches this pattern" in errors["bt_x*"]["hint"]
    r = cli("--no-default-manifests", "--manifest", str(m), "fetch", "bt_a", "nosuhc", "bt_b")
    assert r.code == 3 and r.out == "" and server.requests == []
    assert "unknown artifact: 'nosuhc'; nothing was downloaded" in r.err


def test_quiet_keeps_security_warnings(blob, manifest, cli):
    b = blob("quiet_pin", 1000)
    m = manifest(entry(b, md5=False, size=False))
    r = cli("--manifest", str(m), "-q", "fetch", "quiet_pin")
    assert r.code == 0 and "warning:" in r.err and "pinned md5" in r.err


def test_unwritable_outputs_are_clear_errors(blob, manifest, cli, tmp_path):
    b = blob("out_err", 1000)
    m = manifest(entry(b, md5=False, size=False))
    assert cli("--manifest", str(m), "fetch", "out_err").code == 0
    r = cli("--manifest", str(m), "pin", "--manifest-out", str(tmp_path / "no" / "dir" / "x.yaml"))
    assert r.code == 8 and "unexpected" not in r.err and "does not exist" in r.err
    r = cli("--manifest", str(m), "bundle", "out_err", "-o", str(tmp_path / "no" / "b.tar"))
    assert r.code == 8 and "unexpected" not in r.err and ".tmp" not in r.err
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = cli("--manifest", str(m), "--cache-dir", str(blocker), "fetch", "out_err")
    assert r.code == 8 and "not a folder" in r.err and "free some space" not in r.err
    assert cli("--manifest", str(m), "cache", "rm", "out_err", "-y").code == 0
    r = cli("--manifest", str(m), "cache", "rm", "out_err", "-y")
    assert r.code == 6 and "not in the cache" in r.err


def test_global_options_after_the_command(blob, manifest, cli, server, monkeypatch):
    b = blob("after", 2000)
    m = manifest(entry(b))
    r = cli("fetch", "after", "--manifest", str(m), "--no-default-manifests", "-q")
    assert r.code == 0 and r.err == "", r.err
    r = cli("info", "after", "--manifest", str(m), "-v")
    assert r.code == 0
    r = cli("--manifest", str(m), "cache", "rm", "after", "-y", "-q")
    assert r.code == 0
    r = cli("fetch", "after", "--manifest", str(m), "--offline")
    assert r.code == 6 and "offline" in r.err
    mirror_host = b.url.split("/")[2].replace(":", "_")
    server.add(f"/mirror/{mirror_host}{b.path}", b.data)
    r = cli("fetch", "after", "--manifest", str(m), "--mirror", server.url("/mirror"), "--json")
    assert r.code == 0 and "/mirror/" in r.items[0]["url"]
    for command in (("fetch",), ("config",), ("cache", "ls"), ("list",)):
        h = cli(*command, "--help").out
        # named once, in a note pointing at `densezoo --help`, not a table per command
        assert "--mirror" in h and "--offline" in h and "densezoo --help" in h, command
        assert "  --cache-dir DIR" not in h, command
