"""The core: loaded manifests plus one store, and the verbs every operation stands on.

``Core`` holds the settings, the catalog, the store with its trust and verifier,
and the fetch pipeline (built on first use), and answers the core questions:
which artifact is this name, fetch it, where is it, is it right.  Operations
(``ops/``) take a ``Core``; ``api.Zoo`` is the public facade that adds them on
top.  Nothing in this module imports an operation or the facade.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Union

from . import events
from .catalog import Catalog, unique
from .errors import DensezooError, NotCachedError, UsageError
from .manifest import Artifact
from .progress import ProgressArg
from .settings import Settings
from .store.files import Store
from .store.trust import Trust
from .store.verifier import Verifier

if TYPE_CHECKING:
    from .results import Strength
    from .results.fetch import ExtractResult, FetchOutcome, FetchResult
    from .results.verify import VerifyReport
    from .results.info import ArtifactInfo, Listing
    from .content.pickle_scan import ScanReport
    from .download import Downloader
    from .fetcher import Fetcher
    from .store.intake import Intake

NameOrArtifact = Union[str, Artifact]


def _advised(art: Artifact, result: FetchResult) -> FetchResult:
    """The result with the entry's advisory (a known problem with the upstream file) as
    its first warning: whoever is handed the file hears of it."""
    if not art.advisory:
        return result
    return replace(result, warnings=(f"{art.name}: {art.advisory}", *result.warnings))


def is_pattern(name: NameOrArtifact) -> bool:
    """A shell-style pattern rather than a name (``*``, ``?`` or ``[``; never a URL)."""
    return isinstance(name, str) and "://" not in name and any(c in name for c in "*?[")


class Core:
    """The loaded manifests plus one store: what every verb and operation works through.

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
    def bar(self) -> "Strength | None":
        """The weakest strength handed out: --strict (prefix) or --require WORD."""
        from .results import required_strength

        return required_strength(self.settings.strict, self.settings.require)

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
            lay = self.store.layout
            self._catalog = Catalog.load(s.manifests, defaults=s.default_manifests,
                                         compiled=lay.compiled_dir, imported=lay.imported_dir)
        return self._catalog

    @property
    def intake(self) -> "Intake":
        return self.fetcher.intake

    # -- lookup ---------------------------------------------------------------------------

    def artifact(self, name: NameOrArtifact) -> Artifact:
        """An entry by name, alias, file name or config path -- or by any URL it is known
        under (its url, a mirror, a legacy URL; ``detectron2://``), as ``config`` maps them."""
        if isinstance(name, Artifact):
            return name
        if "://" in name:
            from .configs import UrlIndex

            found = UrlIndex(self.catalog).find(name.strip())
            if found is not None:
                return found
        return self.catalog.get(name)

    def matching(self, pattern: str) -> list[Artifact]:
        """The artifacts a shell-style pattern (``cse_*``) selects (``Catalog.matching``)."""
        return self.catalog.matching(pattern)

    def resolve(self, names: Iterable[NameOrArtifact] = (), *, with_deps: bool = False,
                kind: str | None = None, zoo: str | None = None,
                all: bool = False) -> list[Artifact]:  # noqa: A002 - mirrors --all
        """Named artifacts, plus every one of ``kind``/``zoo`` (or ``all``), each once;
        with ``with_deps`` their requirements too, dependencies first."""
        arts = [self.artifact(n) for n in names]
        if all or kind:
            self.catalog.check_filters(kind=kind, zoo=zoo)
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
        found = self._info(art, tuple(a.name for a in self.catalog.closure([art])
                                      if a is not art))
        if found.pin_conflicts:
            events.conflict(art.name, found.pin_conflicts)
        return found

    def _info(self, art: Artifact, deps: tuple[str, ...] = ()) -> ArtifactInfo:
        from .results.info import ArtifactInfo
        from .store.record import listed
        from .store.trust import declared_checksum, pin_conflicts

        record = self.trust.record_of(art)         # read once: strength, vouchers, conflicts
        path = self.store.cached_path(art)
        shadows = "; ".join(f"{b.zoo}:{b.name} ({b.source})"
                            for b in self.catalog.shadowed(art)) or None
        return ArtifactInfo(art, self.stored_strength(art, record) if path else None, path,
                            record, deps, pin_conflicts(art, record), self.settings.mirrors,
                            declared_checksum(art), shadows=shadows,
                            vouchers=listed(art, record, self.manifest_kind(art)))

    def manifest_kind(self, art: Artifact) -> str:
        """Whose word an entry is: the ``shipped`` manifests', one ``imported`` from a
        bundle, or ``your own`` (``--manifest``, the settings file)."""
        from .catalog import default_manifest_paths

        src = Path(art.source or "")
        if any(str(src) == str(p) for p in default_manifest_paths()):
            return "shipped"
        try:
            src.resolve().relative_to(self.store.layout.imported_dir.resolve())
            return "imported"
        except (ValueError, OSError):
            return "your own"

    def strength_of(self, art: Artifact) -> "Strength | None":
        """The strength of ``art``'s cached bytes by the record (None: not cached)."""
        if self.store.cached_path(art) is None:
            return None
        return self.stored_strength(art, self.trust.record_of(art))

    def stored_strength(self, art: Artifact, record) -> "Strength | None":
        """The strength of the cached bytes as the record says it, without hashing them:
        the digests densezoo last recorded for the file while its stat memo still holds
        (metadata this user's alone); None when the file changed since it was last hashed
        or may have been (``verify`` hashes; ``info``, ``list`` and ``cache ls`` read)."""
        from .hashing import Digests
        from .results import Strength

        meta = self.store.read_meta(art)
        if not (meta and self.store.memo_valid(art, meta)):
            return None if record.pin is not None or meta else Strength.NONE
        digests = Digests(int(meta.get("size") or -1), meta.get("md5"), meta.get("sha256"))
        return self.trust.strength_in_store(art, record, digests)[0]

    def list(self, *, kind: str | None = None, zoo: str | None = None,
             text: str | None = None, sort: str | None = None,
             all_kinds: bool = False) -> Listing:
        """Artifacts in manifest order, or ``sort`` "ap" (best first) / "speed" (fastest
        inference first); entries without the number come last.  Entries that only carry
        metrics (kind ``metrics``) are left out unless asked for (``kind="metrics"`` or
        ``all_kinds``); ``Listing.hidden`` counts them."""
        from .results.info import HIDDEN_KINDS, Listing, headline_ap, inference_time

        self.catalog.check_filters(kind=kind, zoo=zoo)
        selected = self.catalog.select(kind=kind, zoo=zoo, text=text)
        shown = [a for a in selected
                 if all_kinds or kind is not None or a.kind not in HIDDEN_KINDS]
        infos = Listing(self._info(a, tuple(d.name for d in self.catalog.closure([a])
                                            if d is not a)) for a in shown)
        infos.hidden = len(selected) - len(shown)
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
        """Return the verified local copy, downloading (or resuming) it if needed.  A trust
        event (first-use pin, a mirror's prefix-only bytes) is also a ``UnverifiedWarning``."""
        art = self.artifact(name)
        return events.announce(_advised(art, self.fetcher.fetch(art, force=force,
                                                                progress=progress)))

    def fetch_many(self, names: Iterable[NameOrArtifact], *, force: bool = False,
                   progress: ProgressArg = None, jobs: int = 1,
                   extract: bool = False) -> list[FetchOutcome]:
        """Fetch several, ``jobs`` at a time; one failure does not stop the others."""
        arts = [self.artifact(n) for n in names]
        outcomes = self.fetcher.fetch_many(arts, force=force, progress=progress, jobs=jobs,
                                           extract=extract)
        by_name = {a.name: a for a in arts}
        outcomes = [replace(o, result=_advised(by_name[o.name], o.result))
                    if o.result is not None and o.name in by_name else o for o in outcomes]
        events.announce_all(outcomes)
        return outcomes

    def extract(self, name: NameOrArtifact, *, progress: ProgressArg = None) -> ExtractResult:
        """Fetch a tarball and unpack it once into the store (``<root>/extracted/...``)."""
        from .content.unpack import is_archive

        art = self.artifact(name)
        if not is_archive(art.file_name):
            raise DensezooError(f"{art.name} ({art.file_name}) is not a tar archive",
                                hint="--extract applies to .tar/.tar.gz/.tgz artifacts")
        return self.fetcher.extract(art, self.fetcher.fetch(art, progress=progress), progress)

    def path(self, name: NameOrArtifact) -> Path:
        """The verified cached path; never downloads, moves or pins anything
        (NotCachedError if absent or corrupt, UnsafeContentError if hostile)."""
        return self.locate(name).path

    def locate(self, name: NameOrArtifact) -> FetchResult:
        """``path`` with what a caller should be told: a copy that is cached but not yet
        pinned is answered with a warning (``FetchResult.warnings``), never pinned here."""
        art = self.artifact(name)
        warnings: list[str] = []
        cached = self.fetcher.cached(art, warnings, repair=False)
        if cached is None:
            raise NotCachedError(art.name, hint="; ".join(
                [*warnings, f"run `densezoo fetch {art.name}`"]))
        return events.announce(cached)

    # -- checking -------------------------------------------------------------------------

    def verify(self, names: Iterable[str] | None = None, *, quick: bool = False,
               jobs: int | None = None, scan: bool = False,
               cross_check: bool = False, progress: ProgressArg = None) -> VerifyReport:
        """Re-check cached files against published checksums or pins.  Never uses the
        network -- except ``cross_check``, which first asks the Hub what each weakly
        vouched file's Hub copy is (sha256 and size, no body) and records its word.

        With no names, every cached artifact is checked; named artifacts that are
        not cached are reported as missing.  Corrupt files are moved aside, and with
        ``scan`` so are ``.pkl`` files that import anything off the allow-list.
        The bytes hashed are reported on ``progress`` (as ``fetch``'s are).
        """
        if names is not None:
            arts = self.resolve(names)
            if cross_check:
                self.cross_check(arts)
            return self.verifier.verify(arts, quick=quick, jobs=jobs, scan=scan, bar=self.bar,
                                        progress=progress)
        arts, strangers = self.stored()
        if cross_check:
            self.cross_check(arts)
        report = self.verifier.verify(arts, quick=quick, jobs=jobs, scan=scan,
                                      bar=self.bar, progress=progress)
        if strangers:
            report = report.with_note(
                f"{len(strangers)} file(s) in the store that no loaded manifest names and no "
                "record vouches for were not checked (`densezoo cache ls` lists them; "
                "`densezoo cache prune` removes them)")
        return report

    def cross_check(self, arts: Iterable[Artifact]) -> int:
        """Record the Hub's claim (``hub-claim`` voucher) for each cached artifact that has a
        Hub copy and no published full checksum; how many claims were recorded.  An
        unreachable Hub or ``--offline`` records nothing and changes nothing."""
        from .fetcher import hub_copies
        from .store.trust import declared_checksum
        from .results import Checksum

        done = 0
        for art in arts:
            if declared_checksum(art) is Checksum.FULL or not hub_copies(art) or \
                    self.store.cached_path(art) is None:
                continue
            claim = self.fetcher.hub_claim(art)
            if claim is not None:
                self.trust.records.add(art, self.trust.record_of(art), claim)
                done += 1
        return done

    def stored(self) -> tuple[list[Artifact], list[Path]]:
        """What the store holds, as artifacts to check: every loaded entry with a file or a
        quarantine record, then entries only the store's records know (a file fetched with
        another manifest, or imported), and apart the files nobody can vouch for.

        One walk of the store, then set lookups: ``verify --quick`` stays a stat per file
        however many entries the manifests list."""
        from .disk import private_file

        lay = self.store.layout
        on_disk = set(lay.published_files())
        mine: dict[Path, Artifact] = {}
        for art in self.trust.records.entries():     # this user's own word comes first
            try:
                mine.setdefault(lay.file(art), art)
            except DensezooError:
                continue
        recorded: dict[Path, Artifact] = {}
        quarantined: set[Path] = set()
        for path, art, gone in self.store.records():
            if path not in mine and not private_file(lay.meta(path)):
                continue        # another user's .dzmeta names no entry for this user
            recorded.setdefault(path, mine.get(path, art))
            if gone and path not in on_disk:
                quarantined.add(path)
        for path, art in mine.items():
            recorded.setdefault(path, art)
        known: dict[Path, Artifact] = {}
        arts = []
        for a in self.catalog.artifacts:
            p = lay.file(a)
            known.setdefault(p, a)
            if p in on_disk or p in quarantined:
                arts.append(a)
        strangers = sorted(p for p in on_disk if p not in known and p not in recorded)
        arts += [recorded[p] for p in sorted(recorded) if p not in known
                 and (p in on_disk or p in quarantined)]
        return arts, strangers

    def scan_file(self, target: str) -> "ScanReport":
        """Scan an artifact's cached file (by name) or any file (by path) without loading it."""
        if os.path.isfile(target):
            from .content.pickle_scan import scan_pickle

            return scan_pickle(target)
        return self.verifier.scan(self.artifact(target))
