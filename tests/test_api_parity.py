"""Issue 24: the Python API at parity with the CLI, trust events that reach Python callers,
and progress bars that let log lines through."""

from __future__ import annotations

import inspect
import logging
import os
import sys
import warnings

import click
import pytest

import densezoo
from conftest import entry, run_in_pty

# CLI command -> module-level function.
COMMANDS = {
    "list": "list", "info": "info", "fetch": "fetch", "path": "path", "verify": "verify",
    "scan": "scan", "pin": "pin", "config": "config", "cache ls": "cache_ls",
    "cache du": "cache_du", "cache rm": "cache_rm", "cache prune": "cache_prune",
    "export": "export", "mirror build": "mirror_build", "bundle": "bundle",
    "import": "import_bundle", "doctor": "doctor", "check": "check", "identify": "identify", "manifest add": "manifest_add", "adopt": "adopt",
    "settings show": "settings_show", "settings set": "settings_set",
    "settings unset": "settings_unset", "settings get": "settings_get",
    "settings list": "settings_show", "cache dir": "cache_dir",
    "convert": "convert",
    "ledger export": "ledger_export",
}
# Commands that edit the settings file itself: no Zoo, so no settings keywords.
FILE_ONLY = {"settings set", "settings unset"}
# CLI-only commands and options, each for a reason that has no meaning in Python.
CLI_ONLY_COMMANDS = {"completion": "writes a shell completion script", "help": "shows help",
                     "settings edit": "opens an editor"}
RENDERING = {"as_json": "output format", "wide": "table width", "yes": "a confirmation prompt",
             "full": "the default of verify (exclusive with quick)", "help": "help"}
# Option spellings that differ because a Python keyword reads better without the negation
# or the trailing underscore click needs.
RENAMED = {"all_": "all", "no_space_check": "space_check", "no_scan": "scan", "no_probe": "probe",
           "config_file": "config", "strict_here": "strict", "no_default_manifests":
           "default_manifests"}
SETTINGS = {"manifests", "default_manifests", "mirrors", "cache_dir", "offline", "strict",
            "require", "allow_http"}
GLOBAL_RENDERING = {"quiet", "verbose", "no_progress", "version", "as_json"}


def _walk(cmd, prefix):
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, f"{prefix} {name}")
    else:
        yield prefix, cmd


def test_every_cli_command_has_an_api_function_with_its_options():
    from densezoo.cli.app import cli
    from densezoo.settings import Settings

    settings_fields = set(Settings.__dataclass_fields__)
    assert SETTINGS <= settings_fields
    for p in cli.params:                              # global options are Zoo settings
        name = RENAMED.get(p.name, p.name)
        assert name in SETTINGS | GLOBAL_RENDERING, f"global option {p.name} has no setting"
    seen = set()
    for name, cmd in ((n, c) for top, group in ((t, cli.get_command(None, t))
                                                    for t in cli.list_commands(None))
                      for n, c in _walk(group, top)):
        if name in CLI_ONLY_COMMANDS:
            continue
        assert name in COMMANDS, f"`densezoo {name}` has no module-level function"
        seen.add(name)
        fn = getattr(densezoo, COMMANDS[name])
        params = inspect.signature(fn).parameters
        assert "settings" in params or name in FILE_ONLY, \
            f"{fn.__name__} takes no settings (**settings)"
        for p in cmd.params:
            if p.name in RENDERING:
                continue
            if not p.expose_value:                   # a global option after the command
                assert RENAMED.get(p.name, p.name) in SETTINGS | GLOBAL_RENDERING, p.name
                continue
            kw = RENAMED.get(p.name, p.name)
            if name == "config" and kw == "strict":
                continue                              # a setting: config(..., strict=True)
            assert kw in params or p.name in params, \
                f"`densezoo {name} --{p.name}` has no keyword in {fn.__name__}"
    assert seen == set(COMMANDS)


def test_module_level_list_takes_the_cli_filters(blob, manifest):
    a, b = blob("api_model", 1000), blob("api_data", 1000)
    m = manifest(entry(a, kind="model"), entry(b, kind="data"))
    got = densezoo.list(kind="model", manifests=[m], default_manifests=False)
    assert [i.name for i in got] == ["api_model"]
    assert [i.name for i in densezoo.list("api_d", manifests=[m], default_manifests=False)] == \
        ["api_data"]


def test_module_level_fetch_takes_selectors_and_attempts_every_name(blob, manifest, server):
    a, b, c = blob("sel_a", 1000), blob("sel_b", 1000), blob("sel_c", 1000)
    server.fault(b.path, "status", -1, code=404)
    m = manifest(entry(a, kind="model"), entry(b, kind="model"), entry(c, kind="data"))
    outcomes = densezoo.fetch(kind="model", jobs=2, manifests=[m], default_manifests=False)
    assert [(o.name, o.ok) for o in outcomes] == [("sel_a", True), ("sel_b", False)]
    assert outcomes[1].error.exit_code == 5
    assert densezoo.fetch("sel_c", manifests=[m], default_manifests=False).read_bytes() == c.data


def test_a_first_use_pin_reaches_python_callers(blob, manifest, caplog):
    b = blob("api_pin", 2000)
    m = manifest(entry(b, md5=False, size=False))
    with caplog.at_level(logging.WARNING, logger="densezoo"):
        with pytest.warns(densezoo.UnverifiedWarning, match="pinned md5"):
            densezoo.fetch("api_pin", manifests=[m], default_manifests=False)
    assert any("pinned md5" in r.getMessage() for r in caplog.records)
    with warnings.catch_warnings():                   # a later fetch checks against the pin
        warnings.simplefilter("error", densezoo.UnverifiedWarning)
        densezoo.fetch("api_pin", manifests=[m], default_manifests=False)
    c = blob("api_pin2", 2000)
    m2 = manifest(entry(c, md5=False, size=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error", densezoo.UnverifiedWarning)
        with pytest.raises(densezoo.UnverifiedWarning):
            densezoo.fetch("api_pin2", manifests=[m2], default_manifests=False)


def test_a_pin_conflict_reaches_python_callers(blob, manifest):
    b = blob("api_conflict", 2000)
    densezoo.fetch("api_conflict", manifests=[manifest(entry(b, md5=False, size=False))],
                   default_manifests=False)
    now = manifest(entry(b, md5=False, size=False, md5_prefix=None) | {"md5": "ab" * 16})
    with pytest.warns(densezoo.PinConflictWarning, match="published abab"):
        densezoo.info("api_conflict", manifests=[now], default_manifests=False)


def test_the_cli_prints_trust_events_once(blob, manifest, cli):
    b = blob("api_once", 2000)
    m = manifest(entry(b, md5=False, size=False))
    r = cli("--manifest", str(m), "fetch", "api_once")
    assert r.code == 0 and r.err.count("pinned md5") == 1, r.err


CHILD = r"""
import logging, sys, threading, time
import densezoo
logging.basicConfig(level=logging.INFO, format="LOGLINE %(message)s")
stop = threading.Event()
def ticker():
    i = 0
    while not stop.wait(0.05):
        logging.getLogger("app").info("tick %d", i); i += 1
t = threading.Thread(target=ticker); t.start()
try:
    densezoo.fetch("api_bar", progress=True, manifests=[sys.argv[1]], default_manifests=False)
finally:
    stop.set(); t.join()
"""


def test_log_lines_go_above_the_progress_bar_in_a_terminal(blob, manifest, server, tmp_path):
    b = blob("api_bar", 1_500_000)
    server.fault(b.path, "trickle", times=-1, step=64 * 1024, delay=0.03)   # ~0.7 s
    m = manifest(entry(b))
    env = {**os.environ, "DENSEZOO_CACHE_DIR": str(tmp_path / "c")}
    code, text = run_in_pty([sys.executable, "-c", CHILD, str(m)], env, columns=100, rows=24)
    assert code == 0, text[-2000:]
    assert "%|" in text, "no progress bar was drawn"                  # tqdm drew a bar
    ticks = [ln for ln in text.replace("\r\n", "\n").split("\n") if "LOGLINE" in ln]
    assert len(ticks) >= 5
    glued = [ln for ln in ticks if not ln.split("\r")[-1].lstrip("\x1b[A").startswith("LOGLINE")]
    assert glued == [], f"log lines glued to the bar: {glued[:3]!r}"
