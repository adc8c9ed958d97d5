"""Checkpoint files in every format a shipped model uses, written the way their writers did.

- detectron2 model zoo (``model_final_*.pkl``): ``{"model": {name: ndarray}, "__author__":
  ..., "matching_heuristics"?}`` pickled by py3 at any protocol.
- v1 Detectron (``blobs``) and the Caffe2 ImageNet files: py2 pickles at protocol 2, where
  every ``str`` (names, dtype codes, the arrays' raw data) is a py2 byte string -- written
  as ``BINSTRING`` / ``SHORT_BINSTRING`` and read back by detectron2 with
  ``encoding="latin1"`` -- and numpy's globals are spelled ``numpy.core.*`` (numpy 1).
- numpy 2 spells them ``numpy._core.*``: both spellings are in real files.
"""

from __future__ import annotations

import io
import pickle
import struct
from typing import Any

import numpy as np


class Py2Pickler(pickle._Pickler):
    """Protocol 2 as python 2 wrote it: str and bytes are both 8-bit strings."""

    def save_py2_string(self, obj: Any) -> None:
        raw = obj.encode("latin-1") if isinstance(obj, str) else bytes(obj)
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[str] = save_py2_string
    dispatch[bytes] = save_py2_string


def py2_pickle(obj: Any, *, numpy_core: str = "numpy.core") -> bytes:
    """``obj`` as a py2 / numpy-1 program pickled it (protocol 2)."""
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return _spell_numpy(buf.getvalue(), numpy_core)


def py3_pickle(obj: Any, protocol: int, *, numpy_core: str = "numpy._core") -> bytes:
    data = pickle.dumps(obj, protocol=protocol)
    return _spell_numpy(data, numpy_core) if protocol <= 3 else data


def _spell_numpy(data: bytes, numpy_core: str) -> bytes:
    """numpy's module name as the writer's numpy spelled it (GLOBAL lines are plain text
    up to protocol 3, so the name can be swapped without breaking a length)."""
    for mod in ("numpy._core.", "numpy.core."):
        data = data.replace(b"c" + mod.encode(), b"c" + numpy_core.encode() + b".")
    return data


def random_model(seed: int = 0, *, names: int = 6) -> dict[str, np.ndarray]:
    """Arrays shaped like a detection model's: convolutions, norms, a bias, ints."""
    rng = np.random.default_rng(seed)
    shapes = [(64, 3, 7, 7), (64,), (256, 64, 1, 1), (256,), (15, 256), (15,)]
    out = {f"layer{i}.weight": rng.standard_normal(shapes[i % 6]).astype(np.float32)
           for i in range(names)}
    out["pixel_mean"] = np.array([103.53, 116.28, 123.675], dtype=np.float64)
    out["num_batches_tracked"] = np.array(7, dtype=np.int64)
    return out


def detectron2_checkpoint(seed: int = 0, *, heuristics: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {"model": random_model(seed), "__author__": "Detectron2 Model Zoo"}
    if heuristics:
        data["matching_heuristics"] = True
    return data


def v1_checkpoint(seed: int = 0) -> dict[str, Any]:
    blobs = {k.replace(".", "_"): v for k, v in random_model(seed).items()}
    blobs["conv1_w_momentum"] = np.zeros((64, 3, 7, 7), dtype=np.float32)
    return {"blobs": blobs, "cfg": "MODEL:\n  TYPE: generalized_rcnn\n"}


def formats(seed: int = 0) -> dict[str, bytes]:
    """Every shipped model format, by a name for test ids."""
    d2 = detectron2_checkpoint(seed, heuristics=True)
    out = {f"detectron2-p{p}": py3_pickle(d2, p) for p in (2, 3, 4, 5)}
    out["detectron2-p2-numpy.core"] = py3_pickle(d2, 2, numpy_core="numpy.core")
    out["detectron-v1-py2"] = py2_pickle(v1_checkpoint(seed))
    out["detectron-v1-py2-numpy._core"] = py2_pickle(v1_checkpoint(seed),
                                                     numpy_core="numpy._core")
    out["caffe2-imagenet-py2"] = py2_pickle(v1_checkpoint(seed)["blobs"])
    return out
