"""Issue 33.3 and 33.4: what is inside an archive goes through the same door as a
download, and an unpacked folder is checked against what was unpacked into it.

33.3: a mirror serves the shipped ``densepose_eval_data`` tarball (no published checksum:
only a warning) with an ``os.system`` pickle inside; ``fetch --extract``, ``export
--layout densepose`` (it lands at ``DensePoseData/eval_data/Pdist_matrix.pkl``) and
``verify --scan`` all exited 0.  33.4: a co-tenant edits an unpacked file and adds a
pickle; the next ``fetch --extract`` handed the folder out and ``verify --scan`` said ok."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

from test_pickle_archive_trust_safety import PLANT
from test_shared_cache import _tar_gz

GOOD_PKL = pickle.dumps({"pdist": list(range(100))}, protocol=2)


def _eval_data(server, manifest, files: dict[str, bytes], *, md5: bool = False):
    data = _tar_gz(files)
    url = server.add("/densepose/densepose_eval_data.tar.gz", data)
    m = manifest({"name": "densepose_eval_data", "url": url, "kind": "data",
                  "md5": hashlib.md5(data).hexdigest() if md5 else None})
    return ("--no-default-manifests", "--manifest", str(m)), data


HOSTILE = {"eval_data/Pdist_matrix.pkl": PLANT, "eval_data/README": b"eval data\n"}


def test_fetch_extract_refuses_an_os_system_pickle_inside_a_tarball(server, manifest, cli,
                                                                   cache_dir):
    base, _ = _eval_data(server, manifest, HOSTILE)
    r = cli(*base, "fetch", "densepose_eval_data", "--extract")
    assert r.code == 9, r.err
    assert "Pdist_matrix.pkl" in r.err and "unsafe pickle" in r.err and "system" in r.err
    assert not list((cache_dir / "extracted").rglob("*.pkl"))      # nothing left behind


def test_export_densepose_layout_refuses_it_too(server, manifest, cli, tmp_path):
    base, _ = _eval_data(server, manifest, HOSTILE)
    to = tmp_path / "checkout"
    r = cli(*base, "export", "densepose_eval_data", "--layout", "densepose", "--to", str(to))
    assert r.code == 9 and "Pdist_matrix.pkl" in r.err, r.err
    assert not (to / "DensePoseData" / "eval_data" / "Pdist_matrix.pkl").exists()


def test_verify_scan_reads_the_pickles_inside_a_cached_tarball(server, manifest, cli):
    base, _ = _eval_data(server, manifest, HOSTILE)
    assert cli(*base, "fetch", "densepose_eval_data").code == 0      # not unpacked: not read
    r = cli(*base, "verify", "--scan", "--json")
    assert r.code == 9, r.out
    item = r.items[0]
    assert item["state"] == "unsafe" and "Pdist_matrix.pkl" in item["detail"], item


def test_a_safe_pickle_inside_a_tarball_is_unpacked(server, manifest, cli, cache_dir):
    base, _ = _eval_data(server, manifest, {"eval_data/Pdist_matrix.pkl": GOOD_PKL})
    r = cli(*base, "fetch", "densepose_eval_data", "--extract")
    assert r.code == 0, r.err
    assert (Path(r.out.strip()) / "eval_data" / "Pdist_matrix.pkl").read_bytes() == GOOD_PKL
    assert cli(*base, "verify", "--scan").code == 0


def _edit_folder(folder: Path) -> None:
    """What a co-tenant does to an unpacked folder: edit a file, add a pickle."""
    (folder / "eval_data" / "README").write_bytes(b"eval data, edited\n")
    (folder / "eval_data" / "extra.pkl").write_bytes(PLANT)


def test_an_edited_unpacked_folder_is_noticed_and_unpacked_again(server, manifest, cli):
    base, _ = _eval_data(server, manifest, {"eval_data/Pdist_matrix.pkl": GOOD_PKL,
                                             "eval_data/README": b"eval data\n"}, md5=True)
    r = cli(*base, "fetch", "densepose_eval_data", "--extract")
    folder = Path(r.out.strip())
    stamp = json.loads((folder / ".densezoo-extracted.json").read_text())
    assert stamp["tree"]["files"]["eval_data/README"] == [
        10, hashlib.sha256(b"eval data\n").hexdigest()]
    _edit_folder(folder)
    v = cli(*base, "verify", "--scan", "--json")
    assert v.code == 4, v.out
    assert "unpacked folder changed" in v.items[0]["detail"]
    assert "eval_data/README" in v.items[0]["detail"] and "extra.pkl" in v.items[0]["detail"]
    again = cli(*base, "fetch", "densepose_eval_data", "--extract", "--json")
    assert again.code == 0 and again.items[0]["extracted"]["state"] == "repaired"
    assert (folder / "eval_data" / "README").read_bytes() == b"eval data\n"
    assert not (folder / "eval_data" / "extra.pkl").exists()
    assert cli(*base, "verify", "--scan").code == 0
    assert cli(*base, "fetch", "densepose_eval_data", "--extract", "--json"
               ).items[0]["extracted"]["state"] == "cached"


def test_a_co_tenant_s_forged_stamp_is_not_believed(cotenant, server, manifest, cli,
                                                     monkeypatch):
    """Two uids: the folder is writable by the co-tenant (a cache shared with umask 000);
    they edit it and replace the stamp with one whose record matches their edit."""
    cache = cotenant.shared(cotenant.home / "cache")
    monkeypatch.setenv("DENSEZOO_CACHE_DIR", str(cache))
    base, _ = _eval_data(server, manifest, {"eval_data/Pdist_matrix.pkl": GOOD_PKL,
                                             "eval_data/README": b"eval data\n"}, md5=True)
    folder = Path(cli(*base, "fetch", "densepose_eval_data", "--extract").out.strip())
    for dirpath, dirs, names in os.walk(cache / "extracted"):
        for n in [*dirs, *names]:
            os.chmod(os.path.join(dirpath, n), 0o777)
    os.chmod(cache / "extracted", 0o777)
    stamp_path = folder / ".densezoo-extracted.json"
    forged = json.loads(stamp_path.read_text())
    forged["tree"]["files"]["eval_data/extra.pkl"] = [len(PLANT),
                                                      hashlib.sha256(PLANT).hexdigest()]
    staged = cotenant.home / "forged.json"
    staged.write_text(json.dumps(forged))
    staged.chmod(0o644)
    evil = cotenant.home / "extra.pkl"
    evil.write_bytes(PLANT)
    evil.chmod(0o644)
    cotenant.run("sh", "-c", f"cp {evil} {folder}/eval_data/extra.pkl && "
                             f"cp {staged} {stamp_path}.new && mv {stamp_path}.new {stamp_path}")
    assert os.stat(stamp_path).st_uid == cotenant.uid
    v = cli(*base, "verify", "--scan", "--json")
    assert v.code == 4 and "extra.pkl: added after unpacking" in v.items[0]["detail"], v.out
    again = cli(*base, "fetch", "densepose_eval_data", "--extract", "--json")
    assert again.items[0]["extracted"]["state"] == "repaired", again.out
    assert not (folder / "eval_data" / "extra.pkl").exists()
