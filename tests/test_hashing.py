import hashlib
import io

import pytest

from densezoo.hashing import CHUNK, Digests, Expected, StreamHasher, hash_stream, parse_md5_sidecar


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK * 9 + 17])
def test_stream_hasher_matches_hashlib_inline_and_threaded(size):
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    got = hash_stream(io.BytesIO(data)).finish()
    assert got == Digests(size, hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())


def test_threaded_hasher_switches_midstream_without_double_counting():
    h = StreamHasher(thread_threshold=3)
    parts = [b"ab", b"cd", b"efgh", b"", b"ij"]
    for p in parts:
        h.update(p)
    data = b"".join(parts)
    assert h._workers is not None            # it did go threaded
    assert h.finish().md5 == hashlib.md5(data).hexdigest()


def test_hash_stream_limit_reads_only_the_prefix():
    h = hash_stream(io.BytesIO(b"0123456789"), limit=4)
    assert h.finish().md5 == hashlib.md5(b"0123").hexdigest()


MD5 = "3ae5a4b0c6b7d8e9f00112233445566a"


@pytest.mark.parametrize("text", [
    MD5, MD5 + "\n", f"{MD5}  R-50.pkl\n", f"{MD5} *R-50.pkl", MD5.upper() + "  x",
    f"MD5 (R-50.pkl) = {MD5}\n", "\ufeff" + MD5, f"\n\n  {MD5}  \n",
])
def test_sidecar_formats(text):
    assert parse_md5_sidecar(text) == MD5
    assert parse_md5_sidecar(text.encode()) == MD5       # bytes are decoded (Detectron #237)


@pytest.mark.parametrize("text", ["", "<html>Access Denied</html>", MD5[:-1], "zz" * 16])
def test_sidecar_garbage_is_rejected(text):
    with pytest.raises(ValueError):
        parse_md5_sidecar(text)


def test_expected_checks_every_known_value():
    d = Digests(3, hashlib.md5(b"abc").hexdigest(), hashlib.sha256(b"abc").hexdigest())
    assert Expected(size=3, md5=d.md5, sha256=d.sha256, md5_prefix=d.md5[:6]).mismatch(d) is None
    assert Expected(size=4).mismatch(d)[0] == "size"
    assert Expected(md5="0" * 32).mismatch(d)[0] == "md5"
    assert Expected(md5=d.md5, sha256="0" * 64).mismatch(d)[0] == "sha256"
    assert Expected(md5_prefix="ffffff").mismatch(d) == ("md5-prefix", "ffffff", d.md5[:6])
    assert not Expected().has_checksum and Expected(md5_prefix="abcdef").has_checksum
