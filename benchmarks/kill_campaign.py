"""SIGKILL campaign (issue 32): kill real `densezoo fetch` processes, count wrong bytes.

    PYTHONPATH=src python benchmarks/kill_campaign.py [--kills N]

Against tests/server.py on 127.0.0.1 (a per-connection trickle, entries that publish
no checksum, so the pin is all there is), for each window: run, SIGKILL at a random
instant (or, for the reset window, right after ``Transfer.reset`` cuts the partial,
via tests/inject.py), check every file published so far, then let a last run finish
and compare every published byte and every pin with the server's file.  Prints one
line per window: kills, files checked, wrong bytes published (the goal is 0).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from server import TestServer  # noqa: E402

SIZE = 20_000_000


def run(args, cache: Path, hook: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "DENSEZOO_CACHE_DIR": str(cache)}
    pre = [str(ROOT / "tests" / "inject.py"), hook, "--"] if hook else ["-m", "densezoo"]
    return subprocess.Popen([sys.executable, *pre, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wrong_published(cache: Path, files: dict[str, bytes]) -> tuple[int, int]:
    """(files published, files whose bytes or pin differ from the server's)."""
    seen = bad = 0
    for name, data in files.items():
        for p in (cache / "files").rglob(name):
            seen += 1
            md5 = hashlib.md5(data).hexdigest()
            if p.read_bytes() != data:
                bad += 1
            trust = cache / "trust"
            records = list(trust.rglob(name + ".json")) if trust.exists() else []
            if any(v.get("md5") not in (None, md5) for q in records
                   for v in json.loads(q.read_text()).get("vouchers", [])):
                bad += 1
    return seen, bad


def clear_published(cache: Path, files) -> None:
    """Forget what a run published (bytes, metadata, pin) so the next run downloads again."""
    for name in files:
        for p in [*(cache / "files").rglob(name + "*"), *(cache / "trust").rglob(name + "*")] \
                if cache.exists() else []:
            if ".dzpart" not in p.name and p.is_file():
                p.unlink()


def manifest(tmp: Path, srv: TestServer, names: list[str]) -> tuple[str, dict[str, bytes]]:
    files, lines = {}, ["schema: 1", "zoo: campaign", "artifacts:"]
    for n in names:
        data = os.urandom(SIZE)
        path = f"/zoo/{n}.bin"
        srv.add(path, data)
        srv.fault(path, "trickle", -1, step=64 * 1024, delay=0.05)
        files[f"{n}.bin"] = data
        lines += [f"  - name: {n}", f"    url: {srv.url(path)}", "    md5: null"]
    m = tmp / f"{names[0]}.yaml"
    m.write_text("\n".join(lines) + "\n")
    return str(m), files


def finish(args, cache: Path, srv: TestServer, files) -> int:
    for p in files:
        srv.faults.pop(f"/zoo/{p}", None)
    p = run([*args, "--json"], cache)
    p.communicate(timeout=300)
    return wrong_published(cache, files)[1] + (p.returncode != 0)


def random_kills(srv, tmp, label, names, extra, kills, rng, takeover=False):
    cache = tmp / label
    m, files = manifest(tmp, srv, names)
    args = ["-q", "--manifest", m, "fetch", *names, "--connections", "4", *extra]
    done = bad = 0
    while done < kills:
        p = run(args, cache)
        other = run(args, cache) if takeover else None    # waits, then takes over
        time.sleep(rng.uniform(0.5, 2.0))
        if p.poll() is None:
            p.kill()
            done += 1
        p.wait(timeout=60)
        if other is not None:
            other.communicate(timeout=300)
            bad += other.returncode != 0
        bad += wrong_published(cache, files)[1]
        if other is not None or p.returncode == 0:      # finished: start afresh
            clear_published(cache, files)
    bad += finish(args, cache, srv, files)
    return done, len(files), bad


def reset_kills(srv, tmp, kills):
    bad = done = 0
    for i in range(kills):
        cache = tmp / f"reset{i}"
        m, files = manifest(tmp, srv, [f"reset{i}"])
        path = f"/zoo/reset{i}.bin"
        srv.faults.pop(path, None)
        srv.fault(path, "status", -1, code=404, from_byte=8 << 20, until_byte=16 << 20,
                  delay=1.5)
        args = ["-q", "--manifest", m, "fetch", f"reset{i}", "--connections", "4"]
        run(args, cache).communicate(timeout=120)          # keeps block 0 and blocks 2..
        srv.faults.pop(path, None)
        srv.fault(path, "bad_content_range", 1, from_byte=1)
        p = run(args, cache, hook="kill-after-reset-truncates")
        p.communicate(timeout=120)
        done += p.returncode == -9
        bad += finish(args, cache, srv, files)
    return done, kills, bad


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=8, help="kills per window")
    n = ap.parse_args().kills
    rng = random.Random(32)
    with TestServer() as srv, tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = [("single file, 4 connections", random_kills(srv, tmp, "one", ["one"], [], n, rng)),
                ("single file, 1 connection",
                 random_kills(srv, tmp, "plain", ["plain"], ["--connections", "1"], n, rng)),
                ("-j 3 (three files)", random_kills(srv, tmp, "par", ["pa", "pb", "pc"],
                                                    ["-j", "3"], n, rng)),
                ("shared-cache takeover", random_kills(srv, tmp, "shared", ["shared"], [], n,
                                                       rng, takeover=True)),
                ("inside Transfer.reset (injected)", reset_kills(srv, tmp, n))]
    total = 0
    for label, (kills, files, bad) in rows:
        total += kills
        print(f"{label:34} kills {kills:3}  files {files}  wrong bytes published {bad}")
    print(f"{'total':34} kills {total:3}")


if __name__ == "__main__":
    main()
