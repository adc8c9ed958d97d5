"""Issue 34.1: a tensor inventory read from the pickle stream by the scanner's own reader.

Ground truth is ``pickle.load(f, encoding="latin1")`` -- what detectron2 runs -- on the
same bytes, in every format a shipped model uses (tests/checkpoints.py).  The inventory
itself never unpickles: a file whose loading would run code is "unknown", and the marker
it would have written is never there.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkpoints import detectron2_checkpoint, formats, py3_pickle
from densezoo.content.tensors import DETECTRON2, DETECTRON_V1, UNKNOWN, inventory

FORMATS = formats()


def _truth(data: bytes) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # numpy.core in numpy 2
        return pickle.loads(data, encoding="latin1")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_tensor_is_described_as_pickle_load_builds_it(tmp_path, fmt):
    path = tmp_path / "w.pkl"
    path.write_bytes(FORMATS[fmt])
    inv = inventory(path)
    truth = _truth(FORMATS[fmt])
    arrays = truth.get("model") or truth.get("blobs") or truth
    assert inv.layout == (DETECTRON2 if fmt.startswith("detectron2") else DETECTRON_V1)
    assert inv.reason is None
    assert [t.name for t in inv.tensors] == sorted(arrays)
    for t in inv.tensors:
        a = arrays[t.name]
        assert (t.dtype, t.shape, t.nbytes) == (a.dtype.name, a.shape, a.nbytes), t.name
        assert t.all_zero == (not a.any())
    if fmt.startswith("detectron2"):
        assert inv.meta == {"__author__": "Detectron2 Model Zoo", "matching_heuristics": True}
    elif fmt.startswith("detectron-v1"):
        assert inv.meta == {"cfg": truth["cfg"]}


def test_dtypes_byte_orders_scalars_and_object_arrays(tmp_path):
    model = {"be": np.arange(3, dtype=">i8"), "half": np.ones((2, 2), np.float16),
             "flag": np.array([True, False]), "text": np.array(["ab", "c"]),
             "raw": np.array([b"xyz"]), "scalar": np.float32(2.5),
             "objects": np.array([1, "x"], dtype=object), "zeros": np.zeros((5, 5))}
    for protocol in (0, 2, 4, 5):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps({"model": model, "__author__": "t"}, protocol=protocol))
        got = {t.name: t for t in inventory(path).tensors}
        for name, a in model.items():
            a = np.asarray(a)
            assert (got[name].dtype, got[name].shape, got[name].nbytes) == \
                (a.dtype.name, a.shape, a.nbytes), (protocol, name)
        assert got["zeros"].all_zero and not got["half"].all_zero
        assert got["objects"].all_zero is None


def test_a_zero_tensor_after_a_nonzero_start_is_not_called_all_zero(tmp_path):
    """The all-zero look reads growing chunks: a non-zero byte deep in the array counts."""
    a = np.zeros(3_000_000, np.float32)
    a[-1] = 1.0
    path = tmp_path / "w.pkl"
    path.write_bytes(pickle.dumps({"model": {"a": a, "z": np.zeros(3_000_000, np.float32)},
                                   "__author__": "t"}, protocol=4))
    got = {t.name: t.all_zero for t in inventory(path).tensors}
    assert got == {"a": False, "z": True}


@pytest.mark.parametrize("payload,reason", [
    (pickle.dumps(1, protocol=4), "holds a int"),
    (pickle.dumps([1, 2]), "holds a list"),
    (pickle.dumps({"model": {"a": 1}, "__author__": "x"}), "['model']['a'] is a int"),
    (pickle.dumps({"model": [], "__author__": "x"}), "is a list, not a dict"),
    (pickle.dumps({"weights": "x"}), "['weights'] is a str, not an array"),
    (pickle.dumps({"blobs": {}}), "holds no tensors"),
])
def test_what_is_not_a_checkpoint_is_unknown_with_its_reason(tmp_path, payload, reason):
    path = tmp_path / "x.pkl"
    path.write_bytes(payload)
    inv = inventory(path)
    assert inv.layout == UNKNOWN and inv.tensors == () and reason in inv.reason


def test_truncated_lfs_pointer_placeholder_and_empty_files_are_unknown(tmp_path):
    good = py3_pickle(detectron2_checkpoint(), 4)
    cases = {"truncated": good[: len(good) // 2],
             "lfs": b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 9\n",
             "placeholder": b"put model_final_162be9.pkl here",
             "empty": b"",
             "trailing": good + b"\0"}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        inv = inventory(path)
        assert inv.layout == UNKNOWN and inv.reason, name


def test_a_byte_count_that_disagrees_with_the_shape_is_unknown(tmp_path):
    """pickle.load would fail on it (numpy checks the size): never a guessed inventory."""
    data = py3_pickle({"model": {"a": np.ones((4, 4), np.float32)}, "__author__": "x"}, 3)
    shape_at = data.index(b"K\x04K\x04\x86")        # the (4, 4) shape in BUILD's state
    bad = data[:shape_at] + b"K\x04K\x05\x86" + data[shape_at + 5:]
    path = tmp_path / "w.pkl"
    path.write_bytes(bad)
    with pytest.raises(ValueError):
        _truth(bad)
    inv = inventory(path)
    assert inv.layout == UNKNOWN and "64 bytes of data" in inv.reason


def test_a_hostile_pickle_is_unknown_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "w.pkl"
    path.write_bytes(pickle.dumps({"model": {"a": Boom()}, "__author__": "x"}))
    inv = inventory(path)
    assert inv.layout == UNKNOWN and "system" in inv.reason
    assert not marker.exists()


def test_reading_an_inventory_imports_no_numpy(tmp_path):
    path = tmp_path / "w.pkl"
    path.write_bytes(FORMATS["detectron2-p4"])
    code = ("import sys; from densezoo.content.tensors import inventory; "
            f"inv = inventory({str(path)!r}); "
            "assert inv.layout == 'detectron2' and len(inv.tensors) == 8, inv; "
            "print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(protocol=st.integers(0, 5), seed=st.integers(0, 2 ** 16), zero=st.booleans(),
       dtype=st.sampled_from(["<f4", ">f8", "<f2", "|b1", "<i8", "|u1", "<c8", "<U3", "|S2"]),
       shape=st.lists(st.integers(1, 40), max_size=3), big=st.booleans())
def test_any_array_is_described_as_numpy_builds_it(tmp_path, protocol, seed, zero, dtype, shape,
                                                  big):
    """Drawn dtypes, shapes, protocols, zero or random bytes, small or past the size at
    which the inventory leaves bytes in the file: numpy's own dtype name, shape, nbytes."""
    if big:
        shape = [*shape, 2048]
    count = int(np.prod(shape))
    itemsize = np.dtype(dtype).itemsize
    n = count * itemsize
    raw = bytes(n) if zero else np.random.default_rng(seed).bytes(n)
    array = np.frombuffer(raw, dtype=np.uint8).view(dtype).reshape(shape)
    path = tmp_path / f"w{protocol}.pkl"
    path.write_bytes(pickle.dumps({"model": {"a": array}, "__author__": "t"}, protocol=protocol))
    (t,) = inventory(path).tensors
    assert (t.dtype, t.shape, t.nbytes) == (array.dtype.name, array.shape, array.nbytes)
    assert t.all_zero == (not array.tobytes().strip(b"\0"))


def test_metadata_that_contains_itself_or_nests_deep_is_described_not_followed(tmp_path):
    loop: list = []
    loop.append(loop)
    data = pickle.dumps({"model": {"a": np.ones(1)}, "__author__": "t", "loop": loop,
                         "deep": "PLACEHOLDER"}, protocol=2)
    deep = b"(" * 100_000 + b"]" + b"l" * 100_000       # a list nested 100,000 deep
    data = data.replace(b"X\x0b\x00\x00\x00PLACEHOLDER", deep)
    path = tmp_path / "w.pkl"
    path.write_bytes(data)
    inv = inventory(path)
    assert inv.layout == DETECTRON2 and len(inv.tensors) == 1
    for key in ("loop", "deep"):
        assert "nested too deep" in repr(inv.meta[key]), key
