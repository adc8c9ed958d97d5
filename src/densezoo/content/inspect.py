"""The one list of checks on bytes about to be trusted, by file type.

Every door into "trusted" runs this: a download or bundle import being
admitted (``store.intake``), a file found in the store with nothing yet to
check it against, and ``verify --scan``.  Written once because the copies
drifted: the cached-file pin skipped the pickle scan, so a hostile pickle
planted in the store came back as "cached, pinned".

Two kinds of finding: *unsafe* (the bytes are hostile: keep them as evidence,
exit 9) and *wrong* (not what the name says: an error page, a truncated
archive; discard).  The content check runs only on first use, when no
published checksum vouches for the bytes; the pickle scan always runs, because
a checksum says the bytes are the published ones, not that they are safe.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .sniff import content_problem

if TYPE_CHECKING:
    from .structure import StructureCheck


@dataclass(frozen=True)
class Finding:
    """Why bytes may not become trusted: wrong content, or hostile (kept as evidence)."""

    unsafe: bool                   # hostile bytes (quarantine as evidence) vs wrong bytes
    reason: str
    structure: "StructureCheck | None" = None   # set when the tensors are another model's


@dataclass(frozen=True)
class Examination:
    """Everything the checks found: what forbids trusting the bytes (``finding``), and
    what vouches for them beyond a checksum (``structure``: the model's tensors)."""

    finding: Finding | None
    structure: "StructureCheck | None" = None
    notes: tuple[str, ...] = ()    # true of the bytes, worth saying, not a refusal


def is_pickle(*names: str) -> bool:
    """Read as a pickle by its consumer: decided by every name the file goes by (the
    entry's ``filename`` and the URL's last segment, which iopath uses)."""
    return any(n.lower().endswith(".pkl") for n in names if n)


def inspect(path: str | os.PathLike[str], file_name: str, *, first_use: bool,
            scan_imports: bool = True, other_names: tuple[str, ...] = (),
            model: str | None = None) -> Finding | None:
    """None when the bytes may be trusted as ``file_name``, else what is wrong with them.

    ``scan_imports`` False (``--no-scan``) skips the allow-list, never the parse: a
    file that is not a pickle is not what its name says.  ``model``: the manifest entry
    the bytes claim to be; when densezoo knows its structure, the tensors must be it."""
    return examine(path, file_name, first_use=first_use, scan_imports=scan_imports,
                   other_names=other_names, model=model).finding


def examine(path: str | os.PathLike[str], file_name: str, *, first_use: bool,
            scan_imports: bool = True, other_names: tuple[str, ...] = (),
            model: str | None = None, zeros: bool = False) -> Examination:
    """``inspect``, keeping the structure check's answer when it matched (a prefix plus a
    structure match is evidence of its own: the trust record's *structure* voucher).
    ``zeros``: say when every array of the pickle is zero (a mesh placeholder)."""
    finding = _checks(path, file_name, first_use=first_use, scan_imports=scan_imports,
                      other_names=other_names)
    notes = (_zero_note(path),) if zeros and finding is None and is_pickle(
        file_name, *other_names) else ()
    notes = tuple(n for n in notes if n)
    if finding is not None or model is None:
        return Examination(finding, notes=notes)
    from .structure import check_file, expected_for   # only for models with a structure

    expected = expected_for(model)
    if expected is None:
        return Examination(None, notes=notes)
    result = check_file(path, expected)
    if result.status == "mismatch":
        return Examination(Finding(False, result.summary(), result), result)
    return Examination(None, result, notes)


def _zero_note(path: str | os.PathLike[str]) -> str | None:
    """The mesh placeholders (detectron2 #3233, #4141) recognised by their bytes."""
    from .tensors import inventory

    inv = inventory(path)
    if inv.tensors and all(t.all_zero for t in inv.tensors):
        return (f"its content is a placeholder: all {len(inv.tensors)} arrays are zero "
                "(checked, not only reported)")
    return None


def _checks(path: str | os.PathLike[str], file_name: str, *, first_use: bool,
            scan_imports: bool, other_names: tuple[str, ...]) -> Finding | None:
    if is_pickle(file_name, *other_names):
        from .pickle_scan import scan_pickle   # only when a pickle is scanned: verify
                                               # --full without --scan never needs it
        report = scan_pickle(path)
        if not report.ok and (scan_imports or report.error is not None):
            return Finding(True, f"unsafe pickle: {report.reason}")
    if first_use:
        problem = content_problem(path, file_name)
        if problem:
            return Finding(False, problem)
    return None
