"""``densezoo config``: a config's references fetched, verified and written back as paths.

The reading (``_BASE_``, references, URL matching) is ``configs``; this module is
what the Zoo does with it: fetch the referenced artifacts in parallel, rewrite the
config with verified local paths, and seed iopath's download cache.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..configs import UrlIndex, dump, find_references, load_config, rewrite, runtime_urls
from ..errors import DensezooError, PolicyError, StructureMismatchError, UsageError
from ..catalog import unique
from ..progress import ProgressArg
from ..results.fetch import FetchOutcome
from ..results.share import ConfigResult, ExportResult, RefState, ResolvedReference
from ..urls import redact

if TYPE_CHECKING:
    from ..core import Core
    from ..manifest import Artifact


def resolve(core: "Core", path: Path, *, fetch: bool = True, jobs: int = 4,
            progress: ProgressArg = None, trained: bool = False,
            safetensors: bool = False) -> ConfigResult:
    """Follow ``_BASE_``, map every reference to a manifest entry (by URL, mirror or legacy
    URL; ``detectron2://``, ``catalog://`` and ``densezoo://`` too), fetch them (unless
    ``fetch=False``: no network, nothing checked) and say per reference exactly what
    was done (``RefState``).  The rewritten config (``text``) exists only when every
    reference a manifest lists was fetched and checked now.  Under strict mode a
    reference in no manifest is refused.

    ``trained``: MODEL.WEIGHTS becomes the model the manifest says this config trained
    (a DensePose config's own MODEL.WEIGHTS is the ImageNet initialisation, which
    ``train_net.py --eval-only`` and ``DefaultPredictor`` would otherwise evaluate).

    ``safetensors``: MODEL.WEIGHTS becomes the verified weights converted to safetensors
    (``ops/convert``: proven bit-exact, kept in the store), which detectron2 reads after
    ``densezoo.integrations.detectron2.install()`` with no pickle involved."""
    cfg = load_config(path)
    model = None
    if trained:
        model = _trained_by_content(core, cfg) or core.catalog.trained_with(path)
        if model is None:
            same = [a.config for a in core.catalog.artifacts if a.kind == "model" and a.config
                    and a.config.rsplit("/", 1)[-1].lower() == path.name.lower()]
            raise UsageError(
                f"no manifest entry says which model {path.name} trained"
                + (f" (that file name is {len(same)} configs: {', '.join(same)})" if same
                   else "")
                + "; its content is no shipped DensePose config's either",
                hint="keep the config in its folder (e.g. .../configs/cse/NAME.yaml) so "
                     "--trained can tell; `densezoo list --kind model --wide` lists the models")
        model_cfg = cfg.setdefault("MODEL", {})
        if not isinstance(model_cfg, dict):
            raise UsageError(f"{path.name}: MODEL is not a mapping")
        model_cfg["WEIGHTS"] = model.url
    index = UrlIndex(core.catalog)
    refs = find_references(cfg, index)
    unknown = sorted({r.value for r in refs if r.artifact is None})
    if unknown and core.settings.strict:
        raise PolicyError(f"{len(unknown)} reference(s) of {path} are in no manifest: "
                          + ", ".join(redact(u) for u in unknown),
                          hint="add them to a manifest (--manifest), or drop --strict")
    arts = unique([r.artifact for r in refs if r.artifact is not None])
    outcomes = core.fetch_many(arts, jobs=jobs, progress=progress) if fetch else []
    by_name = {o.name: o for o in outcomes}
    resolved = tuple(_state(core, r, by_name, fetch) for r in refs)
    paths = {r.name: r.path for r in resolved if r.state in (RefState.VERIFIED, RefState.PINNED)}

    def local(ref: str) -> str | None:
        art = index.find(ref)
        found = paths.get(art.name) if art is not None else None
        return str(found) if found else None

    if fetch:
        _check_weights_fit(core, path, resolved, trained=model is not None)
    result = ConfigResult(path, resolved, None, tuple(outcomes), tuple(unique(
        [art.name for url in runtime_urls(cfg) if (art := index.find(url)) is not None])),
        trained=model.name if model else None)
    if fetch and result.complete:
        rewritten = rewrite(cfg, local)
        converted = _weights_as_safetensors(core, cfg, rewritten, index) if safetensors else None
        result = replace(result, text=dump(rewritten), safetensors=converted)
    return result


def _trained_by_content(core: "Core", cfg: dict) -> "Artifact | None":
    """The model a config trained, by what the config *is* (its resolved keys), wherever
    the file sits: a copy out of DensePose's tree keeps its content, not its folder."""
    from ..content.structure import models_with_config

    found = []
    for e in models_with_config(cfg):
        try:
            found.append(core.artifact(e.model))
        except DensezooError:
            continue                        # that zoo's manifest is not loaded
    live = [a for a in found if not a.deprecated] or found
    return live[0] if len(live) == 1 else None


def _check_weights_fit(core: "Core", path: Path, refs: tuple, *, trained: bool) -> None:
    """The weights MODEL.WEIGHTS will load against the model the config builds, before
    any run (detectron2 #818: v1 weights in a detectron2 config only log missing keys).
    An ImageNet initialisation is a backbone by design: only a trained model is checked."""
    from ..content.structure import compare
    from ..content.tensors import inventory
    from .weights import config_structure

    ref = next((r for r in refs if r.key == "MODEL.WEIGHTS" and r.path and r.name), None)
    if ref is None or (not trained and core.artifact(ref.name).kind != "model"):
        return
    expected, _ = config_structure(core, path)
    if expected is None:
        return
    result = compare(inventory(ref.path), expected)
    if result.status == "mismatch":
        raise StructureMismatchError(
            f"MODEL.WEIGHTS of {path.name} ({ref.name})",
            f"these weights do not fit the model the config builds: {result.summary()}",
            path=str(ref.path))


def _weights_as_safetensors(core: "Core", cfg: dict, rewritten: dict, index: UrlIndex) -> str:
    """Convert the artifact MODEL.WEIGHTS names and point the rewritten config at it."""
    from .convert import convert

    ref = (cfg.get("MODEL") or {}).get("WEIGHTS")
    art = index.find(ref) if isinstance(ref, str) and ref else None
    if art is None:
        raise UsageError(f"--safetensors: MODEL.WEIGHTS ({ref!r}) is not an artifact of a "
                         "manifest, so densezoo has no verified weights to convert",
                         hint="convert the file yourself with `densezoo convert PATH` and set "
                              "MODEL.WEIGHTS to it")
    path = str(convert(core, art.name).path)
    rewritten["MODEL"]["WEIGHTS"] = path
    return path


def _state(core: "Core", ref, outcomes: dict[str, FetchOutcome],
           fetched: bool) -> ResolvedReference:
    art = ref.artifact
    if art is None:
        return ResolvedReference(ref.key, ref.value, None, None, None, None,
                                 RefState.NOT_LISTED)
    base = (ref.key, ref.value, art.name, redact(art.url))
    pin = core.trust.record_of(art).pin
    size = art.size if art.size is not None else (pin.size if pin else None)
    if not fetched:
        return ResolvedReference(*base, core.strength_of(art), core.store.cached_path(art),
                                 RefState.LISTED, size=size)
    o = outcomes[art.name]
    if o.error is not None or o.result is None:
        return ResolvedReference(*base, None, None, RefState.FAILED,
                                 error=o.error, size=size)
    r = o.result
    return ResolvedReference(*base, r.strength, r.path,
                             RefState.PINNED if r.pinned else RefState.VERIFIED, r.warnings,
                             size=r.digests.size if r.digests else size)


def seed_iopath(core: "Core", result: ConfigResult, to: Path | None, *, link: str = "symlink",
                strict: bool = False) -> tuple[list[ExportResult], list[tuple[str, DensezooError]]]:
    """The config's files and the runtime files of its model kind, where iopath looks
    first: unmodified scripts then read verified bytes, online or air-gapped.

    The config's own files must all be placed.  Runtime files (symmetry tables,
    meshes: read by evaluation and visualisation, not by inference) are best effort:
    one that cannot be fetched is returned with its error, not raised, unless
    ``strict``.  Runtime files in no manifest are skipped."""
    from .export import export

    names = unique([r.name for r in result.references if r.name])
    placed = export(core, names, to, link=link, layout="iopath")
    skipped: list[tuple[str, DensezooError]] = []
    for name in result.runtime:
        if name in names:
            continue
        try:
            placed += export(core, [name], to, link=link, layout="iopath")
        except DensezooError as e:
            if strict:
                raise
            skipped.append((name, e))
    return placed, skipped
