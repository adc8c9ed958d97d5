"""Issue 39.3 and 39.4: long operations show progress on a terminal (none when piped),
and the messages of an interrupted verify and of an unpack that runs out of space say
what happened.

The operations run as the real CLI under ``tests/inject.py slow-progress`` (each
progress step waits a little), so small test files take long enough for a bar to be
drawn or for a signal to land mid-operation.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from conftest import entry, run_in_pty

INJECT = Path(__file__).with_name("inject.py")
SIZE = 12 << 20                     # three 4 MiB hashing buffers


def slow(*args: str) -> list[str]:
    return [sys.executable, str(INJECT), "slow-progress", "--", *args]


def frames(text: str) -> list[str]:
    """Every line rich drew, cursor moves and erasures removed."""
    text = text.replace("\x1b[2K", "\n").replace("\r", "\n")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    return [ln for ln in text.split("\n") if ln.strip()]


def serve_uv_archive(server, manifest, data: bytes) -> str:
    """densepose_uv_data as a .tar.gz holding ``data`` as one file; the manifest's path."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("UV_data/UV_Processed.mat")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    url = server.add("/densepose/densepose_uv_data.tar.gz", buf.getvalue())
    return str(manifest({"name": "densepose_uv_data", "url": url,
                         "md5": hashlib.md5(buf.getvalue()).hexdigest()}))


def big_blob(blob, name: str):
    return blob(name, SIZE)


def test_verify_draws_a_named_hashing_bar_on_a_terminal_within_80_columns(
        blob, manifest, cli, tmp_path):
    b = big_blob(blob, "densepose_verify_bar")
    m = str(manifest(entry(b, aliases=["vbar"])))
    assert cli("--manifest", m, "fetch", b.name).code == 0
    env = {**os.environ, "TERM": "xterm", "DZ_SLOW": "0.1"}
    code, out = run_in_pty(slow("--manifest", m, "verify", b.name), env, columns=80)
    assert code == 0, out[-500:]
    lines = frames(out)
    bars = [ln for ln in lines if "/12.0 MiB" in ln]
    assert bars, lines[-20:]
    for bar in bars:
        assert len(bar) <= 80, bar
        assert bar.startswith("hash vbar "), bar
    assert any(ln.startswith("ok") and b.name in ln for ln in lines)
    assert lines[-1] == "1 verified", lines[-5:]                # the one-line summary


def test_verify_piped_draws_no_bar(blob, manifest, cli):
    b = big_blob(blob, "densepose_verify_piped")
    m = str(manifest(entry(b)))
    assert cli("--manifest", m, "fetch", b.name).code == 0
    r = subprocess.run(slow("--manifest", m, "verify", b.name), capture_output=True,
                       text=True, env={**os.environ, "DZ_SLOW": "0.02"}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "MiB/" not in r.stderr and "\x1b[" not in r.stderr and "━" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == "1 verified", r.stderr


def test_fetch_extract_draws_an_unpack_bar(server, manifest, tmp_path):
    m = serve_uv_archive(server, manifest, os.urandom(6 << 20))
    env = {**os.environ, "TERM": "xterm", "DZ_SLOW": "0.3",
           "DENSEZOO_CACHE_DIR": str(tmp_path / "c")}        # ~2 s to unpack
    code, out = run_in_pty(slow("--manifest", m, "fetch", "densepose_uv_data", "--extract"),
                           env, columns=80)
    assert code == 0, out[-500:]
    bars = [ln for ln in frames(out) if ln.startswith("unpack densepose_uv_data ")]
    assert bars and all(len(b) <= 80 and "/6.0 MiB" in b for b in bars), frames(out)[-10:]


def test_ctrl_c_in_verify_says_verify_was_interrupted_not_partials(blob, manifest, cli,
                                                                  cache_dir):
    b = big_blob(blob, "densepose_verify_int")
    m = str(manifest(entry(b)))
    assert cli("--manifest", m, "fetch", b.name).code == 0
    p = subprocess.Popen(slow("--manifest", m, "verify", b.name), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "DZ_SLOW": "0.5"})             # ~6 s to hash
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert err.count("error:") == 1 and "verify interrupted" in err, err
    assert "partial" not in err and "no file was changed" in err
    assert Path(cli("--manifest", m, "path", b.name).out.strip()).read_bytes() == b.data


def test_unpack_out_of_space_says_unpack_and_names_archive_and_size(server, manifest,
                                                                   tmpfs):
    disk = tmpfs("2m")
    m = serve_uv_archive(server, manifest, bytes(3 << 20))   # zeros: a 3 KiB archive
    env = {**os.environ, "DENSEZOO_CACHE_DIR": str(disk / "cache")}
    for extra in ((), ("--no-space-check",)):
        r = subprocess.run([sys.executable, "-m", "densezoo", "--manifest", m, "fetch",
                            "densepose_uv_data", "--extract", *extra],
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 8, r.stderr
        (error,) = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert "unpack" in error and "densepose_uv_data.tar.gz" in error, error
        assert str(3 << 20) in error, error                # the space it takes
        assert "download" not in error and ".dztmp-" not in error, error
        assert "extracted/127.0.0.1" in error, error          # the folder that stays
        left = [p for p in (disk / "cache").rglob("*") if ".dztmp-" in p.name]
        assert left == []


SHARE = {   # command -> (its arguments after the artifact's name, what its bar says)
    "bundle": (lambda tmp: ["bundle", "{name}", "-o", str(tmp / "b.tar")], "copy"),
    "export": (lambda tmp: ["export", "{name}", "--to", str(tmp / "x"), "--link", "copy"],
               "copy"),
    "mirror build": (lambda tmp: ["mirror", "build", str(tmp / "m"), "{name}", "--link",
                                  "copy"], "copy"),
    "import": (lambda tmp: ["import", str(tmp / "b.tar")], "import"),
}


@pytest.mark.parametrize("command", list(SHARE))
def test_share_commands_draw_a_named_bar_on_a_terminal_and_none_piped(command, blob,
                                                                      manifest, cli,
                                                                      tmp_path):
    b = blob(f"densepose_{command.split()[0]}_bar", 6 << 20)
    m = str(manifest(entry(b, aliases=["sbar"])))
    assert cli("--manifest", m, "fetch", b.name).code == 0
    env = {**os.environ, "TERM": "xterm", "DZ_SLOW": "0.3"}           # ~2 s to copy
    if command == "import":
        assert cli("--manifest", m, "bundle", b.name, "-o", str(tmp_path / "b.tar")).code == 0
        env["DENSEZOO_CACHE_DIR"] = str(tmp_path / "other-cache")    # imports into it
    args, verb = SHARE[command]
    argv = [a.format(name=b.name) for a in args(tmp_path)]
    code, out = run_in_pty(slow("--manifest", m, *argv), env, columns=80)
    assert code == 0, out[-500:]
    bars = [ln for ln in frames(out) if "/6.0 MiB" in ln]
    assert bars, frames(out)[-10:]
    shown = b.name if command == "import" else "sbar"     # a bundle carries no aliases
    assert all(len(bar) <= 80 and bar.startswith(f"{verb} {shown} ") for bar in bars), bars
    if command == "import":
        env["DENSEZOO_CACHE_DIR"] = str(tmp_path / "third-cache")
    else:
        argv = [a.format(name=b.name) for a in args(tmp_path / "piped")]
        (tmp_path / "piped").mkdir()
    r = subprocess.run(slow("--manifest", m, *argv), capture_output=True, text=True,
                       env={**env, "DZ_SLOW": "0.01"}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "MiB/" not in r.stderr and "\x1b[" not in r.stderr
    assert len(r.stderr.strip().splitlines()) >= 1          # the one-line summary
