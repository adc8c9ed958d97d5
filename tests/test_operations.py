"""Operating densezoo: cache management, export, offline, mirrors (real nginx), bundles."""

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

from conftest import entry
from test_extract import GOOD, tarball


def fetched(cli, m, *names):
    r = cli("--manifest", str(m), "fetch", *names)
    assert r.code == 0, r.err
    return r.out.split()


# -- cache ---------------------------------------------------------------------------------

def test_cache_ls_du_rm_keep_pins(cli, blob, manifest, cache_dir):
    a, b = blob("ca", 50_000), blob("cb", 70_000)
    m = manifest(entry(a), entry(b, md5=False, size=False))
    fetched(cli, m, "ca", "cb")
    rows = json.loads(cli("--manifest", str(m), "cache", "ls", "--json").out)
    assert {(r["name"], r["size"], r["state"]) for r in rows} == {
        ("ca", 50_000, "verified"), ("cb", 70_000, "pinned")}
    du = json.loads(cli("--manifest", str(m), "cache", "du", "--json").out)
    assert du["files"] == 2 and du["file_bytes"] == 120_000
    r = cli("--manifest", str(m), "cache", "rm", "cb", "--dry-run")
    assert r.code == 0 and "would remove" in r.out and cli("--manifest", str(m), "path",
                                                          "cb").code == 0
    assert cli("--manifest", str(m), "cache", "rm", "cb").code == 2     # no terminal, no -y
    assert cli("--manifest", str(m), "cache", "rm", "cb", "-y").code == 0
    assert cli("--manifest", str(m), "path", "cb").code == 6
    assert json.loads(cli("--manifest", str(m), "info", "cb", "--json").out)["pin"]["md5"] == b.md5


def test_cache_prune(cli, blob, manifest, cache_dir):
    a, gone = blob("keep"), blob("forgotten")
    m_all = manifest(entry(a), entry(gone))
    fetched(cli, m_all, "keep", "forgotten")
    m_keep = manifest(entry(a))
    files = cache_dir / "files"
    keep_path = Path(cli("--manifest", str(m_keep), "path", "keep").out.strip())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = keep_path.with_name(f"keep.bin.dzpart-{dead.pid}@{os.uname().nodename}.abcd1234")
    stale.write_bytes(b"x" * 10)
    (cache_dir / "bad" / "x").mkdir(parents=True)
    (cache_dir / "bad" / "x" / "old.bin").write_bytes(b"y")
    r = cli("--no-default-manifests", "--manifest", str(m_keep), "cache", "prune", "--json",
            "--dry-run")
    reasons = {Path(i["path"]).name: i["reason"] for i in json.loads(r.out)["items"]}
    assert reasons == {"forgotten.bin": "no loaded manifest names this file",
                       stale.name: "stale partial download",
                       "bad": "corrupt or unsafe copies kept aside"}
    assert cli("--no-default-manifests", "--manifest", str(m_keep), "cache", "prune",
               "-y").code == 0
    assert keep_path.read_bytes() == a.data and not stale.exists()
    assert [p.name for p in files.rglob("*.bin")] == ["keep.bin"]


# -- export --------------------------------------------------------------------------------

@pytest.mark.parametrize("link", ["symlink", "hardlink", "copy"])
def test_export_link_modes(link, cli, blob, manifest, tmp_path):
    b = blob("ex")
    m = manifest(entry(b))
    r = cli("--manifest", str(m), "export", "ex", "--to", str(tmp_path / "out"), "--link", link)
    assert r.code == 0, r.err
    dest = Path(r.out.strip())
    assert dest == tmp_path / "out" / "ex.bin" and dest.read_bytes() == b.data
    src = Path(cli("--manifest", str(m), "path", "ex").out.strip())
    assert dest.is_symlink() == (link == "symlink")
    assert os.path.samefile(dest, src) == (link != "copy")
    assert cli("--manifest", str(m), "export", "ex", "--to", str(tmp_path / "out"),
               "--link", link).code == 0          # idempotent


def test_export_refuses_to_overwrite_a_different_file(cli, blob, manifest, tmp_path):
    b = blob("ow")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "ow.bin").write_bytes(b"my own file")
    m = manifest(entry(b))
    r = cli("--manifest", str(m), "export", "ow", "--to", str(tmp_path / "out"))
    assert r.code == 1 and "--force" in r.err
    assert (tmp_path / "out" / "ow.bin").read_bytes() == b"my own file"
    assert cli("--manifest", str(m), "export", "ow", "--to", str(tmp_path / "out"),
               "--force").code == 0


def test_export_same_basenames_get_a_folder_each(cli, server, manifest, tmp_path):
    a = server.add("/r50/model_final.pkl", b"\x80\x02}q\x00.")       # tiny valid pickles
    x = server.add("/x101/model_final.pkl", b"\x80\x02]q\x00.")
    m = manifest({"name": "a", "url": a, "md5": hashlib.md5(b"\x80\x02}q\x00.").hexdigest()},
                 {"name": "x", "url": x, "md5": hashlib.md5(b"\x80\x02]q\x00.").hexdigest()})
    r = cli("--manifest", str(m), "export", "a", "x", "--to", str(tmp_path / "o"))
    assert sorted(r.out.split()) == [str(tmp_path / "o" / "a" / "model_final.pkl"),
                                     str(tmp_path / "o" / "x" / "model_final.pkl")]


def test_export_densepose_layout(cli, server, manifest, tmp_path):
    uv = tarball(GOOD)
    coco = b'{"images": []}'
    m = manifest({"name": "densepose_uv_data", "url": server.add("/d/uv.tar.gz", uv),
                  "md5": hashlib.md5(uv).hexdigest(), "kind": "data"},
                 {"name": "densepose_coco_2014_minival", "kind": "annotations",
                  "url": server.add("/d/densepose_coco_2014_minival.json", coco),
                  "md5": hashlib.md5(coco).hexdigest()})
    root = tmp_path / "DensePose"
    r = cli("--manifest", str(m), "export", "densepose_uv_data", "densepose_coco_2014_minival",
            "--to", str(root), "--layout", "densepose")
    assert r.code == 0, r.err
    assert (root / "DensePoseData/UV_data/UV_Processed.mat").read_bytes() == b"uv" * 1000
    assert (root / "DensePoseData/DensePose_COCO/densepose_coco_2014_minival.json"
            ).read_bytes() == coco


def test_hardlink_across_filesystems_falls_back_to_copy(cli, blob, manifest, tmp_path):
    mnt = tmp_path / "other-fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"this test mounts a tmpfs and needs root: {r.stderr}"
    try:
        b = blob("xdev")
        r = cli("--manifest", str(manifest(entry(b))), "export", "xdev", "--to", str(mnt),
                "--link", "hardlink")
        assert r.code == 0 and "copied because hardlinks are not possible" in r.err
        assert (mnt / "xdev.bin").read_bytes() == b.data
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# -- offline ---------------------------------------------------------------------------------

AUDIT = textwrap.dedent("""
    import sys
    connects = []
    sys.addaudithook(lambda ev, args: connects.append(args) if ev == "socket.connect" else None)
    from densezoo.cli import main
    try:
        main(sys.argv[1:])
    except SystemExit as e:
        code = e.code
    print("CONNECTS", len(connects), "EXIT", code, file=sys.stderr)
""")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_offline_never_opens_a_socket(how, blob, manifest, tmp_path):
    b = blob("nosock")
    m = manifest(entry(b))
    env = {"DENSEZOO_CACHE_DIR": str(tmp_path / "c"), "PATH": "/usr/bin:/bin"}
    args = ["--manifest", str(m), "fetch", "nosock", "ResNet50_FPN_s1x"]
    if how == "flag":
        args = ["--offline", *args]
    else:
        env["DENSEZOO_OFFLINE"] = "1"
    r = subprocess.run([sys.executable, "-c", AUDIT, *args], capture_output=True, text=True,
                       env=env, timeout=60)
    assert "CONNECTS 0 EXIT 6" in r.stderr and "offline mode is on" in r.stderr
    # the audit hook does see connections when there are some
    env.pop("DENSEZOO_OFFLINE", None)
    r = subprocess.run([sys.executable, "-c", AUDIT, "--manifest", str(m), "fetch", "nosock"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert "CONNECTS 1 EXIT 0" in r.stderr


# -- mirrors with a real nginx ---------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    def __init__(self, root: Path, work: Path) -> None:
        assert shutil.which("nginx"), "nginx is needed (Debian nginx-light; .ci/run installs it)"
        self.port = free_port()
        self.work = work
        (work / "tmp").mkdir(parents=True, exist_ok=True)
        self.log = work / "access.log"
        self.conf = work / "nginx.conf"
        self.conf.write_text(textwrap.dedent(f"""\
            worker_processes 1; user root; daemon on; pid {work}/nginx.pid;
            error_log {work}/error.log;
            events {{ worker_connections 64; }}
            http {{
              access_log {self.log};
              client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp;
              fastcgi_temp_path {work}/tmp; uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
              server {{ listen 127.0.0.1:{self.port}; root {root}; }}
            }}
            """))

    def start(self) -> None:
        subprocess.run(["nginx", "-c", str(self.conf)], check=True)
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)

    def stop(self) -> None:
        pid_file = self.work / "nginx.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                    time.sleep(0.05)
                except ProcessLookupError:
                    break

    def hits(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0


def test_mirror_build_serve_with_nginx_and_fall_back(cli, blob, manifest, server, tmp_path,
                                                     monkeypatch):
    b = blob("mirrored", 500_000)
    m = manifest(entry(b))
    fetched(cli, m, "mirrored")
    tree = tmp_path / "mirror"
    r = cli("--manifest", str(m), "mirror", "build", str(tree), "mirrored")
    assert r.code == 0, r.err
    for p in [tmp_path, *tree.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    mirror_manifest = json.dumps(open(r.out.strip()).read())
    assert b.md5 in mirror_manifest
    server.requests.clear()          # the fetch that filled the mirror does not count
    nginx = Nginx(tree, tmp_path / "nginx")
    nginx.start()
    try:
        monkeypatch.setenv("DENSEZOO_MIRROR", f"http://127.0.0.1:{nginx.port}/")
        fresh = str(tmp_path / "client-cache")
        r = cli("-v", "--cache-dir", fresh, "--manifest", str(m), "fetch", "mirrored")
        assert r.code == 0 and f"127.0.0.1:{nginx.port}" in r.err
        assert server.hits(b.path) == [] and nginx.hits() == 1     # upstream untouched
        nginx.stop()
        r = cli("--cache-dir", fresh, "--manifest", str(m), "fetch", "mirrored", "--force")
        assert r.code == 0 and len(server.hits(b.path)) == 1        # fell back to upstream
        nginx.start()
        before = nginx.hits()
        r = cli("--cache-dir", fresh, "--manifest", str(m), "fetch", "mirrored", "--force")
        assert r.code == 0 and len(server.hits(b.path)) == 2        # the failed mirror waits
        assert nginx.hits() == before
    finally:
        nginx.stop()


# -- bundles ---------------------------------------------------------------------------------

def test_bundle_and_import_round_trip(cli, blob, manifest, tmp_path, server):
    a, b = blob("ba", 80_000), blob("bb", 90_000)
    m = manifest(entry(a), entry(b, md5=False, size=False))
    fetched(cli, m, "ba", "bb")
    zoo_tar = tmp_path / "zoo.tar"
    assert cli("--manifest", str(m), "bundle", "ba", "bb", "-o", str(zoo_tar)).code == 0
    with tarfile.open(zoo_tar) as t:
        names = t.getnames()
    assert "densezoo-bundle.yaml" in names and "MD5SUMS" in names
    air = str(tmp_path / "airgapped")
    server.reset()                                                  # no network needed below
    r = cli("--cache-dir", air, "import", str(zoo_tar), "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert [x["action"] for x in out["artifacts"]] == ["imported", "imported"]
    r = cli("--offline", "--cache-dir", air, "--manifest", out["manifest"], "verify", "ba", "bb")
    assert r.code == 0 and r.out.count("ok") == 2
    assert server.requests == []


def test_tampered_bundle_is_refused_per_file(cli, blob, manifest, tmp_path):
    a = blob("tam", 60_000)
    m = manifest(entry(a))
    fetched(cli, m, "tam")
    zoo_tar = tmp_path / "zoo.tar"
    cli("--manifest", str(m), "bundle", "tam", "-o", str(zoo_tar))
    data = bytearray(zoo_tar.read_bytes())
    i = data.find(a.data[:64])
    data[i + 10] ^= 0xFF
    zoo_tar.write_bytes(bytes(data))
    air = tmp_path / "air"
    r = cli("--cache-dir", str(air), "import", str(zoo_tar))
    assert r.code == 4 and "md5 mismatch" in r.err
    assert not [p for p in (air / "files").rglob("*") if p.is_file()]


# -- doctor, completion ----------------------------------------------------------------------

def test_doctor(cli, tmp_path):
    r = cli("doctor", "--json")
    d = json.loads(r.out)
    assert r.code == 0 and d["ok"]
    assert {c["name"] for c in d["checks"]} >= {"versions", "cache dir", "free space",
                                                "manifests", "environment"}
    (tmp_path / "a-file").write_text("not a dir")
    r = cli("--cache-dir", str(tmp_path / "a-file" / "cache"), "doctor")
    assert r.code == 1 and "FAIL  cache dir" in r.out


def test_completion_scripts_and_artifact_names(cli, tmp_path):
    for shell in ("bash", "zsh", "fish"):
        r = cli("completion", shell)
        assert r.code == 0 and "_DENSEZOO_COMPLETE" in r.out
    env = {"_DENSEZOO_COMPLETE": "bash_complete", "COMP_WORDS": "densezoo fetch ResNet101_FPN_32",
           "COMP_CWORD": "2", "DENSEZOO_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "densezoo"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert "ResNet101_FPN_32x8d_s1x" in r.stdout and "ResNet101_FPN_32x8d_s1x-e2e" in r.stdout


def _handmade_bundle(path: Path, files: dict[str, bytes], entries: list[dict]) -> None:
    """A bundle as an attacker would write it: its own manifest and checksums all agree."""
    import io as _io

    import yaml

    with tarfile.open(path, "w") as t:
        for arc, data in {**files, "densezoo-bundle.yaml": yaml.safe_dump(
                {"schema": 1, "zoo": "bundle", "artifacts": entries}).encode()}.items():
            info = tarfile.TarInfo(arc)
            info.size = len(data)
            t.addfile(info, _io.BytesIO(data))


def test_self_consistent_bundle_with_a_hostile_pickle_is_refused(cli, tmp_path):
    """Bundle import goes through the same intake as a download, pickle scan included."""
    from test_pickle_scan import Planted

    import pickle

    evil = pickle.dumps({"model": Planted()}, protocol=2)
    url = "https://dl.fbaipublicfiles.com/densepose/evil_model.pkl"
    zoo_tar = tmp_path / "evil.tar"
    _handmade_bundle(zoo_tar, {"files/dl.fbaipublicfiles.com/densepose/evil_model.pkl": evil},
                     [{"name": "evil_model", "url": url, "md5": hashlib.md5(evil).hexdigest(),
                       "size": len(evil)}])
    air = tmp_path / "air"
    r = cli("--cache-dir", str(air), "import", str(zoo_tar))
    assert r.code == 9 and "unsafe pickle" in r.err and ".system" in r.err, r.err
    assert not [p for p in (air / "files").rglob("*") if p.is_file()]     # nothing added
    kept = [p for p in (air / "bad").rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in kept] == [evil]                        # kept as evidence
