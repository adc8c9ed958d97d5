"""Issue 36 (the Hub as a home) and 33.6: the real ``huggingface_hub`` client fills a real HF
cache from the loopback Hub stand-in (tests/hub_server.py); densezoo reads through it, adopts
its snapshots without lending its inodes, and speaks the full ``hf://`` grammar."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from conftest import entry
from hub_server import HubFile, start

pytest.importorskip("huggingface_hub")

WEIGHTS = pickle.dumps({"model": {"w": [0.5] * 4000}}, protocol=2)
COMMIT = "906d38c8a74e7c1cd0bf714a363fe2e939fa28b8"
TOKEN = "hf_sekrit_token_123"


@pytest.fixture
def hub(server, monkeypatch, tmp_path):
    h, srv = start(server)
    monkeypatch.setenv("HF_ENDPOINT", h.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    yield h
    srv.shutdown()


def hf_download(hub, repo: str, path: str, **kw) -> Path:
    """The Hub's own client, as IDM-VTON or CatVTON call it: the file lands in the HF cache."""
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo, path, endpoint=hub.url,
                                cache_dir=os.environ["HF_HUB_CACHE"], **kw))


def _entry(name, url, data, mirrors, **extra):
    return {"name": name, "url": url, "md5": hashlib.md5(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "mirrors": mirrors,
            **extra}


def _requests(server, hub) -> int:
    return len(server.requests) + len(hub.requests)


def test_a_fetch_reads_the_hf_cache_and_makes_zero_requests(server, hub, manifest, cli,
                                                             cache_dir, monkeypatch):
    hub.add("yisol/IDM-VTON/resolve/main/densepose/model_final.pkl",
            HubFile(WEIGHTS, commit=COMMIT))
    snap = hf_download(hub, "yisol/IDM-VTON", "densepose/model_final.pkl")
    blob = snap.resolve()
    assert blob.parent.name == "blobs" and os.stat(blob).st_nlink == 1
    url = server.add("/densepose/r50/model_final.pkl", WEIGHTS)
    m = manifest(_entry("r50", url, WEIGHTS, ["hf://yisol/IDM-VTON/densepose/model_final.pkl"]))
    before = _requests(server, hub)
    r = cli("--manifest", str(m), "fetch", "r50", "--json")
    assert r.code == 0, r.err
    (row,) = r.items
    assert _requests(server, hub) == before                 # ZERO requests, to anyone
    assert row["state"] == "copied" and row["strength"] == "verified"
    assert row["url"] == f"hf://yisol/IDM-VTON@{COMMIT}/densepose/model_final.pkl"
    stored = Path(row["path"])
    assert stored.read_bytes() == WEIGHTS
    # A copy (or reflink), never the blob's inode: `hf cache rm` still frees the space.
    assert os.stat(stored).st_ino != os.stat(blob).st_ino and os.stat(blob).st_nlink == 1
    meta = json.loads(Path(str(stored) + ".dzmeta").read_text())
    assert meta["url"] == row["url"] and meta["hub_commit"] == COMMIT
    # Who vouched: a copy voucher naming the HF cache's repo@commit/path.
    vouchers = cli("--manifest", str(m), "info", "r50", "--json").items[0]["vouchers"]
    copy = next(v for v in vouchers if v["kind"] == "copy")
    assert copy["source"] == row["url"] and "the HF cache" in copy["detail"]
    assert copy["sha256"] == hashlib.sha256(WEIGHTS).hexdigest()
    # HF_HUB_OFFLINE=1, with and without --offline: the HF cache still serves, and
    # nothing is asked of anyone.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for flags in (["--offline"], []):
        shutil.rmtree(cache_dir)
        r = cli("--manifest", str(m), *flags, "fetch", "r50", "--json")
        assert r.code == 0 and r.items[0]["state"] == "copied", r.err
        assert _requests(server, hub) == before


def test_hf_hub_offline_asks_the_hub_nothing_and_offline_says_how_to_fill_it(
        server, hub, manifest, cli, monkeypatch):
    hub.add("owner/repo/resolve/main/m.pkl", HubFile(WEIGHTS))
    origin = "/origin/m.pkl"
    url = server.add(origin, WEIGHTS)
    server.fault(origin, "status", -1, code=403)
    m = manifest(_entry("m", url, WEIGHTS, ["hf://spaces/owner/repo@v2/m.pkl"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = cli("--manifest", str(m), "fetch", "m", "--json")
    assert r.code != 0
    assert hub.requests == []                               # not even a HEAD
    causes = {c["url"]: c["reason"] for c in r.json["errors"][0]["causes"]}
    assert "HF_HUB_OFFLINE is set" in causes["hf://spaces/owner/repo@v2/m.pkl"]
    # A plain URL on the Hub's own host is the Hub too: not asked either.
    on_hub = manifest(_entry("h", hub.url + "/owner/repo/resolve/main/m.pkl", WEIGHTS, []))
    r = cli("--manifest", str(on_hub), "fetch", "h", "--json")
    assert r.code != 0 and hub.requests == []
    assert "HF_HUB_OFFLINE is set" in r.json["errors"][0]["causes"][0]["reason"]
    r = cli("--manifest", str(m), "--offline", "fetch", "m")
    assert r.code == 6
    assert "`hf download owner/repo m.pkl --repo-type space --revision v2`" in r.err
    assert "densezoo adopt" in r.err
    assert hub.requests == []


def test_a_wrong_blob_in_the_hf_cache_is_hashed_and_not_used(server, hub, manifest, cli):
    """A right-size, wrong-content blob (a bad Xet download) under the right sha256 name."""
    hub.add("owner/repo/resolve/main/m.pkl", HubFile(WEIGHTS, commit=COMMIT))
    blob = hf_download(hub, "owner/repo", "m.pkl").resolve()
    blob.chmod(0o644)
    blob.write_bytes(WEIGHTS[:-10] + b"\x00" * 9 + b".")
    m = manifest(_entry("m", server.add("/o/m.pkl", WEIGHTS), WEIGHTS,
                        ["hf://owner/repo/m.pkl"]))
    r = cli("--manifest", str(m), "fetch", "m", "--json")
    assert r.code == 0, r.err
    assert r.items[0]["state"] == "downloaded"              # the cache's copy was refused
    assert "is not m's bytes" in r.err and f"owner/repo@{COMMIT}/m.pkl" in r.err
    assert Path(r.items[0]["path"]).read_bytes() == WEIGHTS


def test_a_right_size_wrong_content_hub_answer_is_refused(server, hub, manifest, cli):
    """The Hub's headers are right (sha256, size), the CDN's bytes are not: an entry that
    publishes only an md5 prefix still gets the Hub's sha256 checked on the bytes."""
    bad = WEIGHTS[:100] + bytes(len(WEIGHTS) - 100)
    hub.add("owner/xet/resolve/main/m.pkl", HubFile(WEIGHTS, cdn_data=bad,
                                                    xet_hash="d7" * 32))
    origin = server.add("/o/x.pkl", WEIGHTS)
    server.fault("/o/x.pkl", "status", -1, code=403)
    m = manifest({"name": "x", "url": origin, "md5": None,
                  "md5_prefix": hashlib.md5(WEIGHTS).hexdigest()[:6],
                  "mirrors": ["hf://owner/xet/m.pkl"]})
    r = cli("--manifest", str(m), "fetch", "x", "--json")
    assert r.code != 0
    cause = next(c for c in r.json["errors"][0]["causes"] if c["url"].startswith("hf://")
                 or "cdn" in c["url"])
    assert cause["kind"] == "checksum" and "sha256" in cause["reason"]
    assert cli("--manifest", str(m), "path", "x").code == 6       # nothing published


def test_the_commit_and_xet_hash_are_recorded_with_a_hub_copy(server, hub, manifest, cli):
    hub.add("owner/x/resolve/main/m.pkl", HubFile(WEIGHTS, commit=COMMIT, xet_hash="d7" * 32))
    origin = server.add("/o/y.pkl", WEIGHTS)
    server.fault("/o/y.pkl", "status", -1, code=403)
    m = manifest(_entry("y", origin, WEIGHTS, ["hf://owner/x/m.pkl"]))
    r = cli("--manifest", str(m), "fetch", "y", "--json")
    assert r.code == 0, r.err
    meta = json.loads(Path(r.items[0]["path"] + ".dzmeta").read_text())
    assert meta["url"] == f"hf://owner/x@{COMMIT}/m.pkl"           # not the CDN's URL
    assert meta["hub_commit"] == COMMIT and meta["xet_hash"] == "d7" * 32
    vouchers = cli("--manifest", str(m), "info", "y", "--json").items[0]["vouchers"]
    copy = next(v for v in vouchers if v["kind"] == "copy")
    assert copy["source"] == f"hf://owner/x@{COMMIT}/m.pkl"
    assert copy["detail"] == f"commit {COMMIT}; xet {'d7' * 32}"


def test_adopt_a_snapshot_folder_skips_a_link_out_and_lends_no_inode(server, hub, manifest,
                                                                     cli, tmp_path):
    hub.add("zhengchong/CatVTON/resolve/main/DensePose/model_final.pkl",
            HubFile(WEIGHTS, commit=COMMIT))
    snap = hf_download(hub, "zhengchong/CatVTON", "DensePose/model_final.pkl")
    blob = snap.resolve()
    folder = snap.parent.parent                              # snapshots/<commit>/
    outside = tmp_path / "elsewhere.pkl"
    outside.write_bytes(WEIGHTS)
    (folder / "planted.pkl").symlink_to(outside)             # a link leaving the cache
    m = manifest(_entry("cat", server.url("/densepose/cat/model_final.pkl"), WEIGHTS, []))
    before = _requests(server, hub)
    r = cli("--manifest", str(m), "adopt", str(folder), "--json")
    assert r.code == 0, r.err
    by_state = {i["state"]: i for i in r.items}
    assert by_state["adopted"]["path"] == str(blob) and by_state["adopted"]["name"] == "cat"
    assert by_state["adopted"]["mode"] in ("reflink", "copy")        # never a hard link
    skipped = by_state["skipped"]
    assert skipped["path"] == str(folder / "planted.pkl") and str(outside) in skipped["reason"]
    assert r.json["summary"]["skipped"] == 1
    assert os.stat(blob).st_nlink == 1                       # the HF blob's link count
    stored = Path(cli("--manifest", str(m), "--offline", "path", "cat").out.strip())
    assert stored.read_bytes() == WEIGHTS and os.stat(stored).st_ino != os.stat(blob).st_ino
    assert _requests(server, hub) == before
    vouchers = cli("--manifest", str(m), "info", "cat", "--json").items[0]["vouchers"]
    assert [(v["kind"], v["source"]) for v in vouchers if v["kind"] != "published"] == [
        ("copy", f"the HF cache ({blob})")]                 # the Hub client's bytes


def test_a_repo_root_mirror_and_datasets_and_spaces_sources(server, hub, manifest, cli, blob):
    b = blob("rooted", 3000)
    key = b.url.split("://", 1)[1].replace(":", "_")
    hub.add(f"org/zoo-mirror/resolve/main/{key}", HubFile(b.data))
    server.fault(b.path, "status", -1, code=404)
    m = manifest(entry(b))
    r = cli("--manifest", str(m), "--mirror", "hf://org/zoo-mirror", "fetch", b.name, "--json")
    assert r.code == 0, r.err
    assert r.items[0]["url"] == f"hf://org/zoo-mirror/{key}"
    # A dataset at a tag, and a Space, each a source of an entry.
    hub.add("datasets/org/weights/resolve/v1.0/sub/d.pkl", HubFile(WEIGHTS, commit="1" * 40))
    hub.add("spaces/org/demo/resolve/main/ckpt/s.pkl", HubFile(WEIGHTS, commit="2" * 40))
    for name, src, commit in (("ds", "hf://datasets/org/weights@v1.0/sub/d.pkl", "1" * 40),
                              ("sp", "hf://spaces/org/demo/ckpt/s.pkl", "2" * 40)):
        origin = server.add(f"/o/{name}.pkl", WEIGHTS)
        server.fault(f"/o/{name}.pkl", "status", -1, code=403)
        mm = manifest(_entry(name, origin, WEIGHTS, [src]))
        r = cli("--manifest", str(mm), "fetch", name, "--json")
        assert r.code == 0, r.err
        assert r.items[0]["url"] == src
        meta = json.loads(Path(r.items[0]["path"] + ".dzmeta").read_text())
        assert meta["hub_commit"] == commit and meta["url"].endswith(f"@{commit}/" +
                                                                     src.split("/", 5)[-1])
    paths = {q.path for q in hub.requests}
    assert {"datasets/org/weights/resolve/v1.0/sub/d.pkl",
            "spaces/org/demo/resolve/main/ckpt/s.pkl"} <= paths


def test_the_grammar_is_quoted_right_in_errors(cli):
    r = cli("--mirror", "hf://just-a-name", "list")
    assert r.code == 2
    assert "hf://[datasets/|spaces/]OWNER/NAME[@REVISION][/PATH]" in r.err


def test_the_hub_resolver_obeys_the_transport_policy(server, hub, manifest, cli, monkeypatch):
    """33.6: a plain-http HF_ENDPOINT off loopback is refused without --allow-http before
    anything is sent (the token never leaves in clear text), and the fetch goes on to the
    next source."""
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.example.com")
    url = server.add("/o/p.pkl", WEIGHTS)
    m = manifest(_entry("p", url, WEIGHTS, ["hf://owner/repo/p.pkl"]))
    r = cli("--manifest", str(m), "--mirror", "hf://owner/zoo", "fetch", "p", "--json")
    assert r.code == 0, r.err                                 # the origin served
    assert r.items[0]["url"] == url
    assert hub.requests == []
    # The origin failing too: each Hub source is refused by policy, named as such.
    server.fault("/o/p.pkl", "status", -1, code=403)
    r = cli("--manifest", str(m), "fetch", "p", "--force", "--json")
    hub_cause = next(c for c in r.json["errors"][0]["causes"] if c["url"].startswith("hf://"))
    assert hub_cause["kind"] == "policy" and "refused plain-http" in hub_cause["reason"]
    assert "--allow-http" in hub_cause["reason"]


def test_seed_iopath_uses_the_upstream_path_whatever_source_served(server, hub, manifest, cli,
                                                                 tmp_path):
    """36.6: bytes served by a Hub copy are seeded where iopath looks for the upstream URL
    (and for the Hub's https resolve URL), never under a path made from ``hf://``."""
    up = "/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_162be9.pkl"
    url = server.add(up, WEIGHTS)
    server.fault(up, "status", -1, code=403)
    src = f"hf://spaces/yisol/IDM-VTON@{COMMIT}/ckpt/densepose/model_final_162be9.pkl"
    hub.add(f"spaces/yisol/IDM-VTON/resolve/{COMMIT}/ckpt/densepose/model_final_162be9.pkl",
            HubFile(WEIGHTS, commit=COMMIT))
    m = manifest(_entry("r50", url, WEIGHTS, [src]))
    seed = tmp_path / "iopath_cache"
    r = cli("--manifest", str(m), "export", "r50", "--layout", "iopath", "--to", str(seed),
            "--json")
    assert r.code == 0, r.err
    seeded = sorted(str(p.relative_to(seed)) for p in seed.rglob("*.pkl"))
    assert seeded == [up.lstrip("/"), "spaces/yisol/IDM-VTON/resolve/"
                      f"{COMMIT}/ckpt/densepose/model_final_162be9.pkl"]
    assert all((seed / s).read_bytes() == WEIGHTS for s in seeded)


def test_doctor_shows_the_hub_variables_in_effect(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hfc"))
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.example.com")
    r = cli("doctor", "--no-probe", "--json")
    (hub,) = [c for c in r.items if c["name"] == "hugging face hub"]
    assert not hub["ok"] and "refused without --allow-http" in hub["detail"]
    assert "token: from HF_TOKEN" in hub["detail"] and TOKEN not in r.out
    assert str(tmp_path / "hfc") in hub["detail"]
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-home"))
    monkeypatch.delenv("HF_ENDPOINT")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = cli("doctor", "--no-probe", "--json")
    (hub,) = [c for c in r.items if c["name"] == "hugging face hub"]
    assert hub["ok"] and "`hf auth login`" in hub["detail"]
    assert "HF_HUB_OFFLINE=1: the Hub is not asked" in hub["detail"]
    assert "HF_HUB_OFFLINE" in cli("--help").out


def test_the_community_manifest_ships_each_export_by_repo_revision_and_hub_sha256(cli):
    """36.5: three files called densepose_r50_fpn_dl.torchscript, told apart by repo and
    sha256 (values from ../shared/reference/community-mirrors.md), each saying what it was
    derived from and that its checksum is the Hub's; the CSE animal copies are mirrors of
    their upstream entries."""
    from densezoo.catalog import Catalog
    from densezoo.download.hf import check

    cat = Catalog.load()
    exports = [a for a in cat.artifacts if a.zoo == "community"]
    assert len(exports) == 6 and len({a.sha256 for a in exports}) == 6
    r50 = [a for a in exports if a.file_name == "densepose_r50_fpn_dl.torchscript"]
    assert {a.sha256[:8] for a in r50} == {"4f7260da", "5a079ee2"}
    for a in exports:
        assert a.md5 is None and a.size is None and a.derived_from      # no invented values
        assert cat.get(a.derived_from).zoo == "detectron2"
        (hub,) = a.mirrors
        assert check(hub) and hub.split("@")[0].split("/")[-1] in a.url
    layer = cat.get("torchscript.LayerNorm.densepose_r50_fpn_dl")
    assert "@65446422ea6225b9d72f93f3d2e2ad55e78b0b78/" in layer.mirrors[0]
    info = cli("info", layer.name, "--json").items[0]
    assert info["derived_from"] == "densepose_rcnn_R_50_FPN_DL_s1x"
    assert all("by its host (the Hub), not upstream" in s["verified_by"]
               for s in info["sources"])
    text = cli("info", layer.name).out
    assert "derived from  densepose_rcnn_R_50_FPN_DL_s1x" in text and "not upstream's" in text
    for h in ("421d28", "52f649"):
        (art,) = [a for a in cat.artifacts if a.url.endswith(f"model_final_{h}.pkl")]
        assert [m.split("/")[2] for m in art.mirrors] == [
            "drivendata-public-assets", "drivendata-public-assets-eu",
            "drivendata-public-assets-asia"]
        assert all(m.endswith(f"/zamba_densepose_model_final_{h}.pkl") for m in art.mirrors)


def test_a_hand_made_hf_cache_entry_is_read_through_offline(manifest, cli, monkeypatch,
                                                           tmp_path):
    """The Hub client's layout as documented (refs/main -> commit, snapshot link -> blob
    named by its sha256), made by hand: read through with --offline, by repo and path."""
    data = b"PK\x03\x04" + b"torchscript-zip" * 1000
    sha = hashlib.sha256(data).hexdigest()
    hub_cache = tmp_path / "hfc"
    repo = hub_cache / "models--someone--DensePose-TS"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / sha).write_bytes(data)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("9" * 40)
    snap = repo / "snapshots" / ("9" * 40) / "densepose_r50_fpn_dl.torchscript"
    snap.parent.mkdir(parents=True)
    snap.symlink_to(Path("../../blobs") / sha)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    entry_ = {"name": "ts", "url": "https://huggingface.co/someone/DensePose-TS/resolve/main/"
              "densepose_r50_fpn_dl.torchscript", "md5": None, "sha256": sha,
              "mirrors": ["hf://someone/DensePose-TS/densepose_r50_fpn_dl.torchscript"],
              "derived_from": "R_50_FPN_s1x"}
    r = cli("--manifest", str(manifest(entry_)), "--offline", "fetch", "ts", "--json")
    assert r.code == 0, r.err
    assert r.items[0]["state"] == "copied" and r.items[0]["url"] == (
        "hf://someone/DensePose-TS@" + "9" * 40
        + "/densepose_r50_fpn_dl.torchscript")


def test_an_absurd_size_claim_skips_that_source_not_the_fetch(server, hub, manifest, cli):
    """33.6: the Hub and its CDN both claim a petabyte for an entry that states no size:
    that source fails (no space for it), the origin then serves the file."""
    from hub_server import cdn_path

    url = server.add("/o/claimed.pkl", WEIGHTS)
    key = url.split("://", 1)[1].replace(":", "_")
    hub.add(f"org/liar/resolve/main/{key}", HubFile(WEIGHTS, claim_size=10 ** 15))
    server.fault(cdn_path(hashlib.sha256(WEIGHTS).hexdigest()).split("?")[0], "huge_length",
                 -1)
    m = manifest({"name": "claimed", "url": url, "md5": hashlib.md5(WEIGHTS).hexdigest()})
    r = cli("--manifest", str(m), "--mirror", "hf://org/liar", "fetch", "claimed", "--json")
    assert r.code == 0, r.err
    assert r.items[0]["url"] == url and Path(r.items[0]["path"]).read_bytes() == WEIGHTS
    assert any(q.method == "HEAD" and q.path.startswith("org/liar/") for q in hub.requests)


def test_a_blob_named_by_the_published_sha256_in_another_repo_is_found(manifest, cli,
                                                                      monkeypatch, tmp_path,
                                                                      server):
    """By the sha256 blob name when the expectation knows it: the same bytes under another
    repo (a duplicate Space, a fork) serve with no network -- after being hashed."""
    sha = hashlib.sha256(WEIGHTS).hexdigest()
    blob = tmp_path / "hfc" / "spaces--someone--IDM-VTON-fork" / "blobs" / sha
    blob.parent.mkdir(parents=True)
    blob.write_bytes(WEIGHTS)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hfc"))
    m = manifest(_entry("dup", server.url("/o/dup.pkl"), WEIGHTS,
                        ["hf://yisol/IDM-VTON/densepose/model_final.pkl"]))
    r = cli("--manifest", str(m), "fetch", "dup", "--json")
    assert r.code == 0, r.err
    assert r.items[0]["state"] == "copied"
    assert r.items[0]["url"] == f"hf://spaces/someone/IDM-VTON-fork/blobs/{sha}"
    assert server.requests == [] and os.stat(blob).st_nlink == 1


def test_a_snapshot_of_another_hf_cache_is_copied_not_linked(server, hub, manifest, cli,
                                                            tmp_path, monkeypatch):
    """An HF cache other than the configured one (another project's cache_dir=): its blobs
    are still the Hub client's, never hard-linked, even when you own them alone."""
    hub.add("o/r/resolve/main/m.pkl", HubFile(WEIGHTS, commit=COMMIT))
    snap = hf_download(hub, "o/r", "m.pkl")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "another-cache"))
    blob = snap.resolve()
    for p in (blob, blob.parent, blob.parent.parent):
        p.chmod(0o755 if p.is_dir() else 0o644)           # yours alone
    m = manifest(_entry("o", server.url("/o/o.pkl"), WEIGHTS, []))
    r = cli("--manifest", str(m), "adopt", str(snap.parent), "--json")
    (item,) = r.items
    assert item["state"] == "adopted" and item["mode"] in ("reflink", "copy"), item
    assert os.stat(blob).st_nlink == 1
