"""Issue 34.2-34.6: know the weights by their contents.

The expected structures ship as package data written by ``tools/gen_structures.py`` from
the vendored detectron2 (``../shared/vendor``, CPU torch).  Here the generator runs again
for a sample of two models, in its own process, and its answer must equal the shipped
data; the checkpoints the tests use are built from that answer -- detectron2's real
names and shapes, random numpy weights, in detectron2's model-zoo pickle format.  A
real-size R_50_FPN_s1x checkpoint is 256 MB: it is written once per session.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from checkpoints import py2_pickle
from conftest import missing

ROOT = Path(__file__).resolve().parents[1]
TARBALL = ROOT.parent / "shared" / "vendor" / "detectron2-02b5c4e.tar.gz"
R50 = "densepose_rcnn_R_50_FPN_s1x"
CSE = "cse.densepose_rcnn_R_50_FPN_s1x"
R50_URL = ("https://dl.fbaipublicfiles.com/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/"
           "model_final_162be9.pkl")
R50_SHA256 = "b8a7382001b16e453bad95ca9dbc68ae8f2b839b304cf90eaf5c27fbdb4dae91"
CONFIGS = "projects/DensePose/configs"


def _need_d2() -> None:
    if not TARBALL.is_file():
        missing(f"the vendored detectron2 source ({TARBALL})", "it sits beside the checkout")
    for module in ("torch", "fvcore", "omegaconf", "iopath"):
        if importlib.util.find_spec(module) is None:
            missing(f"{module} for the real-detectron2 tests", "pip install '.[d2test]'")


@pytest.fixture(scope="session")
def regenerated(tmp_path_factory) -> dict:
    """The generator's answer for the sample, from the real detectron2 (its own process:
    its stand-ins for run-time-only imports stay out of the test process)."""
    _need_d2()
    out = tmp_path_factory.mktemp("gen") / "sample.json.gz"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_structures.py"),
                        "--only", f"{R50},{CSE}", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(gzip.decompress(out.read_bytes()))


@pytest.fixture(scope="session")
def d2_source(tmp_path_factory) -> Path:
    """The vendored tree, extracted (its real DensePose config files)."""
    _need_d2()
    root = tmp_path_factory.mktemp("d2cfg")
    with tarfile.open(TARBALL) as t:
        t.extractall(root, filter="data", members=[
            m for m in t.getmembers() if m.name.lstrip("./").startswith(CONFIGS)])
    return root


def _rows(data: dict, model: str) -> list:
    return data["structures"][data["models"][model]["digest"]]["tensors"]


def write_d2(path: Path, rows: list, *, seed: int = 0) -> Path:
    """A detectron2 model-zoo checkpoint: {"model": {name: ndarray}, "__author__": ...}."""
    rng = np.random.default_rng(seed)
    model = {n: rng.standard_normal(shape, dtype=np.float32).astype(dtype)
             if dtype.startswith("float") else np.zeros(shape, dtype) for n, shape, dtype in rows}
    with open(path, "wb") as f:
        pickle.dump({"model": model, "__author__": "densezoo-test"}, f, protocol=4)
    return path


@pytest.fixture(scope="session")
def r50_file(regenerated, tmp_path_factory):
    """A real-size R_50_FPN_s1x checkpoint (256 MB), written once, removed at the end
    (the disk is shared)."""
    path = write_d2(tmp_path_factory.mktemp("ckpt") / "model_final_162be9.pkl",
                    _rows(regenerated, R50))
    yield path
    path.unlink()


@pytest.fixture(scope="session")
def backbone_file(regenerated, tmp_path_factory):
    """The R-50 backbone alone (detectron2 names), saved under the trained model's name."""
    rows = [r for r in _rows(regenerated, R50) if r[0].startswith("backbone.bottom_up.")]
    path = write_d2(tmp_path_factory.mktemp("backbone") / "model_final_162be9.pkl", rows)
    yield path
    path.unlink()


def _manifest_for(manifest, path: Path, *, name: str = R50, config: str | None = None,
                  url: str = R50_URL):
    """A test manifest whose entry publishes what detectron2 publishes: the md5 prefix in
    the file name (here: the test file's own), nothing else."""
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    return manifest({"name": name, "kind": "model", "url": url, "md5": None,
                     "md5_prefix": md5[:6],
                     "config": config or "configs/densepose_rcnn_R_50_FPN_s1x.yaml"},
                    zoo="detectron2")


# -- 34.2: the shipped data is what detectron2 builds -------------------------------------

def test_generator_sample_equals_the_shipped_structures(regenerated):
    from densezoo.content.structure import _data

    shipped = _data()
    for model in (R50, CSE):
        assert regenerated["models"][model] == shipped["models"][model]
        d = shipped["models"][model]["digest"]
        assert regenerated["structures"][d] == shipped["structures"][d]
    assert shipped["models"][R50]["tensors"] == 335
    bias = dict((n, s) for n, s, _ in _rows(shipped, R50))[
        "roi_heads.densepose_predictor.ann_index_lowres.bias"]
    assert bias == [2]                                   # detectron2's head, not v1's [15]
    assert len(shipped["models"]) == 49                  # every detectron2 model entry


# -- 34.3: check ---------------------------------------------------------------------------

def test_check_matches_a_real_structure_and_names_differences_in_detectron2_words(
        r50_file, cli):
    r = cli("check", str(r50_file), "--as", "R_50_FPN_s1x")
    assert r.code == 0, r.err
    assert f"structure matches {R50} (335 tensors)" in r.out
    r = cli("check", str(r50_file), "--as", "R_50_FPN_s1x", "--json")
    assert r.items[0]["structure"] == "match" and r.items[0]["tensors"] == 335
    # The same file is not the WC1 model (its confidence outputs are missing), nor R-101.
    r = cli("check", str(r50_file), "--as", "densepose_rcnn_R_50_FPN_WC1_s1x", "--json")
    assert r.code == 4
    item = r.items[0]
    assert item["structure"] == "mismatch" and item["missing"] == 2 and item["unexpected"] == 0
    assert any("missing in the checkpoint: roi_heads.densepose_predictor.sigma_2" in d
               for d in item["differences"])
    r = cli("check", str(r50_file), "--as", "R_101_FPN_s1x")
    assert r.code == 4 and "missing" in r.out and "backbone.bottom_up.res4" in r.out


def test_check_reports_the_818_shape_in_the_checkpoint_and_in_the_model(tmp_path, cli):
    f = tmp_path / "model_final_162be9.pkl"
    pickle.dump({"model": {
        "roi_heads.densepose_predictor.ann_index_lowres.bias": np.zeros(15, np.float32) + 1,
        "roi_heads.densepose_predictor.ann_index_lowres.weight":
            np.ones((512, 15, 4, 4), np.float32)}, "__author__": "x"}, f.open("wb"))
    r = cli("check", str(f), "--as", R50)
    assert r.code == 4
    assert ("shape of roi_heads.densepose_predictor.ann_index_lowres.bias in the checkpoint "
            "is [15], in the model [2]") in r.out


def test_a_v1_file_in_a_detectron2_config_is_caught_before_the_run(d2_source, tmp_path, cli):
    """detectron2 #818: Detectron (Caffe2) weights named by a detectron2 config."""
    v1 = tmp_path / "DensePose_ResNet50_FPN_s1x-e2e.pkl"
    v1.write_bytes(py2_pickle({"blobs": {"AnnIndex_lowres_w": np.ones((512, 15, 4, 4),
                                                                       np.float32),
                                         "AnnIndex_lowres_b": np.ones(15, np.float32),
                                         "conv1_w": np.ones((64, 3, 7, 7), np.float32)}}))
    cfg = d2_source / CONFIGS / "densepose_rcnn_R_50_FPN_s1x.yaml"
    r = cli("check", str(v1), "--config", str(cfg), "--json")
    assert r.code == 4
    item = r.items[0]
    assert item["structure"] == "mismatch" and "detectron-v1" in item["reason"]
    assert item["model"] == R50
    # The config's own MODEL.WEIGHTS, when it names the v1 file: checked without a NAME.
    mine = tmp_path / "configs" / "mine.yaml"
    mine.parent.mkdir()
    shutil.copy(d2_source / CONFIGS / "Base-DensePose-RCNN-FPN.yaml", mine.parent)
    mine.write_text((d2_source / CONFIGS / "densepose_rcnn_R_50_FPN_s1x.yaml").read_text()
                    .replace("detectron2://ImageNetPretrained/MSRA/R-50.pkl", str(v1)))
    assert str(v1) in mine.read_text()
    r = cli("check", "--config", str(mine))
    assert r.code == 4 and "detectron-v1" in r.out, r.out + r.err
    # Copied out of its folder and renamed, it is still recognised by its MODEL keys.
    assert "its MODEL keys are configs/densepose_rcnn_R_50_FPN_s1x.yaml's" in r.err


def test_backbone_truncated_placeholder_and_lfs_pointer(backbone_file, r50_file, tmp_path,
                                                        cli):
    r = cli("check", str(backbone_file), "--as", R50, "--json")
    assert r.code == 4
    item = r.items[0]
    assert item["structure"] == "mismatch" and item["unexpected"] == 0
    assert item["missing"] == 335 - item["tensors"] and item["missing"] > 50
    cut = tmp_path / "model_final_162be9.pkl"
    with open(r50_file, "rb") as f:
        cut.write_bytes(f.read(3 << 20))                     # an interrupted copy
    r = cli("check", str(cut), "--as", R50, "--json")
    assert r.code == 1 and r.items[0]["structure"] == "unknown"
    assert "cannot be read" in r.items[0]["reason"]
    place = tmp_path / "placeholder" / "model_final_162be9.pkl"
    place.parent.mkdir()
    place.write_text("put model_final_162be9.pkl here")
    lfs = tmp_path / "lfs" / "model_final_162be9.pkl"
    lfs.parent.mkdir()
    lfs.write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{R50_SHA256}\n"
                   "size 255757821\n")
    for f, what in ((place, "31-byte text file"), (lfs, "git-lfs pointer file")):
        r = cli("check", str(f), "--as", R50)
        assert r.code == 1 and what in r.out, r.out
    r = cli("identify", str(place), str(lfs), str(backbone_file), "--json")
    assert r.code == 1
    by_path = {i["path"]: i for i in r.items}
    assert by_path[str(place)]["what"] == "placeholder"
    assert "put model_final_162be9.pkl here" in by_path[str(place)]["detail"]
    assert by_path[str(lfs)]["what"] == "lfs-pointer"
    assert by_path[str(lfs)]["names"] == [R50] and by_path[str(lfs)]["by"] == "lfs-oid"
    assert by_path[str(backbone_file)]["what"] == "unknown"
    assert "matching no known model" in by_path[str(backbone_file)]["detail"]


def test_identify_by_structure_prefix_and_all_zero(r50_file, manifest, tmp_path, cli):
    blob = tmp_path / "blobs" / hashlib.sha256(b"any").hexdigest()   # a Hub cache blob
    blob.parent.mkdir()
    os.link(r50_file, blob)
    r = cli("identify", str(r50_file), str(blob), "--json")   # no manifest publishes it
    assert r.items[0]["names"] == r.items[1]["names"]
    item = r.items[0]
    assert item["what"] == "unknown" and item["by"] == "structure"
    assert R50 in item["names"] and item["structure"] == "match"
    m = _manifest_for(manifest, r50_file)
    r = cli("--no-default-manifests", "--manifest", str(m), "identify", str(r50_file),
            "--json")
    assert r.code == 0
    assert r.items[0]["by"] == "md5-prefix+structure" and r.items[0]["names"] == [R50]
    mesh = tmp_path / "smpl_27554.pkl"
    mesh.write_bytes(py2_pickle({"vertices": np.zeros((27554, 3), np.float32),
                                 "faces": np.zeros((1000, 3), np.int64)}))
    r = cli("identify", str(tmp_path), "--json")
    assert {i["path"]: i["what"] for i in r.items}[str(mesh)] == "all-zero"


# -- 34.5: structure as evidence ----------------------------------------------------------

def test_fetch_refuses_other_weights_whose_md5_prefix_matches(backbone_file, manifest, server,
                                                              cli, monkeypatch):
    """The backbone under the trained model's name, with the prefix matching: exit 4."""
    from densezoo.urls import url_key

    data = backbone_file.read_bytes()
    server.add("/mirror/" + "/".join(url_key(R50_URL)), data)
    m = _manifest_for(manifest, backbone_file)
    r = cli("--no-default-manifests", "--manifest", str(m), "--mirror", server.url("/mirror"),
            "fetch", R50, "--json")
    assert r.code == 4, r.err
    assert "missing in the checkpoint" in r.err or "missing" in json.dumps(r.json["errors"])
    assert cli("--no-default-manifests", "--manifest", str(m), "path", R50).code == 6


def test_adopt_takes_the_real_file_at_its_iopath_path_by_prefix_and_structure(
        r50_file, backbone_file, manifest, tmp_path, monkeypatch, cli):
    iopath = tmp_path / "iopath"
    monkeypatch.setenv("FVCORE_CACHE", str(iopath))
    home = iopath / "densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_162be9.pkl"
    home.parent.mkdir(parents=True)
    os.link(r50_file, home)
    m = _manifest_for(manifest, r50_file)
    only = ("--no-default-manifests", "--manifest", str(m))
    dry = cli(*only, "adopt", "--known", "--dry-run", "--json")
    assert {i["path"]: i["state"] for i in dry.items}[str(home)] == "would adopt"
    r = cli(*only, "adopt", "--known", "--json")
    assert r.code == 0, r.err
    states = {i["path"]: i for i in r.items}
    assert states[str(home)]["state"] == "adopted", states
    assert cli(*only, "verify", "--scan").code == 0
    # Shown honestly: found on disk, a prefix and the structure matched -- "adopted";
    # the trust record keeps both vouchers (the path it was found at, the structure).
    assert cli(*only, "path", R50, "--json").items[0]["strength"] == "adopted"
    record = cli(*only, "info", R50, "--json").items[0]
    kinds = {v["kind"]: v for v in record["vouchers"]}
    assert kinds["adopted"]["source"] == str(home)
    assert kinds["structure"]["detail"] == f"structure matches {R50} (335 tensors)"
    assert kinds["structure"]["md5"] == kinds["adopted"]["md5"]
    assert Path(cli(*only, "path", R50).out.strip()).read_bytes()[:64] == \
        r50_file.read_bytes()[:64]
    # The backbone at the same path with its own prefix published: refused, by structure.
    home.unlink()
    os.link(backbone_file, home)
    m2 = _manifest_for(manifest, backbone_file)
    r = cli("--no-default-manifests", "--manifest", str(m2), "--cache-dir",
            str(tmp_path / "other-cache"), "adopt", "--known", "--json")
    item = {i["path"]: i for i in r.items}[str(home)]
    assert item["state"] == "refused" and "missing" in item["reason"]
    dry = cli("--no-default-manifests", "--manifest", str(m2), "--cache-dir",
              str(tmp_path / "other-cache"), "adopt", "--known", "--dry-run", "--json")
    assert {i["path"]: i["state"] for i in dry.items}[str(home)] == "refused"


# -- 34.6: config-aware -------------------------------------------------------------------

def test_config_refuses_v1_weights_in_a_detectron2_config(d2_source, manifest, server,
                                                         tmp_path, cli):
    """#818 through `densezoo config`: MODEL.WEIGHTS names a v1 model; exit 4, no config."""
    from densezoo.urls import url_key

    v1_url = "https://dl.fbaipublicfiles.com/densepose/DensePose_ResNet50_FPN_s1x-e2e.pkl"
    v1 = py2_pickle({"blobs": {"AnnIndex_lowres_b": np.ones(15, np.float32),
                               "conv1_w": np.ones((64, 3, 7, 7), np.float32)}})
    server.add("/mirror/" + "/".join(url_key(v1_url)), v1)
    m = manifest({"name": "ResNet50_FPN_s1x-e2e", "kind": "model", "url": v1_url,
                  "md5": hashlib.md5(v1).hexdigest(), "size": len(v1)}, zoo="densepose-v1")
    mine = tmp_path / "cfg" / "mine.yaml"
    mine.parent.mkdir()
    shutil.copy(d2_source / CONFIGS / "Base-DensePose-RCNN-FPN.yaml", mine.parent)
    mine.write_text((d2_source / CONFIGS / "densepose_rcnn_R_50_FPN_s1x.yaml").read_text()
                    .replace("detectron2://ImageNetPretrained/MSRA/R-50.pkl", v1_url))
    out = tmp_path / "verified.yaml"
    r = cli("--no-default-manifests", "--manifest", str(m), "--mirror", server.url("/mirror"),
            "config", str(mine), "-o", str(out))
    assert r.code == 4, r.err
    assert "do not fit the model the config builds" in r.err and "detectron-v1" in r.err
    assert not out.exists()


def test_config_trained_recognises_a_copied_config_by_its_content(d2_source, tmp_path, cli):
    """CSE's densepose_rcnn_R_50_FPN_s1x.yaml copied (with its bases) out of cse/: its
    name is two configs', its content one model's."""
    src = d2_source / CONFIGS / "cse"
    copy = tmp_path / "my_project"
    copy.mkdir()
    for f in ("densepose_rcnn_R_50_FPN_s1x.yaml", "Base-DensePose-RCNN-FPN-Human.yaml",
              "Base-DensePose-RCNN-FPN.yaml"):
        shutil.copy(src / f, copy / f)
    r = cli("config", str(copy / "densepose_rcnn_R_50_FPN_s1x.yaml"), "--trained",
            "--dry-run", "--json")
    assert r.code == 0, r.err
    assert r.json["summary"]["trained"] == CSE
    # The chart-based config of the same file name is another model.
    iuv = tmp_path / "iuv"
    iuv.mkdir()
    for f in ("densepose_rcnn_R_50_FPN_s1x.yaml", "Base-DensePose-RCNN-FPN.yaml"):
        shutil.copy(d2_source / CONFIGS / f, iuv / f)
    r = cli("config", str(iuv / "densepose_rcnn_R_50_FPN_s1x.yaml"), "--trained",
            "--dry-run", "--json")
    assert r.code == 0 and r.json["summary"]["trained"] == R50


def test_verify_scan_finds_other_weights_already_in_the_store(backbone_file, manifest, server,
                                                               cli):
    """Bytes cached before densezoo knew the structure (here: under another entry name,
    same URL) are re-examined by `verify --scan`: another model's tensors are corrupt
    (exit 4), moved aside."""
    from densezoo.urls import url_key

    data = backbone_file.read_bytes()
    server.add("/mirror/" + "/".join(url_key(R50_URL)), data)
    md5 = hashlib.md5(data).hexdigest()
    before = manifest({"name": "some_weights", "kind": "model", "url": R50_URL, "md5": md5})
    r = cli("--no-default-manifests", "--manifest", str(before), "--mirror",
            server.url("/mirror"), "fetch", "some_weights")
    assert r.code == 0, r.err
    now = manifest({"name": R50, "kind": "model", "url": R50_URL, "md5": md5,
                    "config": "configs/densepose_rcnn_R_50_FPN_s1x.yaml"}, zoo="detectron2")
    only = ("--no-default-manifests", "--manifest", str(now))
    assert cli(*only, "verify").code == 0                # the checksum alone: fine
    r = cli(*only, "verify", "--scan", "--json")
    assert r.code == 4
    assert r.items[0]["state"] == "corrupt" and "missing" in r.items[0]["detail"]


def test_a_mesh_placeholder_is_recognised_by_its_bytes(manifest, server, cli):
    zeros = py2_pickle({"vertices": np.zeros((100, 3), np.float32),
                        "faces": np.zeros((50, 3), np.int64)})
    real = py2_pickle({"vertices": np.ones((100, 3), np.float32),
                       "faces": np.zeros((50, 3), np.int64)})
    server.add("/m/zero_mesh.pkl", zeros)
    server.add("/m/real_mesh.pkl", real)
    m = manifest({"name": "zero_mesh", "kind": "mesh", "url": server.url("/m/zero_mesh.pkl"),
                  "md5": hashlib.md5(zeros).hexdigest()},
                 {"name": "real_mesh", "kind": "mesh", "url": server.url("/m/real_mesh.pkl"),
                  "md5": hashlib.md5(real).hexdigest()})
    r = cli("--no-default-manifests", "--manifest", str(m), "fetch", "zero_mesh", "real_mesh",
            "--json")
    assert r.code == 0, r.err
    warned = {i["name"]: i["warnings"] for i in r.items}
    assert any("all 2 arrays are zero" in w for w in warned["zero_mesh"])
    assert not any("zero" in w for w in warned["real_mesh"])
