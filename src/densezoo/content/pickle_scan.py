"""Check a pickle's imports against an allow-list, reading it the way the unpickler does.

Every DensePose/Detectron weight file is a pickle that detectron2 loads with a
plain ``pickle.load(f, encoding="latin1")``: a tampered mirror means arbitrary
code on the user's machine.  A weights file needs only numpy array
reconstruction and builtin containers, so we allow exactly those globals and
report everything else with its opcode position.

A scanner that parses differently from the real consumer is a hole, not a
check: ``pickletools`` rejects streams CPython's unpickler accepts (``I0x10``,
digits followed by a NUL, non-ASCII protocol-0 strings), so a scan built on it
stopped at such a byte and never saw the ``os.system`` after it.  This module
has its own opcode reader that follows ``Modules/_pickle.c``: it consumes each
argument exactly as the unpickler does (line, fixed or length-prefixed), keeps
the unpickler's stack, mark stack and memo for the values that matter (strings,
which ``STACK_GLOBAL`` can import by), and checks every length against the
file before reading.  The rule that closes the rest: a stream the scanner
cannot follow to a ``STOP`` at the very end of the file is unsafe.

Frames (protocol 4+) are where reading a *file* differs from reading bytes: the C
unpickler reads a frame into its buffer (exactly the frame, when it is larger than
what the file object's ``peek`` offers, ~8 KiB), and an argument that runs past the
frame's end is then read from the file *after* the frame -- the rest of the frame is
dropped -- while a flat reading continues inside it.  A scanner reading the stream
flat was shown a harmless string where ``pickle.load(f)`` ran ``os.system``.  Real
picklers end frames on opcode boundaries, so the rule is exact and costs nothing:
an argument that crosses a frame's end, or a frame that starts before the current
one ends, is unsafe.
"""

from __future__ import annotations

import codecs
import mmap
import re
from array import array
from itertools import accumulate
import os
import pickletools
import struct
from dataclasses import dataclass
from typing import Any

# What legitimate Detectron (py2, protocol 2) and detectron2 (py3) weights contain.
ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),                    # how py3 pickles bytes at protocol <= 2
    ("collections", "OrderedDict"),
    *((mod, name) for mod in ("builtins", "__builtin__")
      for name in ("set", "frozenset", "slice", "complex", "bytearray")),
})

MAX_MEMO = 1_000_000        # a weight file memoises a few thousand objects
KEEP_STRING = 512           # longer strings cannot be module names: kept as opaque values
_OPAQUE = object()          # any value that is not a str (only a str can be imported by)
_NAMES = {op.code.encode("latin-1")[0]: op.name for op in pickletools.opcodes}
_FORBIDDEN = {
    "EXT1": "extension-registry import (resolves a global by number)",
    "EXT2": "extension-registry import (resolves a global by number)",
    "EXT4": "extension-registry import (resolves a global by number)",
    "PERSID": "persistent id (asks the loader for an external object)",
    "BINPERSID": "persistent id (asks the loader for an external object)",
    "NEXT_BUFFER": "out-of-band buffer (data not in the file)",
}
# Opcodes with no string value and a fixed stack effect: (argument, pops, pushes).
# Arguments: "" none, "line", int n (n bytes), ("len", n, signed) (length-prefixed).
_SIMPLE: dict[str, tuple[Any, int, int]] = {
    "NONE": ("", 0, 1), "NEWTRUE": ("", 0, 1), "NEWFALSE": ("", 0, 1),
    "EMPTY_DICT": ("", 0, 1), "EMPTY_LIST": ("", 0, 1), "EMPTY_TUPLE": ("", 0, 1),
    "EMPTY_SET": ("", 0, 1), "REDUCE": ("", 2, 1), "BUILD": ("", 2, 1), "APPEND": ("", 2, 1),
    "SETITEM": ("", 3, 1), "NEWOBJ": ("", 2, 1), "NEWOBJ_EX": ("", 3, 1),
    "TUPLE1": ("", 1, 1), "TUPLE2": ("", 2, 1), "TUPLE3": ("", 3, 1),
    "BINPERSID": ("", 1, 1), "READONLY_BUFFER": ("", 1, 1), "NEXT_BUFFER": ("", 0, 1),
    "INT": ("line", 0, 1), "LONG": ("line", 0, 1), "FLOAT": ("line", 0, 1),
    "PERSID": ("line", 0, 1), "BININT": (4, 0, 1), "BININT1": (1, 0, 1),
    "BININT2": (2, 0, 1), "BINFLOAT": (8, 0, 1), "EXT1": (1, 0, 1), "EXT2": (2, 0, 1),
    "EXT4": (4, 0, 1), "LONG1": (("len", 1, False), 0, 1), "LONG4": (("len", 4, True), 0, 1),
    "BINBYTES": (("len", 4, False), 0, 1), "SHORT_BINBYTES": (("len", 1, False), 0, 1),
    "BINBYTES8": (("len", 8, False), 0, 1), "BYTEARRAY8": (("len", 8, False), 0, 1),
}
_MARK_BUILDERS = {"DICT", "LIST", "TUPLE", "FROZENSET"}       # pop to mark, push one
_MARK_EXTENDERS = {"APPENDS", "SETITEMS", "ADDITEMS"}         # pop to mark, top changes
# String pushes: (argument, how the unpickler turns the bytes into the value).
_STRINGS = {
    "STRING": "line", "UNICODE": "line", "BINSTRING": ("len", 4, True),
    "SHORT_BINSTRING": ("len", 1, False), "BINUNICODE": ("len", 4, False),
    "SHORT_BINUNICODE": ("len", 1, False), "BINUNICODE8": ("len", 8, False),
}
_LEN_FORMAT = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}
_RUN_FIRST = frozenset(b"N\x88\x89}])\x8f0")
# Runs of argument-less opcodes that push an opaque value (NONE, NEWTRUE, NEWFALSE,
# EMPTY_DICT/LIST/TUPLE/SET) or POP: applied in one step, not one Python loop per byte,
# so a file of ten million "N0" is not a denial of service.
_RUN = re.compile(rb"[N\x88\x89}\])\x8f0]{64,}")
_RUN_STEPS = bytes.maketrans(b"N\x88\x89}])\x8f0", b"\x01\x01\x01\x01\x01\x01\x01\xff")


@dataclass(frozen=True)
class Finding:
    position: int          # byte offset of the opcode in the file
    opcode: str
    detail: str

    def __str__(self) -> str:
        return f"{self.detail} ({self.opcode} at byte {self.position})"


@dataclass(frozen=True)
class ScanReport:
    path: str
    globals: tuple[tuple[str, str], ...] = ()
    findings: tuple[Finding, ...] = ()
    error: str | None = None           # could not be followed to a final STOP

    @property
    def ok(self) -> bool:
        """Safe to hand to ``pickle.load``: parsed to its STOP, nothing off the allow-list.

        An unparseable stream is not safe: the unpickler may read it differently
        and reach code the scan never saw."""
        return not self.findings and self.error is None

    @property
    def reason(self) -> str | None:
        """Why it is unsafe, in one line (None when it is safe)."""
        if self.findings:
            return str(self.findings[0])
        if self.error:
            return f"{self.error} (a stream densezoo cannot follow is never handed out)"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok,
                "globals": [f"{m}.{n}" for m, n in self.globals],
                "findings": [{"position": f.position, "opcode": f.opcode, "detail": f.detail}
                             for f in self.findings],
                "error": self.error}


class _Bad(Exception):
    """The stream cannot be followed (the unpickler would fail or read it otherwise)."""

    def __init__(self, position: int, problem: str) -> None:
        super().__init__(f"not a valid pickle at byte {position}: {problem}")


def scan_pickle(path: str | os.PathLike[str],
                allowed: frozenset = ALLOWED_GLOBALS) -> ScanReport:
    """Follow every opcode to the final STOP; report disallowed imports and parse failures."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return ScanReport(str(path), error="empty file: not a pickle")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _scan(data, str(path), allowed)
    except OSError as e:
        return ScanReport(str(path), error=f"cannot read it: {e.strerror or e}")


class _Scanner:
    """The unpickler's reader, keeping only what an import can be named by.

    Values are pushed through a few hooks (``_value``, ``_string``, ``_marked``,
    ``_extend``, ``_global``, ``_forbid``): here they keep strings and make everything
    else opaque; ``pickle_values.Interpreter`` overrides them to build the allow-listed
    values, so the scan, the inventory and the loader read one stream one way.
    """

    building = False                   # True: values are built (runs go one by one)

    def __init__(self, data: mmap.mmap | bytes, allowed: frozenset) -> None:
        self.data = data
        self.allowed = allowed
        self.seen: list[tuple[str, str]] = []
        self.findings: list[Finding] = []
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.frame_end = -1            # where the current frame ends (-1: none seen)
        self.result: Any = None        # what STOP popped

    def report(self, path: str, error: str | None) -> ScanReport:
        return ScanReport(path, tuple(dict.fromkeys(self.seen)), tuple(self.findings), error)

    # -- argument readers: exactly the bytes the unpickler consumes ----------------------

    def _within_frame(self, start: int, end: int) -> None:
        """One read of the unpickler, bytes ``start:end``: it must not cross a frame's end."""
        if start < self.frame_end < end:
            raise _Bad(start, f"an argument runs past the end of the frame at byte "
                              f"{self.frame_end} (pickle.load reading a file would take it "
                              "from after the frame)")

    def _line(self, pos: int) -> tuple[bytes, int]:
        end = self.data.find(b"\n", pos)
        if end < 0:
            raise _Bad(pos, "a line argument has no newline before the end of the file")
        self._within_frame(pos, end + 1)
        return self.data[pos:end], end + 1

    def _fixed(self, pos: int, n: int) -> tuple[bytes, int]:
        if pos + n > len(self.data):
            raise _Bad(pos, "truncated argument")
        self._within_frame(pos, pos + n)
        return self.data[pos:pos + n], pos + n

    def _counted(self, pos: int, width: int, signed: bool, keep: bool) -> tuple[bytes | None, int]:
        raw, pos = self._fixed(pos, width)
        (n,) = struct.unpack(_LEN_FORMAT[width], raw)
        if signed and n >= 1 << (8 * width - 1):
            raise _Bad(pos - width, "negative byte count")
        if n > len(self.data) - pos:      # checked before reading: 2**62 is refused, not allocated
            raise _Bad(pos - width, f"declares {n} bytes but only {len(self.data) - pos} remain")
        self._within_frame(pos, pos + n)
        return self._blob(pos, n, keep), pos + n

    def _blob(self, pos: int, n: int, keep: bool) -> Any:
        """A length-prefixed argument's bytes (None: not needed to follow imports)."""
        return self.data[pos:pos + n] if keep and n <= KEEP_STRING else None

    def _arg(self, spec: Any, pos: int, keep: bool = False) -> tuple[bytes | None, int]:
        if spec == "":
            return None, pos
        if spec == "line":
            return self._line(pos)
        if isinstance(spec, int):
            return self._fixed(pos, spec)
        return self._counted(pos, spec[1], spec[2], keep)

    # -- the unpickler's stack ---------------------------------------------------------

    def _pop(self, pos: int, n: int = 1) -> list[Any]:
        if n > len(self.stack):
            raise _Bad(pos, "stack underflow")
        out = self.stack[len(self.stack) - n:]
        del self.stack[len(self.stack) - n:]
        return out

    def _pop_mark(self, pos: int) -> list[Any]:
        if not self.metastack:
            raise _Bad(pos, "no MARK to pop to")
        items, self.stack = self.stack, self.metastack.pop()
        return items

    def _check(self, module: str, name: str, pos: int, op: str) -> None:
        self.seen.append((module, name))
        if (module, name) not in self.allowed:
            self._forbid(Finding(pos, op, f"imports {module}.{name}, which is not on "
                                          "the allow-list of weight-file contents"))

    # -- value hooks: the scan keeps strings only (the interpreter overrides these) -------

    def _forbid(self, finding: Finding) -> None:
        """Something off the allow-list: the scan records it and reads on."""
        self.findings.append(finding)

    def _value(self, name: str, raw: Any, popped: list[Any], start: int) -> Any:
        """The value an opcode of ``_SIMPLE`` pushes, from its argument and what it popped."""
        return _OPAQUE

    def _string(self, name: str, raw: Any, start: int) -> Any:
        return _OPAQUE if raw is None else _decode(name, raw, start)

    def _marked(self, name: str, items: list[Any], start: int) -> Any:
        """DICT/LIST/TUPLE/FROZENSET: the container built from the items above the mark."""
        return _OPAQUE

    def _extend(self, name: str, target: Any, items: list[Any], start: int) -> Any:
        """APPENDS/SETITEMS/ADDITEMS: the target after taking the items."""
        return _OPAQUE

    def _global(self, module: Any, qual: Any, start: int, op: str) -> Any:
        """An import (GLOBAL/STACK_GLOBAL); INST and OBJ come here with ``op`` set so."""
        if type(module) is str and type(qual) is str:
            self._check(module, qual, start, op)
        else:
            self._forbid(Finding(start, op, "imports a global whose name is "
                                            "computed, not written in the file"))
        return _OPAQUE

    def run(self) -> None:
        data, n, pos = self.data, len(self.data), 0
        slow_until = 0                 # a run that reaches below a mark goes one by one
        while True:
            if pos >= n:
                raise _Bad(pos, "the file ends before STOP")
            start, code = pos, data[pos]
            if code in _RUN_FIRST and pos >= slow_until and not self.building:
                run = _RUN.match(data, pos)
                if run:
                    if self._apply_run(run.group()):
                        pos = run.end()
                        continue
                    slow_until = run.end()
            pos += 1
            name = _NAMES.get(code)
            if name is None:
                raise _Bad(start, f"unknown opcode {bytes([code])!r}")
            if name in _FORBIDDEN:
                self._forbid(Finding(start, name, _FORBIDDEN[name]))
            simple = _SIMPLE.get(name)
            if simple is not None:          # every one of them pushes exactly one value
                raw, pos = self._arg(simple[0], pos, keep=self.building)
                popped = self._pop(start, simple[1]) if simple[1] else []
                self.stack.append(self._value(name, raw, popped, start))
            elif name in _STRINGS:
                raw, pos = self._arg(_STRINGS[name], pos, keep=True)
                self.stack.append(self._string(name, raw, start))
            elif name == "STOP":
                self.result = self._pop(start)[0]
                if pos != n:
                    raise _Bad(pos, f"{n - pos} bytes after STOP (pickle.load would stop "
                                    "there; nothing else belongs in a weight file)")
                return
            else:
                pos = self._special(name, start, pos)

    def _apply_run(self, run: bytes) -> bool:
        """Push/pop a run of opaque values at once; False if it would reach below the
        current mark (then the opcode-by-opcode path handles it exactly)."""
        depths = list(accumulate(array("b", run.translate(_RUN_STEPS))))
        lowest = min(0, min(depths))
        if -lowest > len(self.stack):
            return False
        if lowest:
            del self.stack[lowest:]
        self.stack.extend([_OPAQUE] * (depths[-1] - lowest))
        return True

    def _special(self, name: str, start: int, pos: int) -> int:
        """Opcodes that touch marks, the memo or imports."""
        if name == "MARK":
            self.metastack.append(self.stack)
            self.stack = []
        elif name == "POP":
            if self.stack:
                self.stack.pop()
            else:
                self._pop_mark(start)
        elif name == "POP_MARK":
            self._pop_mark(start)
        elif name == "DUP":
            self.stack.append(self._pop(start)[0])
            self.stack.append(self.stack[-1])
        elif name in _MARK_BUILDERS:
            value = self._marked(name, self._pop_mark(start), start)   # pop, then push
            self.stack.append(value)
        elif name in _MARK_EXTENDERS:
            items = self._pop_mark(start)
            value = self._extend(name, self._pop(start)[0], items, start)
            self.stack.append(value)
        elif name in ("GLOBAL", "INST"):
            module, pos = self._line(pos)
            qual, pos = self._line(pos)
            try:
                value = self._global(module.decode("utf-8"), qual.decode("utf-8"), start, name)
            except UnicodeDecodeError:
                raise _Bad(start, "import names that are not UTF-8") from None
            if name == "INST":
                self._pop_mark(start)
            self.stack.append(value)
        elif name == "OBJ":
            items = self._pop_mark(start)
            if not items:
                raise _Bad(start, "OBJ without a class")
            value = self._marked(name, items, start)
            self.stack.append(value)
        elif name == "STACK_GLOBAL":
            module, qual = self._pop(start, 2)
            self.stack.append(self._global(module, qual, start, name))
        elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            pos = self._memo_put(name, start, pos)
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            key, pos = self._memo_key(name, start, pos)
            if key not in self.memo:
                raise _Bad(start, f"memo key {key} was never stored")
            self.stack.append(self.memo[key])
        elif name == "PROTO":
            raw, pos = self._fixed(pos, 1)
            if raw[0] > 5:
                raise _Bad(start, f"unsupported pickle protocol {raw[0]}")
        elif name == "FRAME":
            if start < self.frame_end:
                raise _Bad(start, f"a frame starts before the frame ending at byte "
                                  f"{self.frame_end} is finished")
            raw, pos = self._fixed(pos, 8)
            size = struct.unpack("<Q", raw)[0]
            if size > len(self.data) - pos:
                raise _Bad(start, "a frame longer than the rest of the file")
            self.frame_end = pos + size
        else:                                   # every opcode of protocols 0-5 is handled
            raise _Bad(start, f"opcode {name} is not understood")
        return pos

    def _memo_key(self, name: str, start: int, pos: int) -> tuple[int, int]:
        if name in ("PUT", "GET"):
            raw, pos = self._line(pos)
            try:
                key = int(raw.decode("ascii"), 10)
            except (UnicodeDecodeError, ValueError):
                raise _Bad(start, f"memo key {raw[:20]!r} is not a number") from None
            if key < 0:
                raise _Bad(start, "negative memo key")
            return key, pos
        raw, pos = self._fixed(pos, 1 if name.startswith("BIN") else 4)
        return int.from_bytes(raw, "little"), pos

    def _memo_put(self, name: str, start: int, pos: int) -> int:
        if name == "MEMOIZE":
            key = len(self.memo)
        else:
            key, pos = self._memo_key(name.replace("PUT", "GET"), start, pos)
        if not self.stack:
            raise _Bad(start, "memoising from an empty stack")
        if len(self.memo) >= MAX_MEMO and key not in self.memo:
            raise _Bad(start, f"more than {MAX_MEMO} memo entries (not a weight file)")
        self.memo[key] = self.stack[-1]
        return pos


def _decode(name: str, raw: bytes, pos: int) -> str:
    """A string opcode's value as the unpickler builds it (8-bit strings as latin-1,
    which is how detectron2 loads py2 weights)."""
    try:
        if name == "STRING":
            if len(raw) < 2 or raw[:1] != raw[-1:] or raw[:1] not in (b"'", b'"'):
                raise _Bad(pos, "the STRING argument must be quoted")
            return codecs.escape_decode(raw[1:-1])[0].decode("latin-1")
        if name == "UNICODE":
            return codecs.raw_unicode_escape_decode(raw)[0]
        if name in ("BINSTRING", "SHORT_BINSTRING"):
            return raw.decode("latin-1")
        return raw.decode("utf-8", "surrogatepass")
    except (UnicodeDecodeError, ValueError) as e:
        raise _Bad(pos, f"{name} cannot be decoded ({e})") from None


def scan_bytes(data: bytes, allowed: frozenset = ALLOWED_GLOBALS) -> ScanReport:
    """Scan an in-memory pickle (tests, and callers that already hold the bytes)."""
    return _scan(data, "<bytes>", allowed)


def _scan(data: mmap.mmap | bytes, path: str, allowed: frozenset) -> ScanReport:
    scanner = _Scanner(data, allowed)
    try:
        scanner.run()
    except _Bad as e:
        return scanner.report(path, str(e))
    return scanner.report(path, None)
