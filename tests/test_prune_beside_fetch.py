"""Issue 32.7: ``cache prune -y`` run beside a fetch never deletes a file the fetch has
just published.  The fetch renames the file into place and then writes the record that
vouches for it; a prune that does not load the fetch's manifest saw, in between, a file
nobody vouched for (a few per 240 files were deleted and the fetch reported ok).  Prune
now keeps a file whose fetch still holds its marker or whose record appeared since the
plan, decided after the file is renamed out of its name (``disk.remove_under``).
Real processes: one fetch of many small files, two prune loops beside it."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import entry

N = 160


def _densezoo(*args: str) -> list[str]:
    return [sys.executable, "-m", "densezoo", *args]


def test_prune_beside_a_fetch_never_deletes_what_the_fetch_published(blob, manifest,
                                                                      cache_dir):
    arts = [blob(f"p7_{i:03d}", 1500) for i in range(N)]
    m = manifest(*[entry(b, md5=False) for b in arts])     # no published md5: first-use pins
    env = dict(os.environ)
    fetch = subprocess.Popen(_densezoo("--manifest", str(m), "-q", "fetch", "p7_*", "-j", "4"),
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    prunes = 0
    loop = [subprocess.Popen(_densezoo("--no-default-manifests", "-qq", "cache", "prune",
                                       "-y"), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for _ in range(2)]
    while fetch.poll() is None:
        for i, p in enumerate(loop):
            if p.poll() is not None:
                prunes += 1
                loop[i] = subprocess.Popen(_densezoo("--no-default-manifests", "-qq", "cache",
                                                     "prune", "-y"), env=env,
                                           stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
    for p in loop:
        p.wait()
    assert fetch.returncode == 0, fetch.stderr.read()
    assert prunes >= 2                      # the prunes really ran beside the fetch
    files = sorted(p.name for p in (cache_dir / "files").rglob("p7_*.bin"))
    assert len(files) == N, f"{N - len(files)} published files were deleted by prune"
    r = subprocess.run(_densezoo("--no-default-manifests", "--manifest", str(m), "verify"),
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:]
