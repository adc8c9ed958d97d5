"""The Python API as a library user calls it: returns objects, never prints."""

import densezoo
from conftest import entry


class Recorder:
    def __init__(self):
        self.calls = []

    def start(self, label, total, initial=0):
        self.calls.append(("start", label, total, initial))

    def advance(self, n):
        self.calls.append(("advance", n))

    def close(self):
        self.calls.append(("close",))


def test_module_level_fetch_returns_a_path_and_prints_nothing(blob, manifest, capsys):
    b = blob("lib")
    m = manifest(entry(b, md5=False, size=False))
    path = densezoo.fetch("lib", manifests=[m])
    assert path.read_bytes() == b.data
    assert capsys.readouterr() == ("", "")          # the pin warning is returned, not printed
    assert densezoo.path("lib", manifests=[m]) == path
    report = densezoo.verify(manifests=[m])
    assert report.ok and report.to_dict()["counts"]["ok"] == 1
    info = densezoo.info("lib", manifests=[m])
    assert info.strength == "origin-pinned" and info.path == path
    assert any(i.name == "lib" for i in densezoo.list(manifests=[m]))


def test_progress_object_sees_every_byte(blob, manifest):
    b = blob("prog", 3_500_000)
    rec = Recorder()
    densezoo.Zoo(manifests=[manifest(entry(b))]).fetch("prog", progress=rec)
    assert rec.calls[0] == ("start", "prog.bin", len(b.data), 0)
    assert sum(c[1] for c in rec.calls if c[0] == "advance") == len(b.data)
    assert rec.calls[-1] == ("close",)


def test_tqdm_progress_for_library_users(blob, manifest, capsys):
    b = blob("tq", 2_000_000)
    densezoo.fetch("tq", manifests=[manifest(entry(b))], progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "tq:" in err   # tqdm draws on stderr, named by the entry (not tq.bin)


def test_list_path_help_quick_verify_and_warm_fetch_do_not_import_requests(tmp_path, blob,
                                                                            manifest):
    """Start-up cost: only a download needs requests (about 0.1 s to import)."""
    import subprocess
    import sys

    from conftest import entry

    b = blob("warm")
    m = manifest(entry(b))
    assert subprocess.run([sys.executable, "-m", "densezoo", "--manifest", str(m), "fetch",
                           "warm"], env={"DENSEZOO_CACHE_DIR": str(tmp_path),
                                         "PATH": "/usr/bin:/bin"}).returncode == 0
    code = ("import sys\nfrom densezoo.cli import main\n"
            "for args in (['--help'], ['list'], ['path', 'ResNet50_FPN_s1x'], "
            "['verify', '--quick'], ['info', 'R_50_FPN_s1x'], "
            f"['--manifest', {str(m)!r}, 'fetch', 'warm']):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            "print('LOADED' if 'requests' in sys.modules else 'CLEAN', file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"DENSEZOO_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.stderr.strip().splitlines()[-1] == "CLEAN"
