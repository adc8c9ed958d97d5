"""A checkpoint as a ``.safetensors`` file: written, proven, read back.

safetensors holds named arrays of plain numeric dtypes and a header of text; no code can
ride in it.  A converted detectron2 checkpoint keeps what detectron2 reads besides the
arrays: the header's ``__author__`` and ``matching_heuristics`` entries (as text, for
anyone reading the header) and ``densezoo.meta`` (all of the checkpoint's plain
metadata as JSON, which is what ``read_safetensors`` restores), the source layout and
the sha256 of the pickle it came from.

``write_safetensors`` publishes nothing itself: the caller writes to a temporary name,
asks ``round_trip_problem`` whether every tensor reads back bit-exact (dtype, shape,
bytes), and only then renames the file into place.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import DensezooError
from .tensors import DETECTRON2, DETECTRON_V1
from .weights import Weights

META = "densezoo.meta"
LAYOUT = "densezoo.layout"
SOURCE_SHA256 = "densezoo.source_sha256"
ORDER = "densezoo.order"       # the checkpoint's tensor order (safetensors sorts by name)
SHOWN = ("__author__", "matching_heuristics")     # also written as plain header text
HOLDS = frozenset("biuf")      # numpy kinds safetensors holds: bool, ints, uints, floats


class ConversionError(DensezooError):
    """A checkpoint safetensors cannot hold, or a conversion that did not read back exact."""


def unsupported(weights: Weights) -> list[str]:
    """The tensors safetensors cannot hold, each as ``name (dtype)``."""
    return [f"{name} ({a.dtype.name})" for name, a in weights.tensors.items()
            if a.dtype.kind not in HOLDS]


def write_safetensors(weights: Weights, out: str | os.PathLike[str], *,
                      source_sha256: str) -> None:
    """Write the tensors and metadata (the caller proves the round trip before publishing)."""
    from safetensors.numpy import save_file

    refused = unsupported(weights)
    if refused:
        raise ConversionError(
            f"{weights.path}: safetensors cannot hold {len(refused)} of its tensors: "
            + ", ".join(refused[:5]) + (" ..." if len(refused) > 5 else ""),
            hint="only bool, integer and float arrays convert; keep using the .pkl through "
                 "densezoo.load_weights")
    header = {META: json.dumps(weights.meta, sort_keys=True), LAYOUT: weights.layout,
              SOURCE_SHA256: source_sha256, ORDER: json.dumps(list(weights.tensors))}
    header.update({k: _text(weights.meta[k]) for k in SHOWN if k in weights.meta})
    # np.ascontiguousarray would make a 0-d array 1-d (a shape the round trip catches).
    save_file({name: a if a.flags.c_contiguous else a.copy(order="C")
               for name, a in weights.tensors.items()}, os.fspath(out), metadata=header)


def read_safetensors(path: str | os.PathLike[str]) -> Weights:
    """The tensors and metadata of a converted checkpoint; ``data`` is rebuilt the way
    its source pickle held them ({"model": ...} / {"blobs": ...} / the arrays)."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    with safe_open(os.fspath(path), framework="np") as f:
        header = f.metadata() or {}
    tensors = load_file(os.fspath(path))
    order = json.loads(header.get(ORDER, "[]"))
    if sorted(order) == sorted(tensors):
        tensors = {name: tensors[name] for name in order}
    meta = json.loads(header[META]) if META in header else {}
    layout = header.get(LAYOUT, DETECTRON2)
    if layout == DETECTRON2:
        data: Any = {"model": tensors, **meta}
    elif layout == DETECTRON_V1 and meta:
        data = {"blobs": tensors, **meta}
    else:
        data = tensors
    return Weights(str(path), layout, tensors, meta, data)


def round_trip_problem(weights: Weights, path: str | os.PathLike[str]) -> str | None:
    """None when ``path`` reads back every tensor bit-exact (name, dtype, shape, bytes in
    little-endian order, as safetensors stores them) and the same metadata; else the
    first difference."""
    try:
        back = read_safetensors(path)
    except Exception as e:  # noqa: BLE001 - a file safetensors cannot read fails the proof
        return f"the written file does not read back: {e}"
    if sorted(back.tensors) != sorted(weights.tensors):
        missing = sorted(set(weights.tensors) ^ set(back.tensors))
        return f"tensor names differ: {', '.join(missing[:5])}"
    for name, a in weights.tensors.items():
        b = back.tensors[name]
        if (a.dtype.name, a.shape) != (b.dtype.name, b.shape):
            return (f"{name}: {a.dtype.name}{list(a.shape)} was read back as "
                    f"{b.dtype.name}{list(b.shape)}")
        if _le_bytes(a) != _le_bytes(b):
            return f"{name}: the bytes read back differ"
    if back.meta != json.loads(json.dumps(weights.meta, sort_keys=True)):
        return "the metadata read back differs"
    return None


def _le_bytes(a: Any) -> bytes:
    return a.astype(a.dtype.newbyteorder("<"), order="C", copy=False).tobytes(order="C")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
