"""Load a weight pickle's arrays without unpickling it: the restricted loader.

detectron2 opens ``.pkl`` checkpoints with ``pickle.load(f, encoding="latin1")``, which
runs whatever the file names.  ``read_weights`` builds the same value with the
interpreter of ``pickle_values`` -- the scanner's reader, building only allow-listed
values -- and the ``NumpyArrays`` hook, which makes exactly the numpy calls
``pickle.load`` would make (``_reconstruct`` then ``ndarray.__setstate__``, ``dtype``
then ``dtype.__setstate__``, ``scalar``, ``_frombuffer``) with arguments already checked
to be plain values.  So the arrays are bit-identical to ``pickle.load``'s, and nothing
the file names is ever called: an import off the allow-list raises
``RestrictedLoadError`` even for a file the scan never saw.
"""

from __future__ import annotations

import io
import mmap
import os
import stat
from dataclasses import dataclass, field
from typing import IO, Any

from ..errors import RestrictedLoadError
from .pickle_scan import _Bad
from .pickle_values import ArrayHook, Interpreter, Refused
from .tensors import UNKNOWN, classify, mapped, plain


@dataclass(frozen=True)
class Weights:
    """A checkpoint as the restricted loader built it.

    ``tensors`` holds the arrays by name (detectron2's ``model``, v1's ``blobs``, or the
    dict itself for a Caffe2 ImageNet file); ``meta`` the rest as plain data
    (``__author__``, ``matching_heuristics``, v1's ``cfg``); ``data`` the whole value,
    equal to what ``pickle.load(f, encoding="latin1")`` returns."""

    path: str
    layout: str
    tensors: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    data: Any = None
    reason: str | None = None        # why the layout is unknown (the data is still safe)


def read_weights(source: str | os.PathLike[str] | IO[bytes], *, name: str | None = None
                 ) -> Weights:
    """Build a checkpoint file's value (a path, or a binary file object as detectron2's
    ``PathManager.open`` gives) with the restricted interpreter; raises
    ``RestrictedLoadError`` for anything it does not build."""
    if isinstance(source, (str, os.PathLike)):
        with mapped(source) as data:
            return _weights(data, name or str(source))
    what = name or str(getattr(source, "name", "<stream>"))
    fd = _whole_file(source)
    if fd is not None:                  # a real file read from its start: map it, no copy
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as data:
            return _weights(data, what)
    data = source.read()               # the whole stream: every length is checked against
    if not isinstance(data, bytes):    # its end, as the scan does
        raise TypeError("read_weights needs a binary file")
    return _weights(data, what)


def _whole_file(f: IO[bytes]) -> int | None:
    """The descriptor of a non-empty regular file positioned at its start, else None."""
    try:
        fd = f.fileno()
        st = os.fstat(fd)
        return fd if stat.S_ISREG(st.st_mode) and st.st_size and f.tell() == 0 else None
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def _weights(data: Any, what: str) -> Weights:
    if not data:
        raise RestrictedLoadError(what, "empty file: not a pickle")
    hook = NumpyArrays()
    try:
        top = Interpreter(data, hook).interpret()
    except Refused as e:
        raise RestrictedLoadError(what, str(e), position=e.position) from None
    except _Bad as e:
        raise RestrictedLoadError(what, f"{e} (a stream densezoo cannot follow is never "
                                        "loaded)") from None
    layout, tensors, meta, reason = classify(top, hook.is_array, hook.describe)
    if layout == UNKNOWN and type(top) is dict:
        meta = {str(k): plain(v, hook.is_array, hook.describe) for k, v in top.items()}
    return Weights(what, layout, dict(tensors), meta, top, reason)


class NumpyArrays(ArrayHook):
    """The loader's array hook: numpy's own pickle functions, called as ``pickle.load``
    calls them (numpy 1 names them ``numpy.core``, numpy 2 ``numpy._core``: the same
    functions, whichever this numpy has)."""

    def __init__(self) -> None:
        import numpy as np

        try:
            from numpy._core import multiarray, numeric
        except ImportError:                               # numpy < 2
            from numpy.core import multiarray, numeric    # type: ignore[no-redef]
        self.np, self.multiarray, self.numeric = np, multiarray, numeric

    def reconstruct(self, shape: tuple[int, ...], typecode: Any) -> Any:
        return self.multiarray._reconstruct(self.np.ndarray, shape, typecode)

    def set_array_state(self, array: Any, state: tuple) -> None:
        array.__setstate__(state)

    def dtype(self, code: str, align: bool, copy: bool) -> Any:
        return self.np.dtype(code, align, copy)

    def set_dtype_state(self, dtype: Any, state: tuple) -> None:
        dtype.__setstate__(state)

    def scalar(self, dtype: Any, data: Any) -> Any:
        if dtype.hasobject:
            raise ValueError("a numpy scalar of object dtype")
        return self.multiarray.scalar(dtype, data)

    def frombuffer(self, buffer: Any, dtype: Any, shape: tuple[int, ...], order: str) -> Any:
        return self.numeric._frombuffer(buffer, dtype, shape, order)

    def is_array(self, value: Any) -> bool:
        return type(value) is self.np.ndarray

    def is_dtype(self, value: Any) -> bool:
        return isinstance(value, self.np.dtype)

    def describe(self, value: Any) -> str:
        if type(value) is self.np.ndarray:
            return f"{value.dtype.name} array of shape {list(value.shape)}"
        return type(value).__name__
