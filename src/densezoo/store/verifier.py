"""Re-checking what is already in the store, offline, and on read-only storage too.

``check`` answers "is this cached file right?" for ``verify`` and for every
fetch that finds a cached copy, hashing only the algorithms the expectation
needs, or trusting the recorded digests while the stat memo says the file has
not changed (``verify --quick``).  It reports which inode it hashed, so that
only those bytes are ever moved aside: a copy repaired meanwhile by another
process is left alone.  Writing the memo is best-effort: a cache on a read-only
mount, or copied with ``cp -a`` (new inodes), still verifies.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ..progress import Progress, ProgressArg, progress_for
from ..errors import NotCachedError, StoreError
from ..hashing import ALGORITHMS, Digests, Expected, hash_open_file
from ..manifest import Artifact
from ..results import Strength, VerifyStatus
from ..results.verify import VerifyEntry, VerifyReport
from .files import Store
from .trust import Trust

if TYPE_CHECKING:
    from ..content.pickle_scan import ScanReport


@dataclass(frozen=True)
class Check:
    """One cached file against its expectation: the state, the digests that decided it,
    and which bytes (device, inode) they were, so a quarantine moves only those."""

    status: VerifyStatus           # ok | corrupt | unpinned
    digests: Digests | None
    detail: str | None = None
    method: str = "full"
    identity: tuple[int, int] | None = None     # (device, inode) of the bytes checked


def hash_with_identity(path, algorithms: tuple[str, ...], progress: Progress | None = None
                       ) -> tuple[Digests, tuple[int, int]]:
    """Digests of the file, and which file (device, inode) they are of."""
    with open(path, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        return hash_open_file(f, algorithms, progress), (st.st_dev, st.st_ino)


class Verifier:
    def __init__(self, store: Store, trust: Trust) -> None:
        self.store = store
        self.trust = trust
        self._notes: list[str] = []
        self._lock = threading.Lock()

    def _note(self, text: str) -> None:
        with self._lock:
            if text not in self._notes:
                self._notes.append(text)

    def take_notes(self) -> tuple[str, ...]:
        """Things worth saying once (with -v): e.g. the memo could not be updated."""
        with self._lock:
            notes, self._notes = tuple(self._notes), []
        return notes

    def check(self, art: Artifact, expected: Expected, *, quick: bool,
              record: bool = True, want: tuple[str, ...] = (),
              progress: Progress | None = None) -> Check:
        """Is the cached file right?  Hashes only the algorithms the check needs, plus
        ``want`` (a ledger needs sha256 where only an md5 is published), in one pass.

        ``record`` False for read-only callers (``path``, ``verify --quick``): a fresh
        hash is not written back to the metadata."""
        path = self.store.path_for(art)
        algorithms = tuple(dict.fromkeys((*(expected.algorithms() or ALGORITHMS), *want)))
        meta = self.store.read_meta(art)
        if quick and meta and self.store.memo_valid(art, meta):
            memo = Digests(int(meta.get("size") or -1), meta.get("md5"), meta.get("sha256"))
            if memo.covers(algorithms):
                ident = _identity(path)
                if not expected.has_checksum:
                    return Check(VerifyStatus.UNPINNED, memo, "no published checksum and no pin",
                                 "quick", ident)
                if expected.mismatch(memo) is None:
                    return Check(VerifyStatus.OK, memo, method="quick", identity=ident)
        digests, ident = hash_with_identity(path, algorithms, progress)
        if not expected.has_checksum:
            return Check(VerifyStatus.UNPINNED, digests, "no published checksum and no pin",
                         identity=ident)
        bad = expected.mismatch(digests)
        if bad:
            alg, exp, act = bad
            return Check(VerifyStatus.CORRUPT, digests, f"{alg} expected {exp}, got {act}",
                         identity=ident)
        if not record:
            return Check(VerifyStatus.OK, digests, identity=ident)
        try:
            self.store.write_meta(art, digests, url=None)
        except StoreError as e:
            self._note(f"the verified digests could not be recorded ({e.message}); "
                       "verify --quick will hash these files again")
        return Check(VerifyStatus.OK, digests, identity=ident)

    def verify(self, arts: Sequence[Artifact], *, quick: bool = False, jobs: int | None = None,
               scan: bool = False, bar: Strength | None = None,
               progress: ProgressArg = None) -> VerifyReport:
        """Check each artifact's cached copy.  A full verify moves corrupt (and, with
        ``scan``, unsafe) copies aside; ``quick`` is read-only and only reports them.
        hashlib releases the GIL, so files hash in parallel on every core; the bytes
        hashed are reported on ``progress`` (one Progress per artifact)."""
        def one(art: Artifact) -> VerifyEntry:
            for _ in range(2):           # once more if the file was replaced while we looked
                entry = self._one(art, quick=quick, scan=scan, bar=bar,
                                  progress=progress_for(progress, art))
                if entry is not None:
                    return entry
            return VerifyEntry(art.name, VerifyStatus.CORRUPT, str(self.store.path_for(art)),
                               "the file keeps being replaced while it is checked")

        workers = jobs or (os.cpu_count() or 1)      # one hash stream per core
        if workers <= 1 or len(arts) <= 1:
            entries = [one(a) for a in arts]
        else:
            from concurrent.futures import ThreadPoolExecutor   # (and logging): only here

            with ThreadPoolExecutor(workers) as pool:
                entries = list(pool.map(one, arts))
        return VerifyReport(tuple(entries), self.take_notes())

    def _one(self, art: Artifact, *, quick: bool, scan: bool,
             bar: Strength | None = None,
             progress: Progress | None = None) -> VerifyEntry | None:
        path = self.store.cached_path(art)
        if path is None:
            gone = self.store.quarantined(art)
            if gone is not None:
                return VerifyEntry(
                    art.name, VerifyStatus.MISSING, str(self.store.path_for(art)),
                    f"quarantined at {gone.get('at')}: {gone.get('reason') or gone.get('status')}"
                    f"; `densezoo fetch {art.name}` downloads a good copy, `densezoo cache rm "
                    f"{art.name}` forgets it", gone.get("moved_to"), quarantined=gone)
            return VerifyEntry(art.name, VerifyStatus.MISSING, detail="not in the cache")
        record = self.trust.record_of(art)
        check = self.check(art, self.trust.expected(art, record), quick=quick,
                           record=not quick, progress=progress)
        status, detail = check.status, check.detail
        strength = None
        if status is VerifyStatus.OK and check.digests is not None:
            # read-only: who put it there counts, and is not recorded
            strength = self.trust.strength_in_store(art, record, check.digests)[0]
            if not strength.meets(bar):
                status, detail = VerifyStatus.WEAK, (f"{strength}, below the required {bar} "
                                                     "(--strict / --require)")
        if status is not VerifyStatus.CORRUPT and scan:
            from ..content.inspect import inspect     # --scan only
            from .intake import model_of

            finding = inspect(path, art.file_name, first_use=False,
                              other_names=art.names_read_as, model=model_of(art))
            if finding is None:
                finding, changed = self._archive(art, path, check.digests)
                if changed is not None:
                    return changed
            if finding is not None:        # another model's tensors are wrong, not hostile
                status = VerifyStatus.CORRUPT if getattr(finding, "structure", False) \
                    else VerifyStatus.UNSAFE
                detail = finding.reason
        if status not in (VerifyStatus.CORRUPT, VerifyStatus.UNSAFE):
            return VerifyEntry(art.name, status, str(path), detail, method=check.method,
                               strength=strength)
        if quick:
            return VerifyEntry(art.name, status, str(path), f"{detail}; left in place (a full "
                               "`densezoo verify` moves it aside)", method=check.method)
        try:
            moved = self.store.quarantine(art, identity=check.identity, status=str(status),
                                          reason=detail)
        except StoreError as e:
            return VerifyEntry(art.name, status, str(path),
                               f"{detail}; could not move it aside: {e.message}",
                               method=check.method)
        if moved is None:
            return None                  # replaced meanwhile (a fetch repaired it): look again
        return VerifyEntry(art.name, status, str(path), detail, str(moved), check.method)

    def _archive(self, art: Artifact, path, digests) -> tuple[Any, VerifyEntry | None]:
        """``verify --scan`` of a tarball: its pickle members checked one by one (the door
        a download goes through), and its unpacked folder compared with what unpacking
        these bytes writes.  An edited folder is reported corrupt, the archive stays."""
        from ..content.unpack import archive_tree, is_archive, unpacked_state

        if not is_archive(art.file_name):
            return None, None
        tree, finding = archive_tree(path, inspect_pickles=True)
        target = self.store.layout.extract_dir(art)
        if finding is not None or digests is None or not os.path.isdir(target):
            return finding, None
        stamped, changes = unpacked_state(path, target, digests, tree=tree)
        if not (stamped and changes):
            return None, None
        return None, VerifyEntry(
            art.name, VerifyStatus.CORRUPT, str(target),
            f"its unpacked folder changed since it was unpacked ({'; '.join(changes)}); "
            f"`densezoo fetch {art.name} --extract` unpacks it again", method="full")

    def scan(self, art: Artifact) -> "ScanReport":
        from ..content.pickle_scan import scan_pickle

        path = self.store.cached_path(art)
        if path is None:
            raise NotCachedError(art.name)
        return scan_pickle(path)


def _identity(path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)
