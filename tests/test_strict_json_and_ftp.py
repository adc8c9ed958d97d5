"""Issue 33.10: ``.nan``/``.inf`` metrics made ``list --json`` print ``NaN``/``Infinity``,
which strict JSON parsers reject; ``ftp://`` was not claimed by densezoo's iopath
handler, so detectron2's PathManager downloaded it unverified with no warning."""

from __future__ import annotations

import json

import pytest

from conftest import entry


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def test_non_finite_metrics_are_null_in_json_with_a_note(manifest, blob, cli):
    b = blob("nan_metrics", 500)
    m = manifest(entry(b, metrics={"densepose": {"AP": float("nan"), "AP50": float("inf"),
                                                 "AP75": 0.5}}))
    for args in (("list", "--json"), ("info", "nan_metrics", "--json")):
        r = cli("--no-default-manifests", "--manifest", str(m), *args)
        assert r.code == 0, r.err
        doc = _strict(r.out)
        metrics = doc["items"][0]["metrics"]["densepose"]
        assert metrics == {"AP": None, "AP50": None, "AP75": 0.5}
        assert "non-finite" in r.err and "metrics.densepose.AP" in r.err, r.err


def test_ftp_urls_are_claimed_by_densezoo_s_path_handler(manifest, blob, tmp_path,
                                                         monkeypatch):
    pytest.importorskip("iopath", reason="iopath is not installed (the iopath extra)")
    from iopath.common.file_io import PathManager

    from densezoo import Zoo
    from densezoo.errors import PolicyError
    from densezoo.iopath import DensezooHandler, UnverifiedDownloadWarning

    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "fvcore"))
    m = manifest(entry(blob("ftp_neighbour", 100)))
    url = "ftp://127.0.0.1:9/densepose/model_final.pkl"        # a closed loopback port
    pm = PathManager()
    h = DensezooHandler(Zoo(manifests=[m], default_manifests=False))
    pm.register_handler(h, allow_override=True)
    assert pm._PathManager__get_path_handler(url) is h      # iopath picks ours, not its HTTP one
    with pytest.warns(UnverifiedDownloadWarning, match="not in any manifest"):
        with pytest.raises(Exception):          # nothing listens there: the download fails
            pm.get_local_path(url)
    strict = PathManager()
    strict.register_handler(DensezooHandler(Zoo(manifests=[m], default_manifests=False,
                                                strict=True)), allow_override=True)
    with pytest.raises(PolicyError, match="strict"):
        strict.get_local_path(url)
