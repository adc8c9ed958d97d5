"""S3-compatible object storage as a mirror, against a real S3-API server on 127.0.0.1.

The server is moto's standalone server (``python -m moto.server``), an S3 emulator
speaking real HTTP, started and stopped here; boto3 signs, densezoo's own HTTP
downloader fetches the presigned URLs.  The mirror's index.html is checked in a real
headless Chromium, served by a real nginx.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import aws_env, entry, need_tool, start_moto


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3(monkeypatch, tmp_path, moto_endpoint):
    """The moto S3 server, credentials and endpoint in the environment, a fresh bucket."""
    import uuid

    import boto3

    aws_env(monkeypatch, moto_endpoint, tmp_path)
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    bucket = f"zoo-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    client.bucket = bucket
    return client


def dead_url(path: str) -> str:
    return f"http://127.0.0.1:{free_port()}{path}"


def test_mirror_build_to_a_bucket_and_fetch_from_it(s3, blob, manifest, cli, tmp_path,
                                                    monkeypatch, server):
    b, c = blob("s3a", 300_000), blob("s3b", 200_000)
    m = manifest(entry(b), entry(c, md5=False, size=False))
    assert cli("--manifest", str(m), "fetch", "s3a", "s3b").code == 0
    r = cli("--manifest", str(m), "mirror", "build", f"s3://{s3.bucket}/densezoo", "s3a", "s3b",
            "--json")
    assert r.code == 0, r.err
    built = r.json
    assert built["summary"]["manifest"] == f"s3://{s3.bucket}/densezoo/densezoo-mirror.yaml"
    assert sorted(x["name"] for x in built["items"] if x["state"] == "written") == ["s3a", "s3b"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3.bucket)["Contents"]}
    host = b.url.split("/")[2].replace(":", "_")
    assert {f"densezoo/{host}{b.path}", "densezoo/index.html",
            "densezoo/densezoo-mirror.yaml"} <= keys
    head = s3.head_object(Bucket=s3.bucket, Key=f"densezoo/{host}{b.path}")
    assert head["Metadata"]["md5"] == b.md5
    r = cli("--manifest", str(m), "mirror", "build", f"s3://{s3.bucket}/densezoo", "s3a", "s3b",
            "--json")
    assert sorted(x["name"] for x in r.items if x["state"] == "unchanged") == ["s3a", "s3b"]     # not uploaded again
    # A node with only the bucket: upstream is down.
    server.files.clear()
    monkeypatch.setenv("DENSEZOO_MIRROR", f"s3://{s3.bucket}/densezoo")
    node = str(tmp_path / "node-cache")
    r = cli("--cache-dir", node, "--manifest", str(m), "fetch", "s3a", "s3b", "--json", "-j", "2")
    assert r.code == 0, r.err
    rows = {x["name"]: x for x in r.items}
    assert Path(rows["s3a"]["path"]).read_bytes() == b.data
    assert Path(rows["s3b"]["path"]).read_bytes() == c.data and rows["s3b"]["strength"] == "copy-pinned"
    text = r.out + r.err + "".join(p.read_text(errors="replace") for p in Path(node).rglob("*")
                                   if p.is_file())
    assert "Signature=***" in text or "X-Amz-Signature=***" in text
    assert "s3cretkey" not in text and "densezoo-test" not in text      # no credential leaks


def test_multipart_upload_for_large_files(s3, blob, manifest, cli, monkeypatch):
    import densezoo.download.s3 as s3mod

    monkeypatch.setattr(s3mod, "MULTIPART_THRESHOLD", 5 << 20)          # S3's minimum part
    b = blob("s3big", 12 << 20)
    m = manifest(entry(b))
    r = cli("--manifest", str(m), "mirror", "build", f"s3://{s3.bucket}/big", "s3big")
    assert r.code == 0, r.err
    host = b.url.split("/")[2].replace(":", "_")
    head = s3.head_object(Bucket=s3.bucket, Key=f"big/{host}{b.path}")
    assert "-" in head["ETag"] and head["ContentLength"] == len(b.data)   # a multipart ETag


@pytest.mark.parametrize("fault, needle", [
    ("wrong-credentials", "AWS_ACCESS_KEY_ID"),
    ("missing-bucket", "no such bucket"),
    ("missing-object", "not in the bucket"),
    ("endpoint-down", "AWS_ENDPOINT_URL"),
])
def test_bucket_faults_fall_back_or_explain(fault, needle, s3, blob, manifest, cli, monkeypatch,
                                            server):
    b = blob(f"f-{fault}", 50_000)
    m = str(manifest(entry(b)))
    mirror = f"s3://{s3.bucket}/empty"
    if fault == "wrong-credentials":
        # moto cannot check presigned signatures (its auth mode answers 500 to them), so an
        # endpoint that answers 403 to every presigned GET stands in for the refusing bucket.
        host = b.url.split("/")[2].replace(":", "_")
        server.fault(f"/{s3.bucket}/empty/{host}{b.path}", "status", -1, code=403)
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url(""))
    if fault == "missing-bucket":
        mirror = "s3://no-such-bucket/p"
    if fault == "endpoint-down":
        monkeypatch.setenv("AWS_ENDPOINT_URL", dead_url(""))
    r = cli("--mirror", mirror, "--manifest", m, "fetch", b.name)
    assert r.code == 0, r.err                                   # upstream served it
    server.files.clear()                                         # now the bucket is all there is
    r = cli("--mirror", mirror, "--manifest", m, "fetch", b.name, "--force")
    assert r.code == 5 and needle in r.err, r.err
    assert r.err.count("error:") == 1


def test_uploading_with_wrong_credentials_is_one_clear_line(s3, blob, manifest, cli,
                                                            monkeypatch):
    proc, endpoint = start_moto(auth=True)         # checks signatures, knows no key: 403
    try:
        b = blob("s3denied")
        m = str(manifest(entry(b)))
        assert cli("--manifest", m, "fetch", b.name).code == 0
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        r = cli("--manifest", m, "mirror", "build", f"s3://{s3.bucket}/x", b.name)
        assert r.code == 5 and "AWS_ACCESS_KEY_ID" in r.err and r.err.count("\n") == 1, r.err
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_without_boto3_an_s3_mirror_is_one_line_exit_2(blob, manifest, cli, monkeypatch):
    b = blob("noboto")
    monkeypatch.setitem(sys.modules, "boto3", None)
    r = cli("--mirror", "s3://zoo-mirror/p", "--manifest", str(manifest(entry(b))), "fetch",
            b.name)
    assert r.code == 2 and "pip install 'densezoo[s3]'" in r.err and r.err.count("\n") == 1
    assert cli("--mirror", "s3://zoo-mirror/p", "--manifest", str(manifest(entry(b))), "mirror", "build",
               "s3://zoo-mirror/p", b.name).code == 2


def test_a_bad_s3_mirror_setting_is_exit_2(cli, monkeypatch):
    monkeypatch.setenv("DENSEZOO_MIRROR", "s3://a/p")              # bucket names are 3+ chars
    r = cli("list")
    assert r.code == 2 and "DENSEZOO_MIRROR" in r.err


# -- the browsable page --------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-default-apps", "--disable-extensions",
                  "--proxy-server=http://127.0.0.1:9",        # nothing but loopback can be reached
                  "--disable-dev-shm-usage"]


def chromium() -> str:
    return need_tool("chromium", "chromium-browser")


def served_tree(cli, m, tmp_path, extra: dict[str, str] | None = None):
    """``mirror build --all`` into a tree nginx (another user) can read; a started Nginx."""
    from test_mirror_nginx import Nginx

    tree = tmp_path / "tree"
    r = cli("--no-default-manifests", "--manifest", str(m), "mirror", "build", str(tree),
            "--all", "--link", "copy")
    assert r.code == 0, r.err
    for name, text in (extra or {}).items():
        (tree / name).write_text(text)
    for p in [tmp_path, *tree.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    nginx = Nginx(tree, tmp_path / "nginx")
    nginx.start()
    return tree, nginx


def test_index_page_lists_filters_and_plots_in_a_real_browser(blob, manifest, cli, tmp_path, chromium_bin, nginx_bin,
                                                              server):
    import hashlib
    import pickle

    arts = []
    for i, (ap, speed) in enumerate(((65.3, 0.066), (67.6, 0.083), (54.9, 0.051))):
        data = pickle.dumps({"model": f"m{i}"})
        url = server.add(f"/d2/model_{i}.pkl", data)
        arts.append({"name": f"dp_model_{i}", "url": url, "md5": hashlib.md5(data).hexdigest(),
                     "kind": "model", "description": "<script>alert('x')</script> model",
                     "metrics": {"densepose": {"GPSm": ap}, "speed": {"inference_s_per_im": speed}}})
    other = blob("annotations_minival")
    arts.append(entry(other, kind="annotations"))
    m = manifest(*arts, zoo="detectron2")
    tree, nginx = served_tree(cli, m, tmp_path)
    html = (tree / "index.html").read_text()
    assert "<script>alert" not in html                              # descriptions are escaped
    try:
        base = f"http://127.0.0.1:{nginx.port}/index.html"
        dom = subprocess.run([chromium(), *CHROMIUM_FLAGS, "--dump-dom", base],
                             capture_output=True, text=True, timeout=60).stdout
        assert dom.count('<tr data-name="') == 4 and 'class="hidden"' not in dom
        assert "4 of 4 artifacts" in dom and dom.count("<circle") == 3      # the chart
        assert "dp_model_1: AP 67.6 (AP (GPSm)), 0.083 s/im" in dom
        dom = subprocess.run([chromium(), *CHROMIUM_FLAGS, "--dump-dom", base + "#q=model_1"],
                             capture_output=True, text=True, timeout=60).stdout
        assert "1 of 4 artifacts" in dom                           # the filter narrows it
        visible = [row for row in dom.split("<tr data-name=")[1:] if 'class="hidden"' not in
                   row.split(">")[0]]
        assert len(visible) == 1 and visible[0].startswith('"dp_model_1"')
        shot = tmp_path / "index.png"                               # kept as an artifact
        subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--screenshot={shot}",
                        "--window-size=1200,1000", base], capture_output=True, timeout=60)
        assert shot.exists() and shot.stat().st_size > 10_000
    finally:
        nginx.stop()


PROBE = """<!doctype html><html><body><pre id=out>pending</pre>
<iframe id=wide src="index.html#q=R_101" style="width:1400px;height:900px;border:0"></iframe>
<iframe id=narrow src="index.html" style="width:800px;height:900px;border:0"></iframe>
<script>
function lines(el){if(el.offsetParent===null) return 0;
  var rg=el.ownerDocument.createRange(); rg.selectNodeContents(el);
  var tops={}; [].forEach.call(rg.getClientRects(),function(r){if(r.width>0)tops[Math.round(r.top)]=1;});
  return Object.keys(tops).length;}
function measure(f){var d=f.contentDocument, w=d.documentElement.clientWidth;
  var rows=[].slice.call(d.querySelectorAll('tbody tr')).filter(function(r){
    return !r.classList.contains('hidden');});
  return {width:w,
    hashLines:[].map.call(d.querySelectorAll('.hash'),lines),
    zooLines:[].map.call(d.querySelectorAll('td.nw'),lines),
    tableRight:Math.round(d.getElementById('artifacts').getBoundingClientRect().right),
    fetchShown:rows.map(function(r){return [].some.call(r.querySelectorAll('code'),function(c){
      var b=c.getBoundingClientRect(); return c.offsetParent!==null && c.textContent.indexOf(
      'densezoo fetch')===0 && b.right<=w && b.width>0;});}),
    visibleRows:rows.length,
    hiddenMarks:d.querySelectorAll('#chart .hidden').length,
    marks:d.querySelectorAll('#chart [data-name]').length,
    use:d.getElementById('mirror-url').textContent};}
window.onload=function(){var o=document.getElementById('out');
  try{o.textContent=JSON.stringify({wide:measure(document.getElementById('wide')),
    narrow:measure(document.getElementById('narrow'))});}catch(e){o.textContent='ERROR '+e;}};
</script></body></html>"""


def test_index_page_layout_at_1400_and_800_px(manifest, cli, tmp_path, chromium_bin, nginx_bin,
                                              server):
    """Issue 25.4: hashes never wrap mid-hash, zoo names never wrap, the fetch command is
    on screen at 800 px, #q= filters the chart too, and the page shows the URL to put in
    DENSEZOO_MIRROR.  Screenshots at both widths are kept beside the test's tmp files."""
    import hashlib
    import pickle

    arts = []
    names = ("densepose_rcnn_R_101_FPN_DL_WC2M_s1x", "densepose_rcnn_R_50_FPN_s1x",
             "densepose_rcnn_R_101_FPN_s1x_legacy")
    for i, (name, ap, speed) in enumerate(zip(names, (66.1, 65.3, 64.0), (0.1, 0.07, 0.09))):
        data = pickle.dumps({"model": name})
        url = server.add(f"/d2/{name}.pkl", data)
        arts.append({"name": name, "url": url, "md5": hashlib.md5(data).hexdigest(),
                     "kind": "model", "description": "a DensePose R-CNN with a long description "
                     "that wraps inside its own cell",
                     "metrics": {"densepose": {"GPSm": ap}, "speed": {"inference_s_per_im": speed}}})
    m = manifest(*arts, zoo="densepose/v1")
    _, nginx = served_tree(cli, m, tmp_path, {"probe.html": PROBE})
    try:
        base = f"http://127.0.0.1:{nginx.port}/"
        dom = subprocess.run([chromium(), *CHROMIUM_FLAGS, "--virtual-time-budget=5000",
                              "--dump-dom", base + "probe.html"],
                             capture_output=True, text=True, timeout=60).stdout
        out = dom.split("<pre id=\"out\">", 1)[1].split("</pre>", 1)[0]
        assert not out.startswith(("ERROR", "pending")), out
        got = json.loads(out.replace("&amp;", "&"))
        for width, m in got.items():
            assert all(n <= 1 for n in m["hashLines"]), (width, m["hashLines"])
            assert all(n <= 1 for n in m["zooLines"]), (width, m["zooLines"])
            assert all(m["fetchShown"]), (width, m)
            assert m["tableRight"] <= m["width"], (width, m)
            assert m["use"] == f"DENSEZOO_MIRROR=http://127.0.0.1:{nginx.port}", m["use"]
        assert got["wide"]["visibleRows"] == 2 and got["wide"]["hiddenMarks"] == 1
        assert got["narrow"]["visibleRows"] == 3 and got["narrow"]["hiddenMarks"] == 0
        for w in (1400, 800):
            shot = tmp_path / f"index-{w}.png"
            subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--screenshot={shot}",
                            f"--window-size={w},1000", base + "index.html"],
                           capture_output=True, timeout=60)
            assert shot.exists() and shot.stat().st_size > 10_000
            if os.environ.get("SCREENSHOTS_TO"):
                shutil.copy(shot, os.environ["SCREENSHOTS_TO"])
    finally:
        nginx.stop()
