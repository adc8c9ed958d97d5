"""Operating densezoo: export: link modes, layouts, overwrite rules."""

import hashlib
import os
from pathlib import Path

import pytest

from conftest import entry
from test_extract import GOOD, tarball


def fetched(cli, m, *names):
    r = cli("--manifest", str(m), "fetch", *names)
    assert r.code == 0, r.err
    return r.out.split()


# -- export --------------------------------------------------------------------------------

@pytest.mark.parametrize("link", ["symlink", "hardlink", "copy"])
def test_export_link_modes(link, cli, blob, manifest, tmp_path):
    b = blob("ex")
    m = manifest(entry(b))
    r = cli("--manifest", str(m), "export", "ex", "--to", str(tmp_path / "out"), "--link", link)
    assert r.code == 0, r.err
    dest = Path(r.out.strip())
    assert dest == tmp_path / "out" / "ex.bin" and dest.read_bytes() == b.data
    src = Path(cli("--manifest", str(m), "path", "ex").out.strip())
    assert dest.is_symlink() == (link == "symlink")
    assert os.path.samefile(dest, src) == (link != "copy")
    assert cli("--manifest", str(m), "export", "ex", "--to", str(tmp_path / "out"),
               "--link", link).code == 0          # idempotent


def test_export_refuses_to_overwrite_a_different_file(cli, blob, manifest, tmp_path):
    b = blob("ow")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "ow.bin").write_bytes(b"my own file")
    m = manifest(entry(b))
    r = cli("--manifest", str(m), "export", "ow", "--to", str(tmp_path / "out"))
    assert r.code == 1 and "--force" in r.err
    assert (tmp_path / "out" / "ow.bin").read_bytes() == b"my own file"
    assert cli("--manifest", str(m), "export", "ow", "--to", str(tmp_path / "out"),
               "--force").code == 0


def test_export_same_basenames_get_a_folder_each(cli, server, manifest, tmp_path):
    a = server.add("/r50/model_final.pkl", b"\x80\x02}q\x00.")       # tiny valid pickles
    x = server.add("/x101/model_final.pkl", b"\x80\x02]q\x00.")
    m = manifest({"name": "a", "url": a, "md5": hashlib.md5(b"\x80\x02}q\x00.").hexdigest()},
                 {"name": "x", "url": x, "md5": hashlib.md5(b"\x80\x02]q\x00.").hexdigest()})
    r = cli("--manifest", str(m), "export", "a", "x", "--to", str(tmp_path / "o"))
    assert sorted(r.out.split()) == [str(tmp_path / "o" / "a" / "model_final.pkl"),
                                     str(tmp_path / "o" / "x" / "model_final.pkl")]


def test_export_densepose_layout(cli, server, manifest, tmp_path):
    uv = tarball(GOOD)
    coco = b'{"images": []}'
    m = manifest({"name": "densepose_uv_data", "url": server.add("/d/uv.tar.gz", uv),
                  "md5": hashlib.md5(uv).hexdigest(), "kind": "data"},
                 {"name": "densepose_coco_2014_minival", "kind": "annotations",
                  "url": server.add("/d/densepose_coco_2014_minival.json", coco),
                  "md5": hashlib.md5(coco).hexdigest()})
    root = tmp_path / "DensePose"
    r = cli("--manifest", str(m), "export", "densepose_uv_data", "densepose_coco_2014_minival",
            "--to", str(root), "--layout", "densepose")
    assert r.code == 0, r.err
    assert (root / "DensePoseData/UV_data/UV_Processed.mat").read_bytes() == b"uv" * 1000
    assert (root / "DensePoseData/DensePose_COCO/densepose_coco_2014_minival.json"
            ).read_bytes() == coco


def test_hardlink_across_filesystems_falls_back_to_copy(cli, blob, manifest, tmpfs):
    mnt = tmpfs("4m")
    b = blob("xdev")
    r = cli("--manifest", str(manifest(entry(b))), "export", "xdev", "--to", str(mnt),
            "--link", "hardlink")
    assert r.code == 0 and "copied because hardlinks are not possible" in r.err
    assert (mnt / "xdev.bin").read_bytes() == b.data
