"""Issue 35.3: ``densezoo convert NAME|PATH --to safetensors`` and ``config --safetensors``.

The conversion is written with the real ``safetensors`` package and kept only after it
reads back bit-exact; a deliberately corrupted conversion (a byte flipped after the
write) is caught by that proof and nothing is kept.
"""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest
import yaml

import densezoo
from checkpoints import detectron2_checkpoint, formats, py3_pickle
from densezoo.api import Zoo
from densezoo.content import safetensors_file
from densezoo.content.safetensors_file import ConversionError, read_safetensors
from densezoo.content.weights import read_weights
from test_load_weights import assert_identical

FORMATS = formats()


@pytest.mark.parametrize("fmt", ["detectron2-p2", "detectron2-p5", "detectron-v1-py2",
                                 "caffe2-imagenet-py2"])
def test_a_converted_file_holds_every_tensor_and_the_metadata(tmp_path, fmt, cli):
    pkl = tmp_path / "model_final_abcdef.pkl"
    pkl.write_bytes(FORMATS[fmt])
    r = cli("convert", str(pkl), "--json")
    assert r.code == 0, r.err
    item = r.json["items"][0]
    out = tmp_path / "model_final_abcdef.safetensors"
    assert item["path"] == str(out) and not item["stored"]
    assert item["source_sha256"] == hashlib.sha256(FORMATS[fmt]).hexdigest()
    source, back = read_weights(pkl), read_safetensors(out)
    assert back.layout == source.layout and back.meta == source.meta
    for name, a in source.tensors.items():
        b = back.tensors[name]
        assert (b.dtype, b.shape, b.tobytes()) == (a.dtype, a.shape, a.tobytes()), name
    assert_identical(back.data, source.data)
    assert_identical(densezoo.load_weights(out).data, source.data)


def test_the_header_keeps_detectron2s_metadata_and_the_source_hash(tmp_path):
    from safetensors import safe_open

    pkl = tmp_path / "m.pkl"
    pkl.write_bytes(py3_pickle(detectron2_checkpoint(heuristics=True), 4))
    result = Zoo(manifests=[], default_manifests=False).convert(str(pkl),
                                                                output=tmp_path / "o.st")
    with safe_open(str(result.path), framework="np") as f:
        header = f.metadata()
    assert header["__author__"] == "Detectron2 Model Zoo"
    assert header["matching_heuristics"] == "true"
    assert header["densezoo.source_sha256"] == hashlib.sha256(pkl.read_bytes()).hexdigest()


def test_a_corrupted_conversion_fails_the_round_trip_and_nothing_is_kept(tmp_path, monkeypatch,
                                                                         cli):
    pkl = tmp_path / "m.pkl"
    pkl.write_bytes(py3_pickle(detectron2_checkpoint(), 4))
    real_write = safetensors_file.write_safetensors

    def write_then_flip_a_byte(weights, out, **kw):
        real_write(weights, out, **kw)
        with open(out, "r+b") as f:            # the last byte: inside the last tensor's data
            f.seek(-1, 2)
            last = f.read(1)
            f.seek(-1, 2)
            f.write(bytes([last[0] ^ 0x40]))

    monkeypatch.setattr(safetensors_file, "write_safetensors", write_then_flip_a_byte)
    r = cli("convert", str(pkl), "-o", str(tmp_path / "out.safetensors"))
    assert r.code == 1 and "did not read back exact" in r.err and "bytes read back" in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pkl"]      # no file, no temp


def test_what_safetensors_cannot_hold_is_refused_by_name(tmp_path, cli):
    pkl = tmp_path / "m.pkl"
    pkl.write_bytes(pickle.dumps({"model": {"w": np.ones(2, np.float32),
                                            "names": np.array(["a", 1], dtype=object)},
                                  "__author__": "x"}, protocol=2))
    r = cli("convert", str(pkl))
    assert r.code == 1 and "cannot hold 1 of its tensors: names (object)" in r.err
    assert not (tmp_path / "m.safetensors").exists()


def test_a_hostile_pickle_is_refused_and_nothing_runs(tmp_path, cli):
    marker = tmp_path / "ran"
    pkl = tmp_path / "m.pkl"
    cmd = f"touch {marker}".encode()
    pkl.write_bytes(b"cposix\nsystem\n(S'" + cmd + b"'\ntR.")
    r = cli("convert", str(pkl))
    assert r.code == 9 and "posix.system" in r.err
    assert not marker.exists() and not (tmp_path / "m.safetensors").exists()


@pytest.fixture
def served_model(server, manifest):
    data = py3_pickle(detectron2_checkpoint(heuristics=True), 2)
    url = server.add("/densepose/m/1/model_final_abcdef.pkl", data)
    m = manifest({"name": "tiny_model", "url": url, "kind": "model",
                  "md5": hashlib.md5(data).hexdigest(), "size": len(data)})
    return {"data": data, "url": url, "manifest": m}


def test_a_name_is_converted_into_the_store_with_a_record_of_its_source(served_model, cli,
                                                                       cache_dir):
    only = ("--no-default-manifests", "--manifest", str(served_model["manifest"]))
    r = cli(*only, "convert", "tiny_model", "--json")
    assert r.code == 0, r.err
    item = r.json["items"][0]
    sha = hashlib.sha256(served_model["data"]).hexdigest()
    assert item["stored"] and item["name"] == "tiny_model" and item["source_sha256"] == sha
    out = item["path"]
    assert out.startswith(str(cache_dir / "derived")) and out.endswith(".safetensors")
    record = json.loads(open(out + ".dzmeta").read())
    assert record["source_sha256"] == sha and record["source"] == "tiny_model"
    again = cli(*only, "convert", "tiny_model", "--json").json["items"][0]
    assert again["reused"] and again["path"] == out


def test_config_safetensors_points_model_weights_at_the_conversion(served_model, cli, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"MODEL": {"WEIGHTS": served_model["url"]}}))
    out = tmp_path / "out.yaml"
    only = ("--no-default-manifests", "--manifest", str(served_model["manifest"]))
    r = cli(*only, "config", str(cfg), "--safetensors", "-o", str(out), "--json")
    assert r.code == 0, r.err
    weights = yaml.safe_load(out.read_text())["MODEL"]["WEIGHTS"]
    assert weights.endswith(".safetensors") and r.json["summary"]["safetensors"] == weights
    back = read_safetensors(weights)
    source = read_weights(__import__("io").BytesIO(served_model["data"]))
    assert_identical(back.data, source.data)


def test_config_safetensors_refuses_weights_no_manifest_lists(served_model, cli, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"MODEL": {"WEIGHTS": "/somewhere/local.pkl"}}))
    only = ("--no-default-manifests", "--manifest", str(served_model["manifest"]))
    r = cli(*only, "config", str(cfg), "--safetensors")
    assert r.code == 2 and "MODEL.WEIGHTS" in r.err and "densezoo convert PATH" in r.err


def test_convert_raises_a_conversion_error_for_an_unknown_layout(tmp_path):
    pkl = tmp_path / "m.pkl"
    pkl.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ConversionError, match="holds a list"):
        Zoo(manifests=[], default_manifests=False).convert(str(pkl))
