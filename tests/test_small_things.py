"""Issue 25 (1-3): manifest messages that say what to do, advisories that reach the user,
and query strings redacted only where they hold secrets."""

from __future__ import annotations


from conftest import entry


def test_an_md5_yaml_read_as_a_number_says_quote_it(manifest, cli):
    m = manifest(raw="schema: 1\nzoo: t\nartifacts:\n  - name: z\n    url: https://h.example/z"
                     ".bin\n    md5: 00000000000000000000000000000000\n")
    r = cli("--no-default-manifests", "--manifest", str(m), "list")
    assert r.code == 7 and "YAML read the digits as a number" in r.err and "quote it" in r.err


def test_a_misspelled_required_key_is_named(manifest, cli):
    m = manifest(raw="schema: 1\nzoo: t\nartifacts:\n  - name: z\n    url: https://h.example/z"
                     ".bin\n    md5sum: null\n")
    r = cli("--no-default-manifests", "--manifest", str(m), "list")
    assert r.code == 7 and "missing required key 'md5'" in r.err and "'md5sum'" in r.err


def test_an_advisory_reaches_whoever_gets_the_file(blob, manifest, cli):
    b = blob("zeros_mesh", 5000)
    m = manifest(entry(b, advisory="a placeholder: all-zero vertices upstream"))
    r = cli("--no-default-manifests", "--manifest", str(m), "fetch", "zeros_mesh")
    assert r.code == 0 and "zeros_mesh: a placeholder: all-zero vertices upstream" in r.err
    again = cli("--no-default-manifests", "--manifest", str(m), "fetch", "zeros_mesh")
    assert "a placeholder" in again.err                       # cached: still said
    row = cli("--no-default-manifests", "--manifest", str(m), "list").out.rstrip("\n")
    assert row.split("\t")[-1] == "advisory"                  # piped: TSV's last column
    info = cli("--no-default-manifests", "--manifest", str(m), "info", "zeros_mesh",
               "--json").items[0]
    assert info["advisory"] == "a placeholder: all-zero vertices upstream"


def test_the_shipped_placeholder_meshes_carry_an_advisory(cli):
    rows = cli("list", "--json").items
    flagged = [r["name"] for r in rows if r.get("advisory")]
    assert len(flagged) == 13 and all("placeholder" in r["advisory"] for r in rows
                                      if r.get("advisory"))


def test_a_harmless_query_string_is_kept_and_a_secret_one_never_served(server, blob, manifest,
                                                                        cli, tmp_path):
    b = blob("queried", 5000)
    url = server.add(b.path + "?v=2", b.data)
    m = manifest({"name": "queried", "url": url, "md5": b.md5})
    info = cli("--no-default-manifests", "--manifest", str(m), "info", "queried",
               "--json").items[0]
    assert info["url"] == url                                  # not ?v=***
    out = tmp_path / "mirror"
    r = cli("--no-default-manifests", "--manifest", str(m), "mirror", "build", str(out),
            "--all")
    assert r.code == 0, r.err
    assert f'"url": "{url}"' in (out / "densezoo-mirror.yaml").read_text()
    secret = manifest({"name": "secret", "url": b.url + "?v=2&token=s3cr3t", "md5": b.md5})
    r = cli("--no-default-manifests", "--manifest", str(secret), "mirror", "build",
            str(tmp_path / "m2"), "--all")
    assert r.code == 9 and "--base-url" in r.err and "s3cr3t" not in r.err
    text = (tmp_path / "m2" / "densezoo-mirror.yaml").read_text()
    assert "token" not in text and "secret" not in text


def test_a_bundled_entry_with_a_redacted_url_is_never_fetched_from_it(server, blob, manifest,
                                                                      cli, tmp_path):
    """Issue 25.3: the bundle's manifest keeps a credential URL redacted; loaded
    automatically after import, that entry must not become a URL densezoo fetches."""
    b = blob("tokened", 5000)
    url = server.add(b.path + "?token=s3cr3t", b.data)
    m = manifest({"name": "tokened", "url": url, "md5": b.md5})
    assert cli("--manifest", str(m), "fetch", "tokened").code == 0
    tar = tmp_path / "t.tar"
    assert cli("--manifest", str(m), "bundle", "tokened", "-o", str(tar)).code == 0
    air = str(tmp_path / "air")
    assert cli("--cache-dir", air, "import", str(tar)).code == 0
    assert cli("--cache-dir", air, "info", "tokened").code == 3       # not a fetchable entry
    v = cli("--cache-dir", air, "verify")
    assert v.code == 0 and v.out.split() == ["ok", "tokened", "(verified)"]   # still checked
