"""Operating densezoo: doctor and shell completion."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path




def fetched(cli, m, *names):
    r = cli("--manifest", str(m), "fetch", *names)
    assert r.code == 0, r.err
    return r.out.split()


# -- doctor, completion ----------------------------------------------------------------------

def test_doctor(cli, tmp_path):
    r = cli("doctor", "--json")
    d = json.loads(r.out)
    assert r.code == 0 and d["ok"]
    assert {c["name"] for c in d["checks"]} >= {"versions", "cache dir", "free space",
                                                "manifests", "environment"}
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
