"""What tensors a checkpoint holds, read from its pickle stream without unpickling it.

``inventory(path)`` runs the scanner's reader as an interpreter (``pickle_values``) with
an array hook that builds *descriptors* instead of arrays: each array's dtype, shape and
byte count come from the stream's own constructor arguments, and its bytes stay in the
file (``Span``) -- except for a look at whether they are all zero, which stops at the
first non-zero byte, so real weights cost a few kilobytes each.  No ``pickle.load``, no
numpy.  A stream the interpreter cannot account for (an import off the allow-list, a
value that is not an array where a tensor belongs, a byte count that disagrees with the
shape) is ``layout="unknown"`` with the reason: never a guess.

``classify`` is shared with the loader (``weights``): both say which layout a checkpoint
has the way detectron2's ``DetectionCheckpointer._load_file`` tells them apart.
"""

from __future__ import annotations

import mmap
import os
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import prod
from typing import Any, Callable, Iterator

from .pickle_scan import _Bad
from .pickle_values import DTYPE_CODE, ArrayHook, Interpreter, Refused, Span

SPAN_FROM = 4096                 # arguments this long are left in the file, not copied
MAX_META_DEPTH = 32              # metadata nests a few levels (a v1 cfg is a string)
_KIND_NAMES = {"i": "int", "u": "uint", "f": "float", "c": "complex",
               "S": "bytes", "U": "str", "V": "void"}

DETECTRON2 = "detectron2"        # {"model": {name: array}, "__author__": ..., ...}
DETECTRON_V1 = "detectron-v1"    # {"blobs": {name: array}, "cfg": ...} or {name: array}
UNKNOWN = "unknown"


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str                   # numpy's dtype name: "float32", "int64", "object" ...
    shape: tuple[int, ...]
    nbytes: int
    all_zero: bool | None        # None: not known (an object array, or no elements)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape),
                "nbytes": self.nbytes, "all_zero": self.all_zero}


@dataclass(frozen=True)
class Inventory:
    path: str
    layout: str                  # DETECTRON2 | DETECTRON_V1 | UNKNOWN
    tensors: tuple[TensorInfo, ...] = ()       # sorted by name
    meta: dict[str, Any] = field(default_factory=dict)   # e.g. {"__author__": ...}
    reason: str | None = None    # why the layout is unknown

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "layout": self.layout, "reason": self.reason,
                "meta": self.meta, "tensors": [t.to_dict() for t in self.tensors]}


def inventory(path: str | os.PathLike[str]) -> Inventory:
    """Every tensor's name, dtype, shape and byte count, read without running the file.

    Raises ``OSError`` when the file cannot be read; everything about its *content* is
    answered as a layout (``unknown`` with a reason when it cannot be accounted for)."""
    with mapped(path) as data:
        if not data:
            return Inventory(str(path), UNKNOWN, reason="empty file: not a pickle")
        hook = Descriptors(data)
        try:
            top = Interpreter(data, hook, span_from=SPAN_FROM).interpret()
        except (Refused, _Bad) as e:
            return Inventory(str(path), UNKNOWN, reason=str(e))
        layout, tensors, meta, reason = classify(top, hook.is_array, hook.describe)
        if layout == UNKNOWN:
            return Inventory(str(path), UNKNOWN, meta=meta, reason=reason)
        infos = tuple(hook.info(name, tensors[name]) for name in sorted(tensors))
    return Inventory(str(path), layout, infos, meta)


@contextmanager
def mapped(path: str | os.PathLike[str]) -> Iterator[Any]:
    """The file's bytes, mapped (b"" for an empty file: mmap refuses those)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            yield b""
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            yield data


def classify(top: Any, is_array: Callable[[Any], bool], describe: Callable[[Any], str]
             ) -> tuple[str, dict[str, Any], dict[str, Any], str | None]:
    """(layout, {name: array}, plain metadata, reason-if-unknown), by detectron2's rules:
    "model" and "__author__" is its own format; else "blobs" (a v1 detection model) or
    the dict itself (a v1/Caffe2 ImageNet model) holds the arrays."""
    if type(top) not in (dict, OrderedDict):
        return UNKNOWN, {}, {}, f"the pickle holds a {describe(top)}, not a checkpoint dict"
    if "model" in top and "__author__" in top:
        layout, key = DETECTRON2, "model"
    elif "blobs" in top:
        layout, key = DETECTRON_V1, "blobs"
    else:
        layout, key = DETECTRON_V1, None
    tensors = top[key] if key else top
    meta = {str(k): plain(v, is_array, describe) for k, v in top.items() if key and k != key}
    where = f"[{key!r}]" if key else ""
    if type(tensors) not in (dict, OrderedDict):
        return UNKNOWN, {}, meta, f"checkpoint{where} is a {describe(tensors)}, not a dict"
    if not tensors:
        return UNKNOWN, {}, meta, f"checkpoint{where} holds no tensors"
    for name, value in tensors.items():
        if type(name) is not str:
            return UNKNOWN, {}, meta, f"checkpoint{where} has a {describe(name)} key"
        if not is_array(value):
            return (UNKNOWN, {}, meta, f"checkpoint{where}[{name!r}] is a {describe(value)}, "
                                       "not an array")
    return layout, tensors, meta, None


def plain(value: Any, is_array: Callable[[Any], bool], describe: Callable[[Any], str],
          depth: int = 0) -> Any:
    """Metadata as plain data (JSON-able): arrays and long byte strings are described, and
    so is nesting deeper than metadata has (a pickle can make a list contain itself)."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if depth >= MAX_META_DEPTH:
        return "<nested too deep>"
    if type(value) in (list, tuple):
        return [plain(v, is_array, describe, depth + 1) for v in value]
    if type(value) in (dict, OrderedDict):
        return {str(k): plain(v, is_array, describe, depth + 1) for k, v in value.items()}
    return f"<{describe(value)}>"


class DType:
    """A numpy dtype as its pickle describes it: type code, byte order, item size."""

    __hash__ = None                      # type: ignore[assignment]

    def __init__(self, code: str) -> None:
        match = DTYPE_CODE.fullmatch(code)
        assert match, code               # the interpreter passes plain codes only
        self.kind, size = match.group(1), int(match.group(2) or 0)
        self.itemsize = 4 * size if self.kind == "U" else (8 if self.kind == "O" else size)
        self.byteorder = "="

    def set_state(self, state: tuple) -> None:
        self.byteorder = state[1]
        if state[5] > 0:                 # flexible types (S, U, V) carry their size here
            self.itemsize = state[5]

    @property
    def name(self) -> str:
        if self.kind == "b":
            return "bool"
        if self.kind == "O":
            return "object"
        return f"{_KIND_NAMES[self.kind]}{8 * self.itemsize}"


class ArrayInfo:
    """An array as its pickle builds it: dtype, shape, and where its bytes are."""

    __hash__ = None                      # type: ignore[assignment]

    def __init__(self, dtype: DType, shape: tuple[int, ...], data: Any) -> None:
        self.dtype, self.shape, self.data = dtype, shape, data

    @property
    def nbytes(self) -> int:
        return prod(self.shape) * self.dtype.itemsize

    def check(self) -> None:
        """The data must be what numpy's ``__setstate__`` accepts for this shape/dtype."""
        count, need, data = prod(self.shape), self.nbytes, self.data
        if self.dtype.kind == "O":
            if type(data) is not list or len(data) != count:
                raise ValueError(f"an object array of {count} items needs a list of them")
            return
        if type(data) is list:
            raise ValueError("a list for the data of a non-object array")
        if type(data) is Span and data.encoding == "utf-8":
            have = data.n                # latin-1 characters, 1 or 2 bytes each in utf-8
            if not need <= have <= 2 * need:
                raise ValueError(f"{have} bytes of text cannot hold the {need} bytes of "
                                 f"a {self.dtype.name} array of shape {self.shape}")
            return
        have = data.n if type(data) is Span else len(data)
        if have != need:
            raise ValueError(f"{have} bytes of data for a {self.dtype.name} array of shape "
                             f"{self.shape} ({need} bytes)")


class Descriptors(ArrayHook):
    """The inventory's array hook: descriptors, no numpy."""

    def __init__(self, data: Any) -> None:
        self.data = data                 # the file, for the all-zero look at a Span

    def reconstruct(self, shape: tuple[int, ...], typecode: Any) -> ArrayInfo:
        """numpy's empty int8 array ('b'), until a BUILD gives it its state."""
        return self._checked(DType("i1"), shape, b"\0" * prod(shape))

    def set_array_state(self, array: ArrayInfo, state: tuple) -> None:
        _, array.shape, array.dtype, _, array.data = state
        array.check()

    def dtype(self, code: str, align: bool, copy: bool) -> DType:
        return DType(code)

    def set_dtype_state(self, dtype: DType, state: tuple) -> None:
        dtype.set_state(state)

    def scalar(self, dtype: DType, data: Any) -> ArrayInfo:
        return self._checked(dtype, (), data)

    def frombuffer(self, buffer: Any, dtype: DType, shape: tuple[int, ...],
                   order: str) -> ArrayInfo:
        return self._checked(dtype, shape, buffer)

    @staticmethod
    def _checked(dtype: DType, shape: tuple[int, ...], data: Any) -> ArrayInfo:
        array = ArrayInfo(dtype, shape, data)
        array.check()
        return array

    def is_array(self, value: Any) -> bool:
        return type(value) is ArrayInfo

    def is_dtype(self, value: Any) -> bool:
        return type(value) is DType

    def describe(self, value: Any) -> str:
        if type(value) is ArrayInfo:
            return f"{value.dtype.name} array of shape {list(value.shape)}"
        if type(value) is Span:
            return f"{value.n}-byte string"
        return type(value).__name__

    def info(self, name: str, array: ArrayInfo) -> TensorInfo:
        return TensorInfo(name, array.dtype.name, tuple(array.shape), array.nbytes,
                          self._all_zero(array))

    def _all_zero(self, array: ArrayInfo) -> bool | None:
        data = array.data
        if array.dtype.kind == "O" or array.nbytes == 0:
            return None
        if type(data) is str:
            return not data.strip("\0")
        if type(data) is not Span:
            return not bytes(data).strip(b"\0")
        return _zeros(self.data, data.start, data.n)


def _zeros(data: Any, start: int, n: int) -> bool:
    """Whether ``n`` bytes at ``start`` are all zero; reads a few KiB of real weights
    (the first chunk is small and chunks grow), the whole run only when it is zeros."""
    pos, end, chunk = start, start + n, 4096
    while pos < end:
        piece = data[pos:min(pos + chunk, end)]
        if piece.count(0) != len(piece):
            return False
        pos += len(piece)
        chunk = min(chunk * 4, 1 << 22)
    return True
