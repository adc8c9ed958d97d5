"""fetch --extract: unpack once, and never let a member land outside the target."""

import hashlib
import io
import tarfile

import pytest

from densezoo import Zoo


def tarball(members) -> bytes:
    """members: (TarInfo-configuring dict, data or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for spec, data in members:
            info = tarfile.TarInfo(spec["name"])
            for k, v in spec.items():
                setattr(info, k, v)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


GOOD = [({"name": "UV_data", "type": tarfile.DIRTYPE, "mode": 0o755}, None),
        ({"name": "UV_data/UV_Processed.mat", "mode": 0o4755}, b"uv" * 1000),
        ({"name": "UV_data/link.mat", "type": tarfile.SYMTYPE, "linkname": "UV_Processed.mat"},
         None)]


def serve(server, manifest, name, data):
    url = server.add(f"/densepose/{name}.tar.gz", data)
    return manifest({"name": name, "url": url, "md5": hashlib.md5(data).hexdigest()})


def test_extract_once_into_the_store(server, manifest, cli, cache_dir):
    m = str(serve(server, manifest, "densepose_uv_data", tarball(GOOD)))
    r = cli("--manifest", m, "fetch", "densepose_uv_data", "--extract")
    assert r.code == 0, r.err
    folder = r.out.strip()
    assert folder.startswith(str(cache_dir / "extracted"))
    mat = f"{folder}/UV_data/UV_Processed.mat"
    assert open(mat, "rb").read() == b"uv" * 1000
    assert open(f"{folder}/UV_data/link.mat", "rb").read() == b"uv" * 1000
    import os
    assert not os.stat(mat).st_mode & 0o4000            # setuid bit dropped
    mtime = os.stat(mat).st_mtime_ns
    (row,) = cli("--manifest", m, "fetch", "densepose_uv_data", "--extract", "--json").items
    assert row["extracted"]["state"] == "cached" and os.stat(mat).st_mtime_ns == mtime


HOSTILE = {
    "absolute": ([({"name": "/tmp/densezoo-pwned"}, b"x")], "absolute path"),
    "dotdot": ([({"name": "UV_data/../../../densezoo-pwned"}, b"x")], "'..'"),
    "symlink-out": ([({"name": "evil", "type": tarfile.SYMTYPE, "linkname": "../../../etc"}, None)],
                    "symlink pointing outside"),
    "symlink-abs": ([({"name": "evil", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, None)],
                    "absolute path"),
    "hardlink-out": ([({"name": "evil", "type": tarfile.LNKTYPE, "linkname": "../../etc/passwd"},
                       None)], "hard link to outside"),
    "device": ([({"name": "dev", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, None)],
               "device or fifo"),
    "fifo": ([({"name": "pipe", "type": tarfile.FIFOTYPE}, None)], "device or fifo"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused_whole(case, server, manifest, cli, cache_dir, tmp_path):
    members, reason = HOSTILE[case]
    data = tarball(GOOD[:2] + members)          # a good member first: nothing may land anyway
    m = str(serve(server, manifest, f"evil-{case}", data))
    r = cli("--manifest", m, "fetch", f"evil-{case}", "--extract")
    assert r.code == 9 and reason in r.err and r.err.count("error:") == 1
    assert r.out == ""
    extracted = cache_dir / "extracted"
    assert not extracted.exists() or not [p for p in extracted.rglob("*") if p.is_file()]
    assert not (tmp_path.parent / "densezoo-pwned").exists()


def test_extract_rejects_non_archives(server, manifest, blob):
    b = blob("plain")
    zoo = Zoo(manifests=[manifest({"name": "plain", "url": b.url, "md5": b.md5})])
    with pytest.raises(Exception, match="not a tar archive"):
        zoo.extract("plain")
