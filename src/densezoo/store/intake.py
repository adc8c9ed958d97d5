"""The one way bytes enter the store: check digests, check content, publish, pin.

Every path that adds a file to the store (a download, a bundle import, and
anything later) hands its finished partial to ``Intake.admit``.  When this
step was written twice, the copies drifted apart and bundle import skipped the
pickle scan, so a self-consistent bundle could bring code into the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..content.sniff import content_problem
from ..errors import UnsafeContentError, WrongContentError
from ..hashing import Digests, Expected
from ..manifest import Artifact
from ..content.pickle_scan import scan_pickle
from .files import Partial, Store
from ..results import Strength
from .trust import Trust, declared_strength


@dataclass(frozen=True)
class Admitted:
    path: Path                     # the published file
    pinned: bool                   # a first-use pin was recorded now
    warnings: tuple[str, ...]


class Intake:
    def __init__(self, store: Store, trust: Trust, *, scan: bool) -> None:
        self.store = store
        self.trust = trust
        self.scan = scan

    def admit(self, art: Artifact, partial: Partial, digests: Digests, expected: Expected, *,
              url: str, validators: dict[str, str | None], origin: str,
              mismatch_hint: str | None = None) -> Admitted:
        """Publish ``partial`` as ``art`` if its bytes are right and safe, else refuse.

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
        warnings: list[str] = []
        will_pin = self.trust.needs_pin(art)
        self._check_pickle(art, partial, what)
        if will_pin:                     # nothing published to check against: never pin garbage
            problem = content_problem(partial.path, art.file_name)
            if problem:
                partial.discard()
                raise WrongContentError(what, problem)
        path = self.store.publish(art, partial, digests, url=url, validators=validators)
        if will_pin:
            self.store.write_pin(art, digests, url)
            if declared_strength(art) is Strength.NONE:
                warnings.append(f"{art.name} has no published checksum; pinned md5 "
                                f"{digests.md5} and size {digests.size} on this first download")
        return Admitted(path, will_pin, tuple(warnings))

    def _check_pickle(self, art: Artifact, partial: Partial, what: str) -> None:
        """Refuse a pickle that imports anything off the allow-list, or that cannot be
        followed to its STOP (see pickle_scan).  ``--no-scan`` skips the import check,
        never the parse: a file that is not a pickle is not what its name says."""
        if not art.file_name.lower().endswith(".pkl"):
            return
        report = scan_pickle(partial.path)
        if not self.scan and report.error is None:
            return
        if not report.ok:
            moved = self.store.quarantine(art, partial.path)
            partial.discard()
            raise UnsafeContentError(what, f"unsafe pickle: {report.reason}",
                                     moved_to=str(moved))
