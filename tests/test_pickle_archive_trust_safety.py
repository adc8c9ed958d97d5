"""A hostile mirror, archive or pickle gets no code, wrong bytes or secrets past densezoo.

Each check is made against the real consumer's behaviour: the pickle cases are fed
to CPython's own unpickler (with a find_class that records instead of importing)
to prove it would reach the planted import, and the archive cases are built the
way the published tarfile escapes build them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import socket
import struct
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from densezoo.content.pickle_scan import ALLOWED_GLOBALS, scan_bytes
from test_extract import GOOD, serve, tarball


class Recorder(pickle.Unpickler):
    """CPython's C unpickler, recording every import instead of performing it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data), encoding="latin1")     # as detectron2 loads
        self.imports: list[tuple[str, str]] = []

    def find_class(self, module: str, name: str):
        self.imports.append((module, name))
        return lambda *a, **k: ("called", module, name)


def consumer_imports(data: bytes) -> list[tuple[str, str]]:
    """What pickle.load would import from ``data`` before it finishes or fails."""
    r = Recorder(data)
    try:
        r.load()
    except Exception:   # noqa: BLE001 - a failure later in the stream does not undo imports
        pass
    return r.imports


PLANT = b"cos\nsystem\n(S'echo pwned'\ntR."          # protocol 0: os.system("echo pwned")

# Prefixes CPython's unpickler accepts but pickletools (the old scanner) stopped at.
DIVERGENT = {
    "int-base0-hex": b"I0x10\n0",
    "int-digits-then-nul": b"I12\x00junk\n0",
    "long-base0": b"L0x10L\n0",
    "non-ascii-string": b"S'\xe9t\xe9'\n0",
    "put-get-spaces": b"Np 0\n0g 0 \n0",
}


@pytest.mark.parametrize("case", sorted(DIVERGENT))
def test_parser_divergence_cannot_hide_an_import(case, tmp_path):
    data = DIVERGENT[case] + PLANT
    assert ("os", "system") in consumer_imports(data)           # the real loader gets there
    report = scan_bytes(data)
    assert not report.ok
    assert any("os.system" in f.detail for f in report.findings) or report.error


def test_huge_declared_length_is_refused_cleanly(server, manifest, cli, cache_dir):
    data = b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62)          # 12 bytes: BINBYTES8 2**62
    report = scan_bytes(data)
    assert not report.ok and "declares" in report.error
    url = server.add("/w/huge.pkl", data)
    m = manifest({"name": "huge", "url": url, "md5": hashlib.md5(data).hexdigest()})
    r = cli("--manifest", str(m), "fetch", "huge")
    assert r.code == 9 and "unexpected" not in r.err and "declares" in r.err
    assert not [p for p in (cache_dir / "files").rglob("*") if ".dzpart" in p.name]


def test_trailing_bytes_after_stop_are_unsafe():
    assert not scan_bytes(pickle.dumps([1]) + b"\x00").ok
    assert scan_bytes(pickle.dumps([1])).ok


# Opcode pieces an attacker can string together; the property below must hold for any mix.
PIECES = [b"(", b"0", b"1", b"2", b"N", b")", b"]", b"}", b"t", b"l", b"d", b"R", b"a", b"s",
          b"I0x10\n", b"I1\x00\n", b"S'\xe9'\n", b"Vos\n", b"Vsystem\n", b"U\x02os",
          b"X\x06\x00\x00\x00system", b"\x8c\x05numpy", b"\x8c\x05dtype", b"\x8c\x02os",
          b"\x8c\x06system", b"\x94", b"h\x00", b"h\x01", b"h\x02", b"p0\n", b"g0\n", b"g1\n",
          b"q\x01", b"\x93", b"\x85", b"\x86", b"cos\nsystem\n", b"cnumpy\ndtype\n",
          b"\x80\x04", b"\x80\x02", b"\x95\x05\x00\x00\x00\x00\x00\x00\x00", b".",
          b"N" * 40, b"0" * 40, b"]" * 33, b"0" * 70]      # long runs take the scanner's fast path


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=14))
def test_a_stream_the_scan_calls_safe_imports_only_allowed_names(pieces):
    """Differential property against CPython's unpickler: scan ok => every import allowed."""
    data = b"".join(pieces)
    if scan_bytes(data).ok:
        assert set(consumer_imports(data)) <= ALLOWED_GLOBALS, data


# -- frames: a file is read differently from bytes ----------------------------------------

def file_consumer_imports(data: bytes, tmp_dir) -> list[tuple[str, str]]:
    """What ``pickle.load(open(path, "rb"), encoding="latin1")`` imports -- detectron2's
    exact call: a real file (a BufferedReader, with ``peek``), not ``loads``."""
    import tempfile

    fd, name = tempfile.mkstemp(suffix=".pkl", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        with open(name, "rb") as f:
            r = Recorder.__new__(Recorder)
            pickle.Unpickler.__init__(r, f, encoding="latin1")
            r.imports = []
            try:
                r.load()
            except Exception:   # noqa: BLE001 - imports made before a failure still count
                pass
            return r.imports
    finally:
        os.unlink(name)


def frame_crossing_pickle() -> bytes:
    """Protocol 4: an 8 KiB frame whose last string's bytes run past its end.  A flat
    reading sees two harmless strings; ``pickle.load(f)`` drops the frame's tail, takes
    the string from after the frame and runs the ``os.system`` hidden in the second."""
    body = b"N0" * 4100 + b"U" + bytes([10]) + b"AAA"
    hidden = b"0cos\nsystem\n(S'echo pwned'\ntR0"
    after = b"B" * 7 + b"0U" + bytes([len(hidden)]) + hidden + b"N."
    return b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body + after


def test_an_argument_crossing_a_frame_end_is_unsafe_everywhere(server, manifest, cli, cache_dir,
                                                               tmp_path):
    data = frame_crossing_pickle()
    assert ("os", "system") in file_consumer_imports(data, tmp_path)   # the real consumer
    report = scan_bytes(data)
    assert not report.ok and "past the end of the frame" in report.error
    f = tmp_path / "framed.pkl"
    f.write_bytes(data)
    assert cli("scan", str(f)).code == 9
    url = server.add("/w/framed/model_final.pkl", data)
    m = manifest({"name": "framed", "url": url, "md5": None})        # would be pinned
    r = cli("--manifest", str(m), "fetch", "framed")
    assert r.code == 9 and "frame" in r.err
    assert cli("--manifest", str(m), "info", "framed", "--json").items[0]["pin"] is None
    assert not [p for p in (cache_dir / "files").rglob("model_final.pkl")]


def test_a_frame_inside_an_unfinished_frame_is_unsafe():
    inner = b"\x95" + struct.pack("<Q", 2) + b"N."
    data = b"\x80\x04\x95" + struct.pack("<Q", len(inner) + 2) + b"N0" + inner
    assert "before the frame ending" in scan_bytes(data).error


@pytest.mark.parametrize("protocol", [4, 5])
def test_real_framed_pickles_still_pass(protocol):
    """What CPython's pickler writes: frames end on opcode boundaries, large bytes
    outside any frame."""
    weights = {"blobs": {f"conv{i}_w": bytes(range(256)) * (40 + i) for i in range(60)},
               "names": [f"layer{i}" * 30 for i in range(400)], "big": b"\x01" * 300_000}
    data = pickle.dumps(weights, protocol=protocol)
    assert b"\x95" in data and scan_bytes(data).ok


# Pieces that make a frame boundary matter: counted strings whose payload is itself a
# planted import (what a flat reading swallows and a framed reading may execute).
FRAME_PIECES = PIECES + [b"U\x05", b"U\x0b", b"U\x0c", b"\x8c\x08", b"B\x06\x00\x00\x00",
                         b"U\x0bcos\nsystem\n", b"U\x0ccos\nsystem\n0", b"0U\x0b",
                         b"(S'x'\ntR", b"0cos\nsystem\n", b"AAAA", b"\x80\x04"]
FUZZ_EXAMPLES = int(os.environ.get("DENSEZOO_FUZZ_EXAMPLES", "300"))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.sampled_from(FRAME_PIECES), max_size=16),
       frames=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=3))
def test_framed_streams_the_scan_calls_safe_import_only_allowed_names(pieces, frames, tmp_path):
    """The differential property with frames on, against the unpickler reading from bytes
    *and* from a real file: frames are inserted at drawn places with drawn lengths, so
    their ends fall anywhere, mid-argument included.  CI runs 300 examples;
    ``DENSEZOO_FUZZ_EXAMPLES`` runs more."""
    data = b"".join(pieces)
    for at, length in frames:
        i = int(at * len(data))
        n = int(length * (len(data) - i))
        data = data[:i] + b"\x95" + struct.pack("<Q", n) + data[i:]
    if scan_bytes(data).ok:
        imports = set(consumer_imports(data)) | set(file_consumer_imports(data, tmp_path))
        assert imports <= ALLOWED_GLOBALS, data


STRING_OPS = {b"U": (1, False), b"\x8c": (1, False), b"X": (4, False), b"T": (4, True)}
# What the scanner's reading swallows as a string right after the frame: (pop?, opcode).
SWALLOW = [(b"", b"U"), (b"0", b"U"), (b"", b"X"), (b"0", b"X"), (b"0", b"T")]
HIDDEN = [b"cos\nsystem\n(S'echo pwned'\ntR", b"csubprocess\nPopen\n(S'id'\ntR",
          b"\x8c\x08builtins\x8c\x04eval\x93(S'1'\ntR"]


@settings(max_examples=FUZZ_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(op=st.sampled_from(sorted(STRING_OPS)), swallow=st.sampled_from(SWALLOW),
       hidden=st.sampled_from(HIDDEN), extra=st.integers(1, 120),
       filler=st.one_of(st.integers(0, 40), st.integers(4090, 4200)))
def test_strings_crossing_a_frame_end_never_hide_an_import(op, swallow, hidden, extra, filler,
                                                           tmp_path):
    """The family the frame divergence lives in, with drawn parameters: a counted string
    whose bytes run ``j`` past its frame's end, arranged so that a flat reading swallows
    a planted import as a second string while ``pickle.load`` executes it.  Small frames
    diverge for in-memory reads, frames over ~8 KiB for real files; both readers are
    asked.  On the scanner before frames were modelled this fails at once."""
    width, _ = STRING_OPS[op]
    pop, sw_op = swallow
    sw_width = STRING_OPS[sw_op][0]
    code = b"0" + hidden + b"0"                      # pop the dropped string, call, pop
    header = pop + sw_op + len(code).to_bytes(sw_width, "little")
    j = len(header)                                  # bytes of the string inside the frame
    n = j + extra
    body = b"N0" * filler + op + n.to_bytes(width, "little") + b"A" * j
    after = b"B" * extra + header + code + b"N."
    data = b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body + after
    if scan_bytes(data).ok:
        imports = set(consumer_imports(data)) | set(file_consumer_imports(data, tmp_path))
        assert imports <= ALLOWED_GLOBALS, data


def test_divergent_pickle_is_refused_by_fetch_scan_and_verify(server, manifest, cli, cache_dir,
                                                              tmp_path):
    data = DIVERGENT["int-base0-hex"] + PLANT
    url = server.add("/w/evil/model_final.pkl", data)
    m = manifest({"name": "evil", "url": url, "md5": hashlib.md5(data).hexdigest()})
    r = cli("--manifest", str(m), "fetch", "evil")
    assert r.code == 9 and "os.system" in r.err
    assert cli("--manifest", str(m), "path", "evil").code == 6
    f = tmp_path / "evil.pkl"
    f.write_bytes(data)
    assert cli("scan", str(f)).code == 9
    assert cli("--manifest", str(m), "fetch", "evil", "--no-scan").code == 0   # explicit opt-out
    r = cli("--manifest", str(m), "verify", "--scan", "evil")
    assert r.code == 9 and "unsafe" in r.out


# -- archives ------------------------------------------------------------------------------

def _sym(name, target):
    return ({"name": name, "type": tarfile.SYMTYPE, "linkname": target}, None)


def _dir(name):
    return ({"name": name, "type": tarfile.DIRTYPE, "mode": 0o755}, None)


def _cve_2025_4517_chain():
    """16 nested symlinked 247-character folders, a 254-character link, then an escape
    through them (the PATH_MAX class that beat tarfile's data filter)."""
    members, path = [], ""
    step = "d" * 247
    for i in range(16):
        members.append(_dir(f"{path}{step}"))
        members.append(_sym(f"{path}{chr(ord('a') + i)}", step))
        path = f"{path}{chr(ord('a') + i)}/"
    link = "l" * 254
    members.append(_sym(f"{path}{link}", "../" * 16))
    members.append(_sym("escape", f"{path}{link}/../../../../../../../../../../../../../tmp"))
    members.append(({"name": "escape/densezoo-pwned"}, b"x"))
    return members


ARCHIVES = {
    "cve-2025-4517-chain": (_cve_2025_4517_chain(), "inside the symlink member"),
    "py3.10-dot-chain": ([_sym("p", "."), _sym("p/p/p/x", "../../.."),
                          ({"name": "x/densezoo-pwned"}, b"x")], "inside the symlink member"),
    "symlink-through-symlink": ([_sym("a", "UV_data"), _sym("b", "a/../../outside")],
                                "through another symlink"),
    "file-through-symlink": ([_dir("d"), _sym("link", "d"), ({"name": "link/f"}, b"x")],
                             "inside the symlink member"),
    "duplicate-over-symlink": ([_sym("x", "UV_data"), ({"name": "x"}, b"x")], "twice"),
}


@pytest.mark.parametrize("case", sorted(ARCHIVES))
def test_link_tricks_are_refused_on_every_python(case, server, manifest, cli, cache_dir,
                                                 tmp_path):
    members, reason = ARCHIVES[case]
    m = str(serve(server, manifest, f"a-{case}", tarball(GOOD[:2] + members)))
    r = cli("--manifest", m, "fetch", f"a-{case}", "--extract")
    assert r.code == 9 and reason in r.err, r.err
    assert "hostile" in r.err and r.out == ""
    leftovers = [p for p in (cache_dir / "extracted").rglob("*")] if (
        cache_dir / "extracted").exists() else []
    assert not [p for p in leftovers if not p.is_dir()]          # nothing left behind
    assert not os.path.lexists("/tmp/densezoo-pwned")


def test_unpack_caps_members_and_bytes(server, manifest, cli, monkeypatch):
    many = [({"name": f"f{i}"}, b"x") for i in range(50)]
    m = str(serve(server, manifest, "many", tarball(many)))
    monkeypatch.setenv("DENSEZOO_MAX_UNPACK_MEMBERS", "20")
    r = cli("--manifest", m, "fetch", "many", "--extract")
    assert r.code == 9 and "limit of 20 members" in r.err
    monkeypatch.delenv("DENSEZOO_MAX_UNPACK_MEMBERS")
    bomb = tarball([({"name": "zeros"}, b"\x00" * 3_000_000)])   # gzip: ~3 KB for 3 MB
    m = str(serve(server, manifest, "bomb", bomb))
    monkeypatch.setenv("DENSEZOO_MAX_UNPACK_BYTES", "1000000")
    r = cli("--manifest", m, "fetch", "bomb", "--extract")
    assert r.code == 9 and "unpacked size past 1000000" in r.err
    monkeypatch.setenv("DENSEZOO_MAX_UNPACK_BYTES", "lots")
    assert cli("--manifest", m, "fetch", "bomb", "--extract").code == 2


def test_extract_stamp_names_the_exact_bytes(server, manifest, cli):
    """md5-only entry: after the tarball changes, the folder must change too."""
    v1 = tarball([({"name": "v"}, b"one")])
    m = str(serve(server, manifest, "ver", v1))
    folder = cli("--manifest", m, "fetch", "ver", "--extract").out.strip()
    assert open(f"{folder}/v", "rb").read() == b"one"
    v2 = tarball([({"name": "v"}, b"two")])
    m = str(serve(server, manifest, "ver", v2))
    r = cli("--manifest", m, "fetch", "ver", "--extract", "--json")
    (row,) = r.items
    assert row["extracted"]["state"] == "extracted"
    assert open(f"{folder}/v", "rb").read() == b"two"


# -- mirrors are transport, not trust roots ---------------------------------------------------

def _dead_url(path: str) -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}{path}"


def test_a_mirror_cannot_vouch_for_its_own_bytes(server, manifest, cli, monkeypatch):
    """A tampered mirror serving the file and a matching .md5sum: upstream is down."""
    evil = pickle.dumps({"w": [0.0] * 10})
    up = "/detectron/ImageNetPretrained/MSRA/R-50.pkl"
    upstream = _dead_url(up)
    m = manifest({"name": "R50", "url": upstream, "md5": None, "md5_url": upstream + ".md5sum"})
    host = upstream.split("/")[2].replace(":", "_")
    server.add(f"/mirror/{host}{up}", evil)
    server.add(f"/mirror/{host}{up}.md5sum", f"{hashlib.md5(evil).hexdigest()}  R-50.pkl\n"
               .encode())
    monkeypatch.setenv("DENSEZOO_MIRROR", server.url("/mirror"))
    r = cli("--manifest", str(m), "--strict", "fetch", "R50")
    assert r.code == 9                                             # strict: nothing published
    r = cli("--manifest", str(m), "fetch", "R50", "--json")
    assert r.code == 0
    (row,) = r.items
    # not "verified", and not "origin-pinned": a mirror's bytes that nothing checked
    assert row["strength"] == "copy-pinned" and row["state"] == "downloaded"
    assert "could not be read from upstream" in r.err and "copy-pinned -- only" in r.err
    assert server.hits(f"/mirror/{host}{up}.md5sum") == []         # never asked the mirror
    info = cli("--manifest", str(m), "info", "R50", "--json").items[0]
    assert info["strength"] == "copy-pinned" and "sidecar_md5" not in (info["pin"] or {})
    assert info["pin"]["kind"] == "copy"


def test_a_stale_mirror_sidecar_is_never_remembered(server, manifest, cli, monkeypatch):
    good = pickle.dumps({"w": [1.0] * 10})
    up = server.add("/up/R-101.pkl", good)
    server.add("/up/R-101.pkl.md5sum", f"{hashlib.md5(good).hexdigest()}  R-101.pkl\n".encode())
    host = up.split("/")[2].replace(":", "_")
    server.add(f"/mirror/{host}/up/R-101.pkl.md5sum", b"0" * 32 + b"  R-101.pkl\n")  # stale
    monkeypatch.setenv("DENSEZOO_MIRROR", server.url("/mirror"))
    m = manifest({"name": "R101", "url": up, "md5": None, "md5_url": up + ".md5sum"})
    r = cli("--manifest", str(m), "fetch", "R101", "--json")
    assert r.code == 0, r.err
    assert r.items[0]["strength"] == "verified"
    pin = cli("--manifest", str(m), "info", "R101", "--json").items[0]["pin"]
    assert pin["sidecar_md5"] == hashlib.md5(good).hexdigest()
    assert cli("--manifest", str(m), "cache", "rm", "R101", "-y").code == 0
    assert cli("--manifest", str(m), "fetch", "R101").code == 0    # later fetches still work


# -- hosts and names --------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://../pins/x.bin", "http://a..b/x.bin",
                                 "http://-bad/x.bin", "http://./x.bin"])
def test_a_host_that_is_not_a_host_is_a_manifest_error(url, manifest, cli):
    m = manifest({"name": "h", "url": url, "md5": None})
    r = cli("--manifest", str(m), "fetch", "h")
    assert r.code == 7 and "invalid host" in r.err


@pytest.mark.parametrize("filename, needle", [("a\nb.pkl", "control characters"),
                                              ("x.dzmeta", "reserves"),
                                              ("x.pkl.dzpart", "reserves")])
def test_file_names_that_break_output_or_the_store(filename, needle, manifest, cli):
    m = manifest({"name": "f", "url": "https://h.example/a.pkl", "md5": None,
                  "filename": filename})
    r = cli("--manifest", str(m), "info", "f")
    assert r.code == 7 and needle in r.err


# -- secrets ---------------------------------------------------------------------------------

def test_credentials_and_tokens_never_leave_in_output_or_files(server, blob, manifest, cli,
                                                              cache_dir, tmp_path, monkeypatch):
    b = blob("sec")
    server.add(b.path + "?token=tok123", b.data)
    url = server.url(b.path).replace("http://", "http://alice:s3cr3t@") + "?token=tok123"
    mirror = server.url("/m").replace("http://", "http://bob:mirrorpw@")
    m = manifest({"name": "sec", "url": url, "md5": None, "mirrors": [mirror + "/x?sig=zz9"]})
    secrets = ("s3cr3t", "tok123", "mirrorpw", "zz9")
    outputs = []
    for args in (("-v", "fetch", "sec", "--json"), ("-v", "fetch", "sec"), ("info", "sec"),
                 ("info", "sec", "--json"), ("list", "--json"), ("list",),
                 ("cache", "ls", "--json"), ("pin", "--json"), ("doctor", "--no-probe", "--json"),
                 ("bundle", "sec", "-o", str(tmp_path / "b.tar")),
                 ("mirror", "build", str(tmp_path / "tree"), "sec", "--base-url",
                  "https://mirror.example/zoo")):
        r = cli("--manifest", str(m), *args)
        assert r.code == 0, (args, r.err)
        outputs.append(r.out + r.err)
    monkeypatch.setenv("DENSEZOO_MIRROR", mirror)
    outputs.append(cli("--manifest", str(m), "doctor").out)
    air = tmp_path / "air"
    r = cli("--cache-dir", str(air), "import", str(tmp_path / "b.tar"))
    assert r.code == 0, r.err
    outputs.append(r.out + r.err)
    with tarfile.open(tmp_path / "b.tar") as t:
        for member in t.getmembers():
            if member.name.endswith((".yaml", "SUMS")):
                outputs.append(t.extractfile(member).read().decode())
    for root in (cache_dir, air, tmp_path / "tree"):
        for p in root.rglob("*"):
            if p.is_file() and p.stat().st_size < 1_000_000:
                outputs.append(p.read_bytes().decode("latin-1"))
    blob_text = "\n".join(outputs)
    for s in secrets:
        assert s not in blob_text, s
    assert "token=***" in blob_text                        # still recognisable, value hidden


# -- never pin garbage -------------------------------------------------------------------------

GARBAGE = {
    "bom-html": b"\xef\xbb\xbf<!DOCTYPE html><html>Sign in</html>",
    "comment-html": b"<!-- cdn --><html><body>busy</body></html>",
    "head-html": b"  <head><title>Error</title></head>",
    "s3-xml": b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code></Error>',
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_error_pages_are_never_pinned(case, server, manifest, cli):
    url = server.add(f"/g/{case}.json", GARBAGE[case])
    m = manifest({"name": "g", "url": url, "md5": None})
    r = cli("--manifest", str(m), "fetch", "g")
    assert r.code == 5 and ("HTML" in r.err or "XML" in r.err), r.err
    assert cli("--manifest", str(m), "info", "g", "--json").items[0]["pin"] is None


@pytest.mark.parametrize("name, data, needle", [
    ("model.pkl", b"<<not a pickle>>", "not a valid pickle"),
    ("ann.json", b'{"images": [1, 2', "not valid JSON"),
    ("uv.tar.gz", b"\x1f\x8b\x08\x00garbage", "not a readable tar"),
    ("mds.npy", b"\x00" * 64, "does not start like a .npy"),
    ("SMPL.mat", b"\x00" * 64, "does not start like a .mat"),
])
def test_first_use_checks_content_against_the_name(name, data, needle, server, manifest, cli):
    url = server.add(f"/c/{name}", data)
    m = manifest({"name": "c", "url": url, "md5": None})
    r = cli("--manifest", str(m), "fetch", "c")
    assert r.code in (5, 9) and needle in r.err, r.err
    assert cli("--manifest", str(m), "info", "c", "--json").items[0]["pin"] is None


def test_garbage_from_a_mirror_falls_through_to_upstream(server, manifest, cli, monkeypatch):
    good = json.dumps({"images": []}).encode()
    up = server.add("/up/ann.json", good)
    host = up.split("/")[2].replace(":", "_")
    server.add(f"/mirror/{host}/up/ann.json", GARBAGE["s3-xml"])
    monkeypatch.setenv("DENSEZOO_MIRROR", server.url("/mirror"))
    m = manifest({"name": "ann", "url": up, "md5": None})
    r = cli("--manifest", str(m), "fetch", "ann", "--json")
    assert r.code == 0, r.err
    (row,) = r.items
    assert row["md5"] == hashlib.md5(good).hexdigest() and row["strength"] == "origin-pinned"
    assert cli("--manifest", str(m), "info", "ann", "--json").items[0]["pin"]["md5"] == row["md5"]


def test_the_worst_cause_decides_when_every_url_failed(server, manifest, cli, monkeypatch):
    """A mirror serving a hostile pickle while upstream is dead is exit 9 with the unsafe
    advice, not exit 5 and 'check your network': the worst cause wins, each URL listed."""
    up = server.url("/gone/model.pkl")                      # never added: 404
    host = up.split("/")[2].replace(":", "_")
    server.add(f"/mirror/{host}/gone/model.pkl", PLANT)
    monkeypatch.setenv("DENSEZOO_MIRROR", server.url("/mirror"))
    m = manifest({"name": "gone", "url": up, "md5": None})
    r = cli("--manifest", str(m), "fetch", "gone")
    assert r.code == 9, r.err
    assert "unsafe" in r.err and "404" in r.err and "check your network" not in r.err
