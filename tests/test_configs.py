"""densezoo where DensePose runs: configs, the iopath handler, and seeding iopath's cache.

Configs here mirror the real structures (a detectron2 _BASE_ chain two deep with a CSE
embedder, a Detectron v1 config with a PROPOSAL_FILES tuple string and the dead S3
hosts); the handler is exercised through iopath's real PathManager and HTTPURLHandler.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import entry

R50_LEGACY = "https://s3-us-west-2.amazonaws.com/detectron/ImageNetPretrained/MSRA/R-50.pkl"
RPN_LEGACY = "https://s3.amazonaws.com/densepose/DensePose-RPN-train_fpn_resnet50.pkl"
D2_R50 = "https://dl.fbaipublicfiles.com/detectron2/ImageNetPretrained/MSRA/R-50.pkl"
LBO = "https://dl.fbaipublicfiles.com/densepose/data/cse/lbo/phi_smpl_27554_256.pkl"
UV_SYM = "https://dl.fbaipublicfiles.com/densepose/data/UV_symmetry_transforms.mat"


@pytest.fixture
def zoo_files(server, blob, manifest):
    """Loopback copies of a model, its init weights, an LBO basis, RPN proposals and a
    runtime file, each listed under the real URLs configs use (as legacy URLs)."""
    b = {n: blob(n, 50_000) for n in ("model", "r50", "lbo", "rpn_a", "rpn_b", "uvsym")}
    m = manifest(
        entry(b["model"], aliases=["my_model"]),
        entry(b["r50"], legacy_urls=[R50_LEGACY, D2_R50]),
        entry(b["lbo"], legacy_urls=[LBO]),
        entry(b["rpn_a"], legacy_urls=[RPN_LEGACY]),
        entry(b["rpn_b"]),
        entry(b["uvsym"], legacy_urls=[UV_SYM]))
    return b, m


def write_configs(tmp_path: Path, b) -> Path:
    (tmp_path / "cfg" / "cse").mkdir(parents=True)
    (tmp_path / "cfg" / "Base-RCNN-FPN.yaml").write_text(textwrap.dedent("""\
        MODEL:
          META_ARCHITECTURE: GeneralizedRCNN
          WEIGHTS: "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
          RESNETS: {DEPTH: 50}
        SOLVER: {BASE_LR: 0.02, MAX_ITER: 90000}
        """))
    (tmp_path / "cfg" / "cse" / "Base-DensePose-RCNN-FPN.yaml").write_text(textwrap.dedent(f"""\
        _BASE_: "../Base-RCNN-FPN.yaml"
        MODEL:
          ROI_DENSEPOSE_HEAD:
            NAME: DensePoseV1ConvXHead
            CSE:
              EMBEDDERS:
                "smpl_27554":
                  TYPE: vertex_feature
                  INIT_FILE: "{LBO}"
        SOLVER: {{MAX_ITER: 130000}}
        """))
    child = tmp_path / "cfg" / "cse" / "densepose_rcnn_R_50_FPN_s1x.yaml"
    child.write_text(textwrap.dedent(f"""\
        _BASE_: "Base-DensePose-RCNN-FPN.yaml"
        MODEL:
          WEIGHTS: "{b['model'].url}"
          BOOTSTRAP_MODEL: {{WEIGHTS: "densezoo://my_model"}}
        DATASETS:
          TRAIN: ("densepose_coco_2014_train",)
          EXTRA: "https://example.invalid/not/in/any/manifest.pkl"
        """))
    return child


def test_a_detectron2_config_comes_out_flat_and_verified(zoo_files, tmp_path, cli, server):
    b, m = zoo_files
    cfg = write_configs(tmp_path, b)
    out = tmp_path / "verified.yaml"
    r = cli("--no-default-manifests", "--manifest", str(m), "config", str(cfg), "-o", str(out))
    assert r.code == 0, r.err
    assert "not in any manifest: not verified" in r.err and "example.invalid" in r.err
    flat = yaml.safe_load(out.read_text())
    assert "_BASE_" not in flat
    assert flat["SOLVER"] == {"BASE_LR": 0.02, "MAX_ITER": 130000}     # child overrides base
    assert flat["MODEL"]["META_ARCHITECTURE"] == "GeneralizedRCNN"      # mappings merge
    w = Path(flat["MODEL"]["WEIGHTS"])
    assert w.read_bytes() == b["model"].data
    assert Path(flat["MODEL"]["BOOTSTRAP_MODEL"]["WEIGHTS"]) == w       # densezoo://NAME
    emb = flat["MODEL"]["ROI_DENSEPOSE_HEAD"]["CSE"]["EMBEDDERS"]["smpl_27554"]
    assert Path(emb["INIT_FILE"]).read_bytes() == b["lbo"].data
    assert flat["DATASETS"]["EXTRA"] == "https://example.invalid/not/in/any/manifest.pkl"
    assert all(h.path.startswith("/zoo/") for h in server.requests)     # nothing else contacted


def test_dry_run_and_json_touch_no_network(zoo_files, tmp_path, cli, server):
    b, m = zoo_files
    cfg = write_configs(tmp_path, b)
    r = cli("--no-default-manifests", "--manifest", str(m), "config", str(cfg), "--dry-run",
            "--json")
    assert r.code == 0, r.err
    assert server.requests == []
    refs = {x["key"]: x for x in r.items}
    assert refs["MODEL.WEIGHTS"]["name"] == "model" and refs["MODEL.WEIGHTS"]["path"] is None
    assert refs["MODEL.WEIGHTS"]["strength"] is None          # nothing cached: no strength
    assert refs["MODEL.ROI_DENSEPOSE_HEAD.CSE.EMBEDDERS.smpl_27554.INIT_FILE"]["name"] == "lbo"
    assert refs["DATASETS.EXTRA"]["verified"] is False
    r = cli("--no-default-manifests", "--manifest", str(m), "config", str(cfg), "--strict")
    assert r.code == 9 and "example.invalid" in r.err


def test_a_2018_detectron_config_with_dead_hosts_and_a_tuple_string(zoo_files, tmp_path, cli):
    b, m = zoo_files
    cfg = tmp_path / "DensePose_ResNet50_FPN_s1x.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        MODEL: {{TYPE: generalized_rcnn}}
        TRAIN:
          WEIGHTS: {R50_LEGACY}
          DATASETS: ('dense_coco_2014_train',)
          PROPOSAL_FILES: ('{RPN_LEGACY}','{b['rpn_b'].url}')
        """))
    r = cli("--no-default-manifests", "--manifest", str(m), "config", str(cfg))
    assert r.code == 0, r.err
    flat = yaml.safe_load(r.out)
    assert Path(flat["TRAIN"]["WEIGHTS"]).read_bytes() == b["r50"].data
    files = flat["TRAIN"]["PROPOSAL_FILES"]
    assert files.startswith("('") and files.endswith("')")              # tuple syntax kept
    a, c = files[2:-2].split("','")
    assert Path(a).read_bytes() == b["rpn_a"].data and Path(c).read_bytes() == b["rpn_b"].data
    r = cli("--no-default-manifests", "--manifest", str(m), "fetch", "--config", str(cfg),
            "--json")
    assert r.code == 0 and {x["name"] for x in r.items} == {"r50", "rpn_a", "rpn_b"}


@pytest.mark.parametrize("case", ["cycle", "missing"])
def test_broken_base_chains_are_exit_7(case, tmp_path, cli):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text('_BASE_: "b.yaml"\n')
    b.write_text('_BASE_: "a.yaml"\n' if case == "cycle" else '_BASE_: "nowhere.yaml"\n')
    r = cli("config", str(a), "--dry-run")
    assert r.code == 7 and ("cycle" in r.err if case == "cycle" else "does not exist" in r.err)


# -- the iopath handler, with iopath's real PathManager ------------------------------------

@pytest.fixture
def handler(zoo_files, monkeypatch, tmp_path):
    from iopath.common.file_io import PathManager

    from densezoo import Zoo
    from densezoo.iopath import DensezooHandler

    b, m = zoo_files
    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "fvcore"))
    pm = PathManager()
    h = DensezooHandler(Zoo(manifests=[m], default_manifests=False))
    pm.register_handler(h, allow_override=True)
    return pm, b, m


def test_path_manager_serves_verified_files(handler):
    pm, b, _ = handler
    local = pm.get_local_path(b["model"].url)
    assert Path(local).read_bytes() == b["model"].data and "/files/" in local
    with pm.open(b["model"].url, "rb") as f:
        assert f.read() == b["model"].data
    assert pm.exists(b["model"].url) and pm.isfile(b["model"].url)
    assert Path(pm.get_local_path("densezoo://lbo")).read_bytes() == b["lbo"].data
    assert Path(pm.get_local_path("detectron2://ImageNetPretrained/MSRA/R-50.pkl")).read_bytes() \
        == b["r50"].data
    assert Path(pm.get_local_path(R50_LEGACY)).read_bytes() == b["r50"].data   # dead host
    with pytest.raises(Exception, match="read-only"):
        pm.open(b["model"].url, "wb")


def test_a_checksum_failure_raises_densezoos_error(handler, server):
    from densezoo.errors import DownloadFailedError

    pm, b, _ = handler
    server.fault(b["rpn_b"].path, "wrong_bytes", -1)
    with pytest.raises(DownloadFailedError) as e:
        pm.get_local_path(b["rpn_b"].url)
    assert e.value.exit_code == 4


def test_unlisted_urls_under_a_claimed_host_warn_or_are_refused(handler, server, monkeypatch):
    from densezoo import Zoo
    from densezoo.errors import PolicyError
    from densezoo.iopath import DensezooHandler, UnverifiedDownloadWarning

    pm, b, m = handler
    url = server.add("/zoo/extra.bin", b"not listed anywhere")
    with pytest.warns(UnverifiedDownloadWarning):
        assert Path(pm.get_local_path(url)).read_bytes() == b"not listed anywhere"
    strict = DensezooHandler(Zoo(manifests=[m], default_manifests=False, strict=True))
    with pytest.raises(PolicyError):
        strict._get_local_path(url)


def test_install_without_detectron2_says_so(zoo_files, monkeypatch):
    """Without detectron2, install() is a clear error; with it, tests/test_real_detectron2.py
    runs install() against detectron2's real PathManager and DetectionCheckpointer."""
    from densezoo import Zoo
    from densezoo.errors import DensezooError

    b, m = zoo_files
    import densezoo.integrations.detectron2 as dz

    for name in ["detectron2", *(k for k in sys.modules if k.startswith("detectron2."))]:
        monkeypatch.setitem(sys.modules, name, None)      # as if it was never installed
    with pytest.raises(DensezooError, match="detectron2 is not installed"):
        dz.install(Zoo(manifests=[m], default_manifests=False))


# -- seeding iopath's own cache ---------------------------------------------------------------

def test_a_seeded_cache_serves_iopath_with_every_connection_refused(zoo_files, tmp_path, cli,
                                                                    monkeypatch):
    from iopath.common.file_io import HTTPURLHandler

    b, m = zoo_files
    cfg = write_configs(tmp_path, b)
    seed = tmp_path / "iopath_cache"
    r = cli("--no-default-manifests", "--manifest", str(m), "config", str(cfg), "--seed-iopath",
            "--to", str(seed), "-o", str(tmp_path / "v.yaml"))
    assert r.code == 0, r.err
    r = cli("--no-default-manifests", "--manifest", str(m), "export", "uvsym", "r50", "--layout",
            "iopath", "--to", str(seed), "--link", "copy")
    assert r.code == 0, r.err
    # Air-gapped: every connection goes to a proxy that refuses it, and iopath's own
    # download function fails the test outright should it ever be reached.
    import urllib.request

    import iopath.common.file_io as fio

    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setattr(urllib.request, "_opener", None)     # rebuilt with the proxies above

    def no_download(url, *a, **k):
        raise AssertionError(f"iopath tried to download {url}")

    monkeypatch.setattr(fio, "download", no_download)
    monkeypatch.setenv("FVCORE_CACHE", str(seed))
    h = HTTPURLHandler()
    assert Path(h._get_local_path(b["model"].url)).read_bytes() == b["model"].data
    assert Path(h._get_local_path(LBO)).read_bytes() == b["lbo"].data           # CSE INIT_FILE
    assert Path(h._get_local_path(D2_R50)).read_bytes() == b["r50"].data        # detectron2://
    assert Path(h._get_local_path(UV_SYM)).read_bytes() == b["uvsym"].data      # runtime file
    with pytest.raises(AssertionError, match="tried to download"):
        h._get_local_path(b["rpn_b"].url)                 # not seeded: iopath would go online


def test_every_spelling_of_a_listed_url_is_served_verified(server, blob, manifest, tmp_path,
                                                           monkeypatch):
    """Issue 19.6, through iopath's real PathManager with its own HTTP handler registered
    first (as detectron2 does): host case, a trailing dot and an explicit default port
    used to reach iopath's handler and download unverified."""
    from iopath.common.file_io import HTTPURLHandler, PathManager

    from densezoo import Zoo
    from densezoo.iopath import DensezooHandler

    b = blob("spelled", 20_000)
    port = b.url.split("/")[2].split(":")[1]
    local = f"http://localhost:{port}{b.path}"
    published = "https://dl.fbaipublicfiles.com/densepose/spelled_model.pkl"
    m = manifest({"name": "spelled", "url": local, "md5": b.md5},
                 {"name": "remote", "url": published, "md5": None})
    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "fvcore"))
    pm = PathManager()
    pm.register_handler(HTTPURLHandler())
    pm.register_handler(DensezooHandler(Zoo(manifests=[m], default_manifests=False)),
                        allow_override=True)
    for spelling in (local, f"http://LOCALHOST:{port}{b.path}",
                     f"http://localhost.:{port}{b.path}"):
        got = pm.get_local_path(spelling)
        assert "/files/" in got and Path(got).read_bytes() == b.data, spelling
    assert pm.exists("https://dl.fbaipublicfiles.com:443/densepose/spelled_model.pkl")
    assert pm.exists("https://DL.fbaipublicfiles.com./densepose/spelled_model.pkl")
    assert not (tmp_path / "fvcore").exists()                 # iopath never downloaded
