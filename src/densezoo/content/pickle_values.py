"""Build a weight pickle's values without running it: the scanner's reader, interpreting.

``pickle.load`` builds a value by *calling* whatever the file names; this interpreter
calls nothing the file names.  It reads the stream with the scanner's own reader
(``pickle_scan._Scanner``: the same opcode table, frame and length rules, stack, mark
stack and memo) and builds only the values weight files are made of -- None, bools,
numbers, strings, bytes, tuples, lists, dicts, sets, ``OrderedDict``, and numpy arrays,
dtypes and scalars through the few numpy globals real checkpoints name -- with each
constructor's arguments checked before it is used.  Anything else (an import off the
allow-list, ``INST``/``OBJ``/``NEWOBJ``, a persistent id, a ``BUILD`` on anything but an
array or dtype, a stream it cannot follow) raises ``Refused`` at its byte offset.

What an array *becomes* is the caller's: an ``ArrayHook`` turns the checked arguments into
real numpy arrays (``weights.NumpyArrays``: the very numpy calls ``pickle.load`` makes,
so the result is bit-identical) or into descriptors that need no numpy
(``tensors.Descriptors``: dtype, shape, where the bytes are).
"""

from __future__ import annotations

import re
import struct
from collections import OrderedDict
from typing import Any

from .pickle_scan import ALLOWED_GLOBALS, Finding, _Bad, _decode, _Scanner

MAX_LONG_BYTES = 1024           # an integer of 8000 bits is not in a weight file
_DECIMAL = re.compile(rb"-?(0|[1-9][0-9]*)")
_FLOAT = re.compile(rb"-?(nan|inf|[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?)")
# A plain dtype's code as numpy pickles it ('f4', 'i8', 'b1', 'O8', 'S10', 'U3'): not a
# comma list or a dict (structured), not a datetime (those carry metadata).
DTYPE_CODE = re.compile(r"([bifucOSUV])([0-9]*)")


class Refused(Exception):
    """A construct the interpreter does not build, at a byte offset of the stream."""

    def __init__(self, position: int, detail: str) -> None:
        super().__init__(f"{detail} at byte {position}")
        self.position = position
        self.detail = detail


class Span:
    """A long string or bytes argument left in the file: ``n`` bytes at ``start``.

    The inventory needs an array's shape and dtype, not its megabytes; ``encoding`` says
    how the unpickler would turn the bytes into the value ("bytes": as they are,
    "latin-1": a py2 string, one byte per character, "utf-8": a py3 ``str``)."""

    __slots__ = ("start", "n", "encoding")
    __hash__ = None                      # type: ignore[assignment]  # never a dict key

    def __init__(self, start: int, n: int, encoding: str) -> None:
        self.start, self.n, self.encoding = start, n, encoding


class Global:
    """An allow-listed import: usable only as the callable of a ``REDUCE`` it handles."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}"


class ArrayHook:
    """What numpy's pickle globals make; every argument has been type-checked already."""

    def reconstruct(self, shape: tuple[int, ...], typecode: Any) -> Any:
        """``numpy.core.multiarray._reconstruct(ndarray, shape, typecode)``: an empty array."""
        raise NotImplementedError

    def set_array_state(self, array: Any, state: tuple) -> None:
        """``BUILD`` on that array: ``(version, shape, dtype, fortran, data)``."""
        raise NotImplementedError

    def dtype(self, code: str, align: bool, copy: bool) -> Any:
        raise NotImplementedError

    def set_dtype_state(self, dtype: Any, state: tuple) -> None:
        raise NotImplementedError

    def scalar(self, dtype: Any, data: Any) -> Any:
        raise NotImplementedError

    def frombuffer(self, buffer: Any, dtype: Any, shape: tuple[int, ...], order: str) -> Any:
        raise NotImplementedError

    def is_array(self, value: Any) -> bool:
        raise NotImplementedError

    def is_dtype(self, value: Any) -> bool:
        raise NotImplementedError


def _is_shape(value: Any) -> bool:
    return type(value) is tuple and all(type(d) is int and d >= 0 for d in value)


def _is_data(value: Any) -> bool:
    return type(value) in (bytes, str, bytearray, Span)


class Interpreter(_Scanner):
    """The scanner's reader, building values (see the module docstring)."""

    building = True

    def __init__(self, data: Any, hook: ArrayHook, *, span_from: int | None = None) -> None:
        super().__init__(data, ALLOWED_GLOBALS)
        self.hook = hook
        self.span_from = span_from       # arguments this long stay in the file (inventory)
        self._reducers = {
            "_reconstruct": self._reconstruct, "scalar": self._scalar,
            "_frombuffer": self._frombuffer, "ndarray": None, "dtype": self._dtype,
            "encode": self._encode, "OrderedDict": self._ordered_dict,
            "set": self._from_iterable(set), "frozenset": self._from_iterable(frozenset),
            "slice": self._slice, "complex": self._complex, "bytearray": self._bytearray,
        }

    def interpret(self) -> Any:
        """The value the stream's STOP returns (raises ``Refused`` or ``_Bad``)."""
        self.run()
        return self.result

    # -- the scanner's hooks, building -------------------------------------------------

    def _forbid(self, finding: Finding) -> None:
        raise Refused(finding.position, f"{finding.detail} ({finding.opcode})")

    def _blob(self, pos: int, n: int, keep: bool) -> Any:
        if self.span_from is not None and n >= self.span_from:
            return Span(pos, n, "bytes")
        return self.data[pos:pos + n]

    def _string(self, name: str, raw: Any, start: int) -> Any:
        if type(raw) is Span:
            raw.encoding = "utf-8" if "UNICODE" in name else "latin-1"
            return raw
        return _decode(name, raw, start)

    def _global(self, module: Any, qual: Any, start: int, op: str) -> Any:
        super()._global(module, qual, start, op)      # raises off the allow-list
        if op == "INST":
            raise Refused(start, f"INST makes an object of {module}.{qual}")
        return Global(module, qual)

    def _value(self, name: str, raw: Any, popped: list[Any], start: int) -> Any:
        maker = _PLAIN.get(name)
        if maker is not None:
            return maker()
        if name in _NUMBERS:
            return _NUMBERS[name](raw, start)
        if name in ("BINBYTES", "SHORT_BINBYTES", "BINBYTES8"):
            return raw
        if name == "BYTEARRAY8":
            return raw if type(raw) is Span else bytearray(raw)
        if name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            return tuple(popped)
        if name == "APPEND":
            return self._extend("APPENDS", popped[0], popped[1:], start)
        if name == "SETITEM":
            return self._extend("SETITEMS", popped[0], popped[1:], start)
        if name == "REDUCE":
            return self._reduce(popped[0], popped[1], start)
        if name == "BUILD":
            return self._build(popped[0], popped[1], start)
        raise Refused(start, f"{name} is not something weights are made of")

    def _marked(self, name: str, items: list[Any], start: int) -> Any:
        if name == "LIST":
            return items
        if name == "TUPLE":
            return tuple(items)
        if name == "FROZENSET":
            return self._hashed(frozenset, items, start)
        if name == "DICT":
            return self._extend("SETITEMS", {}, items, start)
        raise Refused(start, f"{name} makes an object of a class")

    def _extend(self, name: str, target: Any, items: list[Any], start: int) -> Any:
        kind = type(target)
        if name == "APPENDS" and kind is list:
            target.extend(items)
        elif name == "SETITEMS" and kind in (dict, OrderedDict):
            if len(items) % 2:
                raise _Bad(start, "odd number of items for a dict")
            try:
                for i in range(0, len(items), 2):
                    target[items[i]] = items[i + 1]
            except TypeError as e:
                raise Refused(start, f"a dict key that cannot be one ({e})") from None
        elif name == "ADDITEMS" and kind is set:
            self._hashed(target.update, items, start)
        else:
            raise Refused(start, f"{name} on a {kind.__name__} (it would call its methods)")
        return target

    @staticmethod
    def _hashed(make: Any, items: Any, start: int) -> Any:
        try:
            return make(items)
        except TypeError as e:
            raise Refused(start, f"a set item that cannot be one ({e})") from None

    # -- REDUCE and BUILD: only the allow-listed constructors, arguments checked ----------

    def _reduce(self, func: Any, args: Any, start: int) -> Any:
        if type(func) is not Global:
            raise Refused(start, f"REDUCE calls a {type(func).__name__}, not an allowed import")
        if type(args) is not tuple:
            raise Refused(start, f"REDUCE arguments are a {type(args).__name__}, not a tuple")
        make = self._reducers.get(func.name)
        if make is None:
            raise Refused(start, f"{func} is only used as an argument, never called")
        try:
            return make(args, start)
        except (TypeError, ValueError, OverflowError, UnicodeError) as e:
            raise Refused(start, f"{func}{_short(args)} fails: {e}") from None

    def _bad_args(self, func: str, args: tuple, start: int) -> Refused:
        return Refused(start, f"{func} called with arguments weight files never use: "
                              f"{_short(args)}")

    def _reconstruct(self, args: tuple, start: int) -> Any:
        if (len(args) == 3 and type(args[0]) is Global and args[0].name == "ndarray"
                and _is_shape(args[1]) and args[2] in (b"b", "b")):
            return self.hook.reconstruct(args[1], args[2])
        raise self._bad_args("numpy _reconstruct", args, start)

    def _dtype(self, args: tuple, start: int) -> Any:
        if (1 <= len(args) <= 3 and type(args[0]) is str and DTYPE_CODE.fullmatch(args[0])
                and all(type(a) in (bool, int) and a in (0, 1) for a in args[1:])):
            align, copy = (bool(a) for a in (*args[1:], False, False)[:2])
            return self.hook.dtype(args[0], align, copy)
        raise self._bad_args("numpy.dtype", args, start)

    def _scalar(self, args: tuple, start: int) -> Any:
        if len(args) == 2 and self.hook.is_dtype(args[0]) and _is_data(args[1]):
            return self.hook.scalar(args[0], args[1])
        raise self._bad_args("numpy scalar", args, start)

    def _frombuffer(self, args: tuple, start: int) -> Any:
        if (len(args) == 4 and type(args[0]) in (bytes, bytearray, Span)
                and self.hook.is_dtype(args[1]) and _is_shape(args[2])
                and args[3] in ("C", "F")):
            return self.hook.frombuffer(*args)
        raise self._bad_args("numpy _frombuffer", args, start)

    def _encode(self, args: tuple, start: int) -> Any:
        if (len(args) == 2 and type(args[0]) in (str, Span)
                and args[1] in ("latin1", "latin-1")):
            if type(args[0]) is Span:      # the utf-8 text of latin-1 bytes, still in the file
                return args[0]
            return args[0].encode("latin-1")
        raise self._bad_args("_codecs.encode", args, start)

    def _ordered_dict(self, args: tuple, start: int) -> Any:
        if not args or (len(args) == 1 and type(args[0]) in (list, tuple)):
            return OrderedDict(*args)
        raise self._bad_args("OrderedDict", args, start)

    def _from_iterable(self, make: type) -> Any:
        def build(args: tuple, start: int) -> Any:
            if not args or (len(args) == 1 and type(args[0]) in (list, tuple, set)):
                return self._hashed(make, args[0] if args else (), start)
            raise self._bad_args(make.__name__, args, start)
        return build

    def _slice(self, args: tuple, start: int) -> Any:
        if 1 <= len(args) <= 3 and all(a is None or type(a) is int for a in args):
            return slice(*args)
        raise self._bad_args("slice", args, start)

    def _complex(self, args: tuple, start: int) -> Any:
        if len(args) <= 2 and all(type(a) in (int, float) for a in args):
            return complex(*args)
        raise self._bad_args("complex", args, start)

    def _bytearray(self, args: tuple, start: int) -> Any:
        if not args or (len(args) == 1 and type(args[0]) is bytes):
            return bytearray(*args)
        if len(args) == 2 and type(args[0]) is str and args[1] in ("latin1", "latin-1"):
            return bytearray(args[0], "latin-1")
        raise self._bad_args("bytearray", args, start)

    def _build(self, target: Any, state: Any, start: int) -> Any:
        try:
            if self.hook.is_array(target) and _array_state(state, self.hook):
                self.hook.set_array_state(target, state)
                return target
            if self.hook.is_dtype(target) and _dtype_state(state):
                self.hook.set_dtype_state(target, state)
                return target
        except (TypeError, ValueError, OverflowError, UnicodeError) as e:
            raise Refused(start, f"BUILD of a numpy value fails: {e}") from None
        raise Refused(start, f"BUILD sets the state of a {type(target).__name__} "
                             f"(only numpy arrays and dtypes are restored): {_short(state)}")


def _array_state(state: Any, hook: ArrayHook) -> bool:
    """``ndarray.__setstate__``'s argument as numpy writes it: (1, shape, dtype, fortran,
    data), data bytes (or a latin-1 str from py2) -- or a list, for an object array."""
    if type(state) is not tuple or len(state) != 5 or state[0] != 1:
        return False
    _, shape, dtype, fortran, data = state
    return (_is_shape(shape) and hook.is_dtype(dtype) and type(fortran) in (bool, int)
            and (_is_data(data) or type(data) is list))


def _dtype_state(state: Any) -> bool:
    """A plain dtype's state: (3, byteorder, None, None, None, elsize, alignment, flags).
    Structured, sub-array and datetime dtypes (fields, metadata) are not weights."""
    return (type(state) is tuple and len(state) == 8 and state[0] == 3
            and state[1] in ("<", ">", "|", "=") and state[2:5] == (None, None, None)
            and all(type(v) is int for v in state[5:]))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _int_line(raw: bytes, start: int) -> Any:
    """INT: protocol 0 writes bools as 00/01; anything but plain decimal is refused (the C
    unpickler reads it with strtol base 0: '010' is 8 there, not 10)."""
    if raw in (b"00", b"01"):
        return raw == b"01"
    if _DECIMAL.fullmatch(raw):
        return int(raw)
    raise Refused(start, f"an INT written as {raw[:20]!r}")


def _long_line(raw: bytes, start: int) -> int:
    digits = raw[:-1] if raw.endswith(b"L") else raw
    if _DECIMAL.fullmatch(digits):
        return int(digits)
    raise Refused(start, f"a LONG written as {raw[:20]!r}")


def _float_line(raw: bytes, start: int) -> float:
    if _FLOAT.fullmatch(raw):
        return float(raw)
    raise Refused(start, f"a FLOAT written as {raw[:20]!r}")


def _long_bytes(raw: Any, start: int) -> int:
    if type(raw) is not bytes or len(raw) > MAX_LONG_BYTES:
        raise Refused(start, "an integer longer than any weight file holds")
    return int.from_bytes(raw, "little", signed=True)


_PLAIN = {"NONE": lambda: None, "NEWTRUE": lambda: True, "NEWFALSE": lambda: False,
          "EMPTY_DICT": dict, "EMPTY_LIST": list, "EMPTY_TUPLE": tuple, "EMPTY_SET": set}
_NUMBERS = {
    "INT": _int_line, "LONG": _long_line, "FLOAT": _float_line,
    "BININT": lambda raw, _: struct.unpack("<i", raw)[0],
    "BININT1": lambda raw, _: raw[0], "BININT2": lambda raw, _: struct.unpack("<H", raw)[0],
    "BINFLOAT": lambda raw, _: struct.unpack(">d", raw)[0],
    "LONG1": _long_bytes, "LONG4": _long_bytes,
}

__all__ = ["ArrayHook", "Global", "Interpreter", "Refused", "Span"]
