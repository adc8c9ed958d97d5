"""Issue 20 (1, 2): a multi-connection download falls back, never fails, when the server
misanswers a Range request, and restarts cleanly when the file changes mid-way."""

from __future__ import annotations


from conftest import entry

SIZE = 20_000_000                  # three 8 MiB blocks


def _fetch(cli, m, name):
    r = cli("--manifest", str(m), "-v", "fetch", name, "--connections", "4", "--json")
    assert r.code == 0, r.err
    (row,) = r.items
    return row, r.err


def test_a_server_that_advertises_ranges_but_ignores_them(server, blob, manifest, cli):
    b = blob("ignores", SIZE)
    server.fault(b.path, "ignore_range", -1)               # Accept-Ranges: bytes, then 200s
    m = manifest(entry(b))
    row, err = _fetch(cli, m, "ignores")
    assert open(row["path"], "rb").read() == b.data
    assert "ignores Range" in err and "continuing on one connection" in err
    # remembered in the health record: the next run goes to one connection at once
    r = cli("--manifest", str(m), "-v", "fetch", "ignores", "--force", "--connections", "4")
    assert r.code == 0 and "ignores Range" not in r.err and "retrying" not in r.err


def test_a_wrong_content_range_on_a_segment(server, blob, manifest, cli):
    b = blob("shifted", SIZE)
    server.fault(b.path, "bad_content_range", -1, from_byte=1)     # every ranged answer
    m = manifest(entry(b))
    row, err = _fetch(cli, m, "shifted")
    assert open(row["path"], "rb").read() == b.data
    assert "wrong Content-Range" in err


def test_the_file_changes_between_segment_requests(server, blob, manifest, cli):
    b, other = blob("changing", SIZE), blob("changing-v2", SIZE)
    server.fault(b.path, "replaced", 1, from_byte=1, other=other.data)
    m = manifest(entry(b, md5=False, size=False))          # nothing published: pinned
    row, err = _fetch(cli, m, "changing")
    assert open(row["path"], "rb").read() == b.data and row["md5"] == b.md5
    assert "the file changed on the server" in err and "starting again" in err


def test_a_disk_that_fills_during_a_multi_connection_download(server, blob, manifest, cli,
                                                              tmpfs):
    """Exit 8 with what was needed and where, as on one connection (was: exit 1,
    'unexpected OSError ... report the traceback')."""
    mnt = tmpfs("12m")
    b = blob("toobig", SIZE)
    m = manifest(entry(b))
    r = cli("--manifest", str(m), "--cache-dir", str(mnt / "cache"), "fetch", "toobig",
            "--connections", "4", "--no-space-check")
    assert r.code == 8, r.err
    assert "unexpected" not in r.err and str(mnt) in r.err
    assert "more needed" in r.err and "free some space" in r.err
