"""The fetch pipeline: a verified cached copy, or a download from the best URL into the store.

For one artifact: strict-mode refusal, the cached copy if it verifies (a bad
one moved aside), waiting for another process already fetching it, the
upstream ``.md5sum`` when the manifest names one, then each candidate URL in
turn (mirrors first, recently failed hosts last) until one yields bytes that
``Intake`` admits.  ``fetch_many`` runs that for several artifacts over one
thread pool and one connection pool, and unpacks archives when asked.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .errors import (ChecksumMismatchError, DensezooError, DownloadFailedError,
                     FailureKind, NotCachedError, PolicyError, StoreError,
                     StrictModeError, StructureMismatchError, TransferError,
                     UnsafeContentError, UrlFailure, UsageError, WeakTrustError,
                     WrongContentError)
from .hashing import ALGORITHMS, Digests, Expected, parse_md5_sidecar
from .catalog import unique
from .download.health import Health, host_of
from .store.hf_cache import fill_advice, hub_offline_reason
from .store.intake import Intake
from .manifest import Artifact
from .progress import ProgressArg, progress_for
from .sources import scheme_of, source_for
from .results import WEAK, Checksum, FetchAction, Strength, required_strength
from .results.fetch import ExtractResult, FetchOutcome, FetchResult
from .settings import Settings
from .store.files import FetchMarker, Store
from .store.cached import CachedCopies
from .store.record import Record, Voucher
from .store.trust import Trust, declared_checksum, has_full, received, weak_line
from .urls import redact, url_key
from .store.verifier import Verifier

if TYPE_CHECKING:
    from .download import Downloader

class Fetcher:
    def __init__(self, settings: Settings, store: Store, trust: Trust, verifier: Verifier,
                 downloader: "Downloader | None" = None,
                 siblings: Callable[[Artifact], list[Artifact]] = lambda art: []) -> None:
        self.settings = settings
        self.store = store
        self.trust = trust
        self.verifier = verifier
        self.intake = Intake(store, trust, scan=settings.scan)
        self.siblings = siblings          # other entries with the same store slot
        self.health = Health(store.layout.health_file)
        self.cancel = threading.Event()     # set on Ctrl-C / SIGTERM: every transfer stops
        self._resolvers: dict[str, object] = {}   # per source type, connected on first use
        self._lock = threading.Lock()
        # Hosts that could not be reached at all during this Fetcher's life (one batch):
        # host -> (reason, when).  Asking again for each of 60 artifacts is 60 waits.
        self._unreachable: dict[str, tuple[str, float]] = {}
        self._downloader = downloader
        self._copies: CachedCopies | None = None
        # The weakest strength handed out (--strict: prefix; --require WORD).
        self.bar = required_strength(settings.strict, settings.require)

    @property
    def downloader(self) -> "Downloader":
        """Built on first use: requests is imported only when something is downloaded
        (a warm fetch of cached files never pays for it); one Session for every thread."""
        with self._lock:
            return self._make_downloader()

    def _make_downloader(self) -> "Downloader":
        if self._downloader is None:
            from .download import Downloader

            s = self.settings
            self._downloader = Downloader(timeout=s.timeout, allow_http=s.allow_http,
                                          space_check=s.space_check, connections=s.connections,
                                          attempts=s.attempts, min_rate=s.min_rate,
                                          cancel=self.cancel, deadline=s.deadline)
        return self._downloader

    def candidate_urls(self, url: str, extra: Sequence[str] = ()) -> list[str]:
        """Configured mirrors first (same host/path layout as the store), then upstream;
        hosts that failed recently go to the back (see health.py)."""
        key = "/".join(url_key(url))
        urls = [m.rstrip("/") + "/" + key for m in self.settings.mirrors]
        return self.health.order(unique([*urls, url, *extra]))

    # -- one artifact -------------------------------------------------------------------

    @property
    def copies(self) -> CachedCopies:
        """What to do with a copy already in the store (``store.cached``)."""
        if self._copies is None:
            self._copies = CachedCopies(self.store, self.trust, self.verifier, self.intake,
                                        siblings=self.siblings, bar=self.bar)
        return self._copies

    def cached(self, art: Artifact, warnings: list[str], *,
               repair: bool = True) -> FetchResult | None:
        """The cached copy if it verifies, else None (``path`` passes ``repair=False``)."""
        return self.copies.get(art, self.trust.record_of(art), warnings, repair=repair)

    def fetch(self, art: Artifact, *, force: bool = False,
              progress: ProgressArg = None) -> FetchResult:
        """Return the verified local copy, downloading (or resuming) it if needed."""
        bar = self.bar
        if bar is not None and declared_checksum(art) is Checksum.NONE and \
                not hub_copies(art) and not Strength.ORIGIN_PINNED.meets(bar):
            raise self._unpublished(art)
        warnings: list[str] = []
        record = self.trust.record_of(art)
        if not force:
            cached = self.copies.get(art, record, warnings) or \
                self._from_hf_cache(art, record, warnings)
            if cached is not None:
                return cached
        if self.settings.offline:
            raise NotCachedError(art.name, hint="offline mode is on (--offline / DENSEZOO_OFFLINE); "
                                                + fill_advice(self._hub_urls(art))
                                 + ("; " + warnings[0] if warnings else ""))
        marker = self.store.marker(art)
        if self.settings.markers:
            _wait_for_others(marker, art.name, self.settings.marker_wait)
        try:
            if not force:     # another process may have published it since we last looked
                record = self.trust.record_of(art)
                cached = self.copies.get(art, record, warnings)
                if cached is not None:
                    return cached
            if art.md5_url and not record.sidecar_md5:
                record = self._with_sidecar(art, record, warnings)
            return self._download(art, record, warnings, progress)
        finally:
            if self.settings.markers:
                marker.release()

    def _hub_urls(self, art: Artifact) -> list[str]:
        return [u for u in self.candidate_urls(art.url, art.mirrors) if scheme_of(u) == "hf"]

    def _from_hf_cache(self, art: Artifact, record: Record,
                       warnings: list[str]) -> FetchResult | None:
        """A copy the Hub's client already has (``store/hf_cache.py``), hashed and admitted
        with no request to anyone -- a copy voucher naming the HF cache's repo@commit/path;
        only where a copy can reach the required strength."""
        urls = self._hub_urls(art)
        weak = not has_full(self.trust.expected(art, record, origin=True))
        if not urls or (weak and not Strength.COPY_PINNED.meets(self.bar)):
            return None
        from .store import hf_cache

        exp = self.trust.expected(art, record, origin=False)
        got = hf_cache.admit_copy(art, urls, exp, self.store, self.intake, record, warnings)
        if got is None:
            return None
        served = hf_cache.provenance_url(got.hit)
        record = got.admitted.record
        strength = self.trust.strength(art, record, got.digests)
        if strength in WEAK:
            warnings.append(weak_line(art, strength, record))
        if not strength.meets(self.bar):
            raise WeakTrustError(art.name, str(strength), str(self.bar),
                                 path=str(got.admitted.path),
                                 how=f"was copied from {got.hit.describe()} and recorded")
        return FetchResult(art.name, got.admitted.path, FetchAction.COPIED, served, 0,
                           got.digests, strength, got.admitted.pinned,
                           (*warnings, *got.admitted.warnings), entered=True)

    def _with_sidecar(self, art: Artifact, record: Record, warnings: list[str]) -> Record:
        """The md5 from the upstream ``.md5sum``, never from a mirror.

        A mirror is transport, not a trust root: one that served both a tampered
        file and a matching sidecar would vouch for itself.  When upstream cannot
        be reached, the artifact is treated as unpublished (pinned on first use,
        refused under --strict) and the pin never becomes "published".
        """
        url = art.md5_url or ""
        try:
            md5 = parse_md5_sidecar(self.downloader.get_small(url))
        except (TransferError, PolicyError) as e:
            problem = str(e)
        except ValueError as e:
            problem = f"{redact(url)}: {e}"
        else:
            return self.trust.records.remember_sidecar(art, record, md5)
        if self.bar is not None and not Strength.ORIGIN_PINNED.meets(self.bar):
            raise self._unpublished(art)
        warnings.append(f"the published .md5sum could not be read from upstream ({problem}); "
                        "verifying by first-use pin instead")
        return record

    def _unpublished(self, art: Artifact) -> PolicyError:
        """Why an entry with nothing published is refused before any download: its bytes
        can be origin-pinned at best."""
        if self.settings.strict and not self.settings.require:
            return StrictModeError(art.name)
        return WeakTrustError(art.name, "origin-pinned at best", str(self.bar),
                              how="publishes no checksum: it can be fetched",
                              hint="publish an md5 or sha256 for it in your own manifest, "
                                   "or lower --require")

    def hub_claim(self, art: Artifact) -> Voucher | None:
        """What the Hub says of one of the entry's copies (sha256, size), read from its
        resolve answer without the body; None when there is no Hub copy, the setting is
        offline, or the Hub does not answer (a claim adds evidence, never a failure)."""
        if self.settings.offline:
            return None
        for url in hub_copies(art):
            try:
                resolved = self._signed(url)
            except (DensezooError, ValueError, OSError):
                continue            # a claim adds evidence; a broken one is no claim
            if isinstance(resolved, str) or not resolved.sha256:
                continue
            return _claim(url, resolved)
        return None

    def _download(self, art: Artifact, record: Record, warnings: list[str],
                  progress: ProgressArg) -> FetchResult:
        """Each candidate URL in turn until one yields bytes the intake admits: plan the
        attempt (what these bytes must be, what the source claims), transfer, admit,
        then say how strong the bytes are.  Every refusal is that URL's failure."""
        failures: list[UrlFailure] = []
        for url in self.candidate_urls(art.url, art.mirrors):
            plan = self._plan(art, url, record)
            if isinstance(plan, UrlFailure):
                failures.append(plan)
                continue
            got = self._transfer(art, plan, progress)
            if isinstance(got, UrlFailure):
                failures.append(got)
                continue
            admitted = self._admit(art, plan, got, record)
            if isinstance(admitted, UrlFailure):
                failures.append(admitted)
                continue
            return self._conclude(art, plan, got, admitted, warnings, failures)
        raise DownloadFailedError(art.name, failures)

    def _plan(self, art: Artifact, url: str, record: Record) -> "_Plan | UrlFailure":
        """What bytes from ``url`` must be, and where to ask for them -- or why not to."""
        # The entry's own URL is the origin; anything else (a manifest mirror,
        # DENSEZOO_MIRROR, S3, the Hub) is a copy, verified only by a full checksum.
        from_origin = url == art.url
        exp = self.trust.expected(art, record, origin=from_origin)
        # A copy's bytes with no full checksum from the manifest, the sidecar or an origin
        # pin are copy-pinned at best: below a bar of prefix or more.
        weak = not from_origin and not has_full(self.trust.expected(art, record, origin=True))
        if weak and not Strength.COPY_PINNED.meets(self.bar):
            return UrlFailure(redact(url), _weak_reason(exp) + "; a copy's bytes are "
                              f"copy-pinned at best, below the required {self.bar}",
                              FailureKind.POLICY)
        # md5 costs a core; sha256 is only worth its CPU when checked or to be pinned.
        will_pin = self.trust.needs_pin(art, record, origin=from_origin)
        algorithms = ALGORITHMS if will_pin else (exp.algorithms() or ALGORITHMS)
        dead = self._dead_host(url) or hub_offline_reason(url)
        if dead is not None:
            return UrlFailure(redact(url), dead, FailureKind.DOWNLOAD)
        try:
            resolved = self._signed(url)
        except TransferError as e:
            return UrlFailure(redact(e.url), e.reason, e.kind)
        except UsageError as e:
            if url not in art.mirrors:   # a mirror the user configured: say so, exit 2
                raise
            # A manifest's copy this machine cannot use (boto3 missing): the next one.
            return UrlFailure(redact(url), f"{e.message} ({e.hint})" if e.hint else e.message,
                              FailureKind.POLICY)
        if isinstance(resolved, str):
            return _Plan(url, from_origin, exp, algorithms, resolved)
        # What the source says of the file before its body (the Hub's sha256 and size): a
        # contradiction refuses the copy now; agreement is checked again on the bytes.  It
        # is the copy's own party: no cross-check.
        clash = _contradiction(resolved, exp)
        if clash is not None:
            return UrlFailure(redact(url), clash, FailureKind.CHECKSUM)
        size_claimed = resolved.size is not None and exp.size is None   # only the source
        exp = exp.merged(Expected(size=resolved.size, sha256=resolved.sha256, sources={
            k: _HUB for k in ("size", "sha256") if getattr(resolved, k)}))
        if exp.sha256 and "sha256" not in algorithms:
            algorithms = (*algorithms, "sha256")
        claims = (_claim(url, resolved),) if resolved.sha256 else ()
        return _Plan(url, from_origin, exp, algorithms, resolved.url, resolved, claims,
                     size_claimed)

    def _transfer(self, art: Artifact, plan: "_Plan", progress: ProgressArg):
        """The bytes into a partial (resumed where they can be), or this URL's failure."""
        url, request_url, exp = plan.url, plan.request_url, plan.expected
        if self.health.ranges_refused(url):
            self.downloader.no_ranges.add(request_url)   # remembered: one connection
        elif (split := self.health.learned_split(url)) is not None:
            self.downloader.learned[request_url] = split  # remembered: split at once
        partial = self.store.claim_partial(art)
        began = time.monotonic()
        try:
            got = self.downloader.download(
                request_url, partial, expected_size=exp.size, file_name=art.file_name,
                resume_unvalidated=exp.has_checksum, algorithms=plan.algorithms,
                progress=progress_for(progress, art),
                size_claimed=exp.sources.get("size") == _HUB)
        except TransferError as e:
            partial.release()
            self.health.record(url, ok=False)
            if e.unreachable:
                with self._lock:
                    self._unreachable[host_of(url)] = (e.reason, time.monotonic())
            src = source_for(url)
            if src is not None and src.module is not None:
                e = src.load().explain(url, e)
            return UrlFailure(e.url, e.reason, e.kind)
        except PolicyError as e:
            partial.release()
            return UrlFailure(redact(url), str(e), FailureKind.POLICY)
        except StoreError as e:
            if not plan.size_claimed:
                partial.release()
                raise
            # A size only this source claims (the Hub's X-Linked-Size of 1 PB) rules out
            # this source, never the fetch: the next URL may be the real file.
            partial.discard()
            return UrlFailure(redact(url), f"{e.message} (the size only this source "
                              "claims)", FailureKind.DOWNLOAD)
        except BaseException:
            partial.release()        # Ctrl-C, disk full: keep the bytes for a resume
            raise
        self.health.record(url, ok=True,
                           bytes_per_s=got.transferred / max(time.monotonic() - began, 1e-6),
                           ranges=False if request_url in self.downloader.no_ranges else None,
                           split=self.downloader.taught.pop(request_url, None))
        return _Got(got, partial)

    def _admit(self, art: Artifact, plan: "_Plan", got: "_Got", record: Record):
        """The intake's verdict on the bytes, with the voucher for who delivered them."""
        resolved, res = plan.resolved, got.result
        hub = {} if resolved is None else resolved.provenance()
        # A Hub copy's voucher names repo@commit/path and keeps the commit and Xet hash;
        # the store's metadata records them too (hub_commit, xet_hash).
        voucher = received(art, res.url if not hub else resolved.pinned_url(), res.digests,
                           from_origin=plan.from_origin,
                           detail=None if resolved is None else _hub_detail(resolved))
        try:
            return self.intake.admit(art, got.partial, res.digests, plan.expected,
                                     url=resolved.pinned_url() if hub else res.url,
                                     validators={**res.validators, **hub}, origin=res.url,
                                     record=record, voucher=voucher, claims=plan.claims)
        except ChecksumMismatchError as e:
            return UrlFailure(res.url, f"{e.algorithm} mismatch: expected {e.expected}, got "
                              f"{e.actual}", FailureKind.CHECKSUM)
        except UnsafeContentError as e:
            return UrlFailure(res.url, f"{e.reason} (kept in {e.moved_to})", FailureKind.UNSAFE)
        except WrongContentError as e:
            return UrlFailure(res.url, e.reason, FailureKind.CHECKSUM if isinstance(
                e, StructureMismatchError) else FailureKind.CONTENT)   # other weights: 4

    def _conclude(self, art: Artifact, plan: "_Plan", got: "_Got", admitted,
                  warnings: list[str], failures: list[UrlFailure]) -> FetchResult:
        """How strong the admitted bytes are (asking the Hub for a second word when the
        origin's alone is not ``verified``), what to tell the user, and the bar."""
        res = got.result
        served = res.url if plan.resolved is None else redact(plan.url)
        warnings.extend(admitted.warnings)     # what the bytes showed (a zero mesh)
        record = admitted.record
        strength = self.trust.strength(art, record, res.digests)
        if plan.from_origin and strength is not Strength.VERIFIED:
            record, note = self._cross_check(art, record, res.digests)
            if note:
                warnings.append(note)
            strength = self.trust.strength(art, record, res.digests)
        if strength in WEAK:
            warnings.append(weak_line(art, strength, record))
        if not plan.from_origin and failures:
            warnings.append(f"{art.name}: served by {served} after the origin failed "
                            f"({failures[-1].reason})")
        if not strength.meets(self.bar):
            raise WeakTrustError(art.name, str(strength), str(self.bar),
                                 path=str(admitted.path),
                                 how=f"was fetched from {served} and recorded")
        action = FetchAction.RESUMED if res.resumed_from else FetchAction.DOWNLOADED
        return FetchResult(art.name, admitted.path, action, served, res.transferred,
                           res.digests, strength, admitted.pinned, tuple(warnings),
                           res.connections, entered=True)

    def _cross_check(self, art: Artifact, record: Record,
                     digests: Digests) -> tuple[Record, str | None]:
        """Ask the Hub what one of the entry's copies is (no body) and record its word:
        bytes from the origin that match it are cross-checked; a disagreement is one
        loud line naming both vouchers."""
        claim = self.hub_claim(art)
        if claim is None:
            return record, None
        try:
            record = self.trust.records.add(art, record, claim)
        except StoreError:
            return record, None
        for bad in self.trust.disagreeing_claims(record, digests):
            return record, (f"{art.name}: the Hub's copy {bad.source} says sha256 {bad.sha256}, "
                            f"the origin's bytes are sha256 {digests.sha256}: the two "
                            "vouchers disagree (kept the origin's)")
        return record, None

    def _dead_host(self, url: str) -> str | None:
        """Why ``url``'s host is skipped in this batch: it could not be reached already, or
        its last answer never came (the downloader's ``silent``: a host that accepts and
        never answers cost a read timeout per artifact, 300 s for 20 with -j 4)."""
        with self._lock:
            seen = self._unreachable.get(host_of(url))
            if seen is None and self._downloader is not None:
                seen = self._downloader.silent.get(host_of(url))
        if seen is None:
            return None
        reason, when = seen
        return (f"host {host_of(url)} unreachable ({reason} {time.monotonic() - when:.0f} s "
                "ago in this run; not asked again)")

    def _signed(self, url: str) -> str:
        """The URL to request: a URL of another source type (``s3://`` ...) is turned into
        one by its module in the source table (``sources.py``)."""
        src = source_for(url)
        if src is None or src.module is None:
            return url
        downloader = self.downloader       # its transport policy governs the source's requests
        with self._lock:
            if src.scheme not in self._resolvers:
                self._resolvers[src.scheme] = src.load().connect(downloader)
            resolver = self._resolvers[src.scheme]
        return resolver.request_url(url)  # type: ignore[attr-defined]

    def extract(self, art: Artifact, fetched: FetchResult,
                progress: ProgressArg = None) -> ExtractResult:
        """Unpack a fetched archive once into ``<root>/extracted/...`` (bytes unpacked
        reported on ``progress``)."""
        from .disk import store_errors
        from .content.unpack import Limits, extract_once

        target = self.store.layout.check_no_links(self.store.layout.extract_dir(art))
        assert fetched.digests is not None
        s = self.settings
        limits = Limits(max_bytes=s.max_unpack_bytes, max_members=s.max_unpack_members)
        with store_errors("extract", target.parent):
            action, changes = extract_once(fetched.path, target, fetched.digests,
                                           limits=limits, space_check=s.space_check,
                                           scan_imports=s.scan, root=self.store.layout.root,
                                           progress=progress_for(progress, art))
        return ExtractResult(art.name, fetched.path, target, action, tuple(changes))

    # -- several ------------------------------------------------------------------------

    def fetch_many(self, arts: Sequence[Artifact], *, force: bool = False,
                   progress: ProgressArg = None, jobs: int = 1,
                   extract: bool = False) -> list[FetchOutcome]:
        """Fetch several artifacts (each once), ``jobs`` at a time, over one connection pool.

        A failure of one is recorded and the rest go on, so every name gets an
        outcome.  With ``extract``, archives are unpacked and the outcome names the
        folder.
        """
        from .content.unpack import is_archive

        items = unique(list(arts))

        def one(art: Artifact) -> FetchOutcome:
            try:
                res = self.fetch(art, force=force, progress=progress)
            except DensezooError as e:
                return FetchOutcome(art.name, error=e)
            if not (extract and is_archive(res.path.name)):
                return FetchOutcome(art.name, res)
            try:
                return FetchOutcome(art.name, res, extracted=self.extract(art, res, progress))
            except DensezooError as e:
                return FetchOutcome(art.name, res, error=e)

        if jobs <= 1 or len(items) <= 1:
            return [one(art) for art in items]
        from concurrent.futures import ThreadPoolExecutor   # (and logging): only for -j

        pool = ThreadPoolExecutor(min(jobs, len(items)), "densezoo-fetch")
        try:
            futures = [pool.submit(one, art) for art in items]
            return [f.result() for f in futures]
        except BaseException:
            # Ctrl-C or SIGTERM in this thread: stop every transfer now (partials are
            # kept, markers released) instead of waiting for them all to finish.
            self.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)


_HUB = "the Hub"          # where a source's own claims came from (Expected.sources)


@dataclass(frozen=True)
class _Plan:
    """One candidate URL, ready to ask: what its bytes must be and where to GET them."""

    url: str
    from_origin: bool
    expected: Expected
    algorithms: tuple[str, ...]
    request_url: str
    resolved: Any = None                 # what a source module answered (the Hub's claims)
    claims: tuple[Voucher, ...] = ()
    size_claimed: bool = False           # only the source says how big the file is


@dataclass(frozen=True)
class _Got:
    """Bytes received into a partial, not yet admitted."""

    result: Any                          # download.Downloaded
    partial: Any                         # store.files.Partial


def _weak_reason(exp: Expected) -> str:
    if exp.md5_prefix:
        return (f"only a {len(exp.md5_prefix)}-hex md5 prefix ({4 * len(exp.md5_prefix)} bits) "
                "checks these bytes")
    return "no checksum checks these bytes"


def _contradiction(claims, exp: Expected) -> str | None:
    """Why a source's own claims (size, sha256) rule its copy out before the download."""
    if claims.size is not None and exp.size is not None and claims.size != exp.size:
        return (f"the source says {claims.size} bytes, the expected size is {exp.size}: "
                "refused before download (a placeholder, a pointer file or another file)")
    if claims.sha256 and exp.sha256 and claims.sha256 != exp.sha256:
        return (f"the source says sha256 {claims.sha256}, expected {exp.sha256}: refused "
                "before download")
    return None


def hub_copies(art: Artifact) -> tuple[str, ...]:
    """The entry's copies on the Hugging Face Hub (``hf://`` mirrors)."""
    return tuple(m for m in art.mirrors if m.startswith("hf://"))


def _hub_detail(resolved) -> str | None:
    """The commit the revision resolved to (X-Repo-Commit) and the Xet hash, when given."""
    parts = [f"{label} {value}" for label, value in (
        ("commit", getattr(resolved, "commit", None)),
        ("xet", getattr(resolved, "xet_hash", None))) if value]
    return "; ".join(parts) or None


def _claim(url: str, resolved) -> Voucher:
    """The Hub's word for a copy, as a voucher (its commit kept: a claim is per revision)."""
    from .disk import utc_now

    return Voucher("hub-claim", redact(url), resolved.size, None, resolved.sha256, utc_now(),
                   _hub_detail(resolved))


def _wait_for_others(marker: FetchMarker, name: str, max_wait: float) -> bool:
    """Take the fetch marker, waiting while its holder's heartbeat advances.

    Staleness is judged on this machine's clock from whether the marker's stamp
    changes, never from its mtime against our time: a stamp in the future (clock skew
    between NFS clients) or a stopped holder (SIGSTOP) no longer blocks forever.
    After ``max_wait`` seconds the download goes ahead without the marker (safe:
    correctness never depended on it).  Returns whether the marker was taken."""
    from . import events
    from .store.layout import MARKER_STALE_SECONDS

    began = time.monotonic()
    seen: int | None = None
    changed = began
    next_say = began + 1.0
    while not marker.try_acquire():
        holder, stamp = marker.peek()
        now = time.monotonic()
        if stamp != seen:
            seen, changed = stamp, now
        if holder is None:
            continue                       # released just now: try again at once
        if marker.holder_dead(holder) or now - changed > MARKER_STALE_SECONDS:
            marker.break_stale()
            continue
        if now - began > max_wait:
            events.say(f"waited {now - began:.0f} s for {holder}, which is fetching {name}; "
                       "downloading anyway (DENSEZOO_MARKER_WAIT sets the wait)")
            return False
        if now >= next_say:
            events.say(f"waiting for {holder}, which is fetching {name} "
                       f"(since {now - began:.0f} s)")
            next_say = now + 5.0
        time.sleep(0.2)
    return True
