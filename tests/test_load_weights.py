"""Issue 35.1: ``densezoo.load_weights`` -- a checkpoint's arrays, built without unpickling.

Ground truth is ``pickle.load(f, encoding="latin1")`` (detectron2's call) on the same
bytes, in every format a shipped model uses (tests/checkpoints.py).  Hostile files are
handed to the loader directly -- no scan first -- and a marker file proves nothing ran.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
import warnings
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import densezoo
from checkpoints import formats, py2_pickle, py3_pickle
from densezoo.content.pickle_scan import ALLOWED_GLOBALS, scan_bytes
from densezoo.content.weights import read_weights
from densezoo.errors import RestrictedLoadError, UnsafeContentError
from test_pickle_archive_trust_safety import FRAME_PIECES, Recorder

FORMATS = formats()


def _truth(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # numpy.core in numpy 2
        return pickle.loads(data, encoding="latin1")


def assert_identical(got, want, where="top"):
    """Same types, same keys in the same order, arrays equal bit for bit."""
    assert type(got) is type(want), where
    if isinstance(want, np.ndarray):
        assert (got.dtype, got.shape, got.strides) == (want.dtype, want.shape, want.strides), where
        assert got.tobytes() == want.tobytes(), where
        if want.dtype.hasobject:
            assert got.tolist() == want.tolist(), where
    elif isinstance(want, dict):
        assert list(got) == list(want), where
        for k in want:
            assert_identical(got[k], want[k], f"{where}[{k!r}]")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_identical(g, w, f"{where}[{i}]")
    elif isinstance(want, np.generic):
        assert (got.dtype, got.tobytes()) == (want.dtype, want.tobytes()), where
    else:
        assert repr(got) == repr(want), where


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_bit_identical_to_pickle_load_on_every_shipped_format(tmp_path, fmt):
    path = tmp_path / "model_final.pkl"
    path.write_bytes(FORMATS[fmt])
    w = densezoo.load_weights(path)
    truth = _truth(FORMATS[fmt])
    assert_identical(w.data, truth)
    arrays = truth.get("model") or truth.get("blobs") or truth
    assert list(w.tensors) == list(arrays)
    for name, a in arrays.items():
        assert_identical(w.tensors[name], a, name)
    if fmt.startswith("detectron2"):
        assert w.layout == "detectron2"
        assert w.meta == {"__author__": "Detectron2 Model Zoo", "matching_heuristics": True}
    else:
        assert w.layout == "detectron-v1"


def test_every_allowed_construct_builds_what_pickle_load_builds(tmp_path):
    value = {"od": OrderedDict([("b", 1), ("a", [1.5, None, True])]), "set": {1, 2},
             "fs": frozenset({"x"}), "c": complex(1, -2), "sl": slice(1, None, 2),
             "ba": bytearray(b"\x00\xff"), "bytes": b"\x00\x80", "big": 2 ** 100, "neg": -7,
             "t": (1, (2,), ()), "u": "é ü", "scalar": np.int64(3), "dt": np.dtype(">f8"),
             "fortran": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
             "obj": np.array([1, "x", None], dtype=object), "s": np.array([b"ab", b"c"])}
    for protocol in range(6):
        data = pickle.dumps(value, protocol=protocol)
        assert_identical(read_weights(io.BytesIO(data)).data, _truth(data), f"p{protocol}")


def test_shared_references_stay_shared(tmp_path):
    a = np.ones(3, np.float32)
    data = pickle.dumps({"model": {"w": a, "tied": a}, "__author__": "x"}, protocol=4)
    w = read_weights(io.BytesIO(data))
    assert w.tensors["w"] is w.tensors["tied"]


def _marker_pickles(marker):
    """Pickles that would create ``marker`` if pickle.load ran them, each a different way."""
    cmd = f"touch {marker}"

    class Reduce:
        def __reduce__(self):
            return (os.system, (cmd,))

    class Build:                       # protocol 2: copyreg.__newobj__ + a __setstate__
        def __reduce__(self):
            return (os.system, (cmd,), None)

    inside_model = {"model": {"conv.weight": np.ones(2, np.float32), "x": Reduce()},
                    "__author__": "Detectron2 Model Zoo"}
    return {
        "reduce-p0": b"cos\nsystem\n(S'" + cmd.encode() + b"'\ntR.",
        "inst-p0": b"(S'" + cmd.encode() + b"'\nios\nsystem\n.",
        "obj-p1": b"(cos\nsystem\nS'" + cmd.encode() + b"'\no.",
        "in-a-real-checkpoint-p2": pickle.dumps(inside_model, protocol=2),
        "in-a-real-checkpoint-p5": pickle.dumps(inside_model, protocol=5),
        "newobj-p2": pickle.dumps(Build(), protocol=2),
        "numpy-builtins-p4": (b"\x80\x04\x8c\x05numpy\x8c\x0c__builtins__\x93."),
        "reduce-on-an-allowed-name-that-is-only-an-argument": (
            b"\x80\x02cnumpy\nndarray\n(S'" + cmd.encode() + b"'\ntR."),
        "import-inside-a-build-state": b"\x80\x02}}(S'__setstate__'\ncos\nsystem\nub.",
    }


@pytest.mark.parametrize("case", sorted(_marker_pickles("/x")))
def test_a_hostile_pickle_raises_and_runs_nothing_without_any_scan(tmp_path, case):
    marker = tmp_path / "ran"
    path = tmp_path / "model_final_162be9.pkl"
    path.write_bytes(_marker_pickles(marker)[case])
    with pytest.raises(RestrictedLoadError) as e:
        densezoo.load_weights(path)
    assert not marker.exists()
    assert isinstance(e.value, UnsafeContentError) and e.value.exit_code == 9
    assert "ran nothing" in e.value.hint and str(path) in str(e.value)


@pytest.mark.parametrize("data,needle", [
    (b"\x80\x02cnumpy\ndtype\nX\x08\x00\x00\x00f4,i4,i4\x85R.", "never use"),   # structured
    (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\ndtype\nK\x00\x85C\x01b\x87R.",
     "never use"),                                                      # not an ndarray
    (b"\x80\x02}K\x01a.", "on a dict"),                                   # APPEND on a dict
    (b"\x80\x02]K\x01K\x02s.", "on a list"),                               # SETITEM on a list
    (b"\x80\x02}}b.", "BUILD sets the state of a dict"),                    # __setstate__
    (b"\x80\x02I0x10\n.", "an INT written as"),                            # strtol base 0
    (b"\x80\x02K\x01", "ends before STOP"),
    (pickle.dumps([1]) + b"\0", "after STOP"),
    (b"", "empty file"),
])
def test_constructs_outside_the_allow_list_are_refused_with_their_reason(data, needle):
    with pytest.raises(RestrictedLoadError, match=needle):
        read_weights(io.BytesIO(data))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAME_PIECES), max_size=14))
def test_what_the_loader_builds_the_scan_passes_and_pickle_load_agrees(pieces):
    """Differential (the scan's opcode pieces, frame headers included): a stream the
    loader accepts is one the scan accepts, imports only allowed names in CPython's
    unpickler, and (without imports) unpickles to the same value."""
    data = b"".join(pieces)
    try:
        built = read_weights(io.BytesIO(data)).data
    except RestrictedLoadError:
        return
    assert scan_bytes(data).ok, data
    recorder = Recorder(data)
    value = recorder.load()
    assert set(recorder.imports) <= ALLOWED_GLOBALS, data
    if not recorder.imports:
        assert repr(built) == repr(value), data


def test_a_name_loads_the_verified_store_copy(server, manifest):
    data = py3_pickle({"model": {"a": np.arange(4, dtype=np.float32)}, "__author__": "t"}, 4)
    url = server.add("/zoo/model_final_abc123.pkl", data)
    m = manifest({"name": "tiny", "url": url, "md5": hashlib.md5(data).hexdigest()})
    opts = {"manifests": [m], "default_manifests": False}
    with pytest.raises(densezoo.errors.NotCachedError):
        densezoo.load_weights("tiny", fetch=False, **opts)
    w = densezoo.load_weights("tiny", **opts)
    assert w.layout == "detectron2" and w.tensors["a"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert densezoo.load_weights("tiny", fetch=False, **opts).path == "tiny"


def test_py2_latin1_strings_load_as_detectron2_reads_them():
    """A py2 byte string (a v1 ``cfg`` with non-ASCII bytes) is latin-1 text, as
    ``encoding="latin1"`` makes it; its arrays come from 8-bit strings too."""
    data = py2_pickle({"blobs": {"w": np.full(3, 7, np.uint8)}, "cfg": "caf\xe9"})
    w = read_weights(io.BytesIO(data))
    assert w.meta == {"cfg": "caf\xe9"} and w.tensors["w"].tolist() == [7, 7, 7]
    assert_identical(w.data, _truth(data))
    assert struct.pack("<B", 7) * 3 == w.tensors["w"].tobytes()


def test_a_file_object_is_read_from_where_it_stands(tmp_path):
    """detectron2 hands ``pickle.load`` an open file: read from the start it is mapped,
    further in only the rest is the pickle -- as the unpickler would read it."""
    data = FORMATS["detectron2-p4"]
    path = tmp_path / "w.pkl"
    path.write_bytes(b"junk" + data)
    with open(path, "rb") as f:
        f.read(4)
        assert_identical(read_weights(f).data, _truth(data))
    path.write_bytes(data)
    with open(path, "rb") as f:
        assert_identical(read_weights(f).data, _truth(data))
    with pytest.raises(RestrictedLoadError, match="after STOP"):
        read_weights(io.BufferedReader(io.BytesIO(data + b"\0")))


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                     st.text(max_size=20), st.binary(min_size=1, max_size=20))
_plain = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(st.text(max_size=5), inner, max_size=4),
    st.frozensets(st.integers(), max_size=3), st.sets(st.text(max_size=3), max_size=3)),
    max_leaves=15)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_plain, protocol=st.integers(0, 5), seed=st.integers(0, 2 ** 16),
       dtype=st.sampled_from(["<f4", ">f8", "<f2", "|b1", "<i8", "|u1", "<c8", "<U3", "|S2",
                              "O"]),
       shape=st.lists(st.integers(0, 4), max_size=3))
def test_any_checkpoint_of_arrays_and_plain_values_loads_as_pickle_load_builds_it(
        value, protocol, seed, dtype, shape):
    """The accepting side, drawn: whatever weight-shaped value pickle writes (plain values,
    arrays of every dtype kind, any shape, any protocol), the loader builds identically.
    Not drawn: an empty non-object array at protocol <= 2, whose b"" py3 pickles as a call
    of builtins.bytes -- off the scan's allow-list, so refused by both (no shipped file
    has one)."""
    assume(protocol >= 3 or dtype == "O" or 0 not in shape)
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=int(np.prod(shape)) * 16, dtype=np.uint8)
    if dtype == "O":
        array = np.empty(shape, dtype=object)
        array.reshape(-1)[:] = [int(b) for b in raw[:array.size]]
    else:
        count = int(np.prod(shape))
        array = raw[:count * np.dtype(dtype).itemsize].view(dtype).reshape(shape)
    data = pickle.dumps({"model": {"a": array}, "__author__": "t", "x": value},
                        protocol=protocol)
    assert_identical(read_weights(io.BytesIO(data)).data, _truth(data))
