"""detectron2 / Detectron configs: follow ``_BASE_``, find every URL, map it to the zoo.

Nobody types a weight path: they run ``train_net.py --config-file X.yaml``, and the
URLs inside (``MODEL.WEIGHTS``, CSE ``INIT_FILE``, v1 ``TRAIN.WEIGHTS`` and the
``PROPOSAL_FILES`` tuple strings) are downloaded unverified by iopath.  This module
reads a config the way detectron2 does (``_BASE_`` relative to the including file,
child keys overriding, mappings merged), finds every reference inside any string --
no key is hard-coded -- and maps each to a manifest entry by its URL, mirrors or
legacy URLs, so a 2018 config naming the dead S3 hosts resolves to today's file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .catalog import Catalog
from .errors import ManifestError, UnknownArtifactError
from .manifest import Artifact

DETECTRON2_PREFIX = "https://dl.fbaipublicfiles.com/detectron2/"
MAX_CONFIG_BYTES = 4 << 20
MAX_BASE_DEPTH = 32
# A reference: a URL in any string, up to a quote, space, comma or bracket (Detectron's
# tuple strings put several in one value: "('https://…/a.pkl','https://…/b.pkl')").
_REF = re.compile(r"(?:https?|detectron2|densezoo)://[^\s'\",()\[\]]+")


class ConfigError(ManifestError):
    """A config densezoo cannot read (missing file or base, a cycle, not YAML)."""

    def __init__(self, source: str, problem: str, hint: str | None = None) -> None:
        super().__init__(source, problem, hint=hint or "check the config and its _BASE_ files")


@dataclass(frozen=True)
class Reference:
    """One URL found in a config, and the manifest entry it is."""

    key: str                       # where it sits, e.g. MODEL.WEIGHTS or DATASETS.X[1]
    value: str                     # the reference exactly as written
    url: str | None                # what it means (detectron2:// expanded), None for densezoo://
    artifact: Artifact | None      # None: in no loaded manifest (not verified)


def _read(path: Path) -> dict[str, Any]:
    import yaml

    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(str(path), f"larger than {MAX_CONFIG_BYTES >> 20} MiB")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(str(path), f"cannot read it ({e.strerror or e})",
                          hint="check the path (a _BASE_ is relative to the file naming it)"
                          ) from None
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(str(path), f"not valid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "the top level must be a mapping of keys")
    return data


def merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """detectron2's rule: child keys override, mappings merge recursively."""
    out = dict(base)
    for k, v in child.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def load_config(path: str | Path) -> dict[str, Any]:
    """One flattened config: every ``_BASE_`` (relative to its includer) merged in."""
    return _load(Path(path), ())


def _load(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    real = path.resolve()
    if real in chain:
        cycle = " -> ".join(str(p) for p in (*chain, real))
        raise ConfigError(str(path), f"_BASE_ cycle: {cycle}")
    if len(chain) >= MAX_BASE_DEPTH:
        raise ConfigError(str(path), f"_BASE_ nests deeper than {MAX_BASE_DEPTH}")
    data = _read(path)
    bases = data.pop("_BASE_", None)
    if bases is None:
        return data
    merged: dict[str, Any] = {}
    for base in [bases] if isinstance(bases, str) else list(bases or []):
        if not isinstance(base, str):
            raise ConfigError(str(path), f"_BASE_ must name files, not {base!r}")
        base_path = Path(base).expanduser()
        if not base_path.is_absolute():
            base_path = path.parent / base_path
        if not base_path.exists():
            raise ConfigError(str(path), f"its _BASE_ {base!r} does not exist ({base_path})")
        merged = merge(merged, _load(base_path, (*chain, real)))
    return merge(merged, data)


def _strings(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f"{key}.{k}" if key else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, f"{key}[{i}]")
    elif isinstance(node, str):
        yield key, node


def expand(ref: str) -> str | None:
    """The URL a reference means: detectron2://X is detectron2's model host."""
    if ref.startswith("detectron2://"):
        return DETECTRON2_PREFIX + ref[len("detectron2://"):]
    if ref.startswith("densezoo://"):
        return None
    return ref


class UrlIndex:
    """Manifest entries by every URL they are known under: url, mirrors and legacy URLs."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.by_url: dict[str, Artifact] = {}
        for art in catalog.artifacts:
            for u in (*art.legacy_urls, *art.mirrors, art.url):   # the current URL wins
                self.by_url[_norm(u)] = art

    def find(self, ref: str) -> Artifact | None:
        if ref.startswith("densezoo://"):
            try:
                return self.catalog.get(ref[len("densezoo://"):].strip("/"))
            except (UnknownArtifactError, KeyError):
                return None
        url = expand(ref)
        return self.by_url.get(_norm(url)) if url else None


def _norm(url: str) -> str:
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}/{path}"


def find_references(config: dict[str, Any], index: UrlIndex) -> list[Reference]:
    """Every reference in any string of the config, in order, each mapped (or not)."""
    refs = []
    for key, text in _strings(config):
        for m in _REF.finditer(text):
            refs.append(Reference(key, m.group(), expand(m.group()), index.find(m.group())))
    return refs


def rewrite(config: Any, replace: Callable[[str], str | None]) -> Any:
    """A copy of the config with each reference for which ``replace`` answers a local path
    substituted in place (the rest of each string, e.g. tuple syntax, kept)."""
    if isinstance(config, dict):
        return {k: rewrite(v, replace) for k, v in config.items()}
    if isinstance(config, list):
        return [rewrite(v, replace) for v in config]
    if isinstance(config, str):
        return _REF.sub(lambda m: replace(m.group()) or m.group(), config)
    return config


def dump(config: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, allow_unicode=True)


DENSEPOSE_DATA = "https://dl.fbaipublicfiles.com/densepose/data/"
DENSEPOSE_MESHES = "https://dl.fbaipublicfiles.com/densepose/meshes/"
# Files DensePose code downloads through iopath at run time, by model kind
# (detectron2 @ 02b5c4e: densepose/data/datasets/coco.py, evaluation/, vis/, structures/mesh.py).
CHART_RUNTIME = tuple(DENSEPOSE_DATA + f for f in (
    "UV_symmetry_transforms.mat", "SMPL_subdiv.mat", "SMPL_SUBDIV_TRANSFORM.mat",
    "Pdist_matrix.pkl"))
CSE_RUNTIME = (DENSEPOSE_DATA + "cse/mds_d=256.npy", DENSEPOSE_DATA + "cse/mesh_keyvertices_v0.json")
TEXCOORDS_OF = {"horse_5004": "zebra_5002"}      # horse_5004 reuses the zebra texture coords


def cse_meshes(config: dict[str, Any]) -> list[str] | None:
    """The mesh names a CSE config embeds (``MODEL.ROI_DENSEPOSE_HEAD.CSE.EMBEDDERS``), or
    None for a chart-based (IUV) config."""
    node: Any = config
    for key in ("MODEL", "ROI_DENSEPOSE_HEAD", "CSE", "EMBEDDERS"):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return [str(k) for k in node] if isinstance(node, dict) else []


def runtime_urls(config: dict[str, Any]) -> list[str]:
    """URLs the model's code fetches at run time beyond what the config names."""
    meshes = cse_meshes(config)
    if meshes is None:
        return list(CHART_RUNTIME)
    urls = list(CSE_RUNTIME)
    for m in meshes:
        urls.append(f"{DENSEPOSE_MESHES}{m}.pkl")
        for kind in ("geodists", "symmetry"):
            urls.append(f"{DENSEPOSE_MESHES}{kind}/{kind}_{m}.pkl")
        urls.append(f"{DENSEPOSE_MESHES}texcoords/texcoords_{TEXCOORDS_OF.get(m, m)}.pkl")
    return urls
