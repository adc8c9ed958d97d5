"""The pickle allow-list scanner: legitimate weights pass, planted imports fail (exit 9)."""

import hashlib
import io
import os
import pickle
import pickletools

import numpy as np
import pytest

from densezoo.content.pickle_scan import scan_pickle


class Planted:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def weights(protocol: int) -> bytes:
    """Shaped like detectron2's model_final_*.pkl: a dict of numpy arrays plus metadata."""
    model = {"backbone.conv1.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
             "roi_heads.box.bias": np.zeros(7, dtype=np.float64),
             "step": np.int64(90000)}
    return pickle.dumps({"model": model, "__author__": "Detectron2 Model Zoo"}, protocol=protocol)


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("protocol", range(6))
def test_legitimate_weights_pass(protocol, tmp_path):
    r = scan_pickle(write(tmp_path, "w.pkl", weights(protocol)))
    assert r.ok and r.error is None and r.findings == ()
    assert any(m.startswith("numpy") for m, _ in r.globals)


@pytest.mark.parametrize("protocol", range(6))
def test_planted_os_system_fails_with_its_position(protocol, tmp_path):
    data = pickle.dumps({"model": {"w": np.zeros(2)}, "x": Planted()}, protocol=protocol)
    r = scan_pickle(write(tmp_path, "evil.pkl", data))
    assert not r.ok
    (f,) = [f for f in r.findings if "system" in f.detail]
    assert "posix.system" in f.detail or "nt.system" in f.detail
    assert data[f.position:f.position + 1] in (pickle.GLOBAL, pickle.STACK_GLOBAL)


def test_stack_global_names_from_the_memo_are_resolved(tmp_path):
    p = (pickle.PROTO + b"\x04" + pickle.SHORT_BINUNICODE + b"\x08builtins" + pickle.MEMOIZE
         + pickle.SHORT_BINUNICODE + b"\x04eval" + pickle.MEMOIZE + pickle.POP + pickle.POP
         + pickle.BINGET + b"\x00" + pickle.BINGET + b"\x01" + pickle.STACK_GLOBAL
         + pickle.SHORT_BINUNICODE + b"\x011" + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP)
    pickletools.dis(io.BytesIO(p), out=io.StringIO())        # a well-formed pickle
    r = scan_pickle(write(tmp_path, "memo.pkl", p))
    assert [str(f).split(",")[0] for f in r.findings] == ["imports builtins.eval"]


def test_computed_global_names_are_a_finding(tmp_path):
    p = (pickle.PROTO + b"\x04" + pickle.EMPTY_LIST + pickle.SHORT_BINUNICODE + b"\x06system"
         + pickle.STACK_GLOBAL + pickle.STOP)
    r = scan_pickle(write(tmp_path, "computed.pkl", p))
    assert not r.ok and "computed" in r.findings[0].detail


@pytest.mark.parametrize("op, detail", [(pickle.EXT1 + b"\x01", "extension-registry"),
                                        (pickle.PERSID + b"x\n", "persistent id")])
def test_indirect_imports_are_findings(op, detail, tmp_path):
    r = scan_pickle(write(tmp_path, "ind.pkl", pickle.PROTO + b"\x02" + op + pickle.STOP))
    assert not r.ok and detail in r.findings[0].detail


def test_a_second_pickle_in_the_same_file_is_unsafe(tmp_path):
    """pickle.load reads one pickle; a weight file has nothing after its STOP."""
    data = weights(2) + pickle.dumps([1], protocol=2)
    r = scan_pickle(write(tmp_path, "two.pkl", data))
    assert not r.ok and "after STOP" in r.error


def test_not_a_pickle_is_unsafe(tmp_path):
    """A stream the scan cannot follow to its STOP is never called safe."""
    r = scan_pickle(write(tmp_path, "junk.pkl", b"<html>not a pickle</html>"))
    assert not r.ok and r.error and "not a valid pickle" in r.error


def test_scan_command_exit_codes(tmp_path, cli):
    good = write(tmp_path, "good.pkl", weights(4))
    evil = write(tmp_path, "evil.pkl", pickle.dumps(Planted(), protocol=0))
    junk = write(tmp_path, "junk.pkl", b"\x00\x01")
    assert cli("scan", str(good)).code == 0
    r = cli("scan", str(good), str(evil))
    assert r.code == 9 and "posix.system" in r.out and "GLOBAL at byte" in r.out
    r = cli("scan", str(junk))
    assert r.code == 9 and "unsafe" in r.out and "not a valid pickle" in r.out
    assert cli("scan", "ResNet50_FPN_s1x").code == 6       # an artifact name, not cached


def test_fetch_refuses_an_unsafe_pickle_and_keeps_it_aside(server, manifest, cli, cache_dir):
    evil = pickle.dumps({"model": {}, "x": Planted()}, protocol=2)
    good = weights(2)
    server.add("/w/evil/model_final.pkl", evil)
    server.add("/w/good/model_final.pkl", good)
    m = manifest({"name": "evil", "url": server.url("/w/evil/model_final.pkl"),
                  "md5": hashlib.md5(evil).hexdigest()},
                 {"name": "good", "url": server.url("/w/good/model_final.pkl"),
                  "md5": hashlib.md5(good).hexdigest()})
    r = cli("--manifest", str(m), "fetch", "evil", "good")
    assert r.code == 9 and "unsafe pickle" in r.err and "posix.system" in r.err
    assert len(r.out.split()) == 1 and r.out.strip().endswith("good/model_final.pkl")
    assert cli("--manifest", str(m), "path", "evil").code == 6
    assert [p.read_bytes() for p in (cache_dir / "bad").rglob("*") if p.is_file()] == [evil]
    r = cli("--manifest", str(m), "fetch", "evil", "--no-scan")
    assert r.code == 0                                           # an explicit opt-out
    r = cli("--manifest", str(m), "verify", "--scan", "--json")
    assert r.code == 9
    status = {e["name"]: e["state"] for e in r.items}
    assert status == {"evil": "unsafe", "good": "ok"}
    assert cli("--manifest", str(m), "path", "evil").code == 6  # never handed out again
