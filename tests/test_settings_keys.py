"""Issue 37 item 3 and issue 33 item 8: a settings key for every global option that has
an environment variable, each checked on ``set``, each taking effect, each losing to
its variable; ``get`` / ``list`` / ``edit``; the file 0600 and its secrets redacted."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from conftest import entry, run_in_pty

# key -> (a good value as typed, what Settings holds, a bad value, the env var value that wins)
KEYS = {
    "cache_dir": ("/tmp/dz-settings-cache", None, "", "/tmp/dz-env-cache"),
    "manifests": (None, None, "", None),          # covered below: needs a real manifest
    "mirrors": ("https://mirror.example.org/dz/", ("https://mirror.example.org/dz/",),
                "ftp://mirror.example.org", "https://env.example.org/"),
    "strict": ("true", True, "maybe", "0"),
    "require": ("cross-checked", "cross-checked", "strongest", "verified"),
    "allow_http": ("yes", True, "2", "0"),
    "offline": ("on", True, "offline", "0"),
    "no_progress": ("true", True, "y", "0"),
    "scan": ("false", False, "nope", "1"),
    "jobs": ("8", 8, "33", "2"),
    "connections": ("3", 3, "0", "5"),
}


def test_every_global_option_with_a_variable_has_a_key():
    from densezoo.user_settings import KEYS as SHIPPED

    assert set(SHIPPED) == set(KEYS)
    assert {k.env for k in SHIPPED.values()} >= {
        "DENSEZOO_CACHE_DIR", "DENSEZOO_MANIFEST", "DENSEZOO_MIRROR", "DENSEZOO_STRICT",
        "DENSEZOO_ALLOW_HTTP", "DENSEZOO_OFFLINE", "DENSEZOO_NO_PROGRESS", "DENSEZOO_SCAN",
        "DENSEZOO_REQUIRE",
        "DENSEZOO_JOBS", "DENSEZOO_CONNECTIONS"}


@pytest.mark.parametrize("key", [k for k in KEYS if k != "manifests"])
def test_a_key_is_checked_on_set_read_back_and_loses_to_its_variable(key, cli, monkeypatch):
    from densezoo import Settings
    from densezoo.user_settings import KEYS as SHIPPED, settings_path

    good, held, bad, env_value = KEYS[key]
    monkeypatch.delenv(SHIPPED[key].env, raising=False)     # conftest sets the cache dir
    r = cli("settings", "set", key, bad)
    assert r.code == 2 and key in r.err and not settings_path().exists(), r.err
    assert cli("settings", "set", key, good).code == 0
    value = getattr(Settings.resolve(), key)
    assert value == (held if held is not None else type(value)(good)), value
    r = cli("settings", "get", key, "--json")
    assert r.code == 0 and r.items[0]["source"].startswith("file ")
    assert cli("settings", "get", key).out.strip().splitlines()[0] in (good, "true", "false")
    monkeypatch.setenv(SHIPPED[key].env, env_value)
    r = cli("settings", "get", key, "--json")
    assert r.items[0]["source"] == f"env {SHIPPED[key].env}", r.items
    assert getattr(Settings.resolve(), key) != value
    monkeypatch.delenv(SHIPPED[key].env)
    assert cli("settings", "unset", key).code == 0
    assert cli("settings", "get", key, "--json").items[0]["source"] == "default"


def test_manifests_key_loads_the_file_and_refuses_an_empty_path(cli, manifest, blob):
    b = blob("from_settings_manifest", 300)
    m = manifest(entry(b))
    assert cli("settings", "set", "manifests", "").code == 2
    assert cli("info", b.name).code == 3
    assert cli("settings", "set", "manifests", str(m)).code == 0
    assert cli("info", b.name).code == 0
    assert cli("settings", "get", "manifests").out.strip() == str(m)


def test_settings_take_effect(cli, blob, manifest, server, monkeypatch, tmp_path):
    """offline refuses the network; jobs and connections reach fetch; an http mirror is
    refused on set until allow_http is set (then every fetch uses it)."""
    b = blob("settings_effect", 2000)
    m = manifest(entry(b))
    assert cli("settings", "set", "offline", "true").code == 0
    assert cli("--manifest", str(m), "fetch", b.name).code == 6
    assert cli("--manifest", str(m), "settings", "unset", "offline").code == 0
    # A plain-http mirror that is not loopback: refused on set, as fetch would refuse it.
    r = cli("settings", "set", "mirrors", "http://mirror.example.org/dz/")
    assert r.code == 2 and "allow_http" in r.err
    assert cli("settings", "set", "allow_http", "true").code == 0
    assert cli("settings", "set", "mirrors", "http://mirror.example.org/dz/").code == 0
    assert cli("settings", "unset", "mirrors").code == 0
    assert cli("settings", "set", "jobs", "2").code == 0
    r = cli("--manifest", str(m), "fetch", b.name, "-v")
    assert r.code == 0, r.err


def test_no_progress_setting_stops_the_bar_on_a_terminal(blob, manifest, server, tmp_path):
    b = blob("settings_bar", 900)
    server.fault(b.path, "trickle", -1, step=150, delay=0.1)
    m = manifest(entry(b))
    ini = tmp_path / "s.ini"
    env = {**os.environ, "DENSEZOO_CACHE_DIR": str(tmp_path / "c"), "TERM": "xterm",
           "DENSEZOO_SETTINGS": str(ini)}
    ini.write_text("[densezoo]\nno_progress = true\n")
    code, out = run_in_pty([sys.executable, "-m", "densezoo", "--manifest", str(m), "fetch",
                            b.name], env)
    assert code == 0 and "900 B/s" not in out and "/900 B" not in out, out


def test_the_file_is_0600_and_show_redacts_mirror_secrets(cli):
    from densezoo.user_settings import settings_path

    os.umask(0o022)
    secret = "https://alice:hunter2@mirror.example.org/dz/?token=s3cr3t"
    assert cli("settings", "set", "mirrors", secret).code == 0
    assert stat.S_IMODE(settings_path().stat().st_mode) == 0o600
    for args in (("settings", "show"), ("settings", "list"), ("settings", "show", "--json"),
                 ("settings", "get", "mirrors"), ("settings", "get", "mirrors", "--json"),
                 ("settings", "set", "mirrors", secret), ("doctor", "--no-probe")):
        r = cli(*args)
        assert r.code == 0, (args, r.err)
        assert "hunter2" not in r.out + r.err and "s3cr3t" not in r.out + r.err, args
        assert "mirror.example.org" in r.out + r.err, args


def test_a_multiline_or_empty_cache_dir_is_refused_and_nothing_written(cli):
    from densezoo.user_settings import settings_path

    for bad in ("/data/a\n/data/b", "", "   "):
        r = cli("settings", "set", "cache_dir", bad)
        assert r.code == 2 and "cache_dir" in r.err
    assert not settings_path().exists()
    # a hand-edited file with an empty value is named, not used as the current folder
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text("[densezoo]\ncache_dir =\n")
    r = cli("list")
    assert r.code == 2 and "settings.ini" in r.err and "cache_dir" in r.err


def test_list_is_show_and_get_of_an_unknown_key_suggests(cli):
    assert cli("settings", "list").out == cli("settings", "show").out
    r = cli("settings", "get", "cache-dirr")
    assert r.code == 2 and "cache_dir" in r.err


def test_edit_opens_the_editor_and_checks_what_it_wrote(cli, tmp_path, monkeypatch):
    from densezoo.user_settings import settings_path

    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nprintf 'jobs = 7\\n' >> \"$1\"\n")
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("VISUAL", raising=False)
    r = cli("settings", "edit")
    assert r.code == 0, r.err
    assert "jobs" in settings_path().read_text()       # the header lists the keys
    assert cli("settings", "get", "jobs").out.strip() == "7"
    editor.write_text("#!/bin/sh\nprintf 'connections = lots\\n' >> \"$1\"\n")
    r = cli("settings", "edit")
    assert r.code == 2 and "connections must be a whole number" in r.err
