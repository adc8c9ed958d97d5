"""The fault matrix: every way a server misbehaves -> the outcome, via the real CLI.

Each row sets faults on a loopback server, runs `densezoo fetch`, and checks the
exit code, the one-line message, and that the store publishes nothing unverified.
docs/reliability.md lists the same rows.
"""


import pytest

from conftest import entry
from test_crash_concurrency_disk import assert_only_verified, published

# (id, faults: list of (kind, times, params), expected exit code, text in stderr).
# Rows ending in "-nosize" use an entry without a published size, as most v1 entries are:
# there the payload itself must give the fake away.
MATRIX = [
    ("reset-mid-body", [("reset", 1, {"after": 1_500_000})], 0, ""),
    ("stall-read-timeout", [("stall", 1, {"seconds": 1.5})], 0, ""),
    ("500-retry-after", [("status", 2, {"code": 500, "retry_after": 2})], 0, ""),
    ("503-retry-after", [("status", 1, {"code": 503, "retry_after": 1})], 0, ""),
    ("429", [("status", 2, {"code": 429})], 0, ""),
    ("503-forever", [("status", -1, {"code": 503})], 5, "HTTP 503"),
    ("403", [("status", -1, {"code": 403})], 5, "forbidden or missing key"),
    ("404", [("status", -1, {"code": 404})], 5, "HTTP 404"),
    ("truncated-body", [("truncate", 1, {"after": 1_000_000})], 0, ""),
    ("truncated-forever", [("truncate", -1, {"after": 0, "ignore_range": True})], 5,
     "connection closed after"),
    ("wrong-bytes", [("wrong_bytes", -1, {})], 4, "md5 mismatch"),
    ("ignore-range", [("reset", 1, {"after": 1_500_000}), ("ignore_range", 1, {})], 0, ""),
    ("wrong-content-range", [("reset", 1, {"after": 1_500_000}), ("bad_content_range", 1, {})],
     0, ""),
    ("html-error-page", [("html", -1, {})], 5, "a different file"),
    ("html-error-page-nosize", [("html", -1, {})], 5, "HTML page"),
    ("git-lfs-pointer-nosize", [("lfs_pointer", -1, {})], 5, "git-lfs pointer"),
    ("gzip-encoding", [("gzip", -1, {})], 0, ""),
    ("trickle", [("trickle", -1, {"step": 50_000, "delay": 0.005})], 0, ""),
]


@pytest.mark.parametrize("case", MATRIX, ids=[c[0] for c in MATRIX])
def test_fault_matrix(case, server, blob, manifest, cli, cache_dir, monkeypatch, sleeps):
    name, faults, code, text = case
    monkeypatch.setenv("DENSEZOO_TIMEOUT", "0.5")
    b = blob(name, 3_000_000)
    for kind, times, params in faults:
        server.fault(b.path, kind, times, **params)
    m = manifest(entry(b, size=not name.endswith("-nosize")))
    r = cli("--manifest", str(m), "fetch", name, "--json")
    assert r.code == code, r.err
    assert text in r.err
    if code == 0:
        (row,) = r.items
        assert row["md5"] == b.md5 and open(row["path"], "rb").read() == b.data
    else:
        assert r.err.count("\n") == 1 and published(cache_dir) == []
    assert_only_verified(cache_dir, {f"{name}.bin": b.md5})
    assert len(sleeps) <= 8          # retries are bounded


def test_persistent_5xx_is_retried_a_bounded_number_of_times(server, blob, manifest, cli, sleeps):
    b = blob("bounded")
    server.fault(b.path, "status", -1, code=503)
    assert cli("--manifest", str(manifest(entry(b))), "fetch", "bounded").code == 5
    assert len(server.hits(b.path)) == 5 and len(sleeps) == 4
    assert sleeps == sorted(sleeps) or max(sleeps) <= 30    # grows, capped


@pytest.mark.parametrize("kind", ["chain", "loop", "downgrade"])
def test_redirect_faults(kind, server, tls_server, blob, manifest, cli, cache_dir, monkeypatch):
    b = blob(f"redir-{kind}")
    if kind == "chain":
        server.fault("/c1", "redirect", -1, location="/c2")
        server.fault("/c2", "redirect", -1, code=308, location=b.path)
        url, code, text = server.url("/c1"), 0, ""
    elif kind == "loop":
        server.fault("/o1", "redirect", -1, location="/o2")
        server.fault("/o2", "redirect", -1, location="/o1")
        url, code, text = server.url("/o1"), 5, "redirect loop"
    else:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_server.cafile)
        tls_server.fault("/d", "redirect", -1, location=b.url)
        url, code, text = tls_server.url("/d"), 9, "https to http"
    m = manifest({"name": b.name, "url": url, "md5": b.md5})
    r = cli("--manifest", str(m), "fetch", b.name)
    assert r.code == code and text in r.err
    assert_only_verified(cache_dir, {"c1": b.md5, "o1": b.md5, "d": b.md5})


def test_credentials_never_reach_messages_or_metadata(server, blob, manifest, cli, cache_dir):
    b = blob("creds")
    secret = server.url(b.path).replace("http://", "http://alice:s3cr3t@")
    m = manifest({"name": "creds", "url": secret, "md5": None,
                  "mirrors": [secret.replace(b.path, "/nope")]})
    r = cli("--manifest", str(m), "fetch", "creds", "--json")
    assert r.code == 0
    assert "s3cr3t" not in r.out + r.err
    for p in cache_dir.rglob("*"):
        if p.is_file() and p.suffix in (".json", ".dzmeta", ".meta"):
            assert "s3cr3t" not in p.read_text(), p
    server.fault(b.path, "status", -1, code=404)
    r = cli("--manifest", str(m), "fetch", "creds", "--force")
    assert r.code == 5 and "s3cr3t" not in r.err and "alice" not in r.err
