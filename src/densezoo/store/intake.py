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

from ..content.inspect import Finding, inspect
from ..errors import UnsafeContentError, WrongContentError
from ..hashing import Digests, Expected
from ..manifest import Artifact
from .files import Partial, Store
from .record import Record, Voucher
from .trust import Trust, has_full


@dataclass(frozen=True)
class Admitted:
    path: Path                     # the published file
    pinned: bool                   # a first-use pin was recorded now
    warnings: tuple[str, ...]
    record: Record                 # this user's record after the bytes entered


class Intake:
    def __init__(self, store: Store, trust: Trust, *, scan: bool) -> None:
        self.store = store
        self.trust = trust
        self.scan = scan

    def inspect(self, art: Artifact, path: Path, *, first_use: bool) -> Finding | None:
        return inspect(path, art.file_name, first_use=first_use, scan_imports=self.scan,
                       other_names=art.names_read_as)

    def admit(self, art: Artifact, partial: Partial, digests: Digests, expected: Expected, *,
              url: str, validators: dict[str, str | None], origin: str, record: Record,
              voucher: Voucher, claims: tuple[Voucher, ...] = (),
              mismatch_hint: str | None = None) -> Admitted:
        """Publish ``partial`` as ``art`` if its bytes are right and safe, else refuse;
        then record ``voucher`` (who delivered them: the origin, a copy, a bundle, a
        file on disk) and ``claims`` (what the Hub says of a copy) in the user's record.

        Raises ChecksumMismatchError or WrongContentError (partial discarded:
        the bytes are not the file) or UnsafeContentError (partial moved to
        ``bad/`` as evidence: the bytes are hostile).  ``origin`` names where the
        bytes came from, for messages; ``url`` is recorded (already redacted).
        """
        what = f"{art.name} from {origin}"
        try:
            expected.check(digests, what, url=url, hint=mismatch_hint)
        except Exception:
            partial.discard()
            raise
        will_pin = self.trust.needs_pin(art, record, origin=voucher.kind == "origin")
        finding = self.inspect(art, partial.path, first_use=will_pin)
        if finding is not None:
            if finding.unsafe:
                moved = self.store.quarantine(art, partial.path)
                partial.discard()
                raise UnsafeContentError(what, finding.reason, moved_to=str(moved))
            partial.discard()
            raise WrongContentError(what, finding.reason)
        path = self.store.publish(art, partial, digests, url=url, validators=validators)
        pin = record.pin
        if will_pin or pin is None or pin.agrees(digests) or not has_full(expected):
            record = self.trust.records.add(art, record, voucher, *claims)
        # else: bytes a published checksum admitted, against another entry's pin of the
        # same URL: the pin stays (the published word needs no record; the other entry's
        # conflict is reported when it is used).
        return Admitted(path, will_pin, (), record)

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
            raise WrongContentError(what, f"{finding.reason}; moved to {moved}")
        record = self.trust.records.add(art, record, self.trust.found_in_store(art, digests))
        return Admitted(path, True, (), record)
