"""Operating densezoo: doctor and shell completion."""

import subprocess
import sys

from conftest import entry




def fetched(cli, m, *names):
    r = cli("--manifest", str(m), "fetch", *names)
    assert r.code == 0, r.err
    return r.out.split()


# -- doctor, completion ----------------------------------------------------------------------

def test_doctor(cli, tmp_path):
    r = cli("doctor", "--no-probe", "--json")
    d = r.json
    assert r.code == 0 and d["ok"]
    assert {c["name"] for c in d["items"]} >= {"versions", "cache dir", "free space",
                                                "manifests", "environment", "setting cache_dir"}
    (tmp_path / "a-file").write_text("not a dir")
    r = cli("--cache-dir", str(tmp_path / "a-file" / "cache"), "doctor")
    assert r.code == 1 and "FAIL  cache dir" in r.out


def test_completion_scripts_and_artifact_names(cli, tmp_path):
    for shell in ("bash", "zsh", "fish"):
        r = cli("completion", shell)
        assert r.code == 0 and "_DENSEZOO_COMPLETE" in r.out
    env = {"_DENSEZOO_COMPLETE": "bash_complete", "COMP_WORDS": "densezoo fetch ResNet101_FPN_32",
           "COMP_CWORD": "2", "DENSEZOO_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "densezoo"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert "ResNet101_FPN_32x8d_s1x" in r.stdout and "ResNet101_FPN_32x8d_s1x-e2e" in r.stdout


def _dead_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_doctor_probes_origins_and_mirrors(cli, server, manifest, blob):
    """One HEAD per origin host and mirror: who answers, with what, how fast; a dead
    origin fails the check unless a mirror answers."""
    b = blob("probe_me", 1000)
    dead = _dead_port()
    m = manifest(entry(b), {"name": "gone", "url": f"http://127.0.0.1:{dead}/gone.bin",
                            "md5": "ab" * 16})
    base = ("--no-default-manifests", "--manifest", str(m))
    r = cli(*base, "doctor", "--json")
    probes = {c["host"]: c for c in r.items if c["name"] in ("origin", "mirror")}
    up = probes[f"127.0.0.1:{server.port}"]
    assert up["ok"] and up["status"] == 200 and up["latency_ms"] >= 0
    down = probes[f"127.0.0.1:{dead}"]
    assert not down["ok"] and down["status"] is None and "connection refused" in down["detail"]
    assert r.code == 1
    heads = [q for q in server.requests if q.method == "HEAD"]
    assert [q.path for q in heads] == [b.path]                       # one per host
    r = cli(*base, "doctor", "--mirror", server.url("/mirror"))
    assert r.code == 0, r.out
    assert "mirror" in r.out and "answers HTTP 404 (not found)" in r.out
    assert "a mirror answers, fetches use it" in r.out
    words = {ln.split()[0] for ln in r.out.splitlines() if "does not answer" in ln
             or "answers HTTP 404" in ln}
    assert words == {"warn"}                        # never "ok" for a host serving nothing
    r = cli(*base, "--offline", "doctor")
    assert r.code == 0 and "offline: no host probed" in r.out
