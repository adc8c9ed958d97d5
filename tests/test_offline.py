"""Operating densezoo: offline mode never opens a socket."""

import subprocess
import sys
import textwrap

import pytest

from conftest import entry


def fetched(cli, m, *names):
    r = cli("--manifest", str(m), "fetch", *names)
    assert r.code == 0, r.err
    return r.out.split()


# -- offline ---------------------------------------------------------------------------------

AUDIT = textwrap.dedent("""
    import sys
    connects = []
    sys.addaudithook(lambda ev, args: connects.append(args) if ev == "socket.connect" else None)
    from densezoo.cli import main
    try:
        main(sys.argv[1:])
    except SystemExit as e:
        code = e.code
    print("CONNECTS", len(connects), "EXIT", code, file=sys.stderr)
""")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_offline_never_opens_a_socket(how, blob, manifest, tmp_path):
    b = blob("nosock")
    m = manifest(entry(b))
    env = {"DENSEZOO_CACHE_DIR": str(tmp_path / "c"), "PATH": "/usr/bin:/bin"}
    args = ["--manifest", str(m), "fetch", "nosock", "ResNet50_FPN_s1x"]
    if how == "flag":
        args = ["--offline", *args]
    else:
        env["DENSEZOO_OFFLINE"] = "1"
    r = subprocess.run([sys.executable, "-c", AUDIT, *args], capture_output=True, text=True,
                       env=env, timeout=60)
    assert "CONNECTS 0 EXIT 6" in r.stderr and "offline mode is on" in r.stderr
    # the audit hook does see connections when there are some
    env.pop("DENSEZOO_OFFLINE", None)
    r = subprocess.run([sys.executable, "-c", AUDIT, "--manifest", str(m), "fetch", "nosock"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert "CONNECTS 1 EXIT 0" in r.stderr
