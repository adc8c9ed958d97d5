"""Issue 37 items 7 and 8: the small inconsistencies, one test each, and INFO logs from
the Python API."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import entry, need_tool, run_in_pty
from test_prefix_mirror import _mirrored, _prefix_entry

ROOT = Path(__file__).resolve().parents[1]


def test_verify_of_a_missing_name_lists_the_error(cli):
    r = cli("verify", "R_50_FPN_s1x", "--json")
    assert r.code == 6
    (err,) = r.json["errors"]
    assert err["type"] == "NotCachedError" and err["exit_code"] == 6
    assert err["name"] == "densepose_rcnn_R_50_FPN_s1x"


def test_verify_of_an_empty_cache_says_so(cli):
    r = cli("verify")
    assert r.code == 0 and r.out == "" and "nothing cached" in r.err


def test_list_takes_the_patterns_fetch_takes(blob, manifest, cli):
    bs = [blob(n, 300) for n in ("pat_cse_a", "pat_cse_b", "pat_other")]
    m = manifest(*[entry(b) for b in bs])
    base = ("--no-default-manifests", "--manifest", str(m))
    listed = [ln.split("\t")[0] for ln in cli(*base, "list", "PAT_cse_*").out.splitlines()]
    fetched = [i["name"] for i in cli(*base, "fetch", "PAT_cse_*", "--json").items]
    assert listed == fetched == ["pat_cse_a", "pat_cse_b"]
    assert cli("list", "ResNet*").out.count("\n") == 6        # the v1 ResNet models


def test_config_output_into_a_missing_folder_fails_before_fetching(blob, cli, tmp_path,
                                                                    server):
    b = blob("cfg_out", 500)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f'MODEL: {{WEIGHTS: "{b.url}"}}\n')
    r = cli("config", str(cfg), "-o", str(tmp_path / "no" / "such" / "out.yaml"))
    assert r.code == 2 and "does not exist" in r.err and "mkdir -p" in r.err
    assert "unexpected" not in r.err and server.hits(b.path) == []


def test_the_strict_refusal_of_a_mirror_does_not_suggest_allow_http(server, blob, manifest,
                                                                    cli, monkeypatch):
    gone = blob("strict_hint", 30_000)
    _mirrored(server, gone, monkeypatch)
    server.fault(gone.path, "status", -1, code=404)
    m = manifest(_prefix_entry(gone))
    r = cli("--manifest", str(m), "--strict", "fetch", "strict_hint")
    assert r.code == 9
    assert "allow-http" not in r.err and "publish" in r.err and "--strict" in r.err


def test_readme_counts_the_piped_list_columns(cli):
    text = " ".join(ROOT.joinpath("README.md").read_text().split())
    m = re.search(r"tab-separated rows of (\d+) fields \(([^)]*)\)", text)
    row = cli("list").out.splitlines()[0].split("\t")
    assert m and int(m.group(1)) == len(row) == len(m.group(2).split(","))


def test_json_md_jq_example_yields_nothing_and_fails_on_a_failed_fetch(cli, tmp_path):
    jq = need_tool("jq")
    text = ROOT.joinpath("docs", "json.md").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("weights=$("))
    program = re.search(r"jq -er '([^']*)'", line).group(1)
    failed = cli("--offline", "fetch", "R_50_FPN_s1x", "--json").out
    p = subprocess.run([jq, "-er", program], input=failed, capture_output=True, text=True)
    assert p.returncode != 0 and p.stdout == ""
    ok = json.dumps({"ok": True, "items": [{"path": "/x/y.pkl"}]})
    p = subprocess.run([jq, "-er", program], input=ok, capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == "/x/y.pkl"


def test_json_md_example_names_the_canonical_name(cli):
    text = ROOT.joinpath("docs", "json.md").read_text()
    shown = set(re.findall(r'"name": "([^"]+)"', text.split("```json")[1]))
    from densezoo import Zoo

    catalog = Zoo().catalog
    assert shown and all(catalog.get(n).name == n for n in shown), shown


def test_errors_and_warnings_are_coloured_on_a_terminal_unless_no_color(tmp_path):
    env = {**os.environ, "DENSEZOO_CACHE_DIR": str(tmp_path / "c"), "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    argv = [sys.executable, "-m", "densezoo", "info", "no_such_artifact_here"]
    code, out = run_in_pty(argv, env)
    assert code == 3 and re.search(r"\x1b\[[0-9;]*m+error:", out), repr(out)
    code, out = run_in_pty(argv, {**env, "NO_COLOR": "1"})
    assert code == 3 and "\x1b[" not in out and "error: " in out
    piped = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert piped.returncode == 3 and piped.stderr.startswith("error: ")
    # a usage error (a mistyped command) too
    code, out = run_in_pty([sys.executable, "-m", "densezoo", "fetc"], env)
    assert code == 2 and re.search(r"\x1b\[[0-9;]*m+error:.*Did you mean 'fetch'", out), out
    assert "Try 'densezoo --help' for help." in out


def test_the_api_logs_downloads_and_cache_hits_at_info(blob, manifest, caplog):
    import densezoo

    b = blob("logged_at_info", 2000)
    m = manifest(entry(b))
    with caplog.at_level(logging.INFO, logger="densezoo"):
        path = densezoo.fetch("logged_at_info", manifests=[m])
        densezoo.fetch("logged_at_info", manifests=[m])
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO
             and r.name == "densezoo"]
    assert any(ln.startswith("logged_at_info: downloaded 2.0 KiB from http://127.0.0.1")
               and str(path) in ln for ln in lines), lines
    assert any(ln == f"logged_at_info: found cached at {path} (checksum: verified)"
               for ln in lines), lines
    assert not any(r.levelno < logging.INFO for r in caplog.records if r.name == "densezoo")
