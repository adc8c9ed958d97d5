"""The public Python API.  The CLI is a thin renderer over exactly these calls.

Nothing here prints.  Every call returns result objects (``FetchResult``,
``VerifyReport``, ``ArtifactInfo``, ...) or raises a typed ``DensezooError``.

Quick use::

    import densezoo
    path = densezoo.fetch("ResNet50_FPN_s1x")           # verified local Path
    report = densezoo.verify()                           # offline re-check of the cache
    assert report.ok

For more control (several manifests, another cache, strict mode) build a
``Zoo`` once and call its methods.  ``Zoo`` is a front: each verb is a line or
two into the module that owns it (``fetcher``, ``verifier``, ``trust``,
``export``, ``mirror``, ``bundle``, ``cache``, ``pins``, ``doctor``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .catalog import Catalog, unique
from .errors import DensezooError, NotCachedError, UsageError
from .manifest import Artifact
from .results import (ArtifactInfo, ConfigResult, ExportResult, ExtractResult, FetchOutcome,
                      FetchResult, ImportResult, PinInfo, VerifyReport, headline_ap,
                      inference_time)
from .settings import Settings
from .store import Store
from .trust import Trust
from .verifier import Verifier

if TYPE_CHECKING:
    from .cache import CacheEntry, CacheUsage, RemovalPlan
    from .fetcher import Fetcher, ProgressArg
    from .doctor import Diagnosis
    from .download import Downloader
    from .intake import Intake
    from .mirror import MirrorResult
    from .pickle_scan import ScanReport

NameOrArtifact = str | Artifact


class Zoo:
    """The loaded manifests plus one store: the object every API call works through.

    ``Zoo(settings)`` uses a resolved ``Settings``; ``Zoo(strict=True, ...)``
    resolves one from those keywords plus the ``DENSEZOO_*`` environment (a
    keyword left as ``None`` falls back to the environment, then the default).
    """

    def __init__(self, settings: Settings | None = None, *,
                 downloader: "Downloader | None" = None, **overrides: Any) -> None:
        self.settings = (Settings.resolve(**overrides) if settings is None
                         else settings.replace(**overrides))
        self.store = Store(self.settings.cache_dir)
        self.trust = Trust(self.store)
        self.verifier = Verifier(self.store, self.trust)
        self._downloader = downloader
        self._fetcher: "Fetcher | None" = None
        self._catalog: Catalog | None = None

    @property
    def fetcher(self) -> "Fetcher":
        """Built on first use: verify, path and list never import the fetch pipeline."""
        if self._fetcher is None:
            from .fetcher import Fetcher

            self._fetcher = Fetcher(self.settings, self.store, self.trust, self.verifier,
                                    self._downloader,
                                    siblings=lambda art: self.catalog.slot_mates(art))
        return self._fetcher

    @property
    def catalog(self) -> Catalog:
        """The manifests, loaded and validated on first use (``--help`` never loads them)."""
        if self._catalog is None:
            s = self.settings
            self._catalog = Catalog.load(s.manifests, defaults=s.default_manifests,
                                         compiled=self.store.layout.compiled_dir)
        return self._catalog

    @property
    def intake(self) -> "Intake":
        return self.fetcher.intake

    # -- lookup ---------------------------------------------------------------------------

    def artifact(self, name: NameOrArtifact) -> Artifact:
        return name if isinstance(name, Artifact) else self.catalog.get(name)

    def resolve(self, names: Iterable[NameOrArtifact] = (), *, with_deps: bool = False,
                kind: str | None = None, zoo: str | None = None,
                all: bool = False) -> list[Artifact]:  # noqa: A002 - mirrors --all
        """Named artifacts, plus every one of ``kind``/``zoo`` (or ``all``), each once;
        with ``with_deps`` their requirements too, dependencies first."""
        arts = [self.artifact(n) for n in names]
        if all or kind:
            selected = self.catalog.select(kind=kind, zoo=zoo)
            if not selected:
                asked = " ".join(f"--{k} {v}" for k, v in (("kind", kind), ("zoo", zoo)) if v)
                raise UsageError(f"nothing matches {asked or '--all'}", hint=(
                    f"kinds: {', '.join(self.catalog.kinds())}; "
                    f"zoos: {', '.join(self.catalog.zoos())}"))
            arts += selected
        return self.catalog.closure(arts) if with_deps else unique(arts)

    def info(self, name: NameOrArtifact) -> ArtifactInfo:
        art = self.artifact(name)
        return self._info(art, tuple(a.name for a in self.catalog.closure([art])
                                     if a is not art))

    def _info(self, art: Artifact, deps: tuple[str, ...] = ()) -> ArtifactInfo:
        pin = self.store.read_pin(art)          # read once: strength and the record
        return ArtifactInfo(art, self.trust.strength(art, pin or {}),
                            self.store.cached_path(art), pin, deps)

    def list(self, *, kind: str | None = None, zoo: str | None = None,
             text: str | None = None, sort: str | None = None) -> list[ArtifactInfo]:
        """Artifacts in manifest order, or ``sort`` "ap" (best first) / "speed" (fastest
        inference first); entries without the number come last."""
        infos = [self._info(a) for a in self.catalog.select(kind=kind, zoo=zoo, text=text)]
        if sort == "ap":
            infos.sort(key=lambda i: -(headline_ap(i.artifact)[0] or -1e9))
        elif sort == "speed":
            infos.sort(key=lambda i: inference_time(i.artifact) or 1e9)
        elif sort is not None:
            raise UsageError(f"unknown sort {sort!r}", hint="use ap or speed")
        return infos

    def display_name(self, art: Artifact) -> str:
        """The shortest name that still resolves to ``art`` (an alias, often)."""
        for alias in sorted(art.aliases, key=len):
            if len(alias) < len(art.name):
                try:
                    if self.catalog.get(alias) is art:
                        return alias
                except DensezooError:
                    continue
        return art.name

    # -- fetching -------------------------------------------------------------------------

    def fetch(self, name: NameOrArtifact, *, force: bool = False,
              progress: ProgressArg = None) -> FetchResult:
        """Return the verified local copy, downloading (or resuming) it if needed."""
        return self.fetcher.fetch(self.artifact(name), force=force, progress=progress)

    def fetch_many(self, names: Iterable[NameOrArtifact], *, force: bool = False,
                   progress: ProgressArg = None, jobs: int = 1,
                   extract: bool = False) -> list[FetchOutcome]:
        """Fetch several, ``jobs`` at a time; one failure does not stop the others."""
        return self.fetcher.fetch_many([self.artifact(n) for n in names], force=force,
                                       progress=progress, jobs=jobs, extract=extract)

    def extract(self, name: NameOrArtifact, *, progress: ProgressArg = None) -> ExtractResult:
        """Fetch a tarball and unpack it once into the store (``<root>/extracted/...``)."""
        from .extract import is_archive

        art = self.artifact(name)
        if not is_archive(art.file_name):
            raise DensezooError(f"{art.name} ({art.file_name}) is not a tar archive",
                                hint="--extract applies to .tar/.tar.gz/.tgz artifacts")
        return self.fetcher.extract(art, self.fetcher.fetch(art, progress=progress))

    def config(self, path: str | os.PathLike[str], *, fetch: bool = True, jobs: int = 4,
               progress: ProgressArg = None) -> ConfigResult:
        """Resolve a detectron2 / Detectron config: every URL in it, verified (see
        ``config_resolve``); ``fetch=False`` touches no network (cached paths only)."""
        from .config_resolve import resolve

        return resolve(self, Path(path), fetch=fetch, jobs=jobs, progress=progress)

    def seed_iopath(self, result: ConfigResult, to: str | os.PathLike[str] | None = None, *,
                    link: str = "symlink") -> list[ExportResult]:
        """Put a resolved config's files, and the runtime files its model needs, where
        iopath (detectron2's PathManager) looks first."""
        from .config_resolve import seed_iopath

        return seed_iopath(self, result, Path(to) if to is not None else None, link=link)

    def path(self, name: NameOrArtifact) -> Path:
        """The verified cached path; never downloads and never moves anything
        (NotCachedError if absent or corrupt)."""
        art = self.artifact(name)
        warnings: list[str] = []
        cached = self.fetcher.cached(art, warnings, repair=False)
        if cached is None:
            raise NotCachedError(art.name, hint="; ".join(
                [*warnings, f"run `densezoo fetch {art.name}`"]))
        return cached.path

    # -- checking -------------------------------------------------------------------------

    def verify(self, names: Iterable[str] | None = None, *, quick: bool = False,
               jobs: int | None = None, scan: bool = False) -> VerifyReport:
        """Re-check cached files against published checksums or pins.  Never uses the network.

        With no names, every cached artifact is checked; named artifacts that are
        not cached are reported as missing.  Corrupt files are moved aside, and with
        ``scan`` so are ``.pkl`` files that import anything off the allow-list.
        """
        arts = (self.resolve(names) if names is not None
                else [a for a in self.catalog.artifacts if self.store.cached_path(a)])
        return self.verifier.verify(arts, quick=quick, jobs=jobs, scan=scan)

    def scan_file(self, target: str) -> "ScanReport":
        """Scan an artifact's cached file (by name) or any file (by path) without loading it."""
        if os.path.isfile(target):
            from .pickle_scan import scan_pickle

            return scan_pickle(target)
        return self.verifier.scan(self.artifact(target))

    def pins(self, names: Sequence[str] | None = None) -> list[PinInfo]:
        from .pins import list_pins

        arts = self.resolve(names) if names else list(self.catalog.artifacts)
        return list_pins(self.store, arts, named=bool(names))

    def write_pins(self, out: str | os.PathLike[str],
                   names: Sequence[str] | None = None) -> list[PinInfo]:
        """Write pinned md5/sha256/size into a copy of the artifacts' source manifest."""
        from .pins import write_pins

        return write_pins(self.pins(names), out)

    # -- sharing and operating ------------------------------------------------------------

    def export(self, names: Iterable[str], to: str | os.PathLike[str] | None, *,
               link: str = "symlink", layout: str | None = None,
               force: bool = False) -> list[ExportResult]:
        """Verified copies (links by default) in ``to``; ``layout`` "densepose" (the v1
        checkout's folders) or "iopath" (detectron2's download cache, ``to`` optional)."""
        from .export import export

        return export(self, names, Path(to) if to is not None else None, link=link,
                      layout=layout, force=force)

    def mirror_build(self, target: str | os.PathLike[str], names: Iterable[str] | None,
                     *, base_url: str | None = None, link: str = "hardlink") -> "MirrorResult":
        """A mirror tree (files, densezoo-mirror.yaml, index.html) in a folder or under
        ``s3://bucket/prefix``."""
        from .mirror import mirror_build

        return mirror_build(self, target, names, base_url=base_url, link=link)

    def bundle(self, names: Iterable[str], out: str | os.PathLike[str]) -> list[str]:
        from .bundle import bundle

        return bundle(self, names, Path(out))

    def import_bundle(self, path: str | os.PathLike[str]) -> tuple[list[ImportResult], Path]:
        from .bundle import import_bundle

        return import_bundle(self, Path(path))

    def cache_entries(self) -> list["CacheEntry"]:
        from .cache import entries

        return entries(self)

    def cache_usage(self) -> "CacheUsage":
        from .cache import usage

        return usage(self)

    def plan_remove(self, names: Sequence[str] | None) -> "RemovalPlan":
        """What ``cache rm`` would remove (``None``: every file); ``.execute()`` removes it."""
        from .cache import plan_remove

        return plan_remove(self, list(names) if names is not None else None)

    def plan_prune(self) -> "RemovalPlan":
        from .cache import plan_prune

        return plan_prune(self)

    def doctor(self) -> "Diagnosis":
        from .doctor import diagnose

        return diagnose(self)


# -- module-level convenience -------------------------------------------------------------

def fetch(name: str, *, progress: ProgressArg = None, **settings: Any) -> Path:
    """Download (if needed) and verify one artifact; return its local path."""
    return Zoo(**settings).fetch(name, progress=progress).path


def list_artifacts(**settings: Any) -> list[ArtifactInfo]:
    return Zoo(**settings).list()


def info(name: str, **settings: Any) -> ArtifactInfo:
    return Zoo(**settings).info(name)


def verify(names: Iterable[str] | None = None, *, quick: bool = False,
           **settings: Any) -> VerifyReport:
    return Zoo(**settings).verify(names, quick=quick)


def path(name: str, **settings: Any) -> Path:
    return Zoo(**settings).path(name)
