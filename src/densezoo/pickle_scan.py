"""Check a pickle's imports against an allow-list, without unpickling it.

Every DensePose/Detectron weight file is a pickle that detectron2 loads with a
plain ``pickle.load``: a tampered mirror means arbitrary code on the user's
machine.  A weights file needs only numpy array reconstruction and builtin
containers, so instead of a deny-list (which keeps being bypassed) we allow
exactly those globals and report everything else with its opcode position.

The walk uses ``pickletools.genops`` (which parses, never executes) and keeps a
small model of the unpickler's stack and memo, so a ``STACK_GLOBAL`` whose
module and name come from memoised strings is still resolved; one whose names
cannot be resolved statically is itself a finding.
"""

from __future__ import annotations

import pickletools
from dataclasses import dataclass, field
from pathlib import Path
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

_STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE",
               "SHORT_BINUNICODE", "BINUNICODE8"}
_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}
_FORBIDDEN_OPS = {
    "EXT1": "extension-registry import (resolves a global by number)",
    "EXT2": "extension-registry import (resolves a global by number)",
    "EXT4": "extension-registry import (resolves a global by number)",
    "PERSID": "persistent id (asks the loader for an external object)",
    "BINPERSID": "persistent id (asks the loader for an external object)",
    "NEXT_BUFFER": "out-of-band buffer (data not in the file)",
}
_MARK = object()
_UNKNOWN = object()


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
    error: str | None = None           # not (entirely) a valid pickle

    @property
    def ok(self) -> bool:
        """No disallowed import.  An ``error`` alone is not unsafe: the unpickler would
        stop at the same bad byte, having reached only allowed globals before it."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok,
                "globals": [f"{m}.{n}" for m, n in self.globals],
                "findings": [{"position": f.position, "opcode": f.opcode, "detail": f.detail}
                             for f in self.findings],
                "error": self.error}


@dataclass
class _Walk:
    stack: list[Any] = field(default_factory=list)
    memo: dict[Any, Any] = field(default_factory=dict)

    def pop(self) -> Any:
        return self.stack.pop() if self.stack else _UNKNOWN

    def pop_to_mark(self) -> None:
        while self.stack:
            if self.stack.pop() is _MARK:
                return


def scan_pickle(path: str | Path, allowed: frozenset = ALLOWED_GLOBALS) -> ScanReport:
    """Walk every opcode of every pickle in the file; report disallowed imports."""
    seen: list[tuple[str, str]] = []
    findings: list[Finding] = []

    def check(module: str, name: str, pos: int, op: str) -> None:
        seen.append((module, name))
        if (module, name) not in allowed:
            findings.append(Finding(pos, op, f"imports {module}.{name}, which is not on the "
                                             "allow-list of weight-file contents"))

    try:
        with open(path, "rb") as f:
            pickles = 0
            while f.peek(1):
                pickles += 1
                walk = _Walk()
                for op, arg, pos in pickletools.genops(f):
                    _step(walk, op, arg, pos or 0, check, findings)
            if pickles == 0:
                return ScanReport(str(path), error="empty file: not a pickle")
    except (ValueError, EOFError, UnicodeDecodeError, OverflowError) as e:
        return ScanReport(str(path), tuple(seen), tuple(findings),
                          error=f"not a valid pickle: {e}")
    return ScanReport(str(path), tuple(dict.fromkeys(seen)), tuple(findings))


def _step(w: _Walk, op, arg, pos: int, check, findings: list[Finding]) -> None:
    name = op.name
    if name in _FORBIDDEN_OPS:
        findings.append(Finding(pos, name, _FORBIDDEN_OPS[name]))
    if name in ("GLOBAL", "INST"):
        module, _, qual = str(arg).partition(" ")
        check(module, qual, pos, name)
    elif name == "STACK_GLOBAL":
        qual, module = w.pop(), w.pop()
        if isinstance(module, str) and isinstance(qual, str):
            check(module, qual, pos, name)
        else:
            findings.append(Finding(pos, name, "imports a global whose name is computed, "
                                               "not written in the file"))
        w.stack.append(_UNKNOWN)
        return
    if name in _STRING_OPS:
        w.stack.append(arg.decode("latin-1") if isinstance(arg, bytes) else str(arg))
        return
    if name in _PUT_OPS:
        w.memo[arg] = w.stack[-1] if w.stack else _UNKNOWN
        return
    if name == "MEMOIZE":
        w.memo[len(w.memo)] = w.stack[-1] if w.stack else _UNKNOWN
        return
    if name in _GET_OPS:
        w.stack.append(w.memo.get(arg, _UNKNOWN))
        return
    # Any other opcode: apply its documented stack effect with opaque values.
    before = op.stack_before
    if pickletools.markobject in before:
        w.pop_to_mark()
        for _ in range(before.index(pickletools.markobject)):
            w.pop()
    else:
        for _ in before:
            w.pop()
    for item in op.stack_after:
        w.stack.append(_MARK if item is pickletools.markobject else _UNKNOWN)
