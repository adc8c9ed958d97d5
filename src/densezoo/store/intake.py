"""The one way bytes become trusted in the store: check digests, inspect, publish, pin.

Every path that adds a file to the store (a download, a bundle import, a file
adopted from disk) hands it to ``Intake.admit``; a file already in the store
that has nothing yet to be checked against is pinned only through
``Intake.pin_cached``.  Both run ``content.inspect``: when this step was
written twice, the copies drifted apart (bundle import skipped the pickle scan;
the cached-file pin skipped it too), and a hostile pickle became "trusted".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..content.inspect import Examination, Finding, examine
from ..errors import StructureMismatchError, UnsafeContentError, WrongContentError
from ..hashing import Digests, Expected
from ..manifest import Artifact
from .files import Partial, Store
from .record import Record, Voucher
from .trust import Trust, has_full, voucher_for

if TYPE_CHECKING:
    from ..content.structure import StructureCheck


def model_of(art: Artifact) -> str | None:
    """The model whose structure the bytes must have (only models have one: the structure
    data is not even loaded for the rest)."""
    return art.name if art.kind == "model" else None


@dataclass(frozen=True)
class Admitted:
    path: Path                     # the published file
    pinned: bool                   # a first-use pin was recorded now
    warnings: tuple[str, ...]
    record: Record                 # this user's record after the bytes entered
    # The model's tensors checked against the structure its config builds (None: no
    # structure known); a match is recorded as a ``structure`` voucher.
    structure: "StructureCheck | None" = None


class Intake:
    def __init__(self, store: Store, trust: Trust, *, scan: bool) -> None:
        self.store = store
        self.trust = trust
        self.scan = scan

    def inspect(self, art: Artifact, path: Path, *, first_use: bool) -> Finding | None:
        return self.examine(art, path, first_use=first_use).finding

    def examine(self, art: Artifact, path: Path, *, first_use: bool) -> Examination:
        """``inspect`` with what vouches beyond a checksum: the model's structure."""
        return examine(path, art.file_name, first_use=first_use, scan_imports=self.scan,
                       other_names=art.names_read_as, model=model_of(art),
                       zeros=art.kind == "mesh")

    @staticmethod
    def structure_problem(seen: Examination) -> str | None:
        """Why bytes an md5 prefix alone matched are not taken (None: the structure
        matched, which with the prefix is the trust record's *structure* voucher)."""
        if seen.structure is not None and seen.structure.ok:
            return None
        return "only an md5 prefix matched, and " + (
            seen.structure.summary() if seen.structure else
            "densezoo knows no structure to check its tensors against")

    def admit(self, art: Artifact, partial: Partial, digests: Digests, expected: Expected, *,
              url: str, validators: dict[str, str | None], origin: str, record: Record,
              voucher: Voucher, claims: tuple[Voucher, ...] = (),
              mismatch_hint: str | None = None, require_structure: bool = False) -> Admitted:
        """Publish ``partial`` as ``art`` if its bytes are right and safe, else refuse;
        then record ``voucher`` (who delivered them: the origin, a copy, a bundle, a
        file on disk) and ``claims`` (what the Hub says of a copy) in the user's record.

        Raises ChecksumMismatchError or WrongContentError (partial discarded:
        the bytes are not the file) or UnsafeContentError (partial moved to
        ``bad/`` as evidence: the bytes are hostile).  ``origin`` names where the
        bytes came from, for messages; ``url`` is recorded (already redacted).
        Another model's tensors under this model's name: StructureMismatchError (exit 4,
        even when an md5 prefix matched).  ``require_structure``: an md5 prefix is all the
        digests say (adopt); the tensors must match the model's structure too.
        """
        what = f"{art.name} from {origin}"
        try:
            expected.check(digests, what, url=url, hint=mismatch_hint)
        except Exception:
            partial.discard()
            raise
        will_pin = self.trust.needs_pin(art, record, origin=voucher.kind == "origin")
        seen = self.examine(art, partial.path, first_use=will_pin)
        finding = seen.finding
        if finding is not None:
            if finding.unsafe:
                moved = self.store.quarantine(art, partial.path)
                partial.discard()
                raise UnsafeContentError(what, finding.reason, moved_to=str(moved))
            partial.discard()
            if finding.structure is not None:          # another model's tensors: exit 4
                raise StructureMismatchError(what, finding.reason)
            raise WrongContentError(what, finding.reason)
        weak = self.structure_problem(seen) if require_structure else None
        if weak is not None:
            partial.discard()
            raise WrongContentError(what, weak)
        path = self.store.publish(art, partial, digests, url=url, validators=validators)
        if seen.structure is not None and seen.structure.ok:
            # The structure voucher: these bytes' tensors are the model's (detail says which).
            claims = (*claims, voucher_for("structure", f"structure:{seen.structure.model}",
                                           digests, seen.structure.summary()))
        pin = record.pin
        if will_pin or pin is None or pin.agrees(digests) or not has_full(expected):
            record = self.trust.records.add(art, record, voucher, *claims)
        # else: bytes a published checksum admitted, against another entry's pin of the
        # same URL: the pin stays (the published word needs no record; the other entry's
        # conflict is reported when it is used).
        return Admitted(path, will_pin, seen.notes, record, seen.structure)

    def pin_cached(self, art: Artifact, path: Path, digests: Digests,
                   identity: tuple[int, int] | None, record: Record) -> Admitted:
        """Trust a file already in the store that had nothing to be checked against (no
        published checksum, no pin of this user's): the same inspection as a download,
        then a voucher naming who put it there (``Trust.found_in_store``).

        Unsafe bytes are moved to ``bad/`` (UnsafeContentError); wrong bytes too
        (WrongContentError), so that the fetch that follows downloads a good copy."""
        finding = self.inspect(art, path, first_use=True)
        if finding is not None:
            moved = self.store.quarantine(art, identity=identity,
                                          status="unsafe" if finding.unsafe else "corrupt",
                                          reason=finding.reason)
            what = f"{art.name} (the copy in the store at {path})"
            if finding.unsafe:
                raise UnsafeContentError(what, finding.reason, moved_to=str(moved))
            if finding.structure is not None:
                raise StructureMismatchError(what, f"{finding.reason}; moved to {moved}")
            raise WrongContentError(what, f"{finding.reason}; moved to {moved}")
        record = self.trust.records.add(art, record, self.trust.found_in_store(art, digests))
        return Admitted(path, True, (), record)
