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
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .core import Core, NameOrArtifact, ProgressArg
from .results import ArtifactInfo, ConfigResult, ExportResult, ImportResult, PinInfo, VerifyReport

if TYPE_CHECKING:
    from .ops.cache import CacheEntry, CacheUsage, RemovalPlan
    from .ops.doctor import Diagnosis
    from .ops.mirror import MirrorResult


class Zoo(Core):
    """The public facade: the core verbs (``Core``) plus the operations in ``ops/``.

    ``Zoo(settings)`` uses a resolved ``Settings``; ``Zoo(strict=True, ...)``
    resolves one from those keywords plus the ``DENSEZOO_*`` environment (a
    keyword left as ``None`` falls back to the environment, then the default).
    Each operation verb is a line into the module that owns it.
    """

    def config(self, path: str | os.PathLike[str], *, fetch: bool = True, jobs: int = 4,
               progress: ProgressArg = None) -> ConfigResult:
        """Resolve a detectron2 / Detectron config: every URL in it, verified (see
        ``config_resolve``); ``fetch=False`` touches no network (cached paths only)."""
        from .ops.config import resolve

        return resolve(self, Path(path), fetch=fetch, jobs=jobs, progress=progress)

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
        return list_pins(self.store, arts, named=bool(names))

    def write_pins(self, out: str | os.PathLike[str],
                   names: Sequence[str] | None = None) -> list[PinInfo]:
        """Write pinned md5/sha256/size into a copy of the artifacts' source manifest."""
        from .ops.pins import write_pins

        return write_pins(self.pins(names), out)

    # -- sharing and operating ------------------------------------------------------------

    def export(self, names: Iterable[str], to: str | os.PathLike[str] | None, *,
               link: str = "symlink", layout: str | None = None,
               force: bool = False) -> list[ExportResult]:
        """Verified copies (links by default) in ``to``; ``layout`` "densepose" (the v1
        checkout's folders) or "iopath" (detectron2's download cache, ``to`` optional)."""
        from .ops.export import export

        return export(self, names, Path(to) if to is not None else None, link=link,
                      layout=layout, force=force)

    def mirror_build(self, target: str | os.PathLike[str], names: Iterable[str] | None,
                     *, base_url: str | None = None, link: str = "hardlink") -> "MirrorResult":
        """A mirror tree (files, densezoo-mirror.yaml, index.html) in a folder or under
        ``s3://bucket/prefix``."""
        from .ops.mirror import mirror_build

        return mirror_build(self, target, names, base_url=base_url, link=link)

    def bundle(self, names: Iterable[str], out: str | os.PathLike[str]) -> list[str]:
        from .ops.bundle import bundle

        return bundle(self, names, Path(out))

    def import_bundle(self, path: str | os.PathLike[str]) -> tuple[list[ImportResult], Path]:
        from .ops.bundle import import_bundle

        return import_bundle(self, Path(path))

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

    def doctor(self) -> "Diagnosis":
        from .ops.doctor import diagnose

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
