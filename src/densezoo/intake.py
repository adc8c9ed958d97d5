"""The one way bytes enter the store: check digests, check content, publish, pin.

Every path that adds a file to the store (a download, a bundle import, and
anything later) hands its finished partial to ``Intake.admit``.  When this
step was written twice, the copies drifted apart and bundle import skipped the
pickle scan, so a self-consistent bundle could bring code into the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import UnsafeContentError
from .hashing import Digests, Expected
from .manifest import Artifact
from .pickle_scan import scan_pickle
from .store import Partial, Store
from .trust import Strength, Trust, declared_strength


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

        Raises ChecksumMismatchError (partial discarded) or UnsafeContentError
        (partial moved to ``bad/`` as evidence).  ``origin`` names where the
        bytes came from, for messages; ``url`` is recorded (already redacted).
        """
        what = f"{art.name} from {origin}"
        try:
            expected.check(digests, what, url=url, hint=mismatch_hint)
        except Exception:
            partial.discard()
            raise
        warnings: list[str] = []
        self._check_content(art, partial, what, warnings)
        will_pin = self.trust.needs_pin(art)
        path = self.store.publish(art, partial, digests, url=url, validators=validators)
        if will_pin:
            self.store.write_pin(art, digests, url)
            if declared_strength(art) is Strength.NONE:
                warnings.append(f"{art.name} has no published checksum; pinned md5 "
                                f"{digests.md5} and size {digests.size} on this first download")
        return Admitted(path, will_pin, tuple(warnings))

    def _check_content(self, art: Artifact, partial: Partial, what: str,
                       warnings: list[str]) -> None:
        """Refuse a pickle that imports anything off the allow-list (see pickle_scan)."""
        if not (self.scan and art.file_name.lower().endswith(".pkl")):
            return
        report = scan_pickle(partial.path)
        if report.findings:
            moved = self.store.quarantine(art, partial.path)
            partial.discard()
            raise UnsafeContentError(what, f"unsafe pickle: {report.findings[0]}",
                                     moved_to=str(moved))
        if report.error:
            warnings.append(f"{art.name}: {report.error}")
