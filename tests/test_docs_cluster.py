"""docs/cluster.md, executed in order the way a user runs it (issue 37): every `export`
line sets the environment the next commands see, every `densezoo` line runs, and the
mirror tree `mirror build` writes is then served as http://mirror.internal/densezoo/ --
through a loopback HTTP proxy (HTTP_PROXY), so no byte leaves 127.0.0.1."""

from __future__ import annotations

import shlex
from pathlib import Path

from conftest import run_cli
from server import TestServer
from test_docs import blocks, loopback_mirror  # noqa: F401 - the shared doc fixture

CLUSTER = Path(__file__).resolve().parents[1] / "docs" / "cluster.md"


def _serve_tree(proxy: TestServer, tree: Path, base_url: str) -> int:
    """What the doc's "Serve mirror-tree/" step does, at the address clients are given."""
    n = 0
    for f in tree.rglob("*"):
        if f.is_file():
            proxy.add(base_url.rstrip("/") + "/" + f.relative_to(tree).as_posix(),
                      f.read_bytes())
            n += 1
    return n


def test_cluster_md_in_order_with_its_export_lines(loopback_mirror, tmp_path, monkeypatch):
    shared = tmp_path / "shared"                  # the doc's /shared, kept in the test's tmp
    ran = exported = served = 0
    with TestServer() as proxy:
        for lang, lines in blocks(CLUSTER):
            if lang != "sh":
                continue
            for line in lines:
                text = line.strip().replace("/shared/", f"{shared}/")
                if text.startswith("export "):
                    name, _, value = shlex.split(text, comments=True)[1].partition("=")
                    monkeypatch.setenv(name, value)
                    if value.startswith("http://mirror.internal"):
                        # plain http to a host the cluster runs: through the proxy
                        monkeypatch.setenv("HTTP_PROXY", proxy.url(""))
                        monkeypatch.setenv("http_proxy", proxy.url(""))
                    exported += 1
                elif text.startswith("densezoo "):
                    argv = shlex.split(text, comments=True)[1:]
                    r = run_cli(*argv)
                    assert r.code == 0, f"densezoo {' '.join(argv)}\n{r.err}"
                    ran += 1
                    if argv[:2] == ["mirror", "build"] and "://" not in argv[2]:
                        base = argv[argv.index("--base-url") + 1]
                        served += _serve_tree(proxy, tmp_path / argv[2], base)
        assert exported >= 3 and ran >= 10 and served >= 2
        # A second node: an empty cache, the exported mirror -- the bytes come from the
        # served tree (through the proxy), verified on arrival.
        monkeypatch.setenv("DENSEZOO_CACHE_DIR", str(tmp_path / "node2"))
        r = run_cli("fetch", "ResNet50_FPN_s1x", "--json")
        assert r.code == 0, r.err
        assert r.items[0]["url"].startswith("http://mirror.internal/densezoo/")
        assert any(s.path.startswith("http://mirror.internal/densezoo/") for s in
                   proxy.requests)
