"""One door into "trusted": a file already in the store is pinned only after the same
inspection a download gets, and a read-only command never pins at all."""

from __future__ import annotations

import pickle

from densezoo import Zoo

PLANT = b"cos\nsystem\n(S'echo pwned'\ntR."          # protocol 0: os.system("echo pwned")


def _planted(blob, manifest, data: bytes, name: str = "planted"):
    """An unpublished .pkl entry whose store slot already holds ``data`` (no pin)."""
    b = blob(name)
    b.path = b.path.rsplit("/", 1)[0] + f"/{name}.pkl"
    m = manifest({"name": name, "url": b.url.rsplit("/", 1)[0] + f"/{name}.pkl", "md5": None})
    zoo = Zoo(manifests=[m], default_manifests=False)
    art = zoo.artifact(name)
    slot = zoo.store.path_for(art)
    slot.parent.mkdir(parents=True, exist_ok=True)
    slot.write_bytes(data)
    return m, zoo, art, slot


def test_a_hostile_pickle_planted_in_the_store_is_refused_by_fetch_not_pinned(
        blob, manifest, cli, cache_dir):
    m, zoo, art, slot = _planted(blob, manifest, PLANT)
    r = cli("--manifest", str(m), "fetch", "planted")
    assert r.code == 9 and "os.system" in r.err, r.err
    assert zoo.trust.record_of(art).pin is None               # never trusted
    assert not slot.exists()                             # moved aside as evidence
    assert list((cache_dir / "bad").rglob("planted.pkl"))


def test_path_refuses_a_planted_hostile_pickle_and_moves_nothing(blob, manifest, cli):
    m, zoo, art, slot = _planted(blob, manifest, PLANT)
    r = cli("--manifest", str(m), "path", "planted")
    assert r.code == 9 and "os.system" in r.err, r.err
    assert "left in place" in r.err and "nothing was published" not in r.err   # says what it did
    assert slot.read_bytes() == PLANT and zoo.trust.record_of(art).pin is None


def test_path_on_an_unpinned_cached_file_warns_and_writes_nothing(blob, manifest, cli):
    good = pickle.dumps({"weights": [1.0, 2.0]}, protocol=2)
    m, zoo, art, slot = _planted(blob, manifest, good)
    before = sorted(p.name for p in slot.parent.iterdir())
    r = cli("--manifest", str(m), "path", "planted")
    assert r.code == 0 and r.out.strip() == str(slot), r.err
    assert "nothing vouches for it yet" in r.err and "densezoo fetch planted" in r.err
    assert zoo.trust.record_of(art).pin is None                # path never pins
    assert sorted(p.name for p in slot.parent.iterdir()) == before   # nor writes metadata
    r = cli("--manifest", str(m), "fetch", "planted", "--json")      # fetch pins, after a scan
    assert r.code == 0 and zoo.trust.record_of(art).pin.md5, r.err
    assert r.items[0]["strength"] == "copy-pinned"          # nobody knows who put it there


def test_a_pickle_renamed_by_filename_is_still_scanned(server, manifest, cli):
    """iopath keeps a file under the URL's last segment: `filename: x.bin` on a `.../x.pkl`
    URL is still read as a pickle by detectron2, so it is scanned as one."""
    url = server.add("/models/renamed.pkl", PLANT)
    m = manifest({"name": "renamed", "url": url, "md5": None, "filename": "renamed.bin"})
    r = cli("--manifest", str(m), "fetch", "renamed")
    assert r.code == 9 and "os.system" in r.err, r.err
    assert cli("--manifest", str(m), "path", "renamed").code == 6      # nothing published
