"""The detectron2 zoo, md5-prefix verification, zoo selection and dependencies."""

import hashlib
import pickle
import re

import pytest

from conftest import entry
from densezoo import Zoo
from densezoo.catalog import Catalog, default_manifest_paths
from densezoo.errors import AmbiguousArtifactError
from densezoo.manifest import load_manifest
from densezoo.store.trust import declared_checksum

# Synthetic weight files whose real md5 starts with 162be9 / 844d15, found once by a
# brute-force search (a 24-bit prefix takes a few million tries).  Each is a valid
# 8-byte pickle (PROTO 2, BININT n, STOP), since a .pkl must parse to be accepted;
# the tests check the md5 and the unpickled value for real rather than trusting these.
FOUND = {"162be9": "80024a18326b812e", "844d15": "80024a74de6a802e"}


def prefixed_bytes(prefix: str) -> bytes:
    data = bytes.fromhex(FOUND[prefix])
    assert hashlib.md5(data).hexdigest().startswith(prefix)
    assert isinstance(pickle.loads(data), int)
    return data


def d2():
    return load_manifest(next(p for p in default_manifest_paths()
                              if p.name == "detectron2-densepose.yaml"))


def test_detectron2_manifest_inventory():
    arts = d2().artifacts
    models = [a for a in arts if a.kind == "model" and not a.deprecated]
    assert len(models) == 43
    by_dir = {"iuv": 0, "cse": 0, "evolution": 0}
    for a in models:
        by_dir["cse" if "/cse/" in a.url else "evolution" if "/evolution/" in a.url else "iuv"] += 1
    assert by_dir == {"iuv": 22, "cse": 16, "evolution": 5}     # 14 documented + 2 config-only
    assert sum(a.kind == "metrics" for a in arts) == 41
    assert sum(a.kind == "annotations" for a in arts) == 16
    assert sum(a.kind == "data" for a in arts) == 19
    assert sum(a.kind == "mesh" for a in arts) == 51
    assert all(a.url.startswith("https://dl.fbaipublicfiles.com/") for a in arts)


def test_every_model_declares_the_md5_prefix_of_its_file_name():
    for a in d2().artifacts:
        m = re.search(r"model_final_([0-9a-f]+)\.pkl$", a.url)
        if a.kind == "model":
            assert m and a.md5_prefix == m.group(1), a.name
            assert a.md5 is None and declared_checksum(a) in ("prefix", "full")
        else:
            assert a.md5_prefix is None


def test_only_162be9_has_a_full_checksum():
    full = [a for a in d2().artifacts if a.sha256 or a.md5]
    assert [(a.name, a.sha256, a.size) for a in full] == [(
        "densepose_rcnn_R_50_FPN_s1x",
        "b8a7382001b16e453bad95ca9dbc68ae8f2b839b304cf90eaf5c27fbdb4dae91", 255757821)]


def test_placeholder_meshes_carry_an_advisory():
    meshes = [a for a in d2().artifacts if a.kind == "mesh" and re.search(r"/meshes/\w+\.pkl$", a.url)]
    assert len(meshes) == 13 and all("placeholder" in (a.advisory or "") for a in meshes)


def test_names_users_type_resolve():
    c = Catalog.load()
    assert c.get("densepose_rcnn_R_50_FPN_s1x").zoo == "detectron2"
    assert c.get("R_50_FPN_s1x").name == "densepose_rcnn_R_50_FPN_s1x"
    assert c.get("cse_R_50_FPN_s1x").name == "cse.densepose_rcnn_R_50_FPN_s1x"
    assert c.get("cse/densepose_rcnn_R_50_FPN_s1x").name == "cse.densepose_rcnn_R_50_FPN_s1x"
    assert c.get("configs/cse/densepose_rcnn_R_50_FPN_s1x.yaml").zoo == "detectron2"
    assert c.get("model_final_162be9.pkl").name == "densepose_rcnn_R_50_FPN_s1x"


def test_name_in_both_zoos_asks_the_user_to_choose(cli):
    with pytest.raises(AmbiguousArtifactError) as e:
        Catalog.load().get("R-50")
    assert sorted(e.value.candidates) == ["densepose-v1:ImageNet_R-50",
                                          "detectron2:detectron2_ImageNet_R-50"]
    r = cli("info", "r-50")
    assert r.code == 3 and "densepose-v1:ImageNet_R-50" in r.err
    assert cli("info", "detectron2:R-50", "--json").code == 0


def test_md5_prefix_verified_in_the_streaming_pass(server, manifest):
    data = prefixed_bytes("162be9")
    url = server.add("/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_162be9.pkl", data)
    zoo = Zoo(manifests=[manifest({"name": "m", "url": url, "md5": None, "md5_prefix": "162be9"})],
              default_manifests=False)
    res = zoo.fetch("m")
    assert res.strength == "prefix" and res.digests.md5.startswith("162be9")
    assert res.pinned            # the full md5 is pinned on top of the 24-bit prefix
    assert zoo.verify().ok


def test_md5_prefix_mismatch_is_a_checksum_failure(server, manifest, cli):
    data = prefixed_bytes("844d15")
    url = server.add("/x/model_final_162be9.pkl", data)        # right name, wrong bytes
    m = manifest({"name": "m", "url": url, "md5": None, "md5_prefix": "162be9"})
    r = cli("--no-default-manifests", "--manifest", str(m), "fetch", "m")
    assert r.code == 4 and "md5-prefix mismatch" in r.err and "expected 162be9, got 844d15" in r.err
    assert cli("--no-default-manifests", "--manifest", str(m), "path", "m").code == 6


def test_list_shows_each_strength(cli, server, blob, manifest):
    p, s, n = blob("pinme"), blob("side"), blob("nothing")
    server.add(s.path + ".md5sum", s.md5.encode())
    m = manifest(entry(p, md5=False, size=False), entry(s, md5=False, md5_url=s.url + ".md5sum"),
                 entry(n, md5=False), {"name": "full", "url": server.url("/f"), "md5": "a" * 32},
                 {"name": "pre", "url": server.url("/p"), "md5": None, "md5_prefix": "abcdef"})
    cli("--manifest", str(m), "fetch", "pinme")
    rows = cli("--no-default-manifests", "--manifest", str(m), "list", "--json").items
    assert {r["name"]: r["checksum"] for r in rows} == {     # what each entry publishes
        "pinme": "none", "side": "sidecar", "nothing": "none", "full": "full", "pre": "prefix"}
    assert {r["name"]: r["strength"] for r in rows} == {     # who vouched for cached bytes
        "pinme": "origin-pinned", "side": None, "nothing": None, "full": None, "pre": None}
    table = cli("--no-default-manifests", "--manifest", str(m), "list").out
    for word in ("sidecar", "none", "full", "prefix"):
        assert word in table


def test_zoo_selection(cli, manifest, server):
    v1 = cli("list", "--zoo", "densepose-v1", "--json").items
    d2rows = cli("list", "--zoo", "detectron2", "--json").items
    both = cli("list", "--json").json
    community = cli("list", "--zoo", "community", "--json").items      # TorchScript exports
    assert len(v1) == 29 and len(d2rows) == 138 and len(community) == 6
    assert len(both["items"]) == 173
    assert both["summary"] == {"count": 173, "hidden_metrics": 41}     # metrics-only entries
    assert len(cli("list", "--all-kinds", "--json").items) == 214
    assert len(cli("list", "--kind", "metrics", "--json").items) == 41
    cse = cli("list", "--zoo", "detectron2", "--kind", "model", "cse", "--json").items
    assert len(cse) == 16
    own = manifest({"name": "mine", "url": server.url("/mine"), "md5": None})
    only = cli("--no-default-manifests", "--manifest", str(own), "list", "--json").items
    assert [r["name"] for r in only] == ["mine"]


def test_fetch_with_deps_fetches_the_closure_dependencies_first(cli, blob, manifest):
    w, r1, r2 = blob("weights"), blob("rpn1"), blob("init")
    m = manifest(entry(w, requires=["rpn1", "init"]), entry(r1, requires=["init"]), entry(r2))
    r = cli("--manifest", str(m), "fetch", "weights", "--with-deps")
    assert r.code == 0
    paths = r.out.split()
    assert [p.rsplit("/", 1)[1] for p in paths] == ["init.bin", "rpn1.bin", "weights.bin"]
    info = cli("--manifest", str(m), "info", "weights", "--json").items[0]
    assert info["requires"] == ["rpn1", "init"] and info["requires_closure"] == ["init", "rpn1"]
    text = cli("--manifest", str(m), "info", "weights").out
    assert "requires      rpn1, init" in text


def test_v1_model_requires_its_training_inputs():
    c = Catalog.load()
    closure = [a.name for a in c.closure([c.get("ResNet101_FPN_32x8d_s1x")])]
    assert closure == ["ImageNet_X-101-32x8d", "DensePose-RPN-train_X-101-32x8d-FPN",
                       "DensePose-RPN-minival_X-101-32x8d-FPN",
                       "DensePose-RPN-valminusminival_X-101-32x8d-FPN", "ResNet101_FPN_32x8d_s1x"]
    assert [a.name for a in c.closure([c.get("R_101_FPN_s1x")])] == [
        "detectron2_ImageNet_R-101", "densepose_rcnn_R_101_FPN_s1x"]


def test_posetrack_exact_name_wins_over_the_other_zoos_alias(cli):
    """Issue 37: `densepose_posetrack_train2017` is densepose-v1's entry name; detectron2's
    annotation has it only as an alias (and as its file name): the exact name wins, and
    the alias still works inside its zoo."""
    d = cli("info", "densepose_posetrack_train2017", "--json").items[0]
    assert d["zoo"] == "densepose-v1" and "dropbox" in d["url"]
    d = cli("info", "detectron2:densepose_posetrack_train2017", "--json").items[0]
    assert d["name"] == "annotations.densepose_posetrack_train2017"
    d = cli("info", "densepose-v1:densepose_posetrack_train2017", "--json").items[0]
    assert "dropbox" in d["url"]
