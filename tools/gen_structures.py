"""Generate densezoo's expected structures from the real detectron2 (issue 34.2).

For every detectron2 DensePose model in ``manifests/detectron2-densepose.yaml`` that
names a config, build the model the config builds -- ``build_model(cfg)`` of detectron2
at the vendored commit, CPU torch -- and record ``state_dict()``: the sorted
``(name, shape, dtype)`` list that ``DetectionCheckpointer`` matches a checkpoint
against.  The output is package data (``src/densezoo/content/structures.json.gz``);
densezoo itself never imports torch or detectron2.

Run once, by hand (~1 min)::

    python tools/gen_structures.py [--source ../shared/vendor/detectron2-02b5c4e.tar.gz]

The honest limit: the vendored tree is not compiled, and CPU torchvision does not exist
for the installed torch.  detectron2 and DensePose import a few things only to *run* a
model (torchvision's ``roi_align``/``nms``/``deform_conv2d`` ops, ``RoIPool``,
pycocotools' mask codec, OpenCV, PyAV, scipy).  None of them owns a parameter or a
buffer, so they cannot change a ``state_dict``: this script puts stand-ins for them in
``sys.modules`` that raise if anything calls them (nothing does while building), and
builds everything else -- backbones, FPN, RPN, ROI heads, DensePose heads, predictors,
CSE embedders -- with detectron2's and DensePose's own code.

v1 (Caffe2/Detectron) models and the RPN proposal files get no structure: Detectron's
model builder is Caffe2 code that is not vendored, so nothing can be derived from their
configs here (``identify``/``check`` say "unknown" for them, never a guess).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
import tarfile
import tempfile
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARBALL = ROOT.parent / "shared" / "vendor" / "detectron2-02b5c4e.tar.gz"
OUT = ROOT / "src" / "densezoo" / "content" / "structures.json.gz"
MANIFEST = ROOT / "manifests" / "detectron2-densepose.yaml"
FORMAT = 1
# Imported by detectron2/DensePose for running a model, never for building one.
RUN_ONLY = ("pycocotools", "pycocotools.mask", "pycocotools.coco", "pycocotools.cocoeval",
            "cv2", "av", "scipy", "scipy.io", "scipy.spatial", "scipy.spatial.distance",
            "PIL", "PIL.Image", "torchvision.transforms", "torchvision.io",
            "torchvision.transforms.functional")


def _never(*_args, **_kwargs):
    raise RuntimeError("a run-time-only stand-in was called while building a model")


class _Anything(type):
    """A stand-in attribute: a class (so type hints like ``List[av.frame.Frame]`` work)
    whose own attributes are stand-ins too."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything(name, (), {"__init__": _never})


class _StandIn(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything(name, (), {"__init__": _never})


def install_stand_ins() -> None:
    """Stand-ins for the run-time-only imports (see the module docstring)."""
    import torch

    for name in ("torchvision", "torchvision.ops", "torchvision.ops.boxes"):
        try:
            __import__(name)
            return                       # a real torchvision: use it, stand in for nothing
        except ImportError:
            pass
    tv, ops, boxes = (types.ModuleType(n) for n in
                      ("torchvision", "torchvision.ops", "torchvision.ops.boxes"))
    tv.__version__ = "0.29"             # detectron2's ROIAlign reads it (aligned=True path)
    for op in ("deform_conv2d", "nms", "roi_align", "batched_nms", "box_iou"):
        setattr(ops, op, _never)
        setattr(boxes, op, _never)

    class RoIPool(torch.nn.Module):     # a parameter-free module, as torchvision's is
        def __init__(self, *_a, **_k):
            super().__init__()

    ops.RoIPool, ops.boxes, tv.ops = RoIPool, boxes, ops
    sys.modules.update({"torchvision": tv, "torchvision.ops": ops,
                        "torchvision.ops.boxes": boxes})
    for name in RUN_ONLY:
        try:
            __import__(name)
        except ImportError:
            mod = _StandIn(name)
            mod.__path__, mod.__version__ = [], "0.0"
            sys.modules[name] = mod


def configs_in_manifest() -> list[tuple[str, str]]:
    """(entry name, config path under projects/DensePose/) for every detectron2 model."""
    import yaml

    data = yaml.safe_load(MANIFEST.read_text())
    return [(a["name"], a["config"]) for a in data["artifacts"]
            if a.get("kind") == "model" and a.get("config")]


def _row(name, t) -> list:
    return [name, list(t.shape), str(t.dtype).replace("torch.", "")]


def structure_of(d2_root: Path, config: str) -> tuple[list[list], list[list]]:
    """The sorted [name, shape, dtype] list of the model ``config`` builds, and its
    non-persistent buffers (``pixel_mean``, anchors): older detectron2 saved those, so a
    checkpoint carrying them is not "unexpected" for what it is."""
    from densepose.config import add_densepose_config       # noqa: F401 (after setup)
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    cfg = get_cfg()
    add_densepose_config(cfg)
    cfg.merge_from_file(str(d2_root / "projects" / "DensePose" / config))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""                    # shapes come from the config, not from files:
    for spec in cfg.MODEL.ROI_DENSEPOSE_HEAD.CSE.EMBEDDERS.values():
        spec.INIT_FILE = ""                   # a CSE init fills values (shape: NUM_VERTICES)
    model = build_model(cfg)
    state = model.state_dict()
    return (sorted(_row(n, t) for n, t in state.items()),
            sorted(_row(n, t) for n, t in model.named_buffers() if n not in state))


def digest(tensors: list[list]) -> str:
    """sha256 of the canonical list: what densezoo compares a checkpoint's list with."""
    return hashlib.sha256(json.dumps(tensors, separators=(",", ":")).encode()).hexdigest()


def no_network() -> None:
    """Building reads nothing from the network (the init files above are blanked); make
    any attempt an error rather than traffic."""
    import socket

    def refuse(*_a, **_k):
        raise OSError("tools/gen_structures.py opens no connections")

    socket.socket.connect = refuse                      # type: ignore[method-assign]
    socket.getaddrinfo = refuse                         # type: ignore[assignment]


def setup(source: Path, into: Path) -> Path:
    no_network()
    with tarfile.open(source) as t:
        t.extractall(into, filter="data")
    sys.path[:0] = [str(into), str(into / "projects" / "DensePose")]
    install_stand_ins()
    import densepose  # noqa: F401  registers DensePose's heads, backbones and embedders
    return into


def generate(d2_root: Path, only: list[str] | None = None) -> dict:
    sys.path.insert(0, str(ROOT / "src"))
    from densezoo.configs import load_config          # densezoo's own reading of _BASE_
    from densezoo.content.structure import fingerprint

    """The package data: models (entry name -> config, digest) and structures (digest ->
    tensor list, each distinct list once)."""
    models, structures = {}, {}
    for name, config in configs_in_manifest():
        if only is not None and name not in only:
            continue
        tensors, transient = structure_of(d2_root, config)
        d = digest(tensors)
        whole, model_keys = fingerprint(load_config(d2_root / "projects" / "DensePose" / config))
        models[name] = {"config": config, "digest": d, "tensors": len(tensors),
                        "resolved": whole, "model_keys": model_keys}
        structures[d] = {"tensors": tensors, "not_saved": transient}
    return {"format": FORMAT, "generator": "tools/gen_structures.py",
            "source": "detectron2@02b5c4e build_model(cfg).state_dict(), CPU torch",
            "models": models, "structures": structures}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, default=TARBALL)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--only", metavar="NAME,...", help="these entries only (the test's sample)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = generate(setup(args.source, Path(tmp) / "d2src"),
                        args.only.split(",") if args.only else None)
    blob = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    args.out.write_bytes(gzip.compress(blob, 9, mtime=0))
    print(f"{len(data['models'])} models, {len(data['structures'])} distinct structures, "
          f"{len(blob)} bytes of JSON, {args.out.stat().st_size} gzipped -> {args.out}")


if __name__ == "__main__":
    main()
