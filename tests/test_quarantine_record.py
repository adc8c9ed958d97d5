"""Issue 32.5: quarantine never loses its record.  The record is written first and the
file moved second, so a full disk or a SIGKILL between the two leaves a corrupt file in
place under a record that says so -- never a moved file with no record, which a retried
CI step would see as green."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import entry

# A test-only hook, in the child process only: os.replace is wrapped so the process kills
# itself at the move into bad/ -- before it (WHEN=before) or right after it (after).
KILLER = """
import os, signal, sys
real = os.replace
def replace(src, dst, *a, **k):
    if "/bad/" in str(dst) and os.environ["WHEN"] == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst, *a, **k)
    if "/bad/" in str(dst):
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from densezoo.cli import main
main(sys.argv[1:])
"""


def _corrupt(cli, blob, manifest, name: str, cache: Path | None = None):
    b = blob(name, 40_000)
    m = str(manifest(entry(b)))
    base = ("--cache-dir", str(cache)) if cache else ()
    r = cli(*base, "--manifest", m, "fetch", name)
    assert r.code == 0, r.err
    path = Path(r.out.strip())
    with open(path, "r+b") as f:
        f.write(b"XX")
    return m, path, base


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_kill_around_the_move_keeps_verify_red(when, cli, blob, manifest, cache_dir):
    m, path, _ = _corrupt(cli, blob, manifest, f"qk_{when}")
    env = {**os.environ, "WHEN": when}
    p = subprocess.run([sys.executable, "-c", KILLER, "--manifest", m, "verify"], env=env,
                       capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL
    assert path.exists() == (when == "before")
    for _ in range(2):                          # and every retry after it
        r = cli("--manifest", m, "verify", "--json")
        assert r.code == 4, (when, r.out)
    assert not path.exists()                    # moved aside by now, with its record
    assert r.items[0]["quarantined"]["status"] == "corrupt"


def test_a_full_disk_never_moves_a_file_without_its_record(cli, blob, manifest, tmpfs):
    disk = tmpfs("2m")
    m, path, base = _corrupt(cli, blob, manifest, "qk_full", disk / "cache")
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)     # fill the disk to the last byte
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    r = cli(*base, "--manifest", m, "verify", "--json")
    assert r.code == 4 and r.items[0]["state"] == "corrupt"
    assert path.exists() and "could not" in r.items[0]["detail"]     # left where it was
    filler.unlink()
    for _ in range(2):
        r = cli(*base, "--manifest", m, "verify", "--json")
        assert r.code == 4, r.out
    assert not path.exists() and r.items[0]["quarantined"]["moved_to"]
