"""Issue 20 (4, 5): dead hosts fail fast and are not asked again in a batch, a silent
server costs one deadline, every retry says one line, and waiting for another process
is visible, bounded and immune to clock skew and stopped holders."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest

from conftest import entry
from test_crash_concurrency_disk import densezoo


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                  # nothing listens there: connection refused
    return port


def test_a_refused_host_is_tried_once_per_batch_without_back_off(manifest, cli, sleeps):
    port = _closed_port()
    entries = [{"name": f"dead{i}", "url": f"http://127.0.0.1:{port}/zoo/dead{i}.bin",
                "md5": "ab" * 16} for i in range(20)]
    m = manifest(*entries)
    r = cli("--manifest", str(m), "fetch", *[e["name"] for e in entries], "-j", "4", "--json")
    assert r.code == 5
    reasons = [e["causes"][0]["reason"] for e in r.json["errors"]]
    tried = [x for x in reasons if x.startswith("connection refused")]
    skipped = [x for x in reasons if "not asked again" in x]
    assert 1 <= len(tried) <= 4 and len(tried) + len(skipped) == 20, reasons
    assert f"host 127.0.0.1:{port} unreachable (connection refused" in skipped[0]
    assert sleeps == []                        # no back-off for a refused connection


@pytest.fixture
def silent_server():
    """Accepts connections and never answers; counts them."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def loop():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                accepted.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield srv.getsockname()[1], accepted
    stop.set()
    t.join()
    for c in accepted:
        c.close()
    srv.close()


def test_a_server_that_never_answers_costs_one_deadline(silent_server, manifest, cli,
                                                        monkeypatch):
    port, accepted = silent_server
    monkeypatch.setenv("DENSEZOO_TIMEOUT", "0.3")
    monkeypatch.setenv("DENSEZOO_DEADLINE", "1")
    monkeypatch.setattr("densezoo.download.http._sleep", time.sleep)   # real back-off here
    m = manifest({"name": "silent", "url": f"http://127.0.0.1:{port}/x.bin", "md5": "ab" * 16})
    r = cli("--manifest", str(m), "-v", "fetch", "silent")
    assert r.code == 5
    assert "no complete answer within 0.3 s" in r.err and "DENSEZOO_TIMEOUT sets it" in r.err
    assert "DENSEZOO_DEADLINE" in r.err
    assert 1 <= len(accepted) < 5, len(accepted)           # not the five attempts of old


def test_every_retry_says_one_line(server, blob, manifest, cli, sleeps):
    b = blob("flaky", 10_000)
    server.fault(b.path, "status", 2, code=503)
    m = manifest(entry(b))
    r = cli("--manifest", str(m), "-v", "fetch", "flaky")
    assert r.code == 0, r.err
    lines = [ln for ln in r.err.splitlines() if ln.startswith("retrying ")]
    assert len(lines) == 2 and len(sleeps) == 2
    assert "(attempt 2/5: HTTP 503" in lines[0] and "(attempt 3/5: HTTP 503" in lines[1]
    quiet = cli("--manifest", str(m), "fetch", "--force", "flaky")     # not a terminal, no -v
    assert "retrying" not in quiet.err


def _marker_path(cache_dir, b):
    host = b.url.split("/")[2].replace(":", "_")
    return cache_dir / "files" / host / "zoo" / f"{b.name}.bin.dzlock"


def test_a_marker_with_a_future_mtime_does_not_block(server, blob, manifest, cli, cache_dir,
                                                     monkeypatch):
    monkeypatch.setattr("densezoo.store.layout.MARKER_STALE_SECONDS", 2.0)
    b = blob("skewed", 10_000)
    m = manifest(entry(b))
    marker = _marker_path(cache_dir, b)
    marker.parent.mkdir(parents=True)
    marker.write_text("4242@another-host.deadbeef")
    future = time.time() + 3600                          # an NFS client an hour ahead
    os.utime(marker, (future, future))
    r = cli("--manifest", str(m), "-v", "fetch", "skewed")
    assert r.code == 0, r.err
    assert "waiting for 4242@another-host.deadbeef, which is fetching skewed" in r.err


def test_a_stopped_holder_counts_as_gone_once_its_heartbeat_stops(server, blob, manifest, cli,
                                                                   cache_dir, monkeypatch):
    monkeypatch.setattr("densezoo.store.layout.MARKER_STALE_SECONDS", 1.5)
    b = blob("stopped", 4_000_000)
    server.fault(b.path, "trickle", times=1, step=16 * 1024, delay=0.05)
    m = manifest(entry(b))
    holder = densezoo("--manifest", str(m), "fetch", "stopped", cache=cache_dir)
    marker = _marker_path(cache_dir, b)
    for _ in range(200):                     # the holder is receiving the (slow) body
        if marker.exists() and server.hits(b.path):
            break
        time.sleep(0.05)
    assert marker.exists() and server.hits(b.path), "the holder never started"
    os.kill(holder.pid, signal.SIGSTOP)
    try:
        r = cli("--manifest", str(m), "fetch", "stopped", "--json")
        assert r.code == 0, r.err
        (row,) = r.items
        assert open(row["path"], "rb").read() == b.data
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()


def test_the_wait_for_another_process_is_bounded(server, blob, manifest, cli, cache_dir,
                                                 monkeypatch):
    """A live holder whose heartbeat keeps advancing, but who never finishes."""
    monkeypatch.setenv("DENSEZOO_MARKER_WAIT", "1")
    b = blob("slowpoke", 10_000)
    m = manifest(entry(b))
    marker = _marker_path(cache_dir, b)
    marker.parent.mkdir(parents=True)
    marker.write_text(f"{os.getpid()}@elsewhere.cafe0000")
    stop = threading.Event()

    def beat():
        while not stop.wait(0.1):
            os.utime(marker)

    t = threading.Thread(target=beat, daemon=True)
    t.start()
    try:
        r = cli("--manifest", str(m), "-v", "fetch", "slowpoke")
    finally:
        stop.set()
        t.join()
    assert r.code == 0, r.err
    assert "downloading anyway (DENSEZOO_MARKER_WAIT sets the wait)" in r.err


def test_mirror_build_all_with_a_partial_cache_and_no_network(server, blob, manifest, cli,
                                                              tmp_path):
    """Issue 20.6: it used to stop at the first uncached entry: one file, no manifest, no
    index.html.  Now it builds what it has, lists the rest, and exits non-zero; with
    --cached it takes only what the cache holds and exits 0."""
    have, lack = blob("mir_have", 20_000), blob("mir_lack", 20_000)
    m = manifest(entry(have), entry(lack))
    assert cli("--manifest", str(m), "fetch", "mir_have").code == 0
    server.fault(lack.path, "status", -1, code=404)           # upstream gone for this one
    out = tmp_path / "mirror"
    only = ("--no-default-manifests", "--manifest", str(m))
    r = cli(*only, "mirror", "build", str(out), "--all", "--json")
    assert r.code == 5, r.err
    assert [x["name"] for x in r.items if x["state"] == "failed"] == ["mir_lack"]
    assert [x["name"] for x in r.json["errors"]] == ["mir_lack"]
    text = (out / "densezoo-mirror.yaml").read_text()
    assert "mir_have" in text and "mir_lack" not in text
    assert (out / "index.html").exists()
    cached = cli(*only, "--offline", "mirror", "build", str(tmp_path / "m2"), "--all",
                 "--cached", "--json")
    assert cached.code == 0, cached.err
    assert [x["name"] for x in cached.items if x["state"] == "not cached"] == ["mir_lack"]


def test_a_full_accept_queue_costs_one_connect_timeout_per_batch(manifest, cli, monkeypatch,
                                                                 sleeps):
    """A listener that never accepts, its queue full: SYNs are dropped and connect()
    hangs until the connect timeout; the host is then skipped for the rest of the batch."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(8):                         # fill the accept queue (never accepted)
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    time.sleep(0.2)
    monkeypatch.setenv("DENSEZOO_TIMEOUT", "0.5")           # connect timeout min(10, 0.5)
    try:
        m = manifest(*[{"name": f"q{i}", "url": f"http://127.0.0.1:{port}/q{i}.bin",
                        "md5": "ab" * 16} for i in range(5)])
        r = cli("--manifest", str(m), "fetch", "q0", "q1", "q2", "q3", "q4", "-j", "1",
                "--json")
        assert r.code == 5
        reasons = [e["causes"][0]["reason"] for e in r.json["errors"]]
        assert reasons[0].startswith("connection timed out (after 0.5 s)"), reasons
        assert all("not asked again" in x for x in reasons[1:]), reasons
        assert sleeps == []
    finally:
        for c in fillers:
            c.close()
        srv.close()
