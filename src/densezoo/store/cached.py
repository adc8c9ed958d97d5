"""A copy already in the store: hand it out, record who put it there, or move it aside.

This is the fetch pipeline's first step and ``path``'s only one, kept beside the record
it reads: the cached file is checked against the expectation the user's record gives,
its strength derived from the same record, and a file the record says nothing of gets a
voucher naming who put it there (``Trust.found_in_store``) -- in a cache others can
write that is a copy's word at most, whatever the co-tenant's own files claim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import (ManifestError, StoreError, UnsafeContentError, WeakTrustError,
                      WrongContentError)
from ..manifest import Artifact
from ..results import WEAK, Checksum, FetchAction, Strength, VerifyStatus
from ..results.fetch import FetchResult
from .files import Store
from .intake import Intake
from .record import Record
from .trust import Trust, declared, declared_checksum, weak_line
from .verifier import Check, Verifier


class CachedCopies:
    def __init__(self, store: Store, trust: Trust, verifier: Verifier, intake: Intake, *,
                 siblings: Callable[[Artifact], list[Artifact]],
                 bar: Strength | None) -> None:
        self.store = store
        self.trust = trust
        self.verifier = verifier
        self.intake = intake
        self.siblings = siblings          # other entries with the same store slot
        self.bar = bar

    def get(self, art: Artifact, record: Record, warnings: list[str], *,
            repair: bool = True) -> FetchResult | None:
        """The cached copy if it verifies (and meets the bar), else None.

        With ``repair`` (fetch) a corrupt copy is moved aside for the download that
        follows, and a copy the record says nothing of is recorded; without it
        (``path``, a read-only command) nothing moves and nothing is written.  A copy
        that another entry sharing the slot has verified is never moved on behalf of
        an entry that published nothing."""
        path = self.store.cached_path(art)
        if path is None:
            return None
        check = self.verifier.check(art, self.trust.expected(art, record), quick=True,
                                    record=repair)
        if check.status is VerifyStatus.OK:
            assert check.digests is not None
            strength, seen, found = self.trust.strength_in_store(art, record, check.digests)
            entered = False
            if found is not None and repair:         # nothing of this user's vouched yet
                try:
                    self.trust.records.add(art, record, found)
                    entered = True
                except StoreError:
                    pass
            record = seen
            self._meets_bar(art, path, strength)
            if check.method != "quick" and not self.store.private(art):
                self._rescan_shared(art, path)
            notes = (weak_line(art, strength, record),) if entered and strength in WEAK \
                else ()
            return FetchResult(art.name, path, FetchAction.CACHED, None, 0, check.digests,
                               strength, warnings=notes, entered=entered)
        if check.status is VerifyStatus.UNPINNED:
            return self._unpinned(art, path, check, record, warnings, repair=repair)
        owner = self._verified_sibling(art, check)
        if owner is not None:
            raise ManifestError(art.source, f"shares its store slot {path} with {owner.name}, "
                                            f"whose verified copy is cached there and differs "
                                            f"from {art.name}'s pin", entry=art.name,
                                hint="give one of the two entries its own `filename:`")
        if not repair:
            warnings.append(f"the cached copy failed its checksum ({check.detail}); "
                            "left in place")
            return None
        moved = self.store.quarantine(art, identity=check.identity, reason=check.detail)
        if moved is None:                # replaced meanwhile (another process repaired it)
            return self.get(art, record, warnings, repair=False)
        warnings.append(f"cached copy failed its checksum ({check.detail}); "
                        f"moved it to {moved} and downloading again")
        return None

    def _meets_bar(self, art: Artifact, path: Path, strength: Strength) -> None:
        if not strength.meets(self.bar):
            raise WeakTrustError(art.name, str(strength), str(self.bar), path=str(path))

    def _rescan_shared(self, art: Artifact, path: Path) -> None:
        """A cached file others can write was hashed in full; a pickle is scanned again
        too before it is handed out (its digests may be what a co-tenant forged into a
        manifest-less record; the scan is what stands between it and pickle.load)."""
        finding = self.intake.inspect(art, path, first_use=False)
        if finding is not None and finding.unsafe:
            raise UnsafeContentError(f"{art.name} (the copy in the store at {path}, which "
                                     "others can write)", finding.reason, path=str(path))

    def _unpinned(self, art: Artifact, path: Path, check: Check, record: Record,
                  warnings: list[str], *, repair: bool) -> FetchResult | None:
        """A cached file that nothing vouches for yet (no published checksum, no pin).

        It is trusted only through the intake's door (the same inspection as a
        download, then a voucher).  Read-only callers (``path``) inspect it, never
        record: an unsafe one is refused, a plain one is answered as ``none``."""
        assert check.digests is not None
        if not repair:
            finding = self.intake.inspect(art, path, first_use=True)
            if finding is not None and finding.unsafe:
                raise UnsafeContentError(f"{art.name} (the copy in the store at {path})",
                                         finding.reason, path=str(path))
            if finding is not None:
                warnings.append(f"the cached copy is not what its name says ({finding.reason})")
                return None
            self._meets_bar(art, path, Strength.NONE)
            return FetchResult(art.name, path, FetchAction.CACHED, None, 0, check.digests,
                               Strength.NONE, warnings=(
                                   f"{art.name} is cached but nothing vouches for it yet; "
                                   f"`densezoo fetch {art.name}` checks and records it",))
        try:
            admitted = self.intake.pin_cached(art, path, check.digests, check.identity, record)
        except WrongContentError as e:
            warnings.append(str(e))
            return None                  # moved aside: the fetch downloads a good copy
        except StoreError as e:
            return FetchResult(art.name, path, FetchAction.CACHED, None, 0, check.digests,
                               Strength.NONE, warnings=(
                                   f"{art.name} has no record and none could be written "
                                   f"({e.message})",))
        strength = self.trust.strength(art, admitted.record, check.digests)
        self._meets_bar(art, path, strength)
        return FetchResult(art.name, path, FetchAction.CACHED, None, 0, check.digests,
                           strength, pinned=True, entered=True,
                           warnings=(weak_line(art, strength, admitted.record),))

    def _verified_sibling(self, art: Artifact, check: Check) -> Artifact | None:
        """Another entry with the same store slot whose published checksums these bytes meet
        (only asked when ``art`` itself published none: its expectation is a pin)."""
        if declared_checksum(art) is not Checksum.NONE or check.digests is None:
            return None
        for other in self.siblings(art):
            exp = declared(other)
            if exp.has_checksum and exp.algorithms() and check.digests.covers(exp.algorithms()) \
                    and exp.mismatch(check.digests) is None:
                return other
        return None

