#!/usr/bin/env python3
"""densezoo benchmark harness: one command, peers side by side, results to docs/benchmarks.md.

    python benchmarks/run.py                  # full sizes, 5 repetitions (a few minutes)
    python benchmarks/run.py --tiny --out -   # tiny sizes, 1 repetition (CI keeps it working)

It installs what it needs (Debian nginx-light and aria2; PyPI pooch and huggingface_hub,
the `bench` extra) if missing,
starts nginx on 127.0.0.1 with its own config (stopped by PID at the end), creates
random synthetic files, and times each command as a whole process (start-up
included), reporting median and spread.  Traffic goes to 127.0.0.1 only.

Peers run as their users configure them (aria2c `-x4 -s4 -k1M` and `-x16 -s16 -k1M`,
curl, pooch.retrieve, hf_hub_download), and each row is printed next to its floor:
hashlib md5/sha256 of the same bytes in this process, and the disk's cold read
(posix_fadvise DONTNEED on the files first).  `--compare-src DIR` times the latency
rows of another checkout's src/ too, interleaved with this one's (same harness row).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MiB = 1 << 20


@dataclass
class Sizes:
    big: int
    small_n: int
    small: int
    mid_n: int
    mid: int
    capped: int          # file served by the per-connection-capped server
    rate: str            # nginx limit_rate per connection
    reps: int
    weights: int = 250 * MiB   # a weight pickle for the scan rows
    capped_small: int = 64 * MiB   # the capped file under the old 64 MiB split threshold
    hub: int = 256 * MiB       # the hf:// copy
    n0: int = 10 * MiB         # a file of N0 opcodes (the scanner's worst case)


FULL = Sizes(big=1024 * MiB, small_n=20, small=16 * MiB, mid_n=16, mid=64 * MiB,
             capped=256 * MiB, rate="16m", reps=7)
TINY = Sizes(big=8 * MiB, small_n=4, small=1 * MiB, mid_n=4, mid=2 * MiB,
             capped=8 * MiB, rate="4m", reps=1, weights=4 * MiB, n0=1 * MiB, capped_small=4 * MiB,
             hub=4 * MiB)


@dataclass
class Result:
    name: str
    times: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    command: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def spread(self) -> str:
        return f"{min(self.times):.3f}–{max(self.times):.3f}"


def sh(cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, shell=True, check=True, **kw)


def ensure_tools() -> None:
    missing = [pkg for tool, pkg in (("nginx", "nginx-light"), ("aria2c", "aria2"),
                                     ("curl", "curl"), ("md5sum", "coreutils"))
               if shutil.which(tool) is None]
    if not os.path.exists("/usr/bin/time"):
        missing.append("time")
    if missing:
        sh("apt-get update -qq && apt-get install -y -qq " + " ".join(sorted(set(missing)))
           + " >/dev/null")
    # numpy builds the weight pickle for the scan rows; huggingface_hub is the Hub's own
    # client, the peer of the hf:// rows.
    for module, pkg in (("pooch", "pooch"), ("numpy", "numpy"),
                        ("huggingface_hub", "huggingface_hub")):
        try:
            __import__(module)
        except ImportError:
            sh(f"{sys.executable} -m pip install -q {pkg}")


def make_file(path: Path, size: int) -> str:
    """Random bytes (incompressible), written once; returns the md5."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.md5()
    if not path.exists() or path.stat().st_size != size:
        with open(path, "wb") as f:
            left = size
            while left:
                chunk = os.urandom(min(left, 4 * MiB))
                f.write(chunk)
                h.update(chunk)
                left -= len(chunk)
        return h.hexdigest()
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest() if hasattr(hashlib, "file_digest") \
            else hashlib.md5(f.read()).hexdigest()


def drop_pages(*paths: Path):
    """A prepare step: the files' pages out of the page cache, so the next read comes
    from the disk.  posix_fadvise DONTNEED on the files themselves (after a sync their
    pages are clean) rather than /proc/sys/vm/drop_caches: the machine is shared."""
    def go():
        os.sync()
        for top in paths:
            for p in ([top] if top.is_file() else [q for q in top.rglob("*") if q.is_file()]):
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)
    return go


def hash_floor(path: Path, algorithm: str, reps: int, results: dict) -> Result:
    """hashlib over the file's bytes already in this process's memory: the hash alone,
    no start-up, no read -- what no verified download or verify can beat on one core."""
    data = memoryview(path.read_bytes())
    r = Result(f"floor: hashlib {algorithm} in-process ({path.stat().st_size // MiB} MiB)",
               command=f"hashlib.{algorithm}(bytes in memory), 8 MiB updates")
    for _ in range(max(reps, 3)):
        h = hashlib.new(algorithm)
        t = time.perf_counter()
        for i in range(0, len(data), 8 * MiB):
            h.update(data[i:i + 8 * MiB])
        r.times.append(time.perf_counter() - t)
        r.rss_kb.append(0)
    results[r.name] = r
    print(f"  {r.name:<34} median {r.median:7.3f} s  "
          f"({len(data) / r.median / 1e6:,.0f} MB/s)", flush=True)
    return r


class Nginx:
    """nginx on 127.0.0.1: one plain server and one with a per-connection rate cap.

    The cap holds from a request's first byte: nginx delays each send by its size over
    ``limit_rate`` but lets one send go out whole first (up to ``sendfile_max_chunk``,
    2 MiB by default) -- with the default, a 1 MiB Range request is served at loopback
    speed and short blocks dodge the cap.  ``sendfile_max_chunk 64k`` limits that head
    start to 64 KiB per request, as a token bucket per connection would."""

    def __init__(self, work: Path, port: int, rate: str) -> None:
        self.dir = work / "nginx"
        self.port = port
        self.rate = rate
        self.pid_file = self.dir / "nginx.pid"

    def start(self, docroot: Path) -> None:
        self.stop()                          # a leftover of an interrupted run of ours
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        conf = self.dir / "nginx.conf"
        conf.write_text(textwrap.dedent(f"""\
            worker_processes 1;
            user root;
            pid {self.pid_file};
            error_log {self.dir}/error.log;
            events {{ worker_connections 512; }}
            http {{
              access_log off;
              sendfile on; tcp_nopush on; keepalive_requests 10000;
              client_body_temp_path {self.dir}/tmp; proxy_temp_path {self.dir}/tmp;
              fastcgi_temp_path {self.dir}/tmp; uwsgi_temp_path {self.dir}/tmp;
              scgi_temp_path {self.dir}/tmp;
              server {{ listen 127.0.0.1:{self.port}; root {docroot}; }}
              server {{ listen 127.0.0.1:{self.port + 1}; root {docroot};
                        limit_rate {self.rate}; sendfile_max_chunk 64k; }}
            }}
            """))
        sh(f"nginx -c {conf}")
        for _ in range(50):
            if self.pid_file.exists():
                return
            time.sleep(0.1)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGQUIT)
        except ProcessLookupError:
            return
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

    def url(self, path: str, capped: bool = False) -> str:
        return f"http://127.0.0.1:{self.port + (1 if capped else 0)}/{path}"


def timed(cmd: list[str] | str, env: dict | None = None) -> tuple[float, int]:
    """Wall time of the whole command, and its peak RSS (KiB) as GNU time reports it.

    Measuring RSS through /usr/bin/time matters: a child forked from this Python
    process would otherwise be charged for the parent's pages it had before exec.
    """
    rss_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"densezoo-bench-rss-{os.getpid()}"
    shell = cmd if isinstance(cmd, str) else " ".join(shlex.quote(c) for c in cmd)
    wrapped = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), "sh", "-c", shell]
    t0 = time.perf_counter()
    p = subprocess.run(wrapped, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"command failed ({p.returncode}): {shell}\n"
                           + p.stderr.decode(errors="replace"))
    try:
        rss = int(rss_file.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        rss = 0
    return elapsed, rss


def measure(name: str, cmd, reps: int, prepare=None, env=None, results=None) -> Result:
    """One command, ``reps`` times (``interleaved`` with a single row)."""
    (r,) = interleaved([(name, cmd, prepare, env)], reps,
                       results if results is not None else {})
    return r


def interleaved(rows: list[tuple], reps: int, results: dict) -> list[Result]:
    """The commands of ``rows`` (name, cmd, prepare, env) run in turn, rep after rep, so a
    ratio between them is taken pair by pair: this VM's write-back and page-cache swings
    move both sides of a pair, not one batch of medians."""
    out = [Result(name, command=cmd if isinstance(cmd, str) else " ".join(cmd))
           for name, cmd, _, _ in rows]
    for _ in range(reps):
        for r, (_, cmd, prepare, env) in zip(out, rows):
            if prepare:
                prepare()
            os.sync()
            t, rss = timed(cmd, env)
            r.times.append(t)
            r.rss_kb.append(rss)
    for r in out:
        print(f"  {r.name:<34} median {r.median:7.3f} s  ({r.spread()})  rss "
              f"{max(r.rss_kb)//1024} MB", flush=True)
        results[r.name] = r
    return out


def rm(*paths: Path):
    def go():
        for p in paths:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()
    return go


def versions() -> dict[str, str]:
    def first_line(cmd: str) -> str:
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True
                                  ).stdout.strip().splitlines()[0] or \
                subprocess.run(cmd, shell=True, capture_output=True, text=True
                               ).stderr.strip().splitlines()[0]
        except (IndexError, OSError):
            return "?"
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("densezoo", "requests", "urllib3", "pooch"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "-"
    out["nginx"] = first_line("nginx -v 2>&1")
    out["curl"] = first_line("curl --version")
    out["aria2c"] = first_line("aria2c --version")
    out["md5sum"] = first_line("md5sum --version")
    return out


def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({model}), {mem:.0f} GiB RAM, Linux {platform.release()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny files, 1 repetition (CI)")
    ap.add_argument("--reps", type=int, help="repetitions per measurement")
    ap.add_argument("--work", default=os.environ.get("DENSEZOO_BENCH_DIR", "/var/tmp/densezoo-bench"))
    ap.add_argument("--port", type=int, default=18700)
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"),
                    help="report path ('-' prints it only)")
    ap.add_argument("--only", choices=SECTIONS, action="append",
                    help="run only these sections (repeatable; default: all)")
    ap.add_argument("--compare-src", type=Path, metavar="DIR",
                    help="also time the latency rows with DIR/src on PYTHONPATH (another "
                         "checkout, e.g. the commit before a change), interleaved")
    args = ap.parse_args()
    sizes = TINY if args.tiny else FULL
    reps = args.reps or sizes.reps
    work = Path(args.work) / ("tiny" if args.tiny else "full")
    files, dl = work / "files", work / "dl"
    ensure_tools()

    print(f"creating synthetic files in {files}", flush=True)
    md5 = {"big.bin": make_file(files / "big.bin", sizes.big),
           "capped.bin": make_file(files / "capped.bin", sizes.capped),
           "capped64.bin": make_file(files / "capped64.bin", sizes.capped_small)}
    smalls = [f"small/s{i:02d}.bin" for i in range(1, sizes.small_n + 1)]
    mids = [f"mid/m{i:02d}.bin" for i in range(1, sizes.mid_n + 1)]
    for rel in smalls:
        md5[rel] = make_file(files / rel, sizes.small)
    for rel in mids:
        md5[rel] = make_file(files / rel, sizes.mid)
    for p in [work, files, *files.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)

    nginx = Nginx(work, args.port, sizes.rate)
    nginx.start(files)
    try:
        results: dict[str, Result] = {}
        run_all(nginx, work, files, dl, md5, smalls, mids, sizes, reps, results,
                set(args.only or SECTIONS), args.compare_src)
    finally:
        nginx.stop()
    report = render(results, sizes, reps, args.tiny)
    if args.out == "-":
        print(report)
    else:
        Path(args.out).write_text(report)
        print(f"wrote {args.out}")
    return 0


def manifest(path: Path, entries: list[tuple[str, str, str, int]]) -> Path:
    lines = ["artifacts:"]
    for name, url, digest, size in entries:
        lines.append(f"  - {{name: {name}, url: '{url}', md5: {digest}, size: {size}}}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


SECTIONS = ("latency", "big", "capped", "many", "verify", "scan", "hub")


def run_all(nginx, work, files, dl, md5, smalls, mids, sizes, reps, results,
            sections=frozenset(SECTIONS), compare_src: Path | None = None) -> None:
    dz = [sys.executable, "-m", "densezoo"]
    cache = work / "cache"
    env = {**os.environ, "DENSEZOO_CACHE_DIR": str(cache)}
    m = manifest(work / "bench.yaml", [
        ("big", nginx.url("big.bin"), md5["big.bin"], sizes.big),
        ("capped", nginx.url("capped.bin", capped=True), md5["capped.bin"], sizes.capped),
        ("capped64", nginx.url("capped64.bin", capped=True), md5["capped64.bin"],
         sizes.capped_small),
        *[(Path(r).stem, nginx.url(r), md5[r], sizes.small) for r in smalls],
        *[(Path(r).stem, nginx.url(r), md5[r], sizes.mid) for r in mids]])
    base = [*dz, "-q", "--no-default-manifests", "--manifest", str(m)]
    dl.mkdir(parents=True, exist_ok=True)
    def M(*a, **k):
        return measure(*a, results=results, **k)

    M.results = results

    if "latency" in sections:
        latency_rows(M, work, dz, nginx, files, md5, reps, compare_src)
    if "scan" in sections:
        scan_rows(nginx, work, files, dz, sizes, reps, results)
    if "big" in sections:
        big_rows(M, base, dz, files, dl, md5, nginx, cache, env, sizes, reps)
    if "capped" in sections:
        capped_rows(M, base, dl, md5, nginx, cache, env, sizes, reps)
    if "many" in sections:
        many_rows(M, base, work, dl, md5, nginx, cache, env, smalls, sizes, reps)
    if "verify" in sections:
        verify_rows(M, base, m, files, cache, env, mids, sizes, reps, results)
    if "hub" in sections:
        hub_rows(M, dz, work, files, dl, nginx, cache, env, sizes, reps)


def hub_server(files: Path, nginx) -> tuple[str, object]:
    """A loopback Hub: HEAD/GET .../resolve/REV/PATH -> 302 to nginx (the CDN) with the
    headers the Hub sends (X-Linked-Etag = sha256, X-Linked-Size, X-Repo-Commit)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    blob = files / "hub.bin"
    sha = hashlib.sha256(blob.read_bytes()).hexdigest()
    size = blob.stat().st_size

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a) -> None:
            pass

        def do_HEAD(self) -> None:
            self.send_response(302)
            self.send_header("Location", nginx.url("hub.bin"))
            self.send_header("X-Linked-Etag", f'"{sha}"')
            self.send_header("X-Linked-Size", str(size))
            self.send_header("ETag", f'"{sha}"')
            self.send_header("X-Repo-Commit", "b" * 40)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{srv.server_address[1]}", srv


def hub_rows(M, dz, work, files, dl, nginx, cache, env, sizes, reps) -> None:
    """An hf:// copy vs the Hub's own client, same file, same loopback Hub and CDN:
    densezoo hashes md5 and sha256 as the bytes arrive, hf_hub_download does not."""
    blob = files / "hub.bin"
    md5 = make_file(blob, sizes.hub)
    blob.chmod(0o644)
    sha = hashlib.sha256(blob.read_bytes()).hexdigest()
    hub, srv = hub_server(files, nginx)
    try:
        m = work / "hub.yaml"
        m.write_text("artifacts:\n  - {name: hubbed, url: 'https://hub-origin.invalid/w/hub.bin', "
                     f"md5: {md5}, sha256: {sha}, size: {sizes.hub}}}\n")
        henv = {**env, "HF_ENDPOINT": hub, "HF_HUB_DISABLE_TELEMETRY": "1",
                "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                "DENSEZOO_MIRROR": "hf://bench/zoo/tree"}
        print(f"hub copy: {sizes.hub // MiB} MiB through a loopback Hub", flush=True)
        M(f"densezoo fetch hf:// {sizes.hub // MiB} MiB (md5+sha256)",
          [*dz, "-q", "--no-default-manifests", "--manifest", str(m), "fetch", "hubbed"], reps,
          prepare=rm(cache), env=henv)
        code = ("import sys; from huggingface_hub import hf_hub_download; "
                "hf_hub_download('bench/zoo', 'tree/hub.bin', cache_dir=sys.argv[1])")
        M(f"huggingface_hub.hf_hub_download {sizes.hub // MiB} MiB",
          [sys.executable, "-c", code, str(dl / "hf")], reps, prepare=rm(dl / "hf"), env=henv)
    finally:
        srv.shutdown()


def big_rows(M, base, dz, files, dl, md5, nginx, cache, env, sizes, reps) -> None:
    big_local = files / "big.bin"
    print(f"1 x {sizes.big // MiB} MiB", flush=True)
    M("md5sum (local file)", ["md5sum", str(big_local)], reps)
    # The floors: the hash alone in-process, and the disk's cold read of the same file.
    hash_floor(big_local, "md5", reps, M.results)
    hash_floor(big_local, "sha256", reps, M.results)
    M("floor: cold read (dd, pages dropped)", f"dd if={big_local} of=/dev/null bs=1M status=none",
      reps, prepare=drop_pages(big_local))
    # Control: the cost of just writing the bytes into a fresh file on this machine.
    M("control: dd write (no network, no hash)",
      f"dd if={big_local} of={dl}/dd.bin bs=1M status=none", reps, prepare=rm(dl / "dd.bin"))
    M("densezoo fetch", [*base, "fetch", "big"], reps, prepare=rm(cache), env=env)
    # The physical floor on two cores: receiving+writing and hashing overlap, so a
    # one-pass verified download cannot beat the slower of the two alone.
    M("curl -o (receive + write, no hash)", ["curl", "-sS", "-o", f"{dl}/floor.bin",
                                             nginx.url("big.bin")], reps,
      prepare=rm(dl / "floor.bin"))
    M("curl -o + md5sum", f"curl -sS -o {dl}/c.bin {nginx.url('big.bin')} && md5sum {dl}/c.bin",
      reps, prepare=rm(dl / "c.bin"))
    # The floor ratio pair by pair: densezoo, curl -o and md5sum in turn, each rep.
    dz_r, curl_r, md5_r = interleaved([
        ("densezoo fetch (interleaved)", [*base, "fetch", "big"], rm(cache), env),
        ("curl -o (interleaved)", ["curl", "-sS", "-o", f"{dl}/floor2.bin",
                                   nginx.url("big.bin")], rm(dl / "floor2.bin"), None),
        ("md5sum (interleaved)", ["md5sum", str(big_local)], None, None)], reps, M.results)
    ratios = [d / max(c, m) for d, c, m in zip(dz_r.times, curl_r.times, md5_r.times)]
    M.results["floor ratio, pair by pair"] = Result("floor ratio, pair by pair", ratios,
                                                    [0] * len(ratios),
                                                    "fetch / max(curl -o, md5sum), per rep")
    print(f"  fetch / floor, pair by pair: median {statistics.median(ratios):.2f} "
          f"({min(ratios):.2f}–{max(ratios):.2f})", flush=True)
    M("aria2c --checksum", ["aria2c", "-q", "--allow-overwrite=true", "-d", str(dl), "-o", "a.bin",
                            f"--checksum=md5={md5['big.bin']}", nginx.url("big.bin")],
      reps, prepare=rm(dl / "a.bin"))
    pooch_cmd = [sys.executable, "-c",
                 "import pooch,sys; pooch.retrieve(sys.argv[1], known_hash='md5:'+sys.argv[2], "
                 "fname='p.bin', path=sys.argv[3], progressbar=False)",
                 nginx.url("big.bin"), md5["big.bin"], str(dl / "pooch")]
    M("pooch.retrieve (md5)", pooch_cmd, max(1, min(reps, 3)), prepare=rm(dl / "pooch"))
    M("densezoo fetch (warm, cached)", [*base, "fetch", "big"], reps, env=env)
    M("densezoo --help", [*dz, "--help"], reps)


def keep_health(cache: Path):
    """A prepare step: an empty cache that still holds health.json -- the host as the
    last transfer left it (a user's second download from the same CDN within 15 min)."""
    def go():
        h = cache / "health.json"
        data = h.read_bytes() if h.exists() else None
        rm(cache)()
        if data is not None:
            cache.mkdir(parents=True, exist_ok=True)
            h.write_bytes(data)
    return go


def capped_rows(M, base, dl, md5, nginx, cache, env, sizes, reps) -> None:
    """A CDN that caps each connection (nginx limit_rate): densezoo against aria2c as
    its users configure it.  aria2c gets --checksum (densezoo verifies: the same job)
    and checks it in a pass after the download.  Taken in turn, rep by rep."""
    for name, size in (("capped64", sizes.capped_small), ("capped", sizes.capped)):
        mib = size // MiB
        url = nginx.url(f"{name}.bin", capped=True)
        print(f"capped server: limit_rate {sizes.rate} per connection, {mib} MiB", flush=True)

        def aria(x: int) -> list[str]:
            return ["aria2c", "-q", f"-x{x}", f"-s{x}", "-k1M", "--allow-overwrite=true",
                    "-d", str(dl), "-o", f"{name}.bin", f"--checksum=md5={md5[name + '.bin']}",
                    url]
        rows = [(f"densezoo fetch capped {mib} MiB (auto, new host)", [*base, "fetch", name],
                 rm(cache), env),
                (f"densezoo fetch capped {mib} MiB (auto, host known)", [*base, "fetch", name],
                 keep_health(cache), env),
                (f"aria2c -x4 -s4 -k1M --checksum, capped {mib} MiB", aria(4),
                 rm(dl / f"{name}.bin"), None),
                (f"aria2c -x16 -s16 -k1M --checksum, capped {mib} MiB", aria(16),
                 rm(dl / f"{name}.bin"), None)]
        if size <= 64 * MiB:           # one connection at the cap: 4 s for 64 MiB
            rows.append((f"curl -o + md5sum, capped {mib} MiB",
                         f"curl -sS -o {dl}/{name}-c.bin {url} && md5sum {dl}/{name}-c.bin",
                         rm(dl / f"{name}-c.bin"), None))
        interleaved(rows, reps, M.results)
    M("densezoo fetch capped --connections 4", [*base, "fetch", "capped", "--connections", "4"],
      reps, prepare=rm(cache), env=env)


def latency_rows(M, work, dz, nginx, files, md5, reps, compare_src: Path | None = None) -> None:
    """Per-command latency as users have it: the shipped manifests plus one small own.
    With ``compare_src``: path and verify --quick of that checkout too, in turn with
    this one's, each with its own cache (the rows the trust record must not slow)."""
    own = manifest(work / "own.yaml", [("own", nginx.url("small/s01.bin"), md5["small/s01.bin"],
                                        (files / "small/s01.bin").stat().st_size)])
    cache = work / "latency-cache"
    env = {**os.environ, "DENSEZOO_CACHE_DIR": str(cache)}
    base = [*dz, "-q", "--manifest", str(own)]
    subprocess.run([*base, "fetch", "own"], check=True, env=env, stdout=subprocess.DEVNULL)
    print("per-command latency, default manifests loaded", flush=True)
    M("python -c pass (interpreter start)", [sys.executable, "-c", "pass"], reps)
    M("densezoo path (default manifests)", [*base, "path", "own"], reps, env=env)
    M("densezoo fetch, warm (default manifests)", [*base, "fetch", "own"], reps, env=env)
    M("densezoo verify --quick (default manifests)", [*base, "verify", "--quick"], reps, env=env)
    M("densezoo list (default manifests)", [*base, "list"], reps, env=env)
    if compare_src is None:
        return
    old_env = {**os.environ, "DENSEZOO_CACHE_DIR": str(work / "latency-cache-compare"),
               "PYTHONPATH": str(Path(compare_src).resolve() / "src")}
    subprocess.run([*base, "fetch", "own"], check=True, env=old_env, stdout=subprocess.DEVNULL)
    print(f"latency against {compare_src}, in turn", flush=True)
    for cmd in (["path", "own"], ["verify", "--quick"]):
        label = " ".join(cmd[:1] + [c for c in cmd[1:] if c.startswith("-")])
        interleaved([(f"densezoo {label} (this checkout)", [*base, *cmd], None, env),
                     (f"densezoo {label} (compare: {Path(compare_src).name})", [*base, *cmd],
                      None, old_env)], max(reps, 5) * 3, M.results)


def many_rows(M, base, work, dl, md5, nginx, cache, env, smalls, sizes, reps) -> None:
    print(f"{len(smalls)} x {sizes.small // MiB} MiB", flush=True)
    names = [Path(r).stem for r in smalls]
    M("densezoo fetch -j4 (many)", [*base, "fetch", "-j", "4", *names], reps, prepare=rm(cache),
      env=env)
    loop = " && ".join(f"curl -sS -o {dl}/small/{Path(r).name} {nginx.url(r)} && "
                       f"md5sum {dl}/small/{Path(r).name}" for r in smalls)
    M("curl + md5sum, file by file", f"mkdir -p {dl}/small && {loop}", reps, prepare=rm(dl / "small"))
    aria_list = work / "aria-small.txt"
    aria_list.write_text("".join(f"{nginx.url(r)}\n  out={Path(r).name}\n  checksum=md5={md5[r]}\n"
                                 for r in smalls))
    M("aria2c -j4 --checksum (many)", ["aria2c", "-q", "-j4", "--allow-overwrite=true",
                                       "-d", str(dl / "small-aria"), "-i", str(aria_list)],
      reps, prepare=rm(dl / "small-aria"))


def verify_rows(M, base, m, files, cache, env, mids, sizes, reps, results) -> None:
    print(f"verify {len(mids)} x {sizes.mid // MiB} MiB", flush=True)
    mid_names = [Path(r).stem for r in mids]
    subprocess.run([*base, "fetch", "-j", "4", *mid_names], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    full = [*base, "verify", "--full", *mid_names]
    md5sum = ["md5sum", *[str(files / r) for r in mids]]
    # One untimed run of each first: both then read files in the page cache (a fetch
    # writes behind itself, so its files are on disk, not in memory, until first read).
    for cmd, e in ((full, env), (md5sum, None)):
        subprocess.run(cmd, check=True, env=e, stdout=subprocess.DEVNULL)
    # In turn, rep by rep, like the 1 GiB floor: the ratio is taken pair by pair.
    dz_r, md5_r = interleaved([("densezoo verify --full (many)", full, None, env),
                               ("md5sum sequential (many)", md5sum, None, None)], reps, results)
    ratios = [d / m for d, m in zip(dz_r.times, md5_r.times)]
    results["verify ratio, pair by pair"] = Result(
        "verify ratio, pair by pair", ratios, [0] * len(ratios),
        "verify --full / sequential md5sum, per rep")
    print(f"  verify --full / md5sum, pair by pair: median {statistics.median(ratios):.3f} "
          f"({min(ratios):.3f}–{max(ratios):.3f})", flush=True)
    M("densezoo verify --quick (many)", [*base, "verify", "--quick", *mid_names], reps, env=env)
    inprocess_verify(m, cache, mid_names, reps, results)
    # Cold: every file's pages dropped before each run (the store's and md5sum's copies).
    objects = cache / "files"
    mid_files = [files / r for r in mids]
    interleaved([("densezoo verify --full (many, cold)", full, drop_pages(objects), env),
                 ("md5sum sequential (many, cold)", md5sum, drop_pages(*mid_files), None),
                 ("floor: cold read of the same files (dd)",
                  " && ".join(f"dd if={p} of=/dev/null bs=1M status=none" for p in mid_files),
                  drop_pages(*mid_files), None)], reps, results)
    total = sum(p.stat().st_size for p in mid_files)
    print(f"  total {total // MiB} MiB", flush=True)


WEIGHTS = """
import pickle, sys
import numpy as np
size, proto, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
model, left, i = {}, size, 0
while left > 0:            # detectron2-shaped: many float32 tensors of mixed sizes
    n = min(left // 4, int(rng.integers(64, 4 << 20)))
    model[f"backbone.res{i % 5}.conv{i}.weight"] = rng.standard_normal(max(n, 1), dtype=np.float32)
    left -= 4 * max(n, 1)
    i += 1
with open(out, "wb") as f:
    pickle.dump({"model": model, "__author__": "benchmark"}, f, protocol=proto)
"""


def scan_rows(nginx, work, files, dz, sizes, reps, results) -> None:
    """Pickle scan speed against the time the same file takes to download and verify."""
    size = sizes.weights
    w = files / "weights.pkl"
    if not w.exists():
        print(f"making a {size // MiB} MiB weight pickle", flush=True)
        sh(f"{sys.executable} -c {shlex.quote(WEIGHTS)} {size} 2 {w}")
        w.chmod(0o644)
    n0 = files / "n0.pkl"
    if not n0.exists():
        n0.write_bytes(b"N0" * (sizes.n0 // 2) + b"N.")
        n0.chmod(0o644)
    md5 = hashlib.md5(w.read_bytes()).hexdigest()
    m = manifest(work / "scan.yaml", [("weights", nginx.url("weights.pkl"), md5,
                                       w.stat().st_size)])
    cache = work / "scan-cache"
    env = {**os.environ, "DENSEZOO_CACHE_DIR": str(cache)}
    base = [*dz, "-q", "--no-default-manifests", "--manifest", str(m)]
    print(f"scan: {w.stat().st_size // MiB} MiB weight pickle", flush=True)
    measure("densezoo scan (weight pickle)", [*dz, "scan", str(w)], reps, results=results)
    measure("densezoo fetch --no-scan (weight pickle)", [*base, "fetch", "weights", "--no-scan"],
            reps, prepare=rm(cache), env=env, results=results)
    measure("densezoo fetch (weight pickle, scanned)", [*base, "fetch", "weights"], reps,
            prepare=rm(cache), env=env, results=results)
    measure(f"densezoo scan ({sizes.n0 // MiB} MiB of N0 opcodes)", [*dz, "scan", str(n0)],
            reps, results=results)


INPROC = """
import sys, time
from densezoo import Zoo
zoo = Zoo(manifests=[sys.argv[1]], default_manifests=False, cache_dir=sys.argv[2])
names = sys.argv[3:]
zoo.catalog
for quick in (False, True):
    t = time.perf_counter()
    report = zoo.verify(names, quick=quick)
    assert report.ok
    print(time.perf_counter() - t)
"""


def inprocess_verify(m: Path, cache: Path, names: list[str], reps: int, results) -> None:
    """The verification work alone, without interpreter start-up (same process, same files)."""
    full, quick = Result("verify --full, in-process", command="Zoo.verify(quick=False)"), \
        Result("verify --quick, in-process", command="Zoo.verify(quick=True)")
    for _ in range(reps):
        out = subprocess.run([sys.executable, "-c", INPROC, str(m), str(cache), *names],
                             check=True, capture_output=True, text=True).stdout.split()
        full.times.append(float(out[0]))
        quick.times.append(float(out[1]))
        full.rss_kb.append(0)
        quick.rss_kb.append(0)
    for r in (full, quick):
        results[r.name] = r
        print(f"  {r.name:<34} median {r.median:7.4f} s  ({r.spread()})", flush=True)


TARGETS = [
    # (figure, numerator, denominator or None, target text, test)
    ("hf:// copy 256 MiB: densezoo (md5+sha256) / hf_hub_download (no hash)",
     "densezoo fetch hf:// 256 MiB (md5+sha256)", "huggingface_hub.hf_hub_download 256 MiB",
     "≤ 0.9", lambda r: r <= 0.9),
    ("fetch 1 GiB / md5sum of the local file", "densezoo fetch", "md5sum (local file)",
     "≤ 1.0", lambda r: r <= 1.0),
    ("fetch vs pooch.retrieve (md5): times faster", "pooch.retrieve (md5)", "densezoo fetch",
     "≥ 5×", lambda r: r >= 5),
    ("fetch 1 GiB / max(curl -o, md5sum) in the same run (the two-core floor)",
     "densezoo fetch", "floor", "≤ 1.1", lambda r: r <= 1.1),
    ("fetch 1 GiB / max(curl -o, md5sum), pair by pair (median of per-rep ratios)",
     "floor ratio, pair by pair", None, "≤ 1.1", lambda r: r <= 1.1),
    ("capped 64 MiB: fetch (auto) / aria2c -x4 -s4 --checksum",
     "densezoo fetch capped 64 MiB (auto)", "aria2c -x4 -s4 --checksum, capped 64 MiB", "≤ 0.8",
     lambda r: r <= 0.8),
    ("capped 256 MiB: fetch (auto) / aria2c -x4 -s4 --checksum",
     "densezoo fetch capped 256 MiB (auto)", "aria2c -x4 -s4 --checksum, capped 256 MiB",
     "≤ 0.8", lambda r: r <= 0.8),
    ("capped 256 MiB: fetch --connections 4 / aria2c -x4 -s4",
     "densezoo fetch capped --connections 4", "aria2c -x4 -s4 --checksum, capped 256 MiB",
     "≤ 0.8", lambda r: r <= 0.8),
    # Latency as a multiple of the bare interpreter start measured in the same run.
    ("path / python -c pass", "densezoo path (default manifests)",
     "python -c pass (interpreter start)", "≤ 8×", lambda r: r <= 8),
    ("warm fetch / python -c pass", "densezoo fetch, warm (default manifests)",
     "python -c pass (interpreter start)", "≤ 8×", lambda r: r <= 8),
    ("verify --quick / python -c pass", "densezoo verify --quick (default manifests)",
     "python -c pass (interpreter start)", "≤ 8×", lambda r: r <= 8),
    ("list / python -c pass", "densezoo list (default manifests)",
     "python -c pass (interpreter start)", "≤ 12×", lambda r: r <= 12),
    ("path, default manifests (s)", "densezoo path (default manifests)", None, "< 0.15 s",
     lambda r: r < 0.15),
    ("warm fetch, default manifests (s)", "densezoo fetch, warm (default manifests)", None,
     "< 0.2 s", lambda r: r < 0.2),
    ("verify --quick, default manifests (s)", "densezoo verify --quick (default manifests)",
     None, "< 0.15 s", lambda r: r < 0.15),
    ("list, default manifests (s)", "densezoo list (default manifests)", None, "< 0.3 s",
     lambda r: r < 0.3),
    ("fetch -j of many / curl + md5sum file by file", "densezoo fetch -j4 (many)",
     "curl + md5sum, file by file", "≤ 0.75", lambda r: r <= 0.75),
    ("fetch -j of many / aria2c -j4 --checksum", "densezoo fetch -j4 (many)",
     "aria2c -j4 --checksum (many)", "< 1.0", lambda r: r < 1.0),
    ("verify --full / sequential md5sum", "densezoo verify --full (many)",
     "md5sum sequential (many)", "≤ 0.55", lambda r: r <= 0.55),
    ("verify --full / sequential md5sum, pair by pair (median of per-rep ratios)",
     "verify ratio, pair by pair", None, "≤ 0.55", lambda r: r <= 0.55),
    ("verify --quick, whole process (s)", "densezoo verify --quick (many)", None, "< 0.3 s",
     lambda r: r < 0.3),
    ("verify --full / verify --quick, whole processes: times faster",
     "densezoo verify --full (many)", "densezoo verify --quick (many)", "≥ 100×",
     lambda r: r >= 100),
    ("verify --full / verify --quick, in-process: times faster", "verify --full, in-process",
     "verify --quick, in-process", "≥ 100×", lambda r: r >= 100),
    ("warm fetch of a cached artifact, whole process (s)", "densezoo fetch (warm, cached)", None,
     "< 0.3 s", lambda r: r < 0.3),
    ("densezoo --help (s)", "densezoo --help", None, "< 0.2 s", lambda r: r < 0.2),
    ("scan of a detectron2-shaped weight pickle / its download without a scan",
     "densezoo scan (weight pickle)", "densezoo fetch --no-scan (weight pickle)",
     "well under 1", lambda r: r <= 0.25),
    ("scan of 10 MiB of N0 opcodes (s)", "densezoo scan (10 MiB of N0 opcodes)", None,
     "a few seconds at most (was 12 s)", lambda r: r < 2.0),
]


def round4(results: dict[str, Result], sizes: Sizes) -> list[str]:
    """Issue 38's table: each densezoo row, its peer as configured, the ratio, and the
    row's floor (the physical limit on this machine) with how far the row is from it."""
    r = results
    rate = int(sizes.rate.rstrip("m")) * MiB            # nginx: m = MiB/s per connection
    c64, c256, big = (sizes.capped_small // MiB, sizes.capped // MiB, sizes.big // MiB)
    md5_floor = f"floor: hashlib md5 in-process ({big} MiB)"
    cold = "floor: cold read (dd, pages dropped)"
    if md5_floor in r and cold in r:
        r["floor: cold read + md5, 1 GiB"] = Result(
            "floor: cold read + md5", [r[md5_floor].median + r[cold].median], [0], "sum")
    if md5_floor in r:     # verify's floor: the same GiB hashed on two cores at once
        r["floor: md5 on two cores"] = Result("floor: md5 on two cores",
                                              [r[md5_floor].median / 2], [0], "half")
    for size in (sizes.capped_small, sizes.capped):
        r[f"floor: {size // MiB} MiB at 16 connections"] = Result(
            "wire", [size / (16 * rate)], [0], "size / (16 x limit_rate)")
    def capped(mib: int, host: str, peer: str, target: str, ok) -> tuple:
        peers = {"x4": ("aria2c -x4 -s4 -k1M", f"aria2c -x4 -s4 -k1M --checksum, capped {mib} MiB"),
                 "x16": ("aria2c -x16 -s16 -k1M",
                         f"aria2c -x16 -s16 -k1M --checksum, capped {mib} MiB"),
                 "curl": ("curl -o + md5sum", f"curl -o + md5sum, capped {mib} MiB")}
        shown, row = peers[peer]
        return (f"capped {mib} MiB, {host} / {shown}",
                f"densezoo fetch capped {mib} MiB (auto, {host})", row,
                f"floor: {mib} MiB at 16 connections", target, ok)
    rows = [
        # (figure, densezoo row, peer row, floor row, target text, test)
        capped(c64, "new host", "x4", "≤ 0.8", lambda x: x <= 0.8),
        capped(c64, "new host", "x16", "≤ 1.0", lambda x: x <= 1.0),
        capped(c64, "host known", "x4", "≤ 0.8", lambda x: x <= 0.8),
        capped(c64, "host known", "x16", "≤ 1.0", lambda x: x <= 1.0),
        capped(c64, "new host", "curl", "--", None),
        capped(c256, "new host", "x4", "≤ 0.7", lambda x: x <= 0.7),
        capped(c256, "host known", "x4", "≤ 0.7", lambda x: x <= 0.7),
        capped(c256, "new host", "x16", "--", None),
        (f"fetch {big} MiB / hashlib md5 in-process (the floor itself)", "densezoo fetch",
         md5_floor, md5_floor, "≤ 1.15", lambda x: x <= 1.15),
        (f"fetch {big} MiB / curl -o (no hash)", "densezoo fetch",
         "curl -o (receive + write, no hash)", md5_floor, "--", None),
        (f"fetch {big} MiB / aria2c --checksum", "densezoo fetch", "aria2c --checksum",
         md5_floor, "--", None),
        (f"fetch {big} MiB / pooch.retrieve (md5)", "densezoo fetch", "pooch.retrieve (md5)",
         md5_floor, "--", None),
        (f"hf:// copy {sizes.hub // MiB} MiB / hf_hub_download (no hash)",
         f"densezoo fetch hf:// {sizes.hub // MiB} MiB (md5+sha256)",
         f"huggingface_hub.hf_hub_download {sizes.hub // MiB} MiB", None, "--", None),
        (f"verify --full {sizes.mid_n} files, warm / sequential md5sum",
         "densezoo verify --full (many)",
         "md5sum sequential (many)", "floor: md5 on two cores", "≤ 0.55", lambda x: x <= 0.55),
        (f"verify --full {sizes.mid_n} files, cold / sequential md5sum cold (cold read + md5)",
         "densezoo verify --full (many, cold)", "md5sum sequential (many, cold)",
         "floor: cold read of the same files (dd)", "≤ 1.0", lambda x: x <= 1.0),
    ]
    out = ["| figure | densezoo s | peer s | ratio | target | met | floor s | densezoo / floor |",
           "|---|---:|---:|---:|---|---|---:|---:|"]
    for figure, num, den, floor, target, ok in rows:
        if num not in r or den not in r:
            continue
        ratio = r[num].median / r[den].median
        met = "--" if ok is None else ("yes" if ok(ratio) else "**no**")
        fl = (f"{r[floor].median:.3f} | {r[num].median / r[floor].median:.2f}"
              if floor in r else "-- | --")
        out.append(f"| {figure} | {r[num].median:.3f} | {r[den].median:.3f} | {ratio:.3f} | "
                   f"{target} | {met} | {fl} |")
    for label in ("path", "verify --quick"):
        this = [k for k in r if k == f"densezoo {label} (this checkout)"]
        other = [k for k in r if k.startswith(f"densezoo {label} (compare: ")]
        if this and other:
            delta = (r[this[0]].median - r[other[0]].median) * 1000
            out.append(f"| {label}: this checkout - {other[0].split(': ')[-1].rstrip(')')}, ms | "
                       f"{r[this[0]].median:.4f} | {r[other[0]].median:.4f} | {delta:+.1f} ms | "
                       f"≤ +5 ms | {'yes' if delta <= 5 else '**no**'} | -- | -- |")
    return out


NOTES = textwrap.dedent("""\
    - **fetch 1 GiB vs the floor.** The floor row is the slower of receiving+writing
      the file (`curl -o`, no hash) and hashing it (`md5sum`), both measured in this run:
      on two cores, a one-pass verified download overlaps the two and cannot beat the
      slower.  densezoo hashes every byte once on its own thread while the main thread
      receives and writes, and writes behind itself (every 32 MiB, `posix_fadvise
      DONTNEED` over what is written): on this VM taking fresh page-cache pages costs
      0.8-3.3 s of system time per GiB depending on the host, which is what made this row
      swing (the `dd` and `curl -o` rows still do); reusing the pages just dropped keeps
      the fetch's system time at 0.8-1.0 s.  The pair-by-pair row takes the ratio within
      each repetition.
    - **pooch.** Same job, default settings; the ratio moves with the write-cost noise.
    - **latency with the shipped manifests.** The manifests are pre-parsed once per
      content into `<cache>/catalog/`, names are looked up in an index, and commands
      that do not download never import requests (or the fetch pipeline); what is left
      is mostly the interpreter start (the `python -c pass` row).
    - **verify --full.** One hash stream per core, `readinto` one reused buffer, no
      gap between files: in-process it is at the two-core md5 ceiling (half of
      sequential `md5sum`); the whole-process ratio adds the interpreter start.
    - **verify --quick, ≥ 100x.** As whole processes the quick check cannot be 100x
      faster than a sub-second full check: the interpreter alone is most of it.  The
      in-process row times the verification work itself: well over 100x.
    - **capped server.** nginx `limit_rate` per connection imitates a CDN that caps each
      connection, from a request's first byte (`sendfile_max_chunk 64k`: with nginx's
      default one 2 MiB send goes out whole before the cap applies, and 1 MiB Range
      blocks rode past it).  Automatic mode: after a 0.2 s probe, if ranges are accepted
      and the rest would take more than 1.5 s at the measured rate, it splits the rest
      over as many connections as would finish it in 0.3 s (4 to 8), in 1-8 MiB blocks
      hashed in order as they complete; when each still gets 60% of the one-connection
      rate (0.1 s settling, 0.2 s measured) it doubles, to 16 at most.  "host known":
      health.json from the previous rep is kept (a second download from the same CDN
      within 15 min), so the split comes right after the first chunk, at the width the
      last transfer reached.  aria2c is run as its users paste it (`-x4 -s4 -k1M`,
      `-x16 -s16 -k1M`) plus `--checksum=md5=` (densezoo verifies: the same job), which
      it checks in a pass after the download.  The floor is the wire at 16 connections
      (size / (16 x limit_rate)), computed.
    - **floors.** hashlib md5 and sha256 over the file's bytes already in memory (8 MiB
      updates, no start-up, no read), and `dd` of the file after `posix_fadvise
      DONTNEED` on it (cold read).  verify's warm floor is md5 on two cores (half the
      in-process time for the same GiB); its cold floor is the cold `dd` of the files.
    - **hf:// copy.** hf-xet is not installed: the loopback Hub stand-in answers with
      plain redirects to nginx (no Xet headers), so `hf_hub_download` takes its HTTP
      path, as it would for a non-Xet repository.""")


def render(results: dict[str, Result], sizes: Sizes, reps: int, tiny: bool) -> str:
    v = versions()
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks", "",
        f"Measured {when} on {machine()}." + (" **Tiny smoke run: sizes too small for the "
                                              "figures to mean anything.**" if tiny else ""),
        "Produced by `python benchmarks/run.py` (one command: installs and starts nginx on "
        "127.0.0.1, creates random files, runs each command as a whole process, "
        f"{reps} repetitions, median and min–max). All traffic is loopback.", "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()), "",
        "## Targets", "",
        "| figure | measured | target | met |", "|---|---:|---|---|"]
    if "curl -o (receive + write, no hash)" in results and "md5sum (local file)" in results:
        floor = max(results["curl -o (receive + write, no hash)"].median,
                    results["md5sum (local file)"].median)
        results["floor"] = Result("floor: max(curl -o, md5sum)", [floor], [0],
                                  "max of the two medians above")
    for figure, num, den, target, ok in TARGETS:
        if num not in results or (den and den not in results):
            continue
        value = results[num].median / results[den].median if den else results[num].median
        shown = f"{value:.3f}"
        lines.append(f"| {figure} | {shown} | {target} | {'yes' if ok(value) else '**no**'} |")
    if "densezoo fetch" in results:
        big_rss = max(results["densezoo fetch"].rss_kb) / 1024
        lines.append(f"| peak RSS during the {sizes.big // MiB} MiB fetch (MB) | {big_rss:.0f} | "
                     f"< 64 | {'yes' if big_rss < 64 else '**no**'} |")
    if "densezoo fetch" in results and "md5sum (local file)" in results:
        best = min(results["densezoo fetch"].times) / min(results["md5sum (local file)"].times)
        lines += ["", f"Best of {reps} instead of median: fetch 1 GiB / md5sum = {best:.2f}."]
    lines += ["", "## Peers as configured, and the floors (issue 38)", "",
              "Peer: the tool as its users run it, same file, same run, taken in turn rep "
              "by rep.  Floor: the physical limit of the row on this machine (hash alone "
              "in-process, the disk's cold read, or the capped wire at 16 connections).", "",
              *round4(results, sizes)]
    lines += ["", "## Reading the figures", "", NOTES, "", "## All measurements", "",
              "| measurement | median s | min–max s | peak RSS MB | command |",
              "|---|---:|---|---:|---|"]
    for r in results.values():
        cmd = r.command.replace("|", "\\|")
        if len(cmd) > 160:
            cmd = cmd[:157] + "..."
        rss = f"{max(r.rss_kb) / 1024:.0f}" if max(r.rss_kb) else "–"
        lines.append(f"| {r.name} | {r.median:.4f} | {r.spread()} | {rss} | `{cmd}` |")
    lines += ["", "Sizes: " + f"1 × {sizes.big // MiB} MiB; {sizes.small_n} × "
              f"{sizes.small // MiB} MiB; {sizes.mid_n} × {sizes.mid // MiB} MiB (verify); "
              f"capped server {sizes.capped // MiB} MiB at nginx `limit_rate {sizes.rate}` per "
              "connection.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
