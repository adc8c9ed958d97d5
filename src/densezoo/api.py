"""The public Python API.  The CLI is a thin renderer over exactly these calls.

Nothing here prints.  Every call returns result objects (``FetchResult``,
``VerifyReport``, ``ArtifactInfo``, ...) or raises a typed ``DensezooError``.

Quick use::

    import densezoo
    path = densezoo.fetch("ResNet50_FPN_s1x")           # verified local Path
    report = densezoo.verify()                           # offline re-check of the cache
    assert report.ok

For more control (several manifests, another cache, strict mode) build a
``Zoo`` once and call its methods.  ``Zoo`` is a front: the core verbs come
from ``core.Core`` (fetch, verify, path, info, list), and each operation verb is
a line into its module in ``ops/`` (export, mirror, bundle, cache, pins,
doctor, config).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, NamedTuple, Sequence

from .core import Core, NameOrArtifact, ProgressArg, is_pattern

if TYPE_CHECKING:
    from .results.verify import VerifyReport
    from .results.info import ArtifactInfo
    from .results.share import ConfigResult, ExportResult, ImportResult, PinInfo
    from .content.pickle_scan import ScanReport
    from .content.weights import Weights
    from .results.convert import ConvertResult
    from .ops.cache import CacheEntry, CacheUsage, RemovalPlan
    from .ops.doctor import Diagnosis
    from .ops.adopt import AdoptReport
    from .ops.weights import Identification, StructureReport
    from .ops.manifest_add import AddedEntry
    from .ops.mirror import MirrorResult
    from .ops.ledger import LedgerCheck, LedgerExport
    from .user_settings import Origin


class Selection(NamedTuple):
    """``Zoo.select``'s answer: artifacts to fetch, a config's references no manifest
    lists, and the errors of the names (or patterns) that resolved to nothing."""

    artifacts: list
    unlisted: list
    unknown: list

    def check(self) -> None:
        """Raise ``UnknownNamesError`` (all of them at once) if any name is unknown."""
        if self.unknown:
            from .errors import UnknownNamesError

            raise UnknownNamesError(self.unknown)


class Zoo(Core):
    """The public facade: the core verbs (``Core``) plus the operations in ``ops/``.

    ``Zoo(settings)`` uses a resolved ``Settings``; ``Zoo(strict=True, ...)``
    resolves one from those keywords plus the ``DENSEZOO_*`` environment (a
    keyword left as ``None`` falls back to the environment, then the default).
    Each operation verb is a line into the module that owns it.
    """

    def select(self, names: Iterable[NameOrArtifact] = (), *, all: bool = False,  # noqa: A002
               kind: str | None = None, zoo: str | None = None, with_deps: bool = False,
               config: str | os.PathLike[str] | None = None) -> "Selection":
        """What ``fetch`` works on: the named artifacts, every one of ``kind``/``zoo`` (or
        ``all``), the references of a ``config``; with ``with_deps`` their requirements.
        A name may be a shell-style pattern (``cse_*``).  Names that resolve to nothing
        are not raised here: they come back in ``unknown`` (each with its suggestions), so a
        caller reports them all at once (``Selection.check``) before downloading anything."""
        from .errors import AmbiguousArtifactError, UnknownArtifactError, UsageError

        names = list(names)
        unlisted: list = []
        if config is not None:
            refs = self.config(config, fetch=False).references
            names += [r.name for r in refs if r.name]
            unlisted = [r for r in refs if r.name is None]
        if not names and not (all or kind):
            raise UsageError("name at least one artifact, or select all / a kind / a config")
        found, unknown = [], []
        for n in names:
            try:
                found += self.matching(n) if is_pattern(n) else [self.artifact(n)]
            except (UnknownArtifactError, AmbiguousArtifactError) as e:
                unknown.append(e)
        arts = (self.resolve(found, with_deps=with_deps, kind=kind, zoo=zoo, all=all)
                if found or all or kind else [])
        return Selection(arts, unlisted, unknown)

    def config(self, path: str | os.PathLike[str], *, fetch: bool = True, jobs: int = 4,
               progress: ProgressArg = None, trained: bool = False,
               safetensors: bool = False) -> ConfigResult:
        """Resolve a detectron2 / Detectron config: every URL in it, verified (see
        ``config_resolve``); ``fetch=False`` touches no network (cached paths only);
        ``safetensors``: MODEL.WEIGHTS converted (see ``convert``)."""
        from .ops.config import resolve

        return resolve(self, Path(path), fetch=fetch, jobs=jobs, progress=progress,
                       trained=trained, safetensors=safetensors)

    def convert(self, target: str | os.PathLike[str], *, to: str = "safetensors",
                output: str | os.PathLike[str] | None = None) -> "ConvertResult":
        """A checkpoint as safetensors, proven bit-exact before it is kept (ops/convert)."""
        from .ops.convert import convert

        return convert(self, target, to=to, output=output)

    def seed_iopath(self, result: ConfigResult, to: str | os.PathLike[str] | None = None, *,
                    link: str = "symlink", strict: bool = False
                    ) -> tuple[list[ExportResult], list[tuple[str, Exception]]]:
        """Put a resolved config's files, and the runtime files its model needs, where
        iopath (detectron2's PathManager) looks first.  Returns what was placed and the
        runtime files that could not be (best effort unless ``strict``)."""
        from .ops.config import seed_iopath

        return seed_iopath(self, result, Path(to) if to is not None else None, link=link,
                           strict=strict)

    def pins(self, names: Sequence[str] | None = None) -> list[PinInfo]:
        from .ops.pins import list_pins

        arts = self.resolve(names) if names else list(self.catalog.artifacts)
        return list_pins(self, arts, named=bool(names))

    def write_pins(self, out: str | os.PathLike[str],
                   names: Sequence[str] | None = None) -> list[PinInfo]:
        """Write pinned md5/sha256/size into a copy of the artifacts' source manifest."""
        from .events import conflict
        from .ops.pins import write_pins

        written = write_pins(self.pins(names), out)
        for p in written:
            conflict(p.name, p.conflicts)
        return written

    # -- sharing and operating ------------------------------------------------------------

    def export(self, names: Iterable[str], to: str | os.PathLike[str] | None, *,
               link: str = "symlink", layout: str | None = None,
               force: bool = False, progress: ProgressArg = None) -> list[ExportResult]:
        """Verified copies (links by default) in ``to``; ``layout`` "densepose" (the v1
        checkout's folders) or "iopath" (detectron2's download cache, ``to`` optional)."""
        from .ops.export import export

        return export(self, names, Path(to) if to is not None else None, link=link,
                      layout=layout, force=force, progress=progress)

    def mirror_build(self, target: str | os.PathLike[str], names: Iterable[str] | None,
                     *, base_url: str | None = None, link: str = "hardlink",
                     cached: bool = False, progress: ProgressArg = None) -> "MirrorResult":
        """A mirror tree (files, densezoo-mirror.yaml, index.html) in a folder or under
        ``s3://bucket/prefix``; ``cached``: only what the cache holds."""
        from .ops.mirror import mirror_build

        return mirror_build(self, target, names, base_url=base_url, link=link, cached=cached,
                            progress=progress)

    def bundle(self, names: Iterable[str], out: str | os.PathLike[str], *,
               progress: ProgressArg = None) -> list[str]:
        from .ops.bundle import bundle

        return bundle(self, names, Path(out), progress)

    def import_bundle(self, path: str | os.PathLike[str], *,
                      progress: ProgressArg = None) -> tuple[list[ImportResult], Path]:
        from .ops.bundle import import_bundle

        return import_bundle(self, Path(path), progress)

    def ledger_export(self, names: Iterable[str], out: str | os.PathLike[str], *,
                      key: str | os.PathLike[str] | None = None,
                      signature: str | os.PathLike[str] | None = None) -> "LedgerExport":
        """The ledger of cached files (all with no names), signed with ``key``
        (``ops.ledger.export``)."""
        from .ops.ledger import export

        return export(self, names, Path(out), key=Path(key) if key else None,
                      signature=Path(signature) if signature else None)

    def verify_signature(self, signature: str | os.PathLike[str], key: str | os.PathLike[str],
                         *, ledger: str | os.PathLike[str] | None = None) -> "LedgerCheck":
        """Check a signed ledger against the store, offline (``ops.ledger.check``)."""
        from .ops.ledger import check

        return check(self, Path(signature), Path(key), Path(ledger) if ledger else None)

    def cache_entries(self) -> list["CacheEntry"]:
        from .ops.cache import entries

        return entries(self)

    def cache_usage(self) -> "CacheUsage":
        from .ops.cache import usage

        return usage(self)

    def plan_remove(self, names: Sequence[str] | None) -> "RemovalPlan":
        """What ``cache rm`` would remove (``None``: every file); ``.execute()`` removes it."""
        from .ops.cache import plan_remove

        return plan_remove(self, list(names) if names is not None else None)

    def plan_prune(self, *, orphans: bool = False) -> "RemovalPlan":
        """What ``cache prune`` would remove; ``orphans`` adds files only a record names."""
        from .ops.cache import plan_prune

        return plan_prune(self, orphans=orphans)

    def adopt(self, paths: Sequence[str] = (), *, known: bool = False,
              dry_run: bool = False) -> "AdoptReport":
        """Files already on disk into the store when their bytes are an entry's
        (``ops.adopt``): never moved, never lent (a copy or reflink unless the file is
        yours alone); the same checks as a download."""
        from .ops.adopt import adopt

        return adopt(self, list(paths), known=known, dry_run=dry_run)

    def check_structure(self, target: str | None = None, *, as_name: str | None = None,
                        config: str | os.PathLike[str] | None = None) -> "StructureReport":
        """Does a checkpoint (NAME or PATH) fit a model (its own, ``as_name``'s, or the one
        ``config`` builds)?  Its tensors against the model's, read without unpickling."""
        from .ops.weights import check

        return check(self, target, as_name=as_name, config=config)

    def identify(self, paths: Sequence[str]) -> list["Identification"]:
        """What each file is: by full digest, md5 prefix, then structure; placeholders,
        LFS pointers, HTML pages and all-zero arrays named as such (``ops.weights``)."""
        from .ops.weights import identify

        return identify(self, list(paths))

    def manifest_add(self, sources: Sequence[str], **options: Any) -> list["AddedEntry"]:
        """Entries computed from the bytes of FILEs or URLs (``ops.manifest_add.add``)."""
        from .ops.manifest_add import add

        return add(self, list(sources), **options)

    def doctor(self, *, probe: bool = True,
               flags: dict[str, Any] | None = None) -> "Diagnosis":
        """Versions, cache dir, manifests, where each setting came from (``flags``: what
        the command line gave), and with ``probe`` one HEAD per origin host and mirror."""
        from .ops.doctor import diagnose

        return diagnose(self, probe_hosts=probe, flags=flags)


# -- module-level functions: one per CLI command, with the command's options ----------------
#
# Each builds a ``Zoo`` from ``settings`` (the global options: manifests,
# default_manifests, mirrors, cache_dir, offline, strict, allow_http, plus the
# DENSEZOO_* environment) and makes the call the command makes.
# ``tests/test_api_parity.py`` walks the CLI and checks every option has its keyword here.

def list_artifacts(text: str | None = None, *, kind: str | None = None, zoo: str | None = None,
                   sort: str | None = None, all_kinds: bool = False,
                   **settings: Any) -> list[ArtifactInfo]:
    """``densezoo list``: artifacts matching the filters, in manifest order or ``sort``
    (metrics-only entries only with ``kind="metrics"`` or ``all_kinds``)."""
    return Zoo(**settings).list(text=text, kind=kind, zoo=zoo, sort=sort, all_kinds=all_kinds)


def info(name: str, **settings: Any) -> ArtifactInfo:
    """``densezoo info NAME``."""
    return Zoo(**settings).info(name)


def fetch(names: str | Sequence[str] = (), *, all: bool = False,  # noqa: A002 - as --all
          kind: str | None = None, zoo: str | None = None, with_deps: bool = False,
          force: bool = False, space_check: bool = True, scan: bool | None = None,
          jobs: int = 4, connections: int | None = None, extract: bool = False,
          config: str | os.PathLike[str] | None = None, progress: ProgressArg = None,
          to: str | os.PathLike[str] | None = None, link: str = "symlink",
          **settings: Any) -> Any:
    """``densezoo fetch``.  One name (a ``str``) returns its verified local ``Path`` and
    raises on failure; anything else (a list, ``all``, ``kind``, ``config``) returns a
    ``FetchOutcome`` per artifact, each attempted, failures in ``.error`` -- after every
    name resolved: unknown names raise ``UnknownNamesError`` (all of them) first.  Trust
    events (a first-use pin, a mirror's prefix-only bytes) are also issued as
    ``densezoo.UnverifiedWarning`` and logged on the ``densezoo`` logger.

    ``to``: also put each verified file in that folder (``export``'s placing: ``link``
    "symlink" or "copy"); one name then returns the placed path (hf's ``local_dir``)."""
    z = Zoo(space_check=space_check, connections=connections, scan=scan, **settings)
    if to is not None and extract:
        from .errors import UsageError

        raise UsageError("to= places files, extract= unpacks tarballs in the store: use one",
                         hint="export(names, to, layout='densepose') unpacks into a checkout")
    if isinstance(names, str) and not (all or kind or config or with_deps):
        result = z.fetch(names, force=force, progress=progress)
        if to is not None:
            return z.export([names], to, link=link)[0].path
        return result.path if not extract else z.extract(names, progress=progress).path
    sel = z.select([names] if isinstance(names, str) else names, all=all, kind=kind,
                   zoo=zoo, with_deps=with_deps, config=config)
    sel.check()
    outcomes = z.fetch_many(sel.artifacts, force=force, progress=progress, jobs=jobs,
                            extract=extract)
    if to is not None and any(o.ok for o in outcomes):
        z.export([o.name for o in outcomes if o.ok], to, link=link)
    return outcomes


def cache_dir(**settings: Any) -> Path:
    """``densezoo cache dir``: the store's root (it need not exist yet)."""
    return Zoo(**settings).settings.cache_dir


def path(name: str, **settings: Any) -> Path:
    """``densezoo path NAME``: the verified cached path; never downloads."""
    return Zoo(**settings).path(name)


def verify(names: Iterable[str] | None = None, *, quick: bool = False, jobs: int | None = None,
           scan: bool = False, cross_check: bool = False,
           signature: str | os.PathLike[str] | None = None,
           key: str | os.PathLike[str] | None = None,
           ledger: str | os.PathLike[str] | None = None, progress: ProgressArg = None,
           **settings: Any) -> "VerifyReport | LedgerCheck":
    """``densezoo verify``: offline re-check of the cache (``quick``: stat memos;
    ``cross_check``: first ask the Hub what each weak file's Hub copy is).

    With ``signature`` and ``key``: check a signed ledger against the store instead
    (``Zoo.verify_signature``); returns a ``LedgerCheck``, or raises ``PolicyError`` for a
    bad signature and ``ChecksumMismatchError`` for the first file that differs."""
    if signature is not None or key is not None or ledger is not None:
        from .errors import UsageError

        if signature is None or key is None or names:
            raise UsageError("a signed ledger is checked with signature= and key= together, "
                             "and no names", hint="verify(signature=SIG, key=PUBLIC_PEM)")
        return Zoo(**settings).verify_signature(signature, key, ledger=ledger)
    return Zoo(**settings).verify(names, quick=quick, jobs=jobs, scan=scan,
                                  cross_check=cross_check, progress=progress)


def ledger_export(names: Iterable[str] = (), *, output: str | os.PathLike[str],
                  key: str | os.PathLike[str] | None = None,
                  signature: str | os.PathLike[str] | None = None,
                  **settings: Any) -> "LedgerExport":
    """``densezoo ledger export [NAMES] -o LEDGER [--key PRIVATE.pem]``."""
    return Zoo(**settings).ledger_export(names, output, key=key, signature=signature)


def scan(targets: Sequence[str], **settings: Any) -> list["ScanReport"]:
    """``densezoo scan``: pickle import checks of artifacts (by name) or files (by path)."""
    z = Zoo(**settings)
    return [z.scan_file(t) for t in targets]


def load_weights(path_or_name: str | os.PathLike[str], *, fetch: bool = True,
                 **settings: Any) -> "Weights":
    """A checkpoint's arrays (``.tensors``) and plain metadata (``.meta``), built by the
    restricted loader: only numpy arrays and plain containers, nothing the file names is
    called, ``RestrictedLoadError`` for anything else -- whether or not it was scanned.
    ``.data`` equals ``pickle.load(f, encoding="latin1")``.  A path is read as it is (a
    ``.safetensors`` file from ``convert`` too); a name is the verified store copy
    (``fetch`` False: never download, as ``path``)."""
    from .content.weights import read_weights

    if os.path.isfile(path_or_name):
        if os.fspath(path_or_name).endswith(".safetensors"):
            from .content.safetensors_file import read_safetensors

            return read_safetensors(path_or_name)
        return read_weights(path_or_name)
    z = Zoo(**settings)
    name = os.fspath(path_or_name)
    local = z.fetch(name).path if fetch else z.path(name)
    return read_weights(local, name=name)


def convert(target: str | os.PathLike[str], *, to: str = "safetensors",
            output: str | os.PathLike[str] | None = None, **settings: Any) -> "ConvertResult":
    """``densezoo convert``: a checkpoint (path or artifact name) as safetensors, written
    only after it reads back bit-exact; an artifact's lands in the store (see ops/convert)."""
    return Zoo(**settings).convert(target, to=to, output=output)


def pin(names: Sequence[str] | None = None, *, manifest_out: str | os.PathLike[str] | None = None,
        **settings: Any) -> list[PinInfo]:
    """``densezoo pin``: first-use pins, or written into a copy of the manifest."""
    z = Zoo(**settings)
    return z.write_pins(manifest_out, names) if manifest_out else z.pins(names)


def config(config_file: str | os.PathLike[str], *, output: str | os.PathLike[str] | None = None,
           dry_run: bool = False, jobs: int = 4, seed_iopath: bool = False,
           trained: bool = False, safetensors: bool = False,
           seed_dir: str | os.PathLike[str] | None = None, progress: ProgressArg = None,
           **settings: Any) -> ConfigResult:
    """``densezoo config``: every reference resolved; ``output`` is written (atomically)
    only when every listed reference was verified; ``seed_iopath`` as the CLI does."""
    from .disk import write_text_atomic

    z = Zoo(**settings)
    result = z.config(config_file, fetch=not dry_run, jobs=jobs, progress=progress,
                      trained=trained, safetensors=safetensors)
    if output is not None and result.text is not None:
        write_text_atomic(Path(output), result.text)
    if seed_iopath and not dry_run and result.complete:
        z.seed_iopath(result, seed_dir, strict=z.settings.strict)
    return result


def cache_ls(**settings: Any) -> list["CacheEntry"]:
    """``densezoo cache ls``."""
    return Zoo(**settings).cache_entries()


def cache_du(**settings: Any) -> "CacheUsage":
    """``densezoo cache du``."""
    return Zoo(**settings).cache_usage()


def cache_rm(names: Sequence[str] | None = None, *, all: bool = False,  # noqa: A002
             dry_run: bool = False, **settings: Any) -> "RemovalPlan":
    """``densezoo cache rm``: the plan, executed unless ``dry_run`` (``plan.freed``)."""
    if not names and not all:
        from .errors import UsageError

        raise UsageError("name artifacts to remove, or pass all=True")
    return _run(Zoo(**settings).plan_remove(None if all else list(names or ())), dry_run)


def cache_prune(*, orphans: bool = False, dry_run: bool = False,
                **settings: Any) -> "RemovalPlan":
    """``densezoo cache prune``: the plan, executed unless ``dry_run``."""
    return _run(Zoo(**settings).plan_prune(orphans=orphans), dry_run)


def _run(plan: "RemovalPlan", dry_run: bool) -> "RemovalPlan":
    if not dry_run:
        plan.freed = plan.execute()
    return plan


def export(names: Iterable[str], to: str | os.PathLike[str] | None = None, *,
           link: str = "symlink", layout: str | None = None, force: bool = False,
           **settings: Any) -> list[ExportResult]:
    """``densezoo export``."""
    return Zoo(**settings).export(names, to, link=link, layout=layout, force=force)


def mirror_build(target: str | os.PathLike[str], names: Iterable[str] = (), *,
                 all: bool = False, base_url: str | None = None,  # noqa: A002
                 link: str = "hardlink", cached: bool = False,
                 **settings: Any) -> "MirrorResult":
    """``densezoo mirror build``."""
    return Zoo(**settings).mirror_build(target, None if all else list(names),
                                        base_url=base_url, link=link, cached=cached)


def bundle(names: Iterable[str], output: str | os.PathLike[str], **settings: Any) -> list[str]:
    """``densezoo bundle``."""
    return Zoo(**settings).bundle(names, output)


def import_bundle(bundle_path: str | os.PathLike[str],
                  **settings: Any) -> tuple[list[ImportResult], Path]:
    """``densezoo import``."""
    return Zoo(**settings).import_bundle(bundle_path)


def adopt(paths: Sequence[str] = (), *, known: bool = False, dry_run: bool = False,
          **settings: Any) -> "AdoptReport":
    """``densezoo adopt``: verified files from disk (given paths; with ``known`` the
    iopath, Detectron and Hugging Face caches) into the store, without downloading."""
    return Zoo(**settings).adopt(paths, known=known, dry_run=dry_run)


def check(target: str | None = None, *, as_name: str | None = None,
          config: str | os.PathLike[str] | None = None, **settings: Any) -> "StructureReport":
    """``densezoo check``: a checkpoint's tensors against a model's structure."""
    return Zoo(**settings).check_structure(target, as_name=as_name, config=config)


def identify(paths: Sequence[str], **settings: Any) -> list["Identification"]:
    """``densezoo identify``: which artifact each file's bytes are, and by what evidence."""
    return Zoo(**settings).identify(paths)


def manifest_add(sources: Sequence[str], *, name: str | None = None, url: str | None = None,
                 to: str | os.PathLike[str] | None = None, kind: str | None = None,
                 description: str | None = None, zoo: str = "local",
                 **settings: Any) -> list["AddedEntry"]:
    """``densezoo manifest add``: an entry per FILE or URL with md5, sha256 and size
    computed from the bytes (a URL downloaded through the verified path), appended to
    ``to`` (validated, atomic) or only returned."""
    return Zoo(**settings).manifest_add(sources, name=name, url=url, to=to, kind=kind,
                                        description=description, zoo=zoo)


GLOBAL_FLAGS = ("cache_dir", "manifests", "mirrors", "strict", "require", "offline", "allow_http",
                "no_progress")


def settings_show(**settings: Any) -> list["Origin"]:
    """``densezoo settings show``: each settings-file key's effective value and where it
    came from (a keyword given here, the environment, the settings file, the default).
    Values are redacted when printed or turned into JSON (``Origin.to_dict``)."""
    from .settings import Settings
    from .user_settings import origins

    s = Settings.resolve(**{k: v for k, v in settings.items() if v is not None})
    return origins({k: settings.get(k) for k in (*GLOBAL_FLAGS, "jobs", "connections",
                                                   "scan")},
                   lambda key: getattr(s, key) if key != "manifests"
                   else tuple(str(p) for p in s.manifests))


def settings_get(key: str, **settings: Any) -> "Origin":
    """``densezoo settings get KEY``: one key's effective value and where it came from."""
    from .user_settings import key_named

    name = key_named(key).name
    return next(o for o in settings_show(**settings) if o.name == name)


def settings_set(key: str, values: Sequence[str]) -> "Origin":
    """``densezoo settings set KEY VALUE...``: checked (type, range, one line, no empty
    path, a mirror as a fetch would check it), then written to the settings file (0600)."""
    from .settings import check_setting
    from .user_settings import Origin, set_value, settings_path

    k, value = set_value(key, list(values), check_setting)
    return Origin(k.name, value, f"file {settings_path()}")


def settings_unset(key: str) -> "Origin":
    """``densezoo settings unset KEY``: the key removed from the settings file."""
    from .user_settings import Origin, unset_value

    k = unset_value(key)
    return Origin(k.name, None, "default")


def doctor(*, probe: bool = True, **settings: Any) -> "Diagnosis":
    """``densezoo doctor``: checks, and (``probe``) which origins and mirrors answer."""
    return Zoo(**settings).doctor(probe=probe, flags={k: settings.get(k) for k in GLOBAL_FLAGS})
