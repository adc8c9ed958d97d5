"""The compiled catalog: manifests pre-parsed once per content, never trusted blindly."""

from __future__ import annotations

import json

import pytest

from densezoo import compiled as manifest_mod
from densezoo.errors import ManifestError


def compiled_files(cache_dir):
    return sorted((cache_dir / "catalog").glob("*.json"))


def test_built_once_then_used_rebuilt_when_a_manifest_changes(cli, blob, manifest, cache_dir,
                                                              monkeypatch):
    b = blob("cc")
    m = manifest({"name": "cc", "url": b.url, "md5": b.md5})
    assert cli("--manifest", str(m), "path", "cc").code == 6
    files = compiled_files(cache_dir)
    assert len(files) == 4                         # the three shipped manifests and this one

    def no_yaml(*a, **k):
        raise AssertionError("the YAML was parsed again")

    with monkeypatch.context() as mp:
        mp.setattr(manifest_mod, "safe_load", no_yaml)
        r = cli("--manifest", str(m), "info", "cc", "--json")
        assert r.code == 0 and r.items[0]["md5"] == b.md5
        m.write_text(m.read_text().replace(b.md5, "a" * 32))   # the manifest changes
        r = cli("--manifest", str(m), "info", "cc")             # must be re-read, not reused
        assert r.code == 1 and "the YAML was parsed again" in r.err
    r = cli("--manifest", str(m), "info", "cc", "--json")
    assert r.code == 0, r.err
    assert r.items[0]["md5"] == "a" * 32 and len(compiled_files(cache_dir)) == 5


@pytest.mark.parametrize("damage", ["garbage", "wrong-key", "invalid-entry"])
def test_a_corrupt_or_foreign_compiled_file_is_ignored(damage, cli, blob, manifest, cache_dir):
    b = blob("cf")
    m = manifest({"name": "cf", "url": b.url, "md5": b.md5})
    assert cli("--no-default-manifests", "--manifest", str(m), "list").code == 0
    (path,) = compiled_files(cache_dir)
    doc = json.loads(path.read_text())
    if damage == "garbage":
        path.write_bytes(b"\x00not json")
    elif damage == "wrong-key":
        doc["key"] = "0" * 64
        doc["artifacts"][0]["md5"] = "f" * 32
        path.write_text(json.dumps(doc))
    else:
        doc["artifacts"][0]["size"] = "1e5"                         # not what densezoo wrote
        path.write_text(json.dumps(doc))
    r = cli("--no-default-manifests", "--manifest", str(m), "info", "cf", "--json")
    assert r.code == 0 and r.items[0]["md5"] == b.md5
    assert json.loads(path.read_text())["artifacts"][0]["md5"] == b.md5   # rebuilt


def test_a_read_only_cache_still_loads(blob, manifest, tmp_path):
    from densezoo.catalog import Catalog

    b = blob("ro-cat")
    m = manifest({"name": "ro-cat", "url": b.url, "md5": None})
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")                                    # mkdir under it fails
    cat = Catalog.load([m], defaults=False, compiled=blocked / "catalog")
    assert cat.get("ro-cat").url == b.url


def test_errors_still_name_the_manifest(manifest, cache_dir):
    from densezoo.catalog import Catalog

    m = manifest(raw="artifacts:\n  - {name: a, url: 'ftp://x/y', md5: null}\n")
    with pytest.raises(ManifestError, match="must be http"):
        Catalog.load([m], defaults=False, compiled=cache_dir / "catalog")
    assert not (cache_dir / "catalog").exists() or not compiled_files(cache_dir)


def test_a_compiled_file_others_can_write_decides_nothing(cli, blob, manifest, cache_dir,
                                                           tmp_path):
    """Issue 19.3: a co-tenant rewrites url, md5 and filename in the compiled catalog of a
    shared cache (its key is public): the victim's strict fetch still gets the real file,
    at the real place."""
    real, evil = blob("victim", 20_000), blob("attacker", 20_000)
    m = manifest({"name": "victim", "url": real.url, "md5": real.md5})
    assert cli("--no-default-manifests", "--manifest", str(m), "list").code == 0
    (path,) = compiled_files(cache_dir)
    doc = json.loads(path.read_text())
    doc["artifacts"][0].update({"url": evil.url, "md5": evil.md5, "filename": "bashrc"})
    path.write_text(json.dumps(doc))
    path.chmod(0o666)                                  # what a shared, writable cache allows
    r = cli("--no-default-manifests", "--manifest", str(m), "--strict", "fetch", "victim",
            "--json")
    assert r.code == 0, r.err
    (row,) = r.items
    assert row["path"].endswith("/zoo/victim.bin") and row["md5"] == real.md5
    doc["artifacts"][0]["filename"] = str(tmp_path / "bashrc")     # and never a path
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    r = cli("--no-default-manifests", "--manifest", str(m), "info", "victim", "--json")
    assert r.code == 0 and r.items[0]["url"] == real.url
    assert not (tmp_path / "bashrc").exists()


@pytest.mark.parametrize("name", ["/etc/passwd", "../escape.bin", "..", "a\\\\b", "x\x00y"])
def test_the_store_refuses_a_file_name_that_is_not_plain_whatever_its_source(name, blob,
                                                                             tmp_path):
    from densezoo import Zoo
    from densezoo.manifest import Artifact

    b = blob("plain", 1000)
    zoo = Zoo(cache_dir=tmp_path / "c", default_manifests=False)
    art = Artifact(name="plain", url=b.url, md5=b.md5, filename=name, source="api")
    with pytest.raises(ManifestError, match="not a plain name"):
        zoo.fetch(art)
    assert not list((tmp_path / "c").rglob("*.bin")) and not (tmp_path / "escape.bin").exists()
