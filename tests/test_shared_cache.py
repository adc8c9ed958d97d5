"""Issue 19.4/19.5: a cache others can write is not a trust root.  A stat memo is only
believed for files that are this user's alone, and no component below the store root
may be a symlink the store did not make."""

import hashlib
import json
import os
import pickle
from pathlib import Path

from conftest import entry
from densezoo.disk import stat_memo
from test_pickle_archive_trust_safety import PLANT


def _forge(path: Path, evil: bytes, size: int, md5: str) -> None:
    """What a co-tenant with write access does: replace the bytes, then write a memo of
    the new file beside the published digests, so a quick check says 'unchanged'."""
    path.chmod(0o666)
    path.write_bytes(evil)
    meta_path = path.with_name(path.name + ".dzmeta")
    meta_path.chmod(0o666)
    meta = json.loads(meta_path.read_text())
    meta.update({"stat": stat_memo(path), "size": size, "md5": md5})
    meta_path.write_text(json.dumps(meta))


def test_a_forged_memo_in_a_writable_cache_hands_out_nothing(server, manifest, cli, blob,
                                                             cache_dir):
    good = pickle.dumps({"w": list(range(2000))}, protocol=2)
    md5 = hashlib.md5(good).hexdigest()
    url = server.add("/w/shared/model_final.pkl", good)
    m = manifest({"name": "shared", "url": url, "md5": md5, "size": len(good)})
    r = cli("--manifest", str(m), "fetch", "shared")
    assert r.code == 0, r.err
    path = Path(r.out.strip())
    _forge(path, PLANT, len(good), md5)
    q = cli("--manifest", str(m), "verify", "--quick")
    assert q.code == 4 and q.out.startswith("corrupt"), q.out
    p = cli("--manifest", str(m), "path", "shared")
    assert p.code == 6 and "failed its checksum" in p.err
    f = cli("--manifest", str(m), "fetch", "shared", "--json")
    assert f.code == 0 and f.items[0]["state"] == "downloaded"
    assert path.read_bytes() == good


def test_a_memo_of_my_own_private_files_is_still_used(manifest, cli, blob):
    b = blob("own_memo", 50_000)
    m = manifest(entry(b))
    assert cli("--manifest", str(m), "fetch", "own_memo").code == 0
    r = cli("--manifest", str(m), "verify", "--quick", "--json")
    assert r.items[0]["method"] == "quick"
    path = next(p for p in cli("--manifest", str(m), "path", "own_memo").out.split())
    os.chmod(path, 0o664)                                # group-writable: no longer alone
    assert cli("--manifest", str(m), "verify").code == 0   # a full check records a new memo
    r = cli("--manifest", str(m), "verify", "--quick", "--json")
    assert r.items[0]["method"] == "full"


def _tar_gz(files: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_a_planted_symlink_in_files_is_refused_and_nothing_leaves(server, manifest, cli,
                                                                 blob, cache_dir, tmp_path):
    b = blob("linked", 20_000)
    m = manifest(entry(b))
    outside = tmp_path / "outside"
    outside.mkdir()
    host = b.url.split("/")[2].replace(":", "_")
    (cache_dir / "files").mkdir(parents=True)
    (cache_dir / "files" / host).symlink_to(outside)            # a co-tenant's plant
    r = cli("--manifest", str(m), "fetch", "linked")
    assert r.code == 9 and f"files/{host}" in r.err and "symlink" in r.err, r.err
    assert list(outside.rglob("*")) == []
    assert cli("--manifest", str(m), "path", "linked").code == 9


def test_a_planted_symlink_in_extracted_is_refused(server, manifest, cli, cache_dir,
                                                   tmp_path):
    data = _tar_gz({"UV_data/a.txt": b"hello"})
    url = server.add("/zoo/uv.tar.gz", data)
    m = manifest({"name": "uv", "url": url, "md5": hashlib.md5(data).hexdigest()})
    outside = tmp_path / "outside"
    outside.mkdir()
    host = url.split("/")[2].replace(":", "_")
    (cache_dir / "extracted").mkdir(parents=True)
    (cache_dir / "extracted" / host).symlink_to(outside)
    r = cli("--manifest", str(m), "fetch", "uv", "--extract")
    assert r.code == 9 and f"extracted/{host}" in r.err, r.err
    assert list(outside.rglob("*")) == []
