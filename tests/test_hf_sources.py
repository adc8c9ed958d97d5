"""Issue 21.1: hf:// copies, fetched by the Hub's resolve protocol through densezoo's own
verified downloader, against a loopback Hub (HEAD -> 302 with X-Linked-Etag/Size and
X-Repo-Commit, the CDN on another port)."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pytest

from conftest import entry
from hub_server import HubFile, start

WEIGHTS = pickle.dumps({"model": {"w": [0.5] * 4000}}, protocol=2)
COMMIT = "906d38c8a74e7c1cd0bf714a363fe2e939fa28b8"
TOKEN = "hf_sekrit_token_123"


@pytest.fixture
def hub(server, monkeypatch):
    h, srv = start(server)
    monkeypatch.setenv("HF_ENDPOINT", h.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    yield h
    srv.shutdown()


def _origin_403(server, name: str, data: bytes) -> str:
    path = f"/origin/{name}"
    url = server.add(path, data)
    server.fault(path, "status", -1, code=403)
    return url


def _entry(name, url, data, mirrors, **extra):
    return {"name": name, "url": url, "md5": hashlib.md5(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "mirrors": mirrors,
            **extra}


def test_a_hub_copy_serves_when_the_origin_says_403(server, hub, manifest, cli, cache_dir):
    hub.add(f"spaces/owner/vton/resolve/{COMMIT}/ckpt/densepose/model_final.pkl",
            HubFile(WEIGHTS, commit=COMMIT, token=TOKEN))
    src = f"hf://spaces/owner/vton@{COMMIT}/ckpt/densepose/model_final.pkl"
    m = manifest(_entry("hubbed", _origin_403(server, "model_final.pkl", WEIGHTS),
                        WEIGHTS, [src]))
    r = cli("--manifest", str(m), "fetch", "hubbed", "--json")
    assert r.code == 0, r.err
    (row,) = r.items
    assert row["url"] == src and row["strength"] == "verified"
    assert Path(row["path"]).read_bytes() == WEIGHTS
    assert f"served by {src} after the origin failed" in r.err and "403" in r.err
    # The token went to the Hub's endpoint, never to the CDN, and is printed nowhere.
    (head,) = [q for q in hub.requests if q.method == "HEAD"]
    assert head.headers.get("Authorization") == f"Bearer {TOKEN}"
    cdn = [q for q in server.requests if q.path.startswith("/cdn/")]
    assert cdn and all("Authorization" not in q.headers for q in cdn)
    stored = "".join(p.read_text(errors="replace") for p in cache_dir.rglob("*")
                     if p.is_file() and p.stat().st_size < 1_000_000)
    info = cli("--manifest", str(m), "info", "hubbed")
    for text in (r.out, r.err, stored, info.out):
        assert TOKEN not in text
        assert "X-Amz-Signature=sig" not in text          # the CDN's signature neither


def test_a_hub_sha256_that_contradicts_the_manifest_is_refused_before_its_body(
        server, hub, manifest, cli):
    other = pickle.dumps({"model": "something else"}, protocol=2)
    hub.add("owner/repo/resolve/main/model.pkl", HubFile(other))
    m = manifest(_entry("contra", _origin_403(server, "contra.pkl", WEIGHTS), WEIGHTS,
                        ["hf://owner/repo/model.pkl"]))
    r = cli("--manifest", str(m), "fetch", "contra", "--json")
    assert r.code == 4, r.err
    (err,) = r.json["errors"]
    hub_cause = next(c for c in err["causes"] if c["url"].startswith("hf://"))
    assert hub_cause["kind"] == "checksum" and "refused before download" in hub_cause["reason"]
    assert [q for q in server.requests if q.path.startswith("/cdn/")] == []   # no body read


def test_a_placeholder_or_pointer_is_refused(server, hub, manifest, cli):
    placeholder = b"put model_final_162be9.pkl here"
    pointer = (b"version https://git-lfs.github.com/spec/v1\noid sha256:"
               + hashlib.sha256(WEIGHTS).hexdigest().encode() + b"\nsize 32000\n")
    # 1. The Hub says 31 bytes: refused before the body (the manifest knows the size).
    hub.add("a/placeholder/resolve/main/m.pkl", HubFile(placeholder))
    m = manifest(_entry("ph", _origin_403(server, "ph.pkl", WEIGHTS), WEIGHTS,
                        ["hf://a/placeholder/m.pkl"]))
    r = cli("--manifest", str(m), "fetch", "ph")
    assert r.code == 4 and "the source says 31 bytes" in r.err
    # 2. The Hub's headers are right but the CDN hands out a pointer file: the bytes
    #    must match the Hub's own sha256 and size, and they do not.
    hub.add("a/pointer/resolve/main/m.pkl", HubFile(WEIGHTS, cdn_data=pointer))
    only_prefix = {"name": "pp", "url": _origin_403(server, "pp.pkl", WEIGHTS), "md5": None,
                   "md5_prefix": hashlib.md5(WEIGHTS).hexdigest()[:6],
                   "mirrors": ["hf://a/pointer/m.pkl"]}
    r = cli("--manifest", str(manifest(only_prefix)), "fetch", "pp", "--json")
    assert r.code != 0 and r.items[0]["state"] == "failed"
    reasons = " ".join(c["reason"] for c in r.json["errors"][0]["causes"])
    assert f"server offers {len(pointer)} bytes but {len(WEIGHTS)} are expected" in reasons
    assert cli("--manifest", str(manifest(only_prefix)), "path", "pp").code == 6   # not kept


def test_a_hub_copy_of_a_prefix_only_entry_is_a_mirror_copy(server, hub, manifest, cli):
    hub.add("gook/densepose/resolve/main/model_final_x.pkl", HubFile(WEIGHTS))
    m = manifest({"name": "pref", "url": _origin_403(server, "pref.pkl", WEIGHTS), "md5": None,
                  "md5_prefix": hashlib.md5(WEIGHTS).hexdigest()[:6],
                  "mirrors": ["hf://gook/densepose/model_final_x.pkl"]})
    r = cli("--manifest", str(m), "fetch", "pref", "--json")
    assert r.code == 0, r.err
    assert r.items[0]["strength"] == "copy-pinned" and "copy-pinned -- only hf://" in r.err
    assert cli("--manifest", str(m), "--strict", "fetch", "pref", "--force").code == 9


def test_hf_as_a_mirror_prefix_and_a_gated_repo_without_token(server, hub, manifest, cli,
                                                               monkeypatch, blob):
    b = blob("hf_mirrored", 3000)
    key = b.url.split("://", 1)[1].replace(":", "_")
    hub.add(f"org/zoo-mirror/resolve/main/tree/{key}", HubFile(b.data, token=TOKEN))
    server.fault(b.path, "status", -1, code=404)
    m = manifest(entry(b))
    r = cli("--manifest", str(m), "--mirror", "hf://org/zoo-mirror/tree", "fetch", b.name,
            "--json")
    assert r.code == 0, r.err
    assert r.items[0]["url"] == f"hf://org/zoo-mirror/tree/{key}"
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("HF_HOME", str(Path(r.items[0]["path"]).parent / "no-hf-home"))
    r = cli("--manifest", str(m), "--mirror", "hf://org/zoo-mirror/tree", "fetch", b.name,
            "--force")
    assert r.code == 5 and "gated or private" in r.err and "HF_TOKEN" in r.err
    assert "`hf auth login`" in r.err and "huggingface-cli" not in r.err
    assert cli("--mirror", "hf://just-a-name", "list").code == 2


def test_the_shipped_community_copies_and_info_lists_every_source(cli):
    from densezoo.catalog import Catalog
    from densezoo.download.hf import check

    cat = Catalog.load()
    r50 = cat.get("R_50_FPN_s1x")
    assert r50.mirrors[0].startswith("hf://yisol/IDM-VTON@585a32e7")          # model repo
    assert r50.mirrors[1].startswith("hf://spaces/yisol/IDM-VTON@906d38c8")   # then the Space
    assert all(check(m) for m in r50.mirrors) and len(r50.mirrors) == 4
    assert not any("akhaliq" in m for a in cat.artifacts for m in a.mirrors)   # dead copy
    assert cat.get("R_101_FPN_DL_s1x").mirrors == ("hf://GooKSL/densepose/model_final_844d15.pkl",)
    info = cli("info", "R_50_FPN_s1x", "--json").items[0]
    roles = [s["role"] for s in info["sources"]]
    assert roles == ["origin", "hub copy", "hub copy", "hub copy", "hub copy"]
    assert all("published sha256 and size" in s["verified_by"] for s in info["sources"])
    pref = cli("info", "R_101_FPN_DL_s1x", "--json").items[0]["sources"][1]
    assert pref["role"] == "hub copy" and "a mirror copy" in pref["verified_by"]
    text = cli("info", "R_50_FPN_s1x").out
    assert "hub copy      hf://spaces/yisol/IDM-VTON@906d38c8" in text


def test_an_absurd_size_claim_skips_that_copy_not_the_fetch(server, hub, manifest, cli):
    """Issue 32.8: after the origin's 403, a Hub copy claiming X-Linked-Size of 1 PB (no
    size in the manifest) is that source's failure, and the next URL serves the file (the
    claim ended the fetch with exit 8 before the last URL was tried)."""
    hub.add("owner/repo/resolve/main/huge.pkl", HubFile(WEIGHTS, claim_size=10 ** 15))
    plain = server.add("/plain/huge.pkl", WEIGHTS)
    m = manifest({"name": "claimed", "url": _origin_403(server, "huge.pkl", WEIGHTS),
                  "md5": hashlib.md5(WEIGHTS).hexdigest(),
                  "mirrors": ["hf://owner/repo/huge.pkl", plain]})
    r = cli("--manifest", str(m), "fetch", "claimed", "--json")
    assert r.code == 0, r.err
    (row,) = r.items
    assert row["url"] == plain and Path(row["path"]).read_bytes() == WEIGHTS
