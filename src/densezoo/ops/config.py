"""``densezoo config``: a config's references fetched, verified and written back as paths.

The reading (``_BASE_``, references, URL matching) is ``configs``; this module is
what the Zoo does with it: fetch the referenced artifacts in parallel, rewrite the
config with verified local paths, and seed iopath's download cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..configs import UrlIndex, dump, find_references, load_config, rewrite, runtime_urls
from ..errors import PolicyError
from ..catalog import unique
from ..progress import ProgressArg
from ..results import ConfigResult, ExportResult, FetchOutcome, ResolvedReference
from ..urls import redact

if TYPE_CHECKING:
    from ..core import Core


def resolve(core: "Core", path: Path, *, fetch: bool = True, jobs: int = 4,
            progress: ProgressArg = None) -> ConfigResult:
    """Follow ``_BASE_``, map every reference to a manifest entry (by URL, mirror or legacy
    URL; ``detectron2://`` and ``densezoo://`` too), fetch them (unless ``fetch=False``:
    no network, cached paths only), and return the flattened config with each reference
    replaced by its verified local path.  Under strict mode a reference in no manifest
    is refused."""
    cfg = load_config(path)
    index = UrlIndex(core.catalog)
    refs = find_references(cfg, index)
    unknown = sorted({r.value for r in refs if r.artifact is None})
    if unknown and core.settings.strict:
        raise PolicyError(f"{len(unknown)} reference(s) of {path} are in no manifest: "
                          + ", ".join(redact(u) for u in unknown),
                          hint="add them to a manifest (--manifest), or drop --strict")
    arts = unique([r.artifact for r in refs if r.artifact is not None])
    outcomes: list[FetchOutcome] = []
    if fetch:
        outcomes = core.fetch_many(arts, jobs=jobs, progress=progress)
        paths = {o.name: o.result.path for o in outcomes if o.ok and o.result}
    else:
        paths = {a.name: core.store.cached_path(a) for a in arts}
    resolved = tuple(ResolvedReference(
        r.key, r.value, r.artifact.name if r.artifact else None,
        redact(r.artifact.url) if r.artifact else None,
        core.trust.strength(r.artifact) if r.artifact else None,
        paths.get(r.artifact.name) if r.artifact else None) for r in refs)

    def local(ref: str) -> str | None:
        art = index.find(ref)
        found = paths.get(art.name) if art is not None else None
        return str(found) if found else None

    text = dump(rewrite(cfg, local)) if fetch else None
    runtime = unique([art.name for url in runtime_urls(cfg)
                      if (art := index.find(url)) is not None])
    return ConfigResult(path, resolved, text, tuple(outcomes), tuple(runtime))


def seed_iopath(core: "Core", result: ConfigResult, to: Path | None, *,
                link: str = "symlink") -> list[ExportResult]:
    """The config's files and the runtime files of its model kind, where iopath looks
    first: unmodified scripts then read verified bytes, online or air-gapped.  Runtime
    files in no manifest are skipped."""
    names = [r.name for r in result.references if r.name]
    from .export import export

    return export(core, unique([*names, *result.runtime]), to, link=link, layout="iopath")
