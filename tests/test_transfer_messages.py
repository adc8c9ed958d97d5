"""Issue 39 (3): transfer messages say what happened, not a neighbouring case's advice."""

from __future__ import annotations

from conftest import entry


def test_a_503_gets_busy_advice_not_the_403_hint(server, blob, manifest, cli, sleeps):
    b = blob("busy", 10_000)
    server.fault(b.path, "status", -1, code=503)
    r = cli("--manifest", str(manifest(entry(b))), "fetch", b.name, "--json")
    assert r.code == 5
    assert "HTTP 503" in r.err and "overloaded or down" in r.err
    assert "HTTP 403" not in r.err and "wrong id/path" not in r.err   # (a port may hold 403)
    assert r.json["errors"][0]["causes"][0]["kind"] == "busy"
    b4 = blob("forbidden", 10_000)
    server.fault(b4.path, "status", -1, code=403)               # a 403 keeps its advice
    r = cli("--manifest", str(manifest(entry(b4))), "fetch", b4.name)
    assert r.code == 5 and "wrong id/path" in r.err


def test_retry_after_is_honoured_up_to_the_deadline(server, blob, manifest, cli, sleeps,
                                                    monkeypatch):
    """Retry-After: 90 under a 200 s deadline is waited in full (it was cut to 60 s);
    Retry-After: 120 past the default 60 s deadline: the message says so, not 'no data
    for 60 s'."""
    b = blob("later", 10_000)
    server.fault(b.path, "status", 1, code=503, retry_after=90)
    m = manifest(entry(b))
    monkeypatch.setenv("DENSEZOO_DEADLINE", "200")
    r = cli("--manifest", str(m), "fetch", b.name)
    assert r.code == 0, r.err
    assert sleeps and sleeps[0] >= 90
    sleeps.clear()
    monkeypatch.delenv("DENSEZOO_DEADLINE")
    c = blob("much-later", 10_000)
    server.fault(c.path, "status", -1, code=503, retry_after=120)
    r = cli("--manifest", str(manifest(entry(c))), "fetch", c.name)
    assert r.code == 5
    assert "asks to retry after 120 s, past DENSEZOO_DEADLINE (60 s)" in r.err
    assert "no data for" not in r.err and sleeps == []
