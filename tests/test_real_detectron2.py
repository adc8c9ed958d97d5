"""Issue 21.5: the three detectron2 integrations against detectron2's real code.

detectron2 is not on the package index: the tests use its source at commit 02b5c4e from
``../shared/vendor`` (Apache-2.0; pure-Python parts need no build) with CPU torch,
fvcore, iopath, omegaconf and cloudpickle (``pip install '.[d2test]'``).  They use
detectron2's real ``PathManager``, ``DetectionCheckpointer`` and ``get_cfg()`` with
DensePose's own ``config.py`` (loaded by file path: the ``densepose`` package needs
torchvision and compiled ops) and DensePose's real config files.

The weights are synthetic (a real run of the real files is 256 MB each and the
network is not reachable here): pickles in detectron2's model-zoo format, served at
the real URLs' host/path keys by a loopback mirror.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import missing
from densezoo.urls import url_key

ROOT = Path(__file__).resolve().parents[1]
TARBALL = "detectron2-02b5c4e.tar.gz"
INIT_URL = "https://dl.fbaipublicfiles.com/detectron2/ImageNetPretrained/MSRA/R-50.pkl"
TRAINED_URL = ("https://dl.fbaipublicfiles.com/densepose/densepose_rcnn_R_50_FPN_s1x/"
               "165712039/model_final_162be9.pkl")
CONFIG = "projects/DensePose/configs/densepose_rcnn_R_50_FPN_s1x.yaml"


def _tarball() -> Path | None:
    env = os.environ.get("DENSEZOO_D2_SOURCE")
    for p in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "vendor" / TARBALL]:
        if p.is_file():
            return p
    return None


@pytest.fixture(scope="session")
def d2_source(tmp_path_factory) -> Path:
    """detectron2's source tree on sys.path (or skip/fail naming what is missing)."""
    tar = _tarball()
    if tar is None:
        missing(f"the vendored detectron2 source (../shared/vendor/{TARBALL}, or "
                "DENSEZOO_D2_SOURCE)", "it sits beside the checkout")
    for module in ("torch", "fvcore", "omegaconf", "cloudpickle", "iopath"):
        if importlib.util.find_spec(module) is None:
            missing(f"{module} for the real-detectron2 tests", "pip install '.[d2test]'")
    root = tmp_path_factory.mktemp("d2src")          # not ./detectron2: that would shadow
    with tarfile.open(tar) as t:
        t.extractall(root, filter="data")
    sys.path.insert(0, str(root))
    return root


@pytest.fixture
def restore_path_manager(d2_source):
    """``install()`` registers on detectron2's process-wide PathManager: each test gets
    it back as detectron2 built it."""
    from detectron2.utils.file_io import PathManager

    saved = dict(PathManager._path_handlers)
    yield
    PathManager._path_handlers.clear()
    PathManager._path_handlers.update(saved)


def _trained_model_pickle() -> bytes:
    """A stand-in for the trained R_50_FPN_s1x with its real structure (detectron2's 335
    names and shapes, as densezoo ships them; zeros): densezoo checks a trained model's
    tensors against the model its config builds, and a 2x2 stand-in is refused."""
    import numpy as np

    from densezoo.content.structure import expected_for

    rows = expected_for("densepose_rcnn_R_50_FPN_s1x").tensors
    return pickle.dumps({"model": {n: np.zeros(shape, dtype) for n, shape, dtype in rows},
                         "__author__": "densezoo-test"}, protocol=4)


@pytest.fixture(scope="session")
def trained_bytes() -> bytes:
    return _trained_model_pickle()


def _model_zoo_pickle(values: dict[str, float]) -> bytes:
    """A weight file in detectron2's model-zoo format (numpy arrays under "model")."""
    import numpy as np

    return pickle.dumps({"model": {k: np.full((2, 2), v, dtype=np.float32)
                                   for k, v in values.items()},
                         "__author__": "densezoo-test"}, protocol=2)


@pytest.fixture
def zoo(d2_source, restore_path_manager, server, manifest, monkeypatch, tmp_path,
        trained_bytes):
    """A manifest for the real URLs of DensePose's R_50_FPN_s1x config (its ImageNet
    init and its trained model), served by a loopback mirror; FVCORE_CACHE in tmp."""
    init, trained = _model_zoo_pickle({"weight": 1.0}), trained_bytes
    for url, data in ((INIT_URL, init), (TRAINED_URL, trained)):
        server.add("/mirror/" + "/".join(url_key(url)), data)
    monkeypatch.setenv("DENSEZOO_MIRROR", server.url("/mirror"))
    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "fvcore"))
    m = manifest({"name": "detectron2_ImageNet_R-50", "url": INIT_URL, "kind": "backbone",
                  "md5": hashlib.md5(init).hexdigest(), "size": len(init)},
                 {"name": "densepose_rcnn_R_50_FPN_s1x", "url": TRAINED_URL, "kind": "model",
                  "md5": hashlib.md5(trained).hexdigest(), "size": len(trained),
                  "config": "configs/densepose_rcnn_R_50_FPN_s1x.yaml"}, zoo="detectron2")
    return {"manifest": m, "init": init, "trained": trained, "root": d2_source}


def _densepose_cfg(root: Path, path: Path):
    from detectron2.config import get_cfg

    spec = importlib.util.spec_from_file_location(
        "densepose_config", root / "projects/DensePose/densepose/config.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)                      # type: ignore[union-attr]
    cfg = get_cfg()
    mod.add_densepose_config(cfg)
    cfg.merge_from_file(str(path))
    return cfg


def test_resolved_and_trained_configs_load_in_detectron2(zoo, cli, tmp_path):
    only = ("--no-default-manifests", "--manifest", str(zoo["manifest"]))
    cfg_file = zoo["root"] / CONFIG
    out = tmp_path / "verified.yaml"
    r = cli(*only, "config", str(cfg_file), "-o", str(out))
    assert r.code == 0, r.err
    cfg = _densepose_cfg(zoo["root"], out)
    assert Path(cfg.MODEL.WEIGHTS).read_bytes() == zoo["init"]     # the init, verified
    assert cfg.MODEL.ROI_DENSEPOSE_HEAD.NAME                       # DensePose's keys loaded
    trained = tmp_path / "trained.yaml"
    r = cli(*only, "config", str(cfg_file), "--trained", "-o", str(trained))
    assert r.code == 0, r.err
    assert "the trained model densepose_rcnn_R_50_FPN_s1x" in r.err
    cfg = _densepose_cfg(zoo["root"], trained)
    assert Path(cfg.MODEL.WEIGHTS).read_bytes() == zoo["trained"]  # not the ImageNet init
    base = zoo["root"] / "projects/DensePose/configs/Base-DensePose-RCNN-FPN.yaml"
    r = cli(*only, "config", str(base), "--trained")
    assert r.code == 2 and "no manifest entry says which model" in r.err


def test_install_feeds_the_real_checkpointer_verified_bytes_only(zoo, server, manifest, cli):
    import torch
    from detectron2.checkpoint import DetectionCheckpointer

    import densezoo.integrations.detectron2 as dz
    from densezoo import Zoo
    from densezoo.errors import DensezooError

    dz.install(Zoo(manifests=[zoo["manifest"]], default_manifests=False))
    model = torch.nn.Linear(2, 2, bias=False)
    DetectionCheckpointer(model).load(INIT_URL)
    assert torch.equal(model.weight.data, torch.full((2, 2), 1.0))
    # A manifest whose md5 the served bytes do not match: refused, model untouched.
    wrong = manifest({"name": "densepose_rcnn_R_50_FPN_s1x", "url": TRAINED_URL,
                      "md5": "0" * 32, "kind": "model"})
    dz.install(Zoo(manifests=[wrong], default_manifests=False,
                   cache_dir=str(Path(zoo["root"]).parent / "other-cache")))
    fresh = torch.nn.Linear(2, 2, bias=False)
    before = fresh.weight.data.clone()
    with pytest.raises(DensezooError, match="checksum|md5"):
        DetectionCheckpointer(fresh).load(TRAINED_URL)
    assert torch.equal(fresh.weight.data, before)
    # An unsafe pickle whose md5 a (poisoned) manifest publishes: the scan refuses it
    # before pickle.load ever sees it.
    marker = Path(zoo["root"]).parent / "pwned"
    hostile = (b"\x80\x02cposix\nsystem\nq\x00X" + len(f"touch {marker}").to_bytes(4, "little")
               + f"touch {marker}".encode() + b"q\x01\x85q\x02Rq\x03.")
    evil_url = TRAINED_URL.replace("165712039", "666")
    server.add("/mirror/" + "/".join(url_key(evil_url)), hostile)
    poisoned = manifest({"name": "evil", "url": evil_url, "kind": "model",
                         "md5": hashlib.md5(hostile).hexdigest()})
    dz.install(Zoo(manifests=[poisoned], default_manifests=False,
                   cache_dir=str(Path(zoo["root"]).parent / "evil-cache")))
    with pytest.raises(DensezooError, match="posix.system|unsafe"):
        DetectionCheckpointer(torch.nn.Linear(2, 2)).load(evil_url)
    assert not marker.exists()


def test_a_seeded_cache_serves_detectron2_with_the_server_stopped(zoo, server, cli, tmp_path):
    from detectron2.utils.file_io import PathManager

    only = ("--no-default-manifests", "--manifest", str(zoo["manifest"]))
    for trained in ((), ("--trained",)):       # the init, then the trained model
        r = cli(*only, "config", str(zoo["root"] / CONFIG), *trained, "--seed-iopath")
        assert r.code == 0, r.err
    server.files.clear()                                 # the "internet" is gone now
    server.requests.clear()
    got = PathManager.get_local_path("detectron2://ImageNetPretrained/MSRA/R-50.pkl")
    assert Path(got).read_bytes() == zoo["init"]
    got = PathManager.get_local_path(TRAINED_URL)
    assert Path(got).read_bytes() == zoo["trained"]
    assert str(tmp_path / "fvcore") in got and server.requests == []
