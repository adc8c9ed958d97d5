"""Issue 22: one JSON envelope for every command (validated against docs/json.md's
schemas, errors included), a list that never breaks a name at 80 columns, info's units,
globs, and -qq."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from conftest import entry, run_in_pty
from densezoo.cli.schema import COMMANDS, markdown, schema_for

DOCS = Path(__file__).resolve().parents[1] / "docs" / "json.md"


def test_docs_json_md_prints_exactly_the_schemas_the_tests_validate_against():
    text = DOCS.read_text()
    blocks = re.findall(r"### `densezoo (.+?) --json`\n\n```json\n(.*?)\n```", text, re.S)
    assert [c for c, _ in blocks] == list(COMMANDS)
    for command, block in blocks:
        assert json.loads(block) == schema_for(command), command
    assert markdown() in text


def test_every_command_answers_with_the_one_envelope(blob, manifest, cli, tmp_path, server):
    """Each --json command, once when it goes well and once when it fails; every answer
    is validated (Run.json) against its schema, with exit_code and ok matching."""
    good, bad = blob("js_good", 3000), blob("js_bad", 3000)
    m = manifest(entry(good), {**entry(bad), "md5": "ab" * 16})
    base = ("--no-default-manifests", "--manifest", str(m))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f'MODEL: {{WEIGHTS: "{good.url}"}}\n')
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text(f'MODEL: {{WEIGHTS: "{bad.url}"}}\n')
    seen: dict[str, set[bool]] = {}

    def check(*args: str, ok: bool) -> dict:
        r = cli(*base, *args, "--json")
        doc = r.json                                  # schema-validated
        assert doc["ok"] is ok, (args, r.err)
        assert bool(doc["errors"]) is not ok or doc["command"] in (
            "verify", "scan", "pin", "doctor", "check", "identify"), (args, doc)
        seen.setdefault(doc["command"], set()).add(ok)
        return doc

    check("list", ok=True)
    check("list", "--kind", "modle", ok=False)
    check("info", "js_good", ok=True)
    check("info", "js_nosuch", ok=False)
    check("path", "js_good", ok=False)                                   # not cached: exit 6
    check("fetch", "js_good", ok=True)
    check("fetch", "js_bad", ok=False)                                   # checksum
    check("fetch", "js_good", "js_nosuch", ok=False)                     # unknown name
    assert check("path", "js_good", ok=True)["items"][0]["path"].endswith("js_good.bin")
    check("verify", ok=True)
    check("verify", "js_bad", ok=False)
    check("scan", "js_good", ok=False)                                   # not a pickle
    (tmp_path / "w.pkl").write_bytes(__import__("pickle").dumps({"w": [1.0]}, protocol=2))
    check("scan", str(tmp_path / "w.pkl"), ok=True)
    check("convert", str(tmp_path / "w.pkl"), ok=False)                 # not a checkpoint
    (tmp_path / "m.pkl").write_bytes(__import__("pickle").dumps(
        {"model": {"w": __import__("numpy").ones(2)}, "__author__": "t"}, protocol=2))
    check("convert", str(tmp_path / "m.pkl"), ok=True)
    check("pin", ok=True)
    check("identify", str(Path(cli(*base, "path", "js_good").out.strip())), ok=True)
    check("identify", str(tmp_path / "w.pkl"), ok=False)
    check("check", str(tmp_path / "w.pkl"), ok=False)      # a match: tests/test_structure.py
    check("config", str(cfg), ok=True)
    check("config", str(bad_cfg), ok=False)
    check("doctor", ok=True)
    check("cache", "ls", ok=True)
    check("cache", "du", ok=True)
    check("cache", "dir", ok=True)
    check("cache", "rm", "js_good", "--dry-run", ok=True)
    check("cache", "rm", "js_nosuch", "-y", ok=False)
    check("cache", "prune", "--dry-run", ok=True)
    check("export", "js_good", "--to", str(tmp_path / "exp"), ok=True)
    check("export", "js_bad", "--to", str(tmp_path / "exp"), ok=False)
    check("mirror", "build", str(tmp_path / "mir"), "js_good", ok=True)
    check("mirror", "build", str(tmp_path / "mir2"), "js_bad", ok=False)
    check("bundle", "js_good", "-o", str(tmp_path / "b.tar"), ok=True)
    check("bundle", "js_good", "-o", str(tmp_path / "no" / "b.tar"), ok=False)
    check("import", str(tmp_path / "b.tar"), ok=True)
    check("import", str(cfg), ok=False)                                  # not a bundle
    check("ledger", "export", "js_good", "-o", str(tmp_path / "ledger.json"), ok=True)
    check("ledger", "export", "js_bad", "-o", str(tmp_path / "ledger.json"), ok=False)
    check("manifest", "add", str(Path(cli(*base, "path", "js_good").out.strip())),
          "--name", "js_added", "--url", good.url, "--to", str(tmp_path / "mine.yaml"),
          ok=True)
    check("manifest", "add", str(tmp_path / "nothing.bin"), "--name", "x",
          "--to", str(tmp_path / "mine.yaml"), ok=False)
    check("adopt", str(tmp_path / "exp"), ok=True)
    check("adopt", str(tmp_path / "no-such-dir"), ok=False)
    check("settings", "show", ok=True)
    check("settings", "get", "strict", ok=True)
    check("settings", "get", "stirct", ok=False)
    check("settings", "set", "nosuchkey", "1", ok=False)
    check("settings", "set", "strict", "false", ok=True)
    check("settings", "unset", "strict", ok=True)
    check("settings", "unset", "stirct", ok=False)
    missing = {c for c in COMMANDS if c not in seen}
    assert not missing, f"commands never exercised with --json: {missing}"
    once = {c for c, oks in seen.items() if oks != {True, False}
            and c not in ("cache du", "cache dir", "cache prune", "doctor", "cache ls", "pin",
                          "settings show", "check")}
    assert not once, f"not seen both succeeding and failing: {once}"


def test_a_usage_error_and_an_unexpected_failure_are_json_too(cli, tmp_path):
    r = cli("list", "--sort", "nope", "--json")
    doc = r.json
    assert r.code == 2 and doc["errors"][0]["type"] == "UsageError" and doc["items"] == []
    r = cli("cache", "ls", "--json", "--cache-dir", str(tmp_path / "c"))
    assert r.json["command"] == "cache ls"


def test_list_json_speaks_one_vocabulary_and_fills_the_closure(cli):
    rows = {r["name"]: r for r in cli("list", "--json").items}
    info = cli("info", "ResNet50_FPN_s1x", "--json").items[0]
    assert rows["ResNet50_FPN_s1x"]["requires_closure"] == info["requires_closure"] != []
    r = cli("list", "--json")
    assert r.err == ""                                   # the footer is in "summary"


def _visible(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")


def test_list_at_80_columns_never_breaks_a_name(tmp_path, manifest, server):
    """On a real 80-column terminal: every row on one line, a long name printed whole
    (never cut: other columns make room), deprecated in its own column, metrics entries
    counted in the footer, not listed."""
    from densezoo import Zoo

    long = "densepose_rcnn_R_101_FPN_DL_WC2M_s1x_with_a_really_long_suffix_name"
    m = manifest({"name": long, "url": server.url("/l.pkl"), "md5": "a" * 32, "kind": "model",
                  "deprecated": True},
                 {"name": long + ".metrics", "url": server.url("/l.json"), "md5": "b" * 32,
                  "kind": "metrics"})
    env = {**os.environ, "DENSEZOO_CACHE_DIR": str(tmp_path / "c"), "TERM": "xterm"}
    code, out = run_in_pty([sys.executable, "-m", "densezoo", "--manifest", str(m), "list"],
                           env, columns=80)
    text = _visible(out)
    assert code == 0
    lines = text.splitlines()
    assert max(len(ln) for ln in lines) <= 80, max(lines, key=len)
    catalog = Zoo(manifests=[str(m)]).catalog
    rows = [ln for ln in lines if ln and not ln.startswith(("densepose-v1", "detectron2",
                                                              "community", "test", "name",
                                                              "2"))
            and "artifacts" not in ln]
    for row in rows:
        assert "…" not in row
        catalog.get(row.split()[0])                   # every printed name is accepted
    mine = next(r for r in rows if r.split()[0] == long)
    assert mine.rstrip().endswith("deprecated") and "(deprecated)" not in text
    assert ".metrics" not in text
    assert re.search(r"\d+ artifacts; 42 metrics entries hidden \(--kind metrics or "
                     r"--all-kinds\)", text), text[-300:]
    code, wide = run_in_pty([sys.executable, "-m", "densezoo", "--manifest", str(m), "list",
                             "--wide", "--all-kinds"], env, columns=80)
    assert long in _visible(wide) and long + ".metrics" in _visible(wide)


def test_info_units_scale_and_the_pin_under_the_unknown_line(blob, manifest, cli):
    b = blob("units", 3000)
    m = manifest(entry(b, md5=False, size=False, metrics={"densepose": {"AP": 0.4748}}))
    cli("--manifest", str(m), "fetch", "units")
    out = cli("--manifest", str(m), "info", "units").out
    lines = out.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith("size "))
    assert lines[i].split(None, 1)[1] == "unknown (not published)"
    assert lines[i + 1].strip().startswith("pinned on first use: 2.9 KiB (3,000 B)")
    j = next(k for k, ln in enumerate(lines) if ln.startswith("md5 "))
    assert lines[j + 1].strip().startswith(f"pinned on first use: {b.md5}")
    assert "AP (GPS)      47.5 %" in out and "densepose     AP 47.5  (%)" in out
    assert "bytes" not in out and "(s)" not in out
    big = cli("info", "R_50_FPN_s1x").out
    assert "size          243.9 MiB (255,757,821 B)" in big


def test_globs_select_several(blob, manifest, cli):
    bs = [blob(n, 500) for n in ("gl_cse_a", "gl_cse_b", "gl_other")]
    m = manifest(*[entry(b) for b in bs])
    r = cli("--no-default-manifests", "--manifest", str(m), "fetch", "gl_cse_*", "--json")
    assert r.code == 0 and [x["name"] for x in r.items] == ["gl_cse_a", "gl_cse_b"]
    r = cli("--no-default-manifests", "--manifest", str(m), "fetch", "GL_?SE_[ab]")
    assert r.code == 0 and len(r.out.split()) == 2


@pytest.mark.parametrize("flag, warned", [("-q", True), ("-qq", False)])
def test_qq_silences_warnings_but_not_results_or_errors(blob, manifest, cli, flag, warned):
    b = blob("qq_pin" + flag, 1000)
    m = manifest(entry(b, md5=False, size=False))
    r = cli("--manifest", str(m), flag, "fetch", b.name)
    assert r.code == 0 and r.out.strip().endswith(".bin")
    assert ("warning:" in r.err) is warned
    r = cli("--manifest", str(m), flag, "info", "qq_nosuch")
    assert r.code == 3 and "error: unknown artifact" in r.err


def test_manifest_add_writes_an_entry_that_then_verifies(blob, cli, tmp_path, server):
    b = blob("ma_weights", 4000)
    local = tmp_path / "ckpt" / "renamed.bin"
    local.parent.mkdir()
    local.write_bytes(b.data)
    mine = tmp_path / "mine.yaml"
    r = cli("manifest", "add", str(local), "--name", "ma_weights", "--url", b.url,
            "--to", str(mine), "--kind", "model", "--json")
    (row,) = r.items
    assert (row["md5"], row["sha256"], row["size"]) == (b.md5, b.sha256, 4000)
    c = blob("ma_remote", 2500)                           # a URL: fetched, verified path
    r = cli("--manifest", str(mine), "manifest", "add", c.url, "--to", str(mine))
    assert r.code == 0, r.err
    text = mine.read_text()
    assert f"md5: {b.md5}" in text and f"sha256: {c.sha256}" in text and "kind: model" in text
    r = cli("--no-default-manifests", "--manifest", str(mine), "fetch", "ma_weights",
            "ma_remote", "--json")
    assert r.code == 0 and {x["strength"] for x in r.items} == {"verified"}, r.err
    before = mine.read_bytes()
    r = cli("manifest", "add", str(local), "--name", "ma_weights", "--url", b.url,
            "--to", str(mine))
    assert r.code == 2 and "already in" in r.err and mine.read_bytes() == before
    hostile = tmp_path / "model_final.pkl"
    hostile.write_bytes(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
    r = cli("manifest", "add", str(hostile), "--url", server.url("/x/model_final.pkl"),
            "--to", str(mine))
    assert r.code == 9 and "not a safe pickle" in r.err and mine.read_bytes() == before
    r = cli("manifest", "add", str(local), "--name", "printed", "--url", b.url)
    assert r.code == 0 and r.out.startswith("- name: printed\n") and f"md5: {b.md5}" in r.out


def test_settings_file_and_its_precedence(cli, tmp_path, monkeypatch, blob, manifest):
    b = blob("st_item", 1000)
    m = manifest(entry(b))
    assert cli("settings", "set", "manifests", str(m)).code == 0
    assert cli("settings", "set", "cache_dir", str(tmp_path / "from-file")).code == 0
    monkeypatch.delenv("DENSEZOO_CACHE_DIR")
    r = cli("fetch", "st_item")                            # the file's manifest and cache
    assert r.code == 0 and r.out.startswith(str(tmp_path / "from-file")), r.err
    rows = {x["name"]: x for x in cli("settings", "show", "--json").items}
    assert rows["cache_dir"]["source"].startswith("file ") and \
        rows["manifests"]["value"] == [str(m)]
    monkeypatch.setenv("DENSEZOO_CACHE_DIR", str(tmp_path / "from-env"))
    rows = {x["name"]: x for x in cli("settings", "show", "--json").items}
    assert rows["cache_dir"] == {"name": "cache_dir", "value": str(tmp_path / "from-env"),
                                 "source": "env DENSEZOO_CACHE_DIR"}
    rows = {x["name"]: x for x in cli("--cache-dir", str(tmp_path / "flag"), "settings",
                                      "show", "--json").items}
    assert rows["cache_dir"]["source"] == "flag --cache-dir"
    assert cli("settings", "set", "strict", "yes").code == 0
    r = cli("fetch", "st_item", "--force")
    assert r.code == 0                                      # published md5: strict is fine
    unpinned = blob("st_unpub", 500)
    m2 = manifest(entry(unpinned, md5=False, size=False))
    r = cli("--manifest", str(m2), "fetch", "st_unpub")
    assert r.code == 9                                      # strict from the file
    monkeypatch.setenv("DENSEZOO_STRICT", "0")
    assert cli("--manifest", str(m2), "fetch", "st_unpub").code == 0   # env wins
    doctor = cli("doctor", "--no-probe").out
    assert "setting strict" in doctor and "env DENSEZOO_STRICT" in doctor
    (tmp_path / "xdg-config" / "densezoo" / "settings.ini").write_text("[densezoo]\nbogus = 1\n")
    r = cli("list")
    assert r.code == 2 and "unknown key 'bogus'" in r.err and "settings.ini" in r.err


def test_the_progress_bar_speaks_the_units_of_every_summary(blob, manifest, server, tmp_path):
    """On a terminal the bar shows done/total and speed in IEC units (KiB, MiB) like
    every summary line -- not rich's own '33 bytes' / 'kB'."""
    b = blob("bar_units", 900)
    server.fault(b.path, "trickle", -1, step=150, delay=0.1)
    m = manifest(entry(b))
    env = {**os.environ, "DENSEZOO_CACHE_DIR": str(tmp_path / "c"), "TERM": "xterm"}
    code, out = run_in_pty([sys.executable, "-m", "densezoo", "--manifest", str(m), "fetch",
                            "bar_units"], env, columns=100)
    text = _visible(out)
    assert code == 0, text
    assert re.search(r"\d+ B/900 B", text), text[-500:]
    assert "bytes" not in text and " kB" not in text
