"""The public Python API.  The CLI is a thin renderer over exactly these calls.

Nothing here prints.  Every call returns result objects (``FetchResult``,
``VerifyReport``, ``ArtifactInfo``) or raises a typed ``DensezooError``.

Quick use::

    import densezoo
    path = densezoo.fetch("ResNet50_FPN_s1x")           # verified local Path
    report = densezoo.verify()                           # offline re-check of the cache
    assert report.ok

For more control (several manifests, another cache, strict mode) build a
``Zoo`` once and call its methods.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, Union

from . import config
from .catalog import Catalog
from .errors import (DensezooError, DownloadFailedError, NotCachedError, PolicyError,
                     StrictModeError, TransferError, UrlFailure)
from .hashing import ALGORITHMS, Digests, Expected, hash_file, parse_md5_sidecar
from .manifest import Artifact
from .pickle_scan import ScanReport, scan_pickle
from .urls import url_key
from .health import Health
from .progress import NoProgress, Progress, TqdmProgress
from .urls import redact
from .store import Store, store_errors

if TYPE_CHECKING:
    from .download import Downloader

ProgressArg = Union[bool, None, Progress, Callable[[Artifact], Progress]]


# -- result objects -----------------------------------------------------------------------

def _artifact_dict(a: Artifact) -> dict[str, Any]:
    return {
        "name": a.name, "zoo": a.zoo, "kind": a.kind, "file_name": a.file_name, "url": a.url,
        "mirrors": list(a.mirrors), "legacy_urls": list(a.legacy_urls), "md5": a.md5,
        "md5_prefix": a.md5_prefix, "sha256": a.sha256, "md5_url": a.md5_url, "size": a.size,
        "description": a.description, "config": a.config, "metrics": dict(a.metrics),
        "license": a.license, "requires": list(a.requires), "aliases": list(a.aliases),
        "deprecated": a.deprecated, "note": a.note, "manifest": a.source,
    }


@dataclass(frozen=True)
class ArtifactInfo:
    """An artifact as the manifest declares it, plus what the local store knows of it."""

    artifact: Artifact
    strength: str                  # full | sidecar | prefix | pinned | none
    path: Path | None              # the cached file, if present
    pin: dict[str, Any] | None
    requires: tuple[str, ...] = ()  # full dependency closure, dependencies first

    @property
    def name(self) -> str:
        return self.artifact.name

    def to_dict(self) -> dict[str, Any]:
        d = _artifact_dict(self.artifact)
        d.update({"strength": self.strength, "cached": self.path is not None,
                  "path": str(self.path) if self.path else None, "pin": self.pin,
                  "requires_closure": list(self.requires)})
        return d


@dataclass(frozen=True)
class FetchResult:
    name: str
    path: Path
    action: str                    # cached | downloaded | resumed
    url: str | None
    transferred: int
    digests: Digests | None
    strength: str
    pinned: bool = False           # True when this call recorded a trust-on-first-use pin
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "action": self.action,
                "url": self.url, "transferred": self.transferred,
                **(self.digests.as_dict() if self.digests else {}),
                "strength": self.strength, "pinned": self.pinned,
                "warnings": list(self.warnings)}


@dataclass(frozen=True)
class ExtractResult:
    name: str
    archive: Path
    path: Path                     # the folder the archive was unpacked into
    action: str                    # extracted | cached

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "archive": str(self.archive), "path": str(self.path),
                "action": self.action}


@dataclass(frozen=True)
class FetchOutcome:
    """One name of a multi-name fetch: a result or the error that stopped it."""

    name: str
    result: FetchResult | None = None
    error: DensezooError | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.result:
            return {"ok": True, **self.result.to_dict()}
        assert self.error is not None
        return {"ok": False, "name": self.name, "error": str(self.error),
                "hint": self.error.hint, "exit_code": self.error.exit_code}


@dataclass(frozen=True)
class VerifyEntry:
    name: str
    status: str                    # ok | missing | corrupt | unsafe | unpinned
    path: str | None = None
    detail: str | None = None
    moved_to: str | None = None
    method: str | None = None      # full (re-hashed) | quick (stat memo)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class VerifyReport:
    entries: tuple[VerifyEntry, ...]

    @property
    def ok(self) -> bool:
        return all(e.status == "ok" for e in self.entries)

    def count(self, status: str) -> int:
        return sum(e.status == status for e in self.entries)

    def to_dict(self) -> dict[str, Any]:
        counts = {s: self.count(s) for s in ("ok", "missing", "corrupt", "unsafe", "unpinned")}
        return {"ok": self.ok, "counts": counts, "entries": [e.to_dict() for e in self.entries]}


@dataclass(frozen=True)
class PinInfo:
    name: str
    manifest: str
    md5: str | None
    sha256: str | None
    size: int | None
    pinned_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class _Check:
    status: str                    # ok | corrupt | unpinned
    digests: Digests | None
    detail: str | None = None
    method: str = "full"


# -- the Zoo ------------------------------------------------------------------------------

@dataclass
class Zoo:
    """A catalog of manifests plus a store: the object every API call works through.

    Arguments left as ``None`` fall back to the environment (``DENSEZOO_*``) at
    the moment the Zoo is built.
    """

    manifests: Sequence[str | os.PathLike[str]] = ()
    cache_dir: str | os.PathLike[str] | None = None
    default_manifests: bool = True
    strict: bool | None = None
    offline: bool | None = None
    allow_http: bool | None = None
    mirrors: Sequence[str] | None = None
    space_check: bool = True
    markers: bool | None = None
    scan: bool | None = None
    connections: int | None = None          # per file: None = automatic, 1 = never segment
    downloader: "Downloader | None" = None
    _catalog: Catalog | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.manifests = [*self.manifests, *config.manifest_paths_from_env()]
        self.store = Store(config.cache_dir(self.cache_dir))
        self.strict = config.strict() if self.strict is None else self.strict
        self.offline = config.offline() if self.offline is None else self.offline
        self.allow_http = config.allow_http() if self.allow_http is None else self.allow_http
        self.mirrors = config.mirrors() if self.mirrors is None else list(self.mirrors)
        self.markers = config.markers() if self.markers is None else self.markers
        self.scan = config.scan() if self.scan is None else self.scan

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog.load(self.manifests, defaults=self.default_manifests)
        return self._catalog

    def _downloader(self) -> "Downloader":
        if self.downloader is None:
            from .download import Downloader   # requests is imported only when we download

            self.downloader = Downloader(timeout=config.timeout(), allow_http=bool(self.allow_http),
                                         space_check=self.space_check,
                                         connections=self.connections)
        return self.downloader

    # -- lookup -----------------------------------------------------------------------

    def resolve(self, names: Iterable[str], *, with_deps: bool = False) -> list[Artifact]:
        arts = [self.catalog.get(n) for n in names]
        return self.catalog.closure(arts) if with_deps else _unique(arts)

    @staticmethod
    def published(art: Artifact) -> Expected:
        """What the manifest entry itself promises about the bytes."""
        return Expected(size=art.size, md5=art.md5, sha256=art.sha256, md5_prefix=art.md5_prefix,
                        sources={k: "manifest" for k in ("size", "md5", "sha256", "md5_prefix")
                                 if getattr(art, k) is not None})

    def pinned(self, art: Artifact) -> bool:
        return bool((self.store.read_pin(art) or {}).get("md5"))

    def needs_pin(self, art: Artifact) -> bool:
        """True when a verified copy should be pinned: no full checksum published, none pinned."""
        return art.strength != "full" and not self.pinned(art)

    def expected(self, art: Artifact) -> Expected:
        """Published checksums, then a remembered sidecar md5, then the first-use pin."""
        exp = self.published(art)
        if art.strength == "full":
            return exp
        pin = self.store.read_pin(art) or {}
        if pin.get("sidecar_md5"):
            exp = exp.merged(Expected(md5=pin["sidecar_md5"], sources={"md5": "sidecar"}))
        if pin.get("md5"):
            exp = exp.merged(Expected(size=pin.get("size"), md5=pin["md5"],
                                      sha256=pin.get("sha256"),
                                      sources={"size": "pin", "md5": "pin", "sha256": "pin"}))
        return exp

    def strength(self, art: Artifact) -> str:
        if art.strength == "none" and self.pinned(art):
            return "pinned"
        return art.strength

    def info(self, name: str) -> ArtifactInfo:
        art = self.catalog.get(name)
        deps = tuple(a.name for a in self.catalog.closure([art]) if a is not art)
        return self._info(art, deps)

    def _info(self, art: Artifact, deps: tuple[str, ...] = ()) -> ArtifactInfo:
        return ArtifactInfo(art, self.strength(art), self.store.cached_path(art),
                            self.store.read_pin(art), deps)

    def list(self, *, kind: str | None = None, zoo: str | None = None,
             text: str | None = None) -> list[ArtifactInfo]:
        return [self._info(a) for a in self.catalog.select(kind=kind, zoo=zoo, text=text)]

    def candidate_urls(self, url: str, extra: Sequence[str] = ()) -> list[str]:
        """Configured mirrors first (same host/path layout as the store), then upstream;
        hosts that failed recently go to the back (see health.py)."""
        key = "/".join(url_key(url))
        urls = [m.rstrip("/") + "/" + key for m in (self.mirrors or ())]
        return self.health.order(_unique([*urls, url, *extra]))

    @property
    def health(self) -> Health:
        return Health(self.store.root / "health.json")

    # -- checking what is cached --------------------------------------------------------

    def _check(self, art: Artifact, expected: Expected, *, quick: bool) -> _Check:
        """Is the cached file right?  Hashes only the algorithms the check needs.

        ``quick`` trusts the digests recorded in the metadata while the stat memo
        says the file has not changed since they were computed.
        """
        path = self.store.path_for(art)
        algorithms = expected.algorithms() or ALGORITHMS   # nothing to check: hash to pin
        meta = self.store.read_meta(art)
        if quick and meta and self.store.memo_valid(art, meta):
            memo = Digests(int(meta.get("size") or -1), meta.get("md5"), meta.get("sha256"))
            if memo.covers(algorithms):
                if not expected.has_checksum:
                    return _Check("unpinned", memo, "no published checksum and no pin",
                                  "quick")
                if expected.mismatch(memo) is None:
                    return _Check("ok", memo, method="quick")
        digests = hash_file(path, algorithms)
        if not expected.has_checksum:
            return _Check("unpinned", digests, "no published checksum and no pin")
        bad = expected.mismatch(digests)
        if bad:
            alg, exp, act = bad
            return _Check("corrupt", digests, f"{alg} expected {exp}, got {act}")
        self.store.write_meta(art, digests, url=None)
        return _Check("ok", digests)

    # -- fetch ------------------------------------------------------------------------

    def fetch(self, name: str | Artifact, *, force: bool = False,
              progress: ProgressArg = None) -> FetchResult:
        """Return the verified local copy, downloading (or resuming) it if needed."""
        art = name if isinstance(name, Artifact) else self.catalog.get(name)
        if self.strict and not art.published:
            raise StrictModeError(art.name)
        warnings: list[str] = []
        if not force:
            cached = self._cached_result(art, warnings)
            if cached is not None:
                return cached
        if self.offline:
            raise NotCachedError(art.name, hint="offline mode is on (--offline / DENSEZOO_OFFLINE); "
                                                "fetch it once with network access"
                                 + ("; " + warnings[0] if warnings else ""))
        marker = self.store.marker(art)
        if self.markers:
            self._wait_for_others(marker)
        try:
            if not force:     # another process may have published it since we last looked
                cached = self._cached_result(art, warnings)
                if cached is not None:
                    return cached
            expected = self.expected(art)
            if art.md5_url and not expected.md5:
                expected = self._with_sidecar(art, expected, warnings)
            return self._download(art, expected, warnings, progress)
        finally:
            if self.markers:
                marker.release()

    def _wait_for_others(self, marker) -> None:
        """Take the fetch marker, waiting while a live process holds it."""
        while not marker.try_acquire():
            if marker.holder_gone():
                marker.break_stale()
                continue
            time.sleep(0.2)

    def _cached_result(self, art: Artifact, warnings: list[str]) -> FetchResult | None:
        """The cached copy if it verifies; a corrupt one is moved aside (and None returned)."""
        path = self.store.cached_path(art)
        if path is None:
            return None
        check = self._check(art, self.expected(art), quick=True)
        if check.status == "ok":
            return FetchResult(art.name, path, "cached", None, 0, check.digests,
                               self.strength(art))
        if check.status == "unpinned":
            assert check.digests is not None
            self.store.write_pin(art, check.digests, redact(art.url))
            return FetchResult(art.name, path, "cached", None, 0, check.digests, "pinned",
                               pinned=True,
                               warnings=(f"{art.name} had no pin; pinned the cached copy",))
        moved = self.store.quarantine(art)
        warnings.append(f"cached copy failed its checksum ({check.detail}); "
                        f"moved it to {moved} and downloading again")
        return None

    def _with_sidecar(self, art: Artifact, expected: Expected, warnings: list[str]) -> Expected:
        failures = []
        for url in self.candidate_urls(art.md5_url or ""):
            try:
                md5 = parse_md5_sidecar(self._downloader().get_small(url))
            except (TransferError, PolicyError) as e:
                failures.append(str(e))
                continue
            except ValueError as e:
                failures.append(f"{url}: {e}")
                continue
            self.store.remember_sidecar(art, md5)
            return expected.merged(Expected(md5=md5, sources={"md5": "sidecar"}))
        if self.strict:
            raise StrictModeError(art.name)
        warnings.append("the published .md5sum could not be read (" + "; ".join(failures)
                        + "); verifying by first-use pin instead")
        return expected

    def _download(self, art: Artifact, expected: Expected, warnings: list[str],
                  progress: ProgressArg) -> FetchResult:
        downloader = self._downloader()
        failures: list[UrlFailure] = []
        # md5 costs a core; sha256 is only worth its CPU when checked or to be pinned.
        will_pin = self.needs_pin(art)
        algorithms = ALGORITHMS if will_pin else (expected.algorithms() or ALGORITHMS)
        for url in self.candidate_urls(art.url, art.mirrors):
            partial = self.store.claim_partial(art)
            began = time.monotonic()
            try:
                result = downloader.download(
                    url, partial, expected_size=expected.size, file_name=art.file_name,
                    resume_unvalidated=expected.has_checksum, algorithms=algorithms,
                    progress=_progress_for(progress, art))
            except TransferError as e:
                partial.release()
                self.health.record(url, ok=False)
                failures.append(UrlFailure(e.url, e.reason, "http" if e.status else "download"))
                continue
            except PolicyError as e:
                partial.release()
                failures.append(UrlFailure(redact(url), str(e), "policy"))
                continue
            except BaseException:
                partial.release()        # Ctrl-C, disk full: keep the bytes for a resume
                raise
            self.health.record(url, ok=True,
                               bytes_per_s=result.transferred / max(time.monotonic() - began, 1e-6))
            bad = expected.mismatch(result.digests)
            if bad:
                partial.discard()
                alg, exp, act = bad
                failures.append(UrlFailure(result.url, f"{alg} mismatch: expected {exp}, "
                                                       f"got {act}", "checksum"))
                continue
            unsafe = self._scan_findings(art, partial.path, warnings)
            if unsafe:
                moved = self.store.quarantine(art, partial.path)
                partial.discard()
                failures.append(UrlFailure(result.url, f"unsafe pickle: {unsafe} (kept in "
                                                       f"{moved})", "policy"))
                continue
            path = self.store.publish(art, partial, result.digests, url=result.url,
                                      headers=result.headers)
            pinned = False
            if will_pin:
                self.store.write_pin(art, result.digests, result.url)
                pinned = True
                if not art.published:
                    warnings.append(f"{art.name} has no published checksum; pinned md5 "
                                    f"{result.digests.md5} and size {result.digests.size} "
                                    "on this first download")
            action = "resumed" if result.resumed_from else "downloaded"
            return FetchResult(art.name, path, action, result.url, result.transferred,
                               result.digests, self.strength(art), pinned, tuple(warnings))
        raise DownloadFailedError(art.name, failures)

    def _scan_findings(self, art: Artifact, path: Path, warnings: list[str]) -> str | None:
        """For a .pkl: the first disallowed import (None if safe or not scanned)."""
        if not (self.scan and art.file_name.lower().endswith(".pkl")):
            return None
        report = scan_pickle(path)
        if report.error and report.ok:
            warnings.append(f"{art.name}: {report.error}")
        return str(report.findings[0]) if report.findings else None

    def scan_file(self, target: str) -> ScanReport:
        """Scan an artifact's cached file (by name) or any file (by path) without loading it."""
        if os.path.isfile(target):
            return scan_pickle(target)
        art = self.catalog.get(target)
        path = self.store.cached_path(art)
        if path is None:
            raise NotCachedError(art.name)
        return scan_pickle(path)

    def extract(self, name: str | Artifact, *, progress: ProgressArg = None) -> ExtractResult:
        """Fetch a tarball and unpack it once into the store (``<root>/extracted/...``)."""
        from .extract import extract_once, is_archive

        art = name if isinstance(name, Artifact) else self.catalog.get(name)
        if not is_archive(art.file_name):
            raise DensezooError(f"{art.name} ({art.file_name}) is not a tar archive",
                                hint="--extract applies to .tar/.tar.gz/.tgz artifacts")
        fetched = self.fetch(art, progress=progress)
        target = self.store.extract_dir(art)
        assert fetched.digests is not None
        with store_errors("extract", target.parent):
            done = extract_once(fetched.path, target, fetched.digests.sha256)
        return ExtractResult(art.name, fetched.path, target, "extracted" if done else "cached")

    def fetch_many(self, names: Iterable[str | Artifact], *, force: bool = False,
                   progress: ProgressArg = None, jobs: int = 1) -> list[FetchOutcome]:
        """Fetch several artifacts (each once), ``jobs`` at a time, over one connection pool.

        A failure of one is recorded and the rest go on; only a broken store
        (exit 8, where every other download would fail too) is raised, after the
        downloads already running have finished.
        """
        items = _unique(list(names))
        self._downloader()                 # one Session (and pool) shared by every thread

        def one(n: str | Artifact) -> FetchOutcome:
            label = n.name if isinstance(n, Artifact) else n
            try:
                return FetchOutcome(label, self.fetch(n, force=force, progress=progress))
            except DensezooError as e:
                return FetchOutcome(label, error=e)

        if jobs <= 1 or len(items) <= 1:
            outcomes = []
            for n in items:
                outcomes.append(one(n))
                if outcomes[-1].error is not None and outcomes[-1].error.exit_code == 8:
                    break
        else:
            with ThreadPoolExecutor(min(jobs, len(items)), "densezoo-fetch") as pool:
                outcomes = list(pool.map(one, items))
        for o in outcomes:
            if o.error is not None and o.error.exit_code == 8:
                raise o.error
        return outcomes

    def path(self, name: str) -> Path:
        """The verified cached path; never downloads (NotCachedError if absent or corrupt)."""
        art = self.catalog.get(name)
        warnings: list[str] = []
        cached = self._cached_result(art, warnings) if self.store.cached_path(art) else None
        if cached is None:
            raise NotCachedError(art.name, hint="; ".join(
                [*warnings, f"run `densezoo fetch {art.name}`"]))
        return cached.path

    # -- verify -----------------------------------------------------------------------

    def verify(self, names: Iterable[str] | None = None, *, quick: bool = False,
               jobs: int | None = None, scan: bool = False) -> VerifyReport:
        """Re-check cached files against published checksums or pins.  Never uses the network.

        With no names, every cached artifact is checked; named artifacts that are
        not cached are reported as missing.  Corrupt files are moved aside, and with
        ``scan`` so are ``.pkl`` files that import anything off the allow-list.
        """
        arts = (self.resolve(names) if names is not None
                else [a for a in self.catalog.artifacts if self.store.cached_path(a)])

        def one(art: Artifact) -> VerifyEntry:
            path = self.store.cached_path(art)
            if path is None:
                return VerifyEntry(art.name, "missing", detail="not in the cache")
            check = self._check(art, self.expected(art), quick=quick)
            if check.status == "corrupt":
                moved = self.store.quarantine(art)
                return VerifyEntry(art.name, "corrupt", str(path), check.detail, str(moved),
                                   check.method)
            if scan and art.file_name.lower().endswith(".pkl"):
                report = scan_pickle(path)
                if not report.ok:
                    moved = self.store.quarantine(art)
                    return VerifyEntry(art.name, "unsafe", str(path), str(report.findings[0]),
                                       str(moved), check.method)
            return VerifyEntry(art.name, check.status, str(path), check.detail,
                               method=check.method)

        workers = jobs or min(4, os.cpu_count() or 1)
        if workers <= 1 or len(arts) <= 1:
            entries = [one(a) for a in arts]
        else:   # hashlib releases the GIL: two files hash on two cores
            with ThreadPoolExecutor(workers) as pool:
                entries = list(pool.map(one, arts))
        return VerifyReport(tuple(entries))

    # -- pins ---------------------------------------------------------------------------

    def pins(self, names: Iterable[str] | None = None) -> list[PinInfo]:
        arts = self.resolve(names) if names else list(self.catalog.artifacts)
        out = []
        for a in arts:
            pin = self.store.read_pin(a) or {}
            if names or pin.get("md5"):
                out.append(PinInfo(a.name, a.source, pin.get("md5"), pin.get("sha256"),
                                   pin.get("size"), pin.get("pinned_at")))
        return out

    def write_pins(self, out: str | os.PathLike[str],
                   names: Iterable[str] | None = None) -> list[PinInfo]:
        """Write pinned md5/sha256/size into a copy of the artifacts' source manifest.

        Comments, order and formatting of the source survive; only the pinned
        fields change, so the diff is easy to review before publishing it.
        """
        from .manifest_edit import set_fields

        pins = [p for p in self.pins(names) if p.md5]
        if not pins:
            raise DensezooError("nothing is pinned yet",
                                hint="fetch the artifacts first; pins are recorded on download")
        sources = sorted({p.manifest for p in pins})
        if len(sources) > 1:
            raise DensezooError("the pinned artifacts come from several manifests: "
                                + ", ".join(sources),
                                hint="name artifacts from one manifest at a time")
        text = Path(sources[0]).read_text(encoding="utf-8")
        updates = {p.name: {"md5": p.md5, "sha256": p.sha256, "size": p.size} for p in pins}
        new = set_fields(text, updates, source=sources[0])
        Path(out).write_text(new, encoding="utf-8")
        return pins


def _progress_for(progress: ProgressArg, art: Artifact) -> Progress:
    if progress is None or progress is False:
        return NoProgress()
    if progress is True:
        return TqdmProgress()
    if callable(progress) and not hasattr(progress, "advance"):
        return progress(art)
    return progress  # type: ignore[return-value]


def _unique(items):
    seen, out = set(), []
    for x in items:
        key = x.name if isinstance(x, Artifact) else x
        if key not in seen:
            seen.add(key)
            out.append(x)
    return out


# -- module-level convenience -------------------------------------------------------------

def fetch(name: str, *, progress: ProgressArg = None, **zoo_kwargs: Any) -> Path:
    """Download (if needed) and verify one artifact; return its local path."""
    return Zoo(**zoo_kwargs).fetch(name, progress=progress).path


def list_artifacts(**zoo_kwargs: Any) -> list[ArtifactInfo]:
    return Zoo(**zoo_kwargs).list()


def info(name: str, **zoo_kwargs: Any) -> ArtifactInfo:
    return Zoo(**zoo_kwargs).info(name)


def verify(names: Iterable[str] | None = None, *, quick: bool = False,
           **zoo_kwargs: Any) -> VerifyReport:
    return Zoo(**zoo_kwargs).verify(names, quick=quick)


def path(name: str, **zoo_kwargs: Any) -> Path:
    return Zoo(**zoo_kwargs).path(name)
