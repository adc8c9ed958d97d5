"""Issue 37 items 4, 5 and 7: help that groups and fits 80 columns, habits from other
tools that work (`help`, typo suggestions, `config set`, `cache dir`, `fetch --to`),
and `--json` before the command."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from conftest import entry, run_in_pty

EVERY_HELP = r'''
import sys, click
from densezoo.cli import cli

def paths(group, prefix):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        yield prefix + [name]
        if isinstance(cmd, click.Group):
            yield from paths(cmd, prefix + [name])

for p in [[]] + list(paths(cli, [])):
    print("==== " + " ".join(p), flush=True)
    try:
        cli.main(args=[*p, "--help"], prog_name="densezoo", standalone_mode=False)
    except SystemExit:
        pass
    sys.stdout.flush()
'''


def _visible(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")


def test_every_help_fits_80_columns_on_a_terminal(tmp_path):
    env = {**os.environ, "TERM": "xterm", "DENSEZOO_CACHE_DIR": str(tmp_path / "c")}
    env.pop("COLUMNS", None)
    code, out = run_in_pty([sys.executable, "-c", EVERY_HELP], env, columns=80)
    text = _visible(out)
    assert code == 0, text[-800:]
    pages = dict(re.findall(r"==== ?([^\n]*)\n(.*?)(?=\n==== |\Z)", text, re.S))
    assert len(pages) >= 30 and "mirror build" in pages and "settings edit" in pages
    for command, page in pages.items():
        too_long = [ln for ln in page.splitlines() if len(ln) > 80]
        assert not too_long, (command, too_long)
        assert "Usage: densezoo" in page, command
        if command and " " in command or command in ("fetch", "list", "info", "verify"):
            # global options: one note pointing at the root, not a table per command
            assert "--cache-dir DIR" not in page and "densezoo --help" in page, command
    # config's example is two lines joined by a shell backslash, not glued together
    assert 'dp_rcnn' not in pages["config"]
    assert re.search(r"apply_net\.py show \S+ \\\n\s+\"\$\(densezoo fetch", pages["config"])


def test_root_help_groups_commands_and_cuts_no_description(cli):
    h = cli("--help").out
    sections = re.findall(r"^(\w[\w ]*) commands:$", h, re.M)
    assert sections == ["Get", "Look", "Check", "Share", "Set up"], sections
    get = h.split("Get commands:")[1].split("Look commands:")[0]
    assert "fetch" in get and "list" not in get
    assert "..." not in h.split("Get commands:")[1]
    assert "--cache-dir DIR" in h and "--json" in h


def test_help_command_and_command_suggestions(cli):
    assert cli("help").out == cli("--help").out
    r = cli("help", "cache", "ls")
    assert r.code == 0 and r.out.startswith("Usage: densezoo cache ls")
    assert r.out == cli("cache", "ls", "--help").out
    r = cli("fetc", "x")
    assert r.code == 2 and "Did you mean 'fetch'?" in r.err
    r = cli("help", "verfy")
    assert r.code == 2 and "'verify'" in r.err
    r = cli("settings", "gte", "x")
    assert r.code == 2 and "'get'" in r.err


def test_config_set_says_where_settings_live(cli):
    r = cli("config", "set", "cache_dir", "/x")
    assert r.code == 2
    assert "densezoo settings set cache_dir /x" in r.err and "settings.ini" in r.err
    assert "does not exist" not in r.err


def test_cache_dir_prints_the_store_root(cli, tmp_path, monkeypatch):
    assert cli("cache", "dir").out.strip() == str(tmp_path / "cache")
    r = cli("--cache-dir", str(tmp_path / "elsewhere"), "cache", "dir", "--json")
    assert r.json["summary"]["path"] == str(tmp_path / "elsewhere")
    monkeypatch.delenv("DENSEZOO_CACHE_DIR")
    assert cli("settings", "set", "cache_dir", str(tmp_path / "from-settings")).code == 0
    assert cli("cache", "dir").out.strip() == str(tmp_path / "from-settings")


def test_fetch_to_links_or_copies_the_verified_file(blob, manifest, cli, tmp_path):
    b = blob("fetch_to_me", 4000, path="/zoo/deep/model_final_abc.bin")
    m = manifest(entry(b))
    dest = tmp_path / "project" / "ckpt"
    r = cli("--manifest", str(m), "fetch", b.name, "--to", str(dest))
    assert r.code == 0, r.err
    placed = dest / "model_final_abc.bin"
    assert r.out.strip() == str(placed)
    assert placed.is_symlink() and placed.read_bytes() == b.data
    assert Path(os.path.realpath(placed)).is_relative_to(tmp_path / "cache")
    copy_to = tmp_path / "copy"
    r = cli("--manifest", str(m), "fetch", b.name, "--to", str(copy_to), "--copy", "--json")
    assert r.code == 0
    item = r.items[0]
    assert item["placed"] == str(copy_to / "model_final_abc.bin")
    assert not Path(item["placed"]).is_symlink() and Path(item["placed"]).read_bytes() == b.data
    r = cli("--manifest", str(m), "fetch", b.name, "--to", str(dest), "--extract")
    assert r.code == 2 and "--to" in r.err
    # the API takes the same: one name returns the placed path
    import densezoo

    placed = densezoo.fetch(b.name, manifests=[m], to=tmp_path / "api", link="copy")
    assert placed == tmp_path / "api" / "model_final_abc.bin" and not placed.is_symlink()
    assert placed.read_bytes() == b.data and densezoo.cache_dir() == tmp_path / "cache"


def test_fetch_to_never_places_an_unverified_file(blob, manifest, cli, tmp_path):
    b = blob("fetch_to_bad", 3000)
    m = manifest({**entry(b), "md5": "0" * 32})
    r = cli("--manifest", str(m), "fetch", b.name, "--to", str(tmp_path / "dest"))
    assert r.code == 4
    assert not (tmp_path / "dest").exists() or not any((tmp_path / "dest").iterdir())


def test_json_goes_before_the_command_too(cli, blob, manifest):
    b = blob("json_first", 500)
    m = manifest(entry(b))
    r = cli("--json", "--manifest", str(m), "fetch", b.name)
    assert r.code == 0 and r.json["command"] == "fetch" and r.items[0]["name"] == b.name
    r = cli("--json", "info", "no_such_thing_here")
    assert r.code == 3 and json.loads(r.out)["errors"][0]["type"] == "UnknownArtifactError"
