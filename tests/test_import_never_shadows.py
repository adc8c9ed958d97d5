"""Issue 31 item 5: an imported manifest never shadows a shipped entry, on any key.

A hostile bundle's entries claim the official DensePose_ResNet50_FPN_s1x.pkl URL (under
``legacy_urls:`` and ``mirrors:``), a shipped file name as their own name, and a shipped
config path.  ``import`` refuses each (exit 7, naming both entries); a manifest an older
densezoo saved under <cache>/imported/ with the same entries wins no lookup: ``fetch
<URL>``, ``fetch <file name>``, ``config -o``, ``config --trained`` and iopath's
PathManager through densezoo's handler never get the bundle's bytes.  The bundle's
entries point at the loopback server, so a lookup that did reach them would fetch the
bundle's bytes from there: the server's request log says whether any did.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import pytest
import yaml

from densezoo.urls import url_key
from test_bundle import _handmade_bundle
from test_real_detectron2 import d2_source, restore_path_manager  # noqa: F401 - fixtures

OFFICIAL = "https://dl.fbaipublicfiles.com/densepose/DensePose_ResNet50_FPN_s1x.pkl"
SHIPPED_CONFIG = "configs/densepose_rcnn_R_50_FPN_s1x.yaml"
# Longer than the shipped config path: `config --trained` prefers the longest match.
CLAIMED_CONFIG = "DensePose/" + SHIPPED_CONFIG
EVIL = pickle.dumps({"model": {"bundle": list(range(50))}}, protocol=2)   # a benign pickle


def _entries(server) -> dict[str, dict]:
    """The three claims, each served from loopback with the bundle's bytes."""
    def one(name: str, path: str, **extra) -> dict:
        url = server.add(path, EVIL)
        return {"name": name, "kind": "model", "url": url,
                "md5": hashlib.md5(EVIL).hexdigest(), "size": len(EVIL), **extra}

    return {
        "url": one("helper_copy", "/b/w1.pkl", legacy_urls=[OFFICIAL], mirrors=[OFFICIAL]),
        "legacy url": one("old_copy", "/b/w4.pkl", legacy_urls=[OFFICIAL.upper().replace(
            "/DENSEPOSE/DENSEPOSE_RESNET50_FPN_S1X.PKL", "/densepose/DensePose_ResNet50_FPN_s1x.pkl")]),
        "mirror": one("mirror_copy", "/b/w5.pkl", mirrors=[OFFICIAL.replace(".com/", ".com:443/")]),
        "alias": one("innocent", "/b/w6.pkl", aliases=["R_50_FPN_s1x"]),
        "file name": one("DensePose_ResNet50_FPN_s1x.pkl", "/b/w2.pkl"),
        "config": one("trained_claim", "/b/w3.pkl", config=CLAIMED_CONFIG),
    }


def _bundle_requests(server) -> list:
    return [r for r in server.requests if "/b/" in str(r)]


@pytest.mark.parametrize("claim,shipped", [("url", "densepose-v1:ResNet50_FPN_s1x"),
                                           ("legacy url", "densepose-v1:ResNet50_FPN_s1x"),
                                           ("mirror", "densepose-v1:ResNet50_FPN_s1x"),
                                           ("alias", "detectron2:densepose_rcnn_R_50_FPN_s1x"),
                                           ("file name", "densepose-v1:ResNet50_FPN_s1x"),
                                           ("config", "detectron2:densepose_rcnn_R_50_FPN_s1x")])
def test_import_refuses_an_entry_claiming_a_shipped_key(cli, server, tmp_path, cache_dir,
                                                        claim, shipped):
    e = _entries(server)[claim]
    arc = "files/" + "/".join(url_key(e["url"]))
    tar = tmp_path / "hostile.tar"
    _handmade_bundle(tar, {arc: EVIL}, [e])
    r = cli("import", str(tar))
    assert r.code == 7, (r.code, r.err)
    assert f"entry {e['name']!r}" in r.err and shipped in r.err, r.err
    assert "never shadows" in r.err
    assert not (cache_dir / "imported").exists() or not list((cache_dir / "imported").iterdir())
    assert not [p for p in (cache_dir / "files").rglob("*") if p.is_file()] \
        if (cache_dir / "files").exists() else True


def test_a_real_bundle_of_a_shipped_entry_still_imports(cli, server, tmp_path, manifest,
                                                        cache_dir):
    """The air-gapped use: `densezoo bundle` of an entry your manifest lists, imported
    where the same manifest is loaded -- its entries are the loaded entries' own (same
    URL), not a clash."""
    data = os.urandom(5000)
    url = server.add("/zoo/airgap.bin", data)
    m = manifest({"name": "airgap", "url": url, "md5": hashlib.md5(data).hexdigest(),
                  "size": len(data), "legacy_urls": [url.replace("/zoo/", "/old/")]})
    assert cli("--manifest", str(m), "fetch", "airgap").code == 0
    tar = tmp_path / "airgap.tar"
    assert cli("--manifest", str(m), "bundle", "airgap", "-o", str(tar)).code == 0
    r = cli("--manifest", str(m), "--cache-dir", str(tmp_path / "air"), "import", str(tar))
    assert r.code == 0, r.err


@pytest.fixture
def saved_by_an_older_densezoo(server, cache_dir) -> dict[str, dict]:
    """The bundle's manifest as an older densezoo's import saved it (privately owned)."""
    entries = _entries(server)
    folder = cache_dir / "imported"
    folder.mkdir(parents=True, mode=0o700)
    saved = folder / "hostile.yaml"
    saved.write_text(yaml.safe_dump({"schema": 1, "zoo": "bundle",
                                     "artifacts": list(entries.values())}))
    os.chmod(saved, 0o600)
    return entries


def test_an_imported_manifest_wins_no_url_or_name_lookup(cli, server,
                                                         saved_by_an_older_densezoo):
    for query, shipped in ((OFFICIAL, "ResNet50_FPN_s1x"),
                           ("DensePose_ResNet50_FPN_s1x.pkl", "ResNet50_FPN_s1x"),
                           ("R_50_FPN_s1x", "densepose_rcnn_R_50_FPN_s1x")):
        info = cli("info", query, "--json")
        assert info.code == 0 and info.items[0]["name"] == shipped, (query, info.err)
        r = cli("fetch", query)              # the origin is unreachable here: a failure
        assert r.code != 0 and "/b/" not in r.out, (query, r.out)
    assert _bundle_requests(server) == []


def test_config_never_maps_to_an_imported_entry(cli, server, tmp_path,
                                                saved_by_an_older_densezoo):
    cfg = tmp_path / "weights.yaml"
    cfg.write_text(f'MODEL: {{WEIGHTS: "{OFFICIAL}"}}\n')
    out = tmp_path / "out.yaml"
    r = cli("config", str(cfg), "-o", str(out))
    assert r.code != 0, r.err                 # the shipped entry, whose origin is unreachable
    assert not out.exists() or "/b/" not in out.read_text()
    d = tmp_path / "DensePose" / "configs"
    d.mkdir(parents=True)
    trained = d / Path(SHIPPED_CONFIG).name
    trained.write_text("MODEL: {WEIGHTS: ''}\n")
    r = cli("config", str(trained), "--trained", "--dry-run", "--json")
    assert r.json["summary"]["trained"] == "densepose_rcnn_R_50_FPN_s1x", r.err
    assert _bundle_requests(server) == []


def test_path_manager_through_the_handler_never_gets_the_bundle(server, tmp_path, monkeypatch,
                                                                saved_by_an_older_densezoo):
    from iopath.common.file_io import PathManager

    from densezoo import Zoo
    from densezoo.iopath import DensezooHandler

    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "fvcore"))
    pm = PathManager()
    handler = DensezooHandler(Zoo())
    pm.register_handler(handler, allow_override=True)
    assert handler.index.find(OFFICIAL).name == "ResNet50_FPN_s1x"
    with pytest.raises(Exception):       # the shipped entry; its origin is unreachable here
        pm.get_local_path(OFFICIAL)
    assert _bundle_requests(server) == []


def test_your_own_manifest_may_shadow_and_info_says_so(cli, manifest):
    m = manifest({"name": "ResNet50_FPN_s1x", "url": "https://example.org/mine/r50.pkl",
                  "md5": None},
                 {"name": "my_copy", "url": "https://example.org/mine/copy.pkl", "md5": None,
                  "legacy_urls": [OFFICIAL]})
    r = cli("--manifest", str(m), "info", "ResNet50_FPN_s1x", "--json")
    hidden = r.items[0]["shadows"]
    assert hidden.startswith("densepose-v1:ResNet50_FPN_s1x (") and \
        hidden.endswith("densepose.yaml)") and ";" not in hidden
    r = cli("--manifest", str(m), "info", OFFICIAL)
    assert r.code == 0 and "my_copy" in r.out
    assert "shadows" in r.out and "densepose-v1:ResNet50_FPN_s1x" in r.out
    plain = cli("info", "ResNet50_FPN_s1x", "--json")
    assert plain.items[0]["shadows"] is None
    rows = {i["name"]: i for i in cli("--manifest", str(m), "list", "--json").items}
    assert rows["my_copy"]["shadows"].startswith("densepose-v1:ResNet50_FPN_s1x (")


def test_detectron2s_own_path_manager_never_gets_the_bundle(restore_path_manager, server,
                                                            tmp_path, monkeypatch,
                                                            saved_by_an_older_densezoo):
    """The same through detectron2's real PathManager and densezoo's ``install()``."""
    from detectron2.utils.file_io import PathManager

    import densezoo.integrations.detectron2 as dz
    from densezoo import Zoo

    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "fvcore"))
    handler = dz.install(Zoo())
    assert handler.index.find(OFFICIAL).name == "ResNet50_FPN_s1x"
    with pytest.raises(Exception):       # the shipped entry; its origin is unreachable here
        PathManager.get_local_path(OFFICIAL)
    assert _bundle_requests(server) == []
