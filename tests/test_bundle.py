"""Operating densezoo: bundle and import."""

import hashlib
import tarfile
from pathlib import Path


from conftest import entry


def fetched(cli, m, *names):
    r = cli("--manifest", str(m), "fetch", *names)
    assert r.code == 0, r.err
    return r.out.split()


# -- bundles ---------------------------------------------------------------------------------

def test_bundle_and_import_round_trip(cli, blob, manifest, tmp_path, server):
    a, b = blob("ba", 80_000), blob("bb", 90_000)
    m = manifest(entry(a), entry(b, md5=False, size=False))
    fetched(cli, m, "ba", "bb")
    zoo_tar = tmp_path / "zoo.tar"
    assert cli("--manifest", str(m), "bundle", "ba", "bb", "-o", str(zoo_tar)).code == 0
    with tarfile.open(zoo_tar) as t:
        names = t.getnames()
    assert "densezoo-bundle.yaml" in names and "MD5SUMS" in names
    air = str(tmp_path / "airgapped")
    server.reset()                                                  # no network needed below
    r = cli("--cache-dir", air, "import", str(zoo_tar), "--json")
    assert r.code == 0, r.err
    assert [x["state"] for x in r.items] == ["imported", "imported"]
    r = cli("--offline", "--cache-dir", air, "--manifest", r.json["summary"]["manifest"], "verify",
            "ba", "bb")
    assert r.code == 0 and r.out.count("ok") == 2
    assert server.requests == []


def test_tampered_bundle_is_refused_per_file(cli, blob, manifest, tmp_path):
    a = blob("tam", 60_000)
    m = manifest(entry(a))
    fetched(cli, m, "tam")
    zoo_tar = tmp_path / "zoo.tar"
    cli("--manifest", str(m), "bundle", "tam", "-o", str(zoo_tar))
    data = bytearray(zoo_tar.read_bytes())
    i = data.find(a.data[:64])
    data[i + 10] ^= 0xFF
    zoo_tar.write_bytes(bytes(data))
    air = tmp_path / "air"
    r = cli("--cache-dir", str(air), "import", str(zoo_tar))
    assert r.code == 4 and "md5 mismatch" in r.err
    assert not [p for p in (air / "files").rglob("*") if p.is_file()]


def _handmade_bundle(path: Path, files: dict[str, bytes], entries: list[dict]) -> None:
    """A bundle as an attacker would write it: its own manifest and checksums all agree."""
    import io as _io

    import yaml

    with tarfile.open(path, "w") as t:
        for arc, data in {**files, "densezoo-bundle.yaml": yaml.safe_dump(
                {"schema": 1, "zoo": "bundle", "artifacts": entries}).encode()}.items():
            info = tarfile.TarInfo(arc)
            info.size = len(data)
            t.addfile(info, _io.BytesIO(data))


def test_self_consistent_bundle_with_a_hostile_pickle_is_refused(cli, tmp_path):
    """Bundle import goes through the same intake as a download, pickle scan included."""
    from test_pickle_scan import Planted

    import pickle

    evil = pickle.dumps({"model": Planted()}, protocol=2)
    url = "https://dl.fbaipublicfiles.com/densepose/evil_model.pkl"
    zoo_tar = tmp_path / "evil.tar"
    _handmade_bundle(zoo_tar, {"files/dl.fbaipublicfiles.com/densepose/evil_model.pkl": evil},
                     [{"name": "evil_model", "url": url, "md5": hashlib.md5(evil).hexdigest(),
                       "size": len(evil)}])
    air = tmp_path / "air"
    r = cli("--cache-dir", str(air), "import", str(zoo_tar))
    assert r.code == 9 and "unsafe pickle" in r.err and ".system" in r.err, r.err
    assert not [p for p in (air / "files").rglob("*") if p.is_file()]     # nothing added
    kept = [p for p in (air / "bad").rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in kept] == [evil]                        # kept as evidence
