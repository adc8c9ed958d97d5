"""Issue 35.2: detectron2's real ``DetectionCheckpointer`` loads through the restricted loader.

The vendored detectron2 (``../shared/vendor``, CPU torch; see test_real_detectron2.py)
with a small real torch model: after ``install()`` a ``.pkl`` and its ``.safetensors``
conversion load into identical ``state_dict``s, every shipped pickle format gives
``_load_file`` the same value ``pickle.load`` gave it, and a hostile ``.pkl`` -- given to
the checkpointer, or to an unmodified script run with ``python -m densezoo.run`` -- raises
and runs nothing (a marker file proves it; without densezoo the same file writes it).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from checkpoints import formats, py3_pickle
from densezoo.errors import RestrictedLoadError
from test_load_weights import assert_identical
from test_real_detectron2 import d2_source, restore_path_manager  # noqa: F401 - fixtures

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def d2(d2_source, restore_path_manager, tmp_path, monkeypatch):  # noqa: F811
    """detectron2 importable, and its checkpoint module put back as it was after the test."""
    from detectron2.checkpoint import detection_checkpoint as module

    monkeypatch.setattr(module, "pickle", module.pickle)
    monkeypatch.setattr(module.DetectionCheckpointer, "_load_file",
                        module.DetectionCheckpointer._load_file)
    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "fvcore"))
    return d2_source


def _install(tmp_path):
    import densezoo.integrations.detectron2 as dz
    from densezoo import Zoo

    return dz.install(Zoo(manifests=[], default_manifests=False,
                          cache_dir=str(tmp_path / "cache")))


def _model(seed: int):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8),
                               torch.nn.Flatten(), torch.nn.Linear(8, 4))


def _model_zoo_file(model, path: Path, protocol: int = 2) -> Path:
    """The model's weights in detectron2's model-zoo format (numpy arrays under "model")."""
    arrays = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    path.write_bytes(py3_pickle({"model": arrays, "__author__": "Detectron2 Model Zoo"},
                                protocol))
    return path


def _marker_pkl(path: Path, marker: Path) -> Path:
    cmd = f"touch {marker}".encode()
    path.write_bytes(b"\x80\x02cposix\nsystem\nX" + len(cmd).to_bytes(4, "little") + cmd
                     + b"\x85R.")
    return path


def test_a_pkl_and_its_safetensors_load_into_identical_state_dicts(d2, tmp_path):
    import torch
    from detectron2.checkpoint import DetectionCheckpointer

    from densezoo.api import Zoo

    source = _model(0)
    pkl = _model_zoo_file(source, tmp_path / "model_final_abcdef.pkl")
    converted = Zoo(manifests=[], default_manifests=False,
                    cache_dir=str(tmp_path / "cache")).convert(str(pkl))
    _install(tmp_path)
    from_pkl, from_st = _model(1), _model(2)
    DetectionCheckpointer(from_pkl).load(str(pkl))
    DetectionCheckpointer(from_st).load(str(converted.path))
    want = source.state_dict()
    for loaded in (from_pkl.state_dict(), from_st.state_dict()):
        assert list(loaded) == list(want)
        for k in want:
            assert torch.equal(loaded[k], want[k]), k
            assert loaded[k].dtype == want[k].dtype


@pytest.mark.parametrize("fmt", sorted(formats()))
def test_every_shipped_format_reaches_detectron2_as_pickle_load_gave_it(d2, tmp_path, fmt):
    """detectron2's own code around the load (its format tests, the Caffe2 branch that
    drops ``_momentum`` blobs) runs on the restricted loader's value unchanged."""
    from detectron2.checkpoint import DetectionCheckpointer

    path = tmp_path / "model.pkl"
    path.write_bytes(formats()[fmt])
    checkpointer = DetectionCheckpointer(_model(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)    # numpy.core under numpy 2
        want = checkpointer._load_file(str(path))                  # pickle.load
    _install(tmp_path)
    got = checkpointer._load_file(str(path))
    assert_identical(got, want)


def test_a_hostile_pkl_given_to_the_checkpointer_raises_and_runs_nothing(d2, tmp_path):
    from detectron2.checkpoint import DetectionCheckpointer

    marker = tmp_path / "ran"
    evil = _marker_pkl(tmp_path / "model_final_162be9.pkl", marker)
    _install(tmp_path)
    with pytest.raises(RestrictedLoadError, match="posix.system"):
        DetectionCheckpointer(_model(0)).load(str(evil))
    assert not marker.exists()


def _script(tmp_path: Path) -> Path:
    script = tmp_path / "apply_net.py"          # an unmodified script: no densezoo in it
    script.write_text(
        "import sys, torch\n"
        "from detectron2.checkpoint import DetectionCheckpointer\n"
        "model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8),\n"
        "    torch.nn.Flatten(), torch.nn.Linear(8, 4))\n"
        "DetectionCheckpointer(model).load(sys.argv[1])\n"
        "print('loaded', float(model[3].bias.sum()))\n")
    return script


def test_python_m_densezoo_run_protects_an_unmodified_script(d2, tmp_path):
    marker = tmp_path / "ran"
    evil = _marker_pkl(tmp_path / "evil.pkl", marker)
    good = _model_zoo_file(_model(0), tmp_path / "good.pkl")
    script = _script(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(d2)]),
           "DENSEZOO_CACHE_DIR": str(tmp_path / "cache")}

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=600)

    r = run("-m", "densezoo.run", str(script), str(good))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("loaded ")
    r = run("-m", "densezoo.run", str(script), str(evil))
    assert r.returncode != 0 and "RestrictedLoadError" in r.stderr and not marker.exists()
    r = run(str(script), str(evil))          # the same script without densezoo runs it
    assert marker.exists()


def test_restricted_pickle_load_is_the_loader_on_a_file_object():
    from densezoo.integrations.detectron2 import RestrictedPickle

    data = py3_pickle({"model": {"w": np.arange(3.0)}, "__author__": "x"}, 2)
    assert RestrictedPickle.load(io.BytesIO(data), encoding="latin1")["model"]["w"].tolist() \
        == [0.0, 1.0, 2.0]
