"""Issue 19.10: tar header records are read under a cap, and the unpacked-bytes cap is
applied while decompressing.  A 0.3 MB .tar.gz whose GNU long-name record declares
300 MB took tarfile (and so fetch's content check and --extract) to ~340 MB of memory."""

import gzip
import io
import hashlib
import json
import subprocess
import sys
import tarfile

import pytest

from densezoo.content.tarstream import TarBombError
from densezoo.content.unpack import Limits, extract_once
from densezoo.hashing import Digests


def long_name_bomb(path, declared: int = 300 * 2**20) -> bytes:
    info = tarfile.TarInfo("././@LongLink")
    info.type = tarfile.GNUTYPE_LONGNAME
    info.size = declared
    with gzip.open(path, "wb", compresslevel=9) as g:
        g.write(info.tobuf(tarfile.USTAR_FORMAT))
        zeros = bytes(1 << 20)
        for _ in range(declared >> 20):
            g.write(zeros)
        real = tarfile.TarInfo("a.txt")
        real.size = 5
        g.write(real.tobuf(tarfile.USTAR_FORMAT) + b"hello" + bytes(507) + bytes(1024))
    return path.read_bytes()


def _peak_rss_mb(args: list[str], env: dict) -> tuple[int, str, float]:
    """Run the CLI in a fresh parent whose only child it is; that child's peak RSS."""
    probe = ("import resource, subprocess, sys; "
             "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "print(p.returncode); print(p.stderr.replace(chr(10), ' ')); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "densezoo",
                          *args], capture_output=True, text=True, env=env, timeout=120).stdout
    code, err, rss = out.splitlines()
    return int(code), err, float(rss)


def test_a_long_name_bomb_is_refused_by_fetch_in_bounded_memory(server, manifest, tmp_path,
                                                                 cache_dir, monkeypatch):
    import os

    data = long_name_bomb(tmp_path / "bomb.tar.gz")
    assert len(data) < 400_000
    url = server.add("/zoo/UV_data.tar.gz", data)
    m = manifest({"name": "uv_bomb", "url": url, "md5": hashlib.md5(data).hexdigest()})
    env = {**os.environ, "DENSEZOO_MAX_UNPACK_BYTES": str(1 << 20)}
    code, err, rss = _peak_rss_mb(["--manifest", str(m), "fetch", "uv_bomb", "--extract"], env)
    assert code != 0 and "memory bomb" in err, err
    assert rss < 150, f"peak RSS {rss:.0f} MB"            # tarfile alone needed ~340 MB
    assert not list((cache_dir / "extracted").rglob("a.txt"))


def test_extract_applies_the_unpacked_cap_while_decompressing(tmp_path):
    """Headers that understate: many 3 MB long-name records (each under the per-read
    cap) are counted as they are decompressed, not as the headers declare."""
    path = tmp_path / "many.tar.gz"
    with gzip.open(path, "wb") as g:
        for i in range(40):
            info = tarfile.TarInfo("././@LongLink")
            info.type = tarfile.GNUTYPE_LONGNAME
            info.size = 3 << 20
            g.write(info.tobuf(tarfile.USTAR_FORMAT) + bytes(3 << 20))
        real = tarfile.TarInfo("a.txt")
        real.size = 5
        g.write(real.tobuf(tarfile.USTAR_FORMAT) + b"hello" + bytes(507) + bytes(1024))
    data = path.read_bytes()
    digests = Digests(len(data), hashlib.md5(data).hexdigest(), None)
    with pytest.raises(TarBombError, match="decompresses past"):
        extract_once(path, tmp_path / "out", digests,
                     limits=Limits(max_bytes=1 << 20, max_members=10), space_check=False)
    assert not (tmp_path / "out").exists()


def test_ordinary_archives_still_extract(tmp_path):
    path = tmp_path / "ok.tar.gz"
    with tarfile.open(path, "w:gz") as t:
        for name, size in (("UV_data/a.bin", 3_000_000), ("UV_data/" + "n" * 200, 10)):
            info = tarfile.TarInfo(name)
            info.size = size
            t.addfile(info, io.BytesIO(b"x" * size))
    data = path.read_bytes()
    digests = Digests(len(data), hashlib.md5(data).hexdigest(), None)
    assert extract_once(path, tmp_path / "out", digests)
    assert (tmp_path / "out" / "UV_data" / "a.bin").stat().st_size == 3_000_000
    stamp = json.loads((tmp_path / "out" / ".densezoo-extracted.json").read_text())
    assert stamp["md5"] == digests.md5
