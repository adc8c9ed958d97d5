"""Write-behind: a big sequential download does not pile its whole file up as dirty
page cache (see ``disk.WriteBehind``), and never changes a byte of what it writes."""

import os

import pytest

from conftest import entry
from densezoo import Zoo, disk
from densezoo.hashing import CHUNK

needs_fadvise = pytest.mark.skipif(not hasattr(os, "posix_fadvise"),
                                   reason="posix_fadvise does not exist on this platform")


@pytest.fixture
def advice(monkeypatch):
    """Every fadvise the downloader issues, as (fd, offset, length, advice); the call
    still reaches the kernel."""
    calls = []
    real = os.posix_fadvise

    def record(fd, offset, length, how):
        calls.append((fd, offset, length, how))
        return real(fd, offset, length, how)

    monkeypatch.setattr(os, "posix_fadvise", record)
    return calls


@needs_fadvise
def test_a_big_download_writes_behind_itself_window_by_window(server, blob, manifest,
                                                              monkeypatch, advice):
    window = 256 << 10
    monkeypatch.setattr(disk, "WRITE_BEHIND", window)
    b = blob("behind", 6_000_000)
    zoo = Zoo(manifests=[manifest(entry(b))], default_manifests=False)
    res = zoo.fetch("behind")
    assert res.path.read_bytes() == b.data and res.digests.md5 == b.md5
    dropped = [(off, length) for _, off, length, how in advice
               if how == os.POSIX_FADV_DONTNEED]
    # From the first byte, growing by at least a window each time, never past the file.
    # A socket read returns up to CHUNK bytes, so advice comes at least every
    # window + CHUNK bytes (how many bytes each read returns is the network's to say:
    # a bound, not a count).
    assert len(dropped) >= len(b.data) // (window + CHUNK) >= 4
    assert all(off == 0 for off, _ in dropped)
    ends = [length for _, length in dropped]
    assert ends == sorted(ends) and all(b2 - a >= window for a, b2 in zip(ends, ends[1:]))
    assert ends[0] < window + CHUNK and ends[-1] <= len(b.data)


@needs_fadvise
def test_a_resumed_download_writes_behind_from_where_it_resumed(server, blob, manifest,
                                                                monkeypatch, advice):
    monkeypatch.setattr(disk, "WRITE_BEHIND", 1 << 20)
    b = blob("behind2", 5_000_000)
    server.fault(b.path, "reset", after=2_500_000)
    res = Zoo(manifests=[manifest(entry(b))], default_manifests=False).fetch("behind2")
    assert res.action == "resumed" and res.path.read_bytes() == b.data
    starts = {off for _, off, _, how in advice if how == os.POSIX_FADV_DONTNEED}
    resumed_at = int(server.hits(b.path)[1].headers["Range"][6:-1])
    # The first connection advised from 0 once a window was in (how much arrived before
    # the reset is the kernel's to say); the resumed one from where it resumed.
    assert resumed_at in starts and starts <= {0, resumed_at}
    assert (0 in starts) == (resumed_at >= 1 << 20)


def test_a_small_download_is_left_alone(server, blob, manifest, advice):
    b = blob("small", 300_000)
    res = Zoo(manifests=[manifest(entry(b))], default_manifests=False).fetch("small")
    assert res.path.read_bytes() == b.data and advice == []


def test_write_behind_keeps_every_byte_where_the_call_fails(tmp_path, monkeypatch):
    """A filesystem that refuses the advice (EINVAL, ENOSYS...) gets plain writes."""
    def refuse(*a):
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "posix_fadvise", refuse, raising=False)
    p = tmp_path / "f.bin"
    data = os.urandom(3 << 16)
    with open(p, "wb") as f:
        behind = disk.WriteBehind(f.fileno(), window=1 << 16)
        for i in range(0, len(data), 1 << 15):
            f.write(data[i:i + (1 << 15)])
            f.flush()
            behind.wrote(i + (1 << 15))
        assert behind._advise is None            # gave up after the first refusal
    assert p.read_bytes() == data
