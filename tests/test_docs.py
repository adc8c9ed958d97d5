"""Every densezoo command and Python example in README.md and docs/ is run, in order.

The shipped manifests point at dl.fbaipublicfiles.com and Dropbox; here a loopback
server acts as DENSEZOO_MIRROR and serves synthetic files (real pickles, tarballs,
JSON, md5 sidecars) at the same host/path keys, and HTTPS_PROXY points at a closed
local port, so anything the mirror lacked would fail here instead of leaving the
machine.  A line may end in `# exit N` to state its expected exit code.
"""

import hashlib
import io
import json
import pickle
import re
import shlex
import tarfile
from pathlib import Path

import pytest

from conftest import aws_env, run_cli
from densezoo.catalog import Catalog
from densezoo.urls import url_key

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")


def blocks(path: Path):
    lang, lines = None, []
    for line in path.read_text().splitlines():
        m = FENCE.match(line.strip())
        if m and lang is None:
            lang, lines = m.group(1) or "text", []
        elif line.strip() == "```" and lang is not None:
            yield lang, lines
            lang = None
        elif lang is not None:
            lines.append(line)


def commands(path: Path):
    """(argv, expected exit, python source) items in document order."""
    for lang, lines in blocks(path):
        if lang == "python":
            yield None, 0, "\n".join(lines)
            continue
        for line in lines:
            text = line.strip()
            if lang == "yaml":
                text = text[len("- run: "):] if text.startswith("- run: densezoo ") else ""
            if not text.startswith("densezoo "):
                continue
            m = re.search(r"#\s*exit (\d+)\s*$", text)
            yield shlex.split(text, comments=True)[1:], int(m.group(1)) if m else 0, None


def synthetic(art) -> bytes:
    name = art.file_name.lower()
    if name.endswith(".mat"):
        return b"MATLAB 5.0 MAT-file, synthetic " + art.name.encode()
    if name.endswith(".npy"):
        return b"\x93NUMPY synthetic " + art.name.encode()
    if name.endswith(".pkl"):              # a v1 checkpoint: convert and load_weights run
        import numpy as np

        blobs = {"conv1_w": np.arange(12, dtype=np.float32).reshape(3, 1, 2, 2)}
        return pickle.dumps({"blobs": blobs, "artifact": art.name}, protocol=2)
    if name.endswith((".tar.gz", ".tgz")):
        folder = "UV_data" if "uv" in name else "eval_data"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            data = art.name.encode()
            info = tarfile.TarInfo(f"{folder}/{art.name}.mat")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()
    return json.dumps({"artifact": art.name}).encode()


@pytest.fixture
def loopback_mirror(server, monkeypatch, tmp_path, moto_endpoint):
    # The v1 zoo, plus the detectron2 files that publish no md5 prefix (data, meshes,
    # LBO bases): synthetic bytes cannot match a published prefix.
    arts = [a for a in Catalog.load().artifacts
            if a.zoo == "densepose-v1" or (a.md5_prefix is None and a.md5 is None
                                           and a.sha256 is None)]
    for art in arts:
        data = synthetic(art)
        server.add("/mirror/" + "/".join(url_key(art.url)), data)
        if art.md5_url:
            server.add("/mirror/" + "/".join(url_key(art.md5_url)),
                       f"{hashlib.md5(data).hexdigest()}  {art.file_name}\n".encode())
    mine = b"my own artifact\n"
    server.add("/own/my.bin", mine)
    (tmp_path / "my.yaml").write_text(
        f"artifacts:\n  - {{name: mine, url: '{server.url('/own/my.bin')}', "
        f"md5: {hashlib.md5(mine).hexdigest()}, size: {len(mine)}}}\n")
    monkeypatch.setenv("DENSEZOO_MIRROR", server.url("/mirror/"))
    aws_env(monkeypatch, moto_endpoint, tmp_path)          # s3:// examples use the emulator
    import boto3

    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket="densezoo-mirror")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")      # closed port: fail locally
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.chdir(tmp_path)
    return server


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_every_documented_command_runs(doc, loopback_mirror):
    ran = 0
    for argv, expected, source in commands(doc):
        if source is not None:
            exec(compile(source, f"{doc.name}:python", "exec"), {})       # noqa: S102
        else:
            r = run_cli(*argv)
            assert r.code == expected, f"{doc.name}: densezoo {' '.join(argv)}\n{r.err}"
        ran += 1
    outside = [r.path for r in loopback_mirror.requests
               if not r.path.startswith(("/mirror/", "/own/"))]
    assert outside == []
    if doc.name not in ("benchmarks.md", "reliability.md", "manifest.md"):
        assert ran > 0, f"{doc.name} documents no command"
