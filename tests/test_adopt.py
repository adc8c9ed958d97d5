"""Issue 21.3: adopting files already on disk -- by their bytes, through the intake door."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path


GOOD = pickle.dumps({"model": {"w": [0.25] * 3000}}, protocol=2)
OTHER = pickle.dumps({"model": {"w": [0.75] * 3000}}, protocol=2)
HOSTILE = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."


def _zoo(server, manifest):
    """Three entries: two published in full, one whose published md5 is a hostile pickle's
    (a poisoned or mistaken manifest: the scan must still refuse it)."""
    up = server.url("/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_162be9.pkl")
    return manifest(
        {"name": "r50", "url": up, "md5": hashlib.md5(GOOD).hexdigest(),
         "sha256": hashlib.sha256(GOOD).hexdigest(), "size": len(GOOD), "kind": "model"},
        {"name": "r101", "url": server.url("/densepose/r101/model_final_844d15.pkl"),
         "md5": hashlib.md5(OTHER).hexdigest(), "size": len(OTHER), "kind": "model"},
        {"name": "evil", "url": server.url("/densepose/evil/model_final_evil.pkl"),
         "md5": hashlib.md5(HOSTILE).hexdigest(), "size": len(HOSTILE), "kind": "model"})


def test_adopt_known_caches_and_a_project_folder_offline(server, manifest, cli, tmp_path,
                                                         monkeypatch, cache_dir):
    m = _zoo(server, manifest)
    # detectron2's iopath cache: URL path without the host.
    iopath = tmp_path / "fvcore"
    f1 = iopath / "densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_162be9.pkl"
    f1.parent.mkdir(parents=True)
    f1.write_bytes(GOOD)
    (f1.parent / "model_final_162be9.pkl.tmp").write_bytes(GOOD[:100])      # ignored
    monkeypatch.setenv("FVCORE_CACHE", str(iopath))
    # The Hub's cache: blobs named by sha256, snapshots linking to them.
    hub = tmp_path / "hf" / "hub" / "models--someone--VTON"
    blob = hub / "blobs" / hashlib.sha256(OTHER).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_bytes(OTHER)
    snap = hub / "snapshots" / ("a" * 40) / "densepose" / "model_final_844d15.pkl"
    snap.parent.mkdir(parents=True)
    snap.symlink_to(blob)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # A project folder: a renamed good copy, a placeholder and a hostile pickle, both
    # named like the real file.
    proj = tmp_path / "project" / "ckpt" / "densepose"
    proj.mkdir(parents=True)
    (proj / "densepose_model.pkl").write_bytes(GOOD)
    (proj / "model_final_162be9.pkl").write_bytes(b"put model_final_162be9.pkl here")
    (proj / "model_final_evil.pkl").write_bytes(HOSTILE)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()
              and not p.is_symlink() and cache_dir not in p.parents}

    dry = cli("--manifest", str(m), "adopt", "--known", str(tmp_path / "project"), "--dry-run",
              "--json")
    assert {i["state"] for i in dry.items} >= {"would adopt"}
    assert not (cache_dir / "files").exists() or not any((cache_dir / "files").rglob("*.pkl"))

    r = cli("--manifest", str(m), "--offline", "adopt", "--known", str(tmp_path / "project"),
            "--json")
    assert r.code == 9, r.err                                    # the hostile one
    by_path = {i["path"]: i for i in r.items}
    # The renamed copy in the project (walked first) and the iopath one are the same
    # bytes: one is adopted, the other then already cached.
    assert {by_path[str(f1)]["state"], by_path[str(proj / "densepose_model.pkl")]["state"]} \
        == {"adopted", "already cached"}
    assert (by_path[str(blob)]["state"], by_path[str(blob)]["name"]) == ("adopted", "r101")
    ph = by_path[str(proj / "model_final_162be9.pkl")]
    assert ph["state"] == "no match" and "placeholder" in ph["reason"]
    evil = by_path[str(proj / "model_final_evil.pkl")]
    assert evil["state"] == "refused" and "posix.system" in evil["reason"], evil
    assert r.json["summary"]["adopted"] == 2 and r.json["summary"]["refused"] == 1
    assert all(".tmp" not in i["path"] for i in r.items)
    assert server.requests == []                                 # nothing downloaded
    # Now usable offline, verified; the originals are untouched and still where they were.
    for name, data in (("r50", GOOD), ("r101", OTHER)):
        p = cli("--manifest", str(m), "--offline", "path", name)
        assert p.code == 0 and Path(p.out.strip()).read_bytes() == data
    assert cli("--manifest", str(m), "--offline", "path", "evil").code == 6
    assert cli("--manifest", str(m), "verify", "r50", "r101").code == 0
    after = {p: p.read_bytes() for p in before}
    assert after == before


def test_adopt_a_renamed_file_and_explain_a_stranger(server, manifest, cli, tmp_path):
    m = _zoo(server, manifest)
    renamed = tmp_path / "weights.bin"
    renamed.write_bytes(GOOD)
    stranger = tmp_path / "notes.txt"
    stranger.write_bytes(b"hello")
    r = cli("--manifest", str(m), "adopt", str(renamed), str(stranger))
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith("adopted         r50") and str(renamed) in lines[0]
    assert lines[1].startswith("no match") and "notes.txt" in lines[1]
    assert "2 files looked at: 1 adopted, 1 no match" in r.err
    assert renamed.read_bytes() == GOOD and os.path.exists(renamed)
    r = cli("--manifest", str(m), "adopt", str(tmp_path / "nope"))
    assert r.code == 2 and "no such file or folder" in r.err


def test_an_entry_with_only_an_md5_prefix_cannot_be_adopted(server, manifest, cli, tmp_path):
    m = manifest({"name": "pref", "url": server.url("/x/model_final_abc.pkl"), "md5": None,
                  "md5_prefix": hashlib.md5(GOOD).hexdigest()[:6]})
    f = tmp_path / "model_final_abc.pkl"
    f.write_bytes(GOOD)
    r = cli("--no-default-manifests", "--manifest", str(m), "adopt", str(f), "--json")
    (item,) = r.items
    assert item["state"] == "no match" and "no full checksum" in item["reason"]


def test_adopting_leaves_an_interrupted_downloads_bytes_alone(server, manifest, cli, tmp_path,
                                                              cache_dir):
    """A same-size file that is not the entry is matched in a partial of its own: the
    partial an interrupted download left (to resume from) is neither taken nor lost."""
    from densezoo import Zoo

    m = _zoo(server, manifest)
    zoo = Zoo(manifests=[str(m)])
    art = zoo.artifact("r50")
    slot = zoo.store.layout.slot(art)
    slot.parent.mkdir(parents=True, exist_ok=True)
    slot.write_bytes(GOOD[:1000])                         # an interrupted download's bytes
    stranger = tmp_path / "same_size.pkl"
    stranger.write_bytes(GOOD[:-2] + b"x.")                 # r50's size, other bytes
    r = cli("--manifest", str(m), "adopt", str(stranger), "--json")
    assert r.items[0]["state"] == "no match"
    assert slot.read_bytes() == GOOD[:1000]
