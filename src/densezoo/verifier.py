"""Re-checking what is already in the store, offline.

``check`` answers "is this cached file right?" for ``verify`` and for every
fetch that finds a cached copy, hashing only the algorithms the expectation
needs, or trusting the recorded digests while the stat memo says the file has
not changed (``verify --quick``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

from .errors import NotCachedError
from .hashing import ALGORITHMS, Digests, Expected, hash_file
from .manifest import Artifact
from .pickle_scan import ScanReport, scan_pickle
from .results import VerifyEntry, VerifyReport, VerifyStatus
from .store import Store
from .trust import Trust


@dataclass(frozen=True)
class Check:
    status: VerifyStatus           # ok | corrupt | unpinned
    digests: Digests | None
    detail: str | None = None
    method: str = "full"


class Verifier:
    def __init__(self, store: Store, trust: Trust) -> None:
        self.store = store
        self.trust = trust

    def check(self, art: Artifact, expected: Expected, *, quick: bool) -> Check:
        """Is the cached file right?  Hashes only the algorithms the check needs."""
        path = self.store.path_for(art)
        algorithms = expected.algorithms() or ALGORITHMS   # nothing to check: hash to pin
        meta = self.store.read_meta(art)
        if quick and meta and self.store.memo_valid(art, meta):
            memo = Digests(int(meta.get("size") or -1), meta.get("md5"), meta.get("sha256"))
            if memo.covers(algorithms):
                if not expected.has_checksum:
                    return Check(VerifyStatus.UNPINNED, memo, "no published checksum and no pin",
                                 "quick")
                if expected.mismatch(memo) is None:
                    return Check(VerifyStatus.OK, memo, method="quick")
        digests = hash_file(path, algorithms)
        if not expected.has_checksum:
            return Check(VerifyStatus.UNPINNED, digests, "no published checksum and no pin")
        bad = expected.mismatch(digests)
        if bad:
            alg, exp, act = bad
            return Check(VerifyStatus.CORRUPT, digests, f"{alg} expected {exp}, got {act}")
        self.store.write_meta(art, digests, url=None)
        return Check(VerifyStatus.OK, digests)

    def verify(self, arts: Sequence[Artifact], *, quick: bool = False, jobs: int | None = None,
               scan: bool = False) -> VerifyReport:
        """Check each artifact's cached copy; corrupt (and, with ``scan``, unsafe) ones are
        moved aside.  hashlib releases the GIL, so files hash in parallel on every core."""
        def one(art: Artifact) -> VerifyEntry:
            path = self.store.cached_path(art)
            if path is None:
                return VerifyEntry(art.name, VerifyStatus.MISSING, detail="not in the cache")
            check = self.check(art, self.trust.expected(art), quick=quick)
            if check.status is VerifyStatus.CORRUPT:
                moved = self.store.quarantine(art)
                return VerifyEntry(art.name, check.status, str(path), check.detail, str(moved),
                                   check.method)
            if scan and art.file_name.lower().endswith(".pkl"):
                report = scan_pickle(path)
                if not report.ok:
                    moved = self.store.quarantine(art)
                    return VerifyEntry(art.name, VerifyStatus.UNSAFE, str(path),
                                       report.reason, str(moved), check.method)
            return VerifyEntry(art.name, check.status, str(path), check.detail,
                               method=check.method)

        workers = jobs or min(4, os.cpu_count() or 1)
        if workers <= 1 or len(arts) <= 1:
            entries = [one(a) for a in arts]
        else:
            with ThreadPoolExecutor(workers) as pool:
                entries = list(pool.map(one, arts))
        return VerifyReport(tuple(entries))

    def scan(self, art: Artifact) -> ScanReport:
        path = self.store.cached_path(art)
        if path is None:
            raise NotCachedError(art.name)
        return scan_pickle(path)
