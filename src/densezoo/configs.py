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

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .catalog import Catalog
from .errors import ManifestError, UnknownArtifactError
from .manifest import Artifact, safe_load
from .urls import url_identity

DETECTRON2_PREFIX = "https://dl.fbaipublicfiles.com/detectron2/"
DETECTRON_PREFIX = "https://dl.fbaipublicfiles.com/detectron/"
MAX_CONFIG_BYTES = 4 << 20        # one file
MAX_TOTAL_BYTES = 16 << 20        # a config and all its bases together
MAX_CONFIG_FILES = 256            # distinct files in one _BASE_ graph
MAX_BASE_DEPTH = 32
# A reference: any ``scheme://`` in any string, up to a quote, space, comma or bracket
# (Detectron's tuple strings put several in one value: "('https://…/a.pkl','…/b.pkl')").
# Every scheme counts: one densezoo does not know (ftp://, s3://) is still a file the
# model will read, so it is listed and warned about, never silently passed over.
_REF = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\",()\[\]]+")

# detectron2's ModelCatalog (detectron2/checkpoint/catalog.py @ 02b5c4e), which its
# ``catalog://`` handler resolves: the Detectron (Caffe2) ImageNet weights and baselines.
CATALOG_IMAGENET = {
    "MSRA/R-50": "ImageNetPretrained/MSRA/R-50.pkl",
    "MSRA/R-101": "ImageNetPretrained/MSRA/R-101.pkl",
    "FAIR/R-50-GN": "ImageNetPretrained/47261647/R-50-GN.pkl",
    "FAIR/R-101-GN": "ImageNetPretrained/47592356/R-101-GN.pkl",
    "FAIR/X-101-32x8d": "ImageNetPretrained/20171220/X-101-32x8d.pkl",
    "FAIR/X-101-64x4d": "ImageNetPretrained/FBResNeXt/X-101-64x4d.pkl",
    "FAIR/X-152-32x8d-IN5k": "ImageNetPretrained/25093814/X-152-32x8d-IN5k.pkl",
}
CATALOG_BASELINES = {
    "35857197/e2e_faster_rcnn_R-50-C4_1x":
        "35857197/12_2017_baselines/e2e_faster_rcnn_R-50-C4_1x.yaml.01_33_49.iAX0mXvW",
    "35857345/e2e_faster_rcnn_R-50-FPN_1x":
        "35857345/12_2017_baselines/e2e_faster_rcnn_R-50-FPN_1x.yaml.01_36_30.cUF7QR7I",
    "35857890/e2e_faster_rcnn_R-101-FPN_1x":
        "35857890/12_2017_baselines/e2e_faster_rcnn_R-101-FPN_1x.yaml.01_38_50.sNxI7sX7",
    "36761737/e2e_faster_rcnn_X-101-32x8d-FPN_1x":
        "36761737/12_2017_baselines/e2e_faster_rcnn_X-101-32x8d-FPN_1x.yaml.06_31_39.5MIHi1fZ",
    "35858791/e2e_mask_rcnn_R-50-C4_1x":
        "35858791/12_2017_baselines/e2e_mask_rcnn_R-50-C4_1x.yaml.01_45_57.ZgkA7hPB",
    "35858933/e2e_mask_rcnn_R-50-FPN_1x":
        "35858933/12_2017_baselines/e2e_mask_rcnn_R-50-FPN_1x.yaml.01_48_14.DzEQe4wC",
    "35861795/e2e_mask_rcnn_R-101-FPN_1x":
        "35861795/12_2017_baselines/e2e_mask_rcnn_R-101-FPN_1x.yaml.02_31_37.KqyEK4tT",
    "36761843/e2e_mask_rcnn_X-101-32x8d-FPN_1x":
        "36761843/12_2017_baselines/e2e_mask_rcnn_X-101-32x8d-FPN_1x.yaml.06_35_59.RZotkLKI",
    "48616381/e2e_mask_rcnn_R-50-FPN_2x_gn":
        "GN/48616381/04_2018_gn_baselines/e2e_mask_rcnn_R-50-FPN_2x_gn_0416.13_23_38.bTlTI97Q",
    "37697547/e2e_keypoint_rcnn_R-50-FPN_1x":
        "37697547/12_2017_baselines/e2e_keypoint_rcnn_R-50-FPN_1x.yaml.08_42_54.kdzV35ao",
    "35998355/rpn_R-50-C4_1x": "35998355/12_2017_baselines/rpn_R-50-C4_1x.yaml.08_00_43.njH5oD9L",
    "35998814/rpn_R-50-FPN_1x": "35998814/12_2017_baselines/rpn_R-50-FPN_1x.yaml.08_06_03.Axg0r179",
    "36225147/fast_R-50-FPN_1x":
        "36225147/12_2017_baselines/fast_rcnn_R-50-FPN_1x.yaml.08_39_09.L3obSdQ2",
}


def catalog_url(name: str) -> str | None:
    """What detectron2's ``ModelCatalog.get`` answers for ``catalog://<name>`` (None: it
    would raise, so the reference names no file)."""
    if name.startswith("ImageNetPretrained/"):
        found = CATALOG_IMAGENET.get(name[len("ImageNetPretrained/"):])
        return DETECTRON_PREFIX + found if found else None
    if name.startswith("Caffe2Detectron/COCO"):
        key = name[len("Caffe2Detectron/COCO/"):]
        part = CATALOG_BASELINES.get(key)
        if part is None:
            return None
        dataset = ("keypoints_coco_2014_train%3Akeypoints_coco_2014_valminusminival"
                   if "keypoint_rcnn" in key else "coco_2014_train%3Acoco_2014_valminusminival")
        kind = "rpn" if "35998355/rpn_R-50-C4_1x" in key else "generalized_rcnn"
        return f"{DETECTRON_PREFIX}{part}/output/train/{dataset}/{kind}/model_final.pkl"
    return None


class ConfigError(ManifestError):
    """A config densezoo cannot read (missing file or base, a cycle, not YAML)."""

    what = "config"

    def __init__(self, source: str, problem: str, hint: str | None = None) -> None:
        super().__init__(source, problem, hint=hint or "check the config and its _BASE_ files")


@dataclass(frozen=True)
class Reference:
    """One URL found in a config, and the manifest entry it is."""

    key: str                       # where it sits, e.g. MODEL.WEIGHTS or DATASETS.X[1]
    value: str                     # the reference exactly as written
    url: str | None                # what it means (detectron2:// expanded), None for densezoo://
    artifact: Artifact | None      # None: in no loaded manifest (not verified)


def _read(path: Path, budget: list[int]) -> dict[str, Any]:
    """One config file: a regular file, at most MAX_CONFIG_BYTES, read through one open
    descriptor with a byte cap (``/dev/zero`` or a FIFO never gets read), and within the
    whole load's ``budget`` of bytes.  YAML aliases are expanded only under the
    manifest's alias-bomb guard."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(str(path), "not a regular file")
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(str(path), f"cannot read it ({e.strerror or e})",
                          hint="check the path (a _BASE_ is relative to the file naming it)"
                          ) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(str(path), f"larger than {MAX_CONFIG_BYTES >> 20} MiB")
    budget[0] -= len(raw)
    if budget[0] < 0:
        raise ConfigError(str(path), f"the config and its _BASE_ files pass "
                                     f"{MAX_TOTAL_BYTES >> 20} MiB together")
    try:
        data = safe_load(raw.decode("utf-8"), str(path), unique_keys=False)
    except UnicodeDecodeError as e:
        raise ConfigError(str(path), f"not valid UTF-8 ({e.reason})") from None
    except ManifestError as e:
        raise ConfigError(str(path), e.problem) from None
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
    """One flattened config: every ``_BASE_`` (relative to its includer) merged in.

    Each file is read and flattened once however many files name it (a diamond of
    bases 16 deep is 2**16 paths but only 32 files), at most MAX_CONFIG_FILES files
    and MAX_TOTAL_BYTES in all."""
    return _load(Path(path), (), {}, [MAX_TOTAL_BYTES])


def _load(path: Path, chain: tuple[Path, ...], done: dict[Path, dict[str, Any]],
          budget: list[int]) -> dict[str, Any]:
    real = path.resolve()
    if real in chain:
        cycle = " -> ".join(str(p) for p in (*chain, real))
        raise ConfigError(str(path), f"_BASE_ cycle: {cycle}")
    if real in done:
        return done[real]
    if len(chain) >= MAX_BASE_DEPTH:
        raise ConfigError(str(path), f"_BASE_ nests deeper than {MAX_BASE_DEPTH}")
    if len(done) >= MAX_CONFIG_FILES:
        raise ConfigError(str(path), f"more than {MAX_CONFIG_FILES} _BASE_ files")
    data = _read(path, budget)
    bases = data.pop("_BASE_", None)
    merged: dict[str, Any] = {}
    for base in [bases] if isinstance(bases, str) else list(bases or []):
        if not isinstance(base, str):
            raise ConfigError(str(path), f"_BASE_ must name files, not {base!r}")
        base_path = Path(base).expanduser()
        if not base_path.is_absolute():
            base_path = path.parent / base_path
        if not base_path.exists():
            raise ConfigError(str(path), f"its _BASE_ {base!r} does not exist ({base_path})")
        merged = merge(merged, _load(base_path, (*chain, real), done, budget))
    done[real] = merge(merged, data)
    return done[real]


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
    """The URL a reference means, as detectron2's path handlers read it:
    ``detectron2://X`` is its model host, ``catalog://X`` its ModelCatalog."""
    if ref.startswith("detectron2://"):
        return DETECTRON2_PREFIX + ref[len("detectron2://"):]
    if ref.startswith("catalog://"):
        return catalog_url(ref[len("catalog://"):])
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
                self.by_url[url_identity(u)] = art

    def find(self, ref: str) -> Artifact | None:
        if ref.startswith("densezoo://"):
            try:
                return self.catalog.get(ref[len("densezoo://"):].strip("/"))
            except (UnknownArtifactError, KeyError):
                return None
        url = expand(ref)
        return self.by_url.get(url_identity(url)) if url else None


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
