"""Issue 33.1, 33.2, 33.9: a co-tenant of a shared cache who acts *between* densezoo's
checks and its acts.  Two real uids (the test runs as root; the co-tenant is the user
``dz-cotenant``, see conftest's ``cotenant``): deletes and writes below the root reach
their target through directory fds opened O_NOFOLLOW, decided at the act."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import entry, read_to_end
from densezoo.api import Zoo
from test_bundle import _handmade_bundle
from test_tar_headers import _peak_rss_mb, long_name_bomb


def _victim(home: Path) -> Path:
    """Root's own files, beside the shared cache: what a swapped link would point at."""
    victim = home / "victim"
    (victim / "projects").mkdir(parents=True)
    (victim / "notes.txt").write_text("mine")
    (victim / "projects" / "paper.tex").write_text("mine too")
    return victim


def _intact(victim: Path) -> None:
    assert (victim / "notes.txt").read_text() == "mine"
    assert (victim / "projects" / "paper.tex").read_text() == "mine too"


@pytest.fixture
def shared_cache(cotenant, monkeypatch) -> Path:
    cache = cotenant.shared(cotenant.home / "cache")
    for top in ("files", "extracted"):
        cotenant.shared(cache / top)
    monkeypatch.setenv("DENSEZOO_CACHE_DIR", str(cache))
    return cache


def _plant_junk(cotenant, cache: Path) -> None:
    """Junk prune will offer to remove: a file nobody vouches for, an unpacked folder
    nobody names (a stamp one level down, as ``projects/`` in the victim's home)."""
    ev = cache / "files" / "evil.example"
    ex = cache / "extracted" / "evil.example"
    cotenant.run("mkdir", "-p", str(ev), str(ex / "projects"))
    cotenant.run("sh", "-c", f"echo junk > {ev}/notes.txt; "
                             f"echo '{{}}' > {ex}/projects/.densezoo-extracted.json")


def _swap_for_links(cotenant, cache: Path, victim: Path) -> None:
    for top in ("files", "extracted"):
        d = cache / top / "evil.example"
        cotenant.run("mv", str(d), str(d) + ".old")
        cotenant.run("ln", "-s", str(victim), str(d))


def test_prune_never_follows_a_folder_swapped_for_a_link_while_the_prompt_waits(
        cotenant, shared_cache):
    victim = _victim(cotenant.home)
    _plant_junk(cotenant, shared_cache)
    plan = Zoo(default_manifests=False).plan_prune()
    planned = {str(p.relative_to(shared_cache)) for p, _, _ in plan.items}
    assert {"files/evil.example/notes.txt", "extracted/evil.example/projects"} <= planned
    _swap_for_links(cotenant, shared_cache, victim)           # "Remove? [y/N]" ... "y"
    plan.execute()
    _intact(victim)
    skipped = {str(p.relative_to(shared_cache)): why for p, why in plan.skipped}
    assert "symlink" in skipped["files/evil.example/notes.txt"], skipped
    assert "symlink" in skipped["extracted/evil.example/projects"], skipped


def test_cache_rm_all_removes_a_planted_link_and_never_its_target(cotenant, shared_cache,
                                                                  cli):
    victim = _victim(cotenant.home)
    _plant_junk(cotenant, shared_cache)
    _swap_for_links(cotenant, shared_cache, victim)          # planted before the plan, too
    r = cli("--no-default-manifests", "cache", "rm", "--all", "-y", "--json")
    assert r.code == 0, r.err
    assert r.json["summary"]["removed"] and r.json["summary"]["skipped"] == []   # schema too
    _intact(victim)
    assert not (shared_cache / "extracted").exists()


def test_import_refuses_an_imported_folder_linked_into_someone_s_project(cotenant,
                                                                         shared_cache, cli,
                                                                         tmp_path):
    victim = _victim(cotenant.home)
    (victim / "project").mkdir()
    (victim / "project" / "densepose.yaml").write_text("my config")
    shared_cache.chmod(0o777)
    cotenant.run("ln", "-s", str(victim / "project"), str(shared_cache / "imported"))
    tar = tmp_path / "densepose.tar"
    _handmade_bundle(tar, {}, [])
    r = cli("import", str(tar))
    assert r.code == 9 and "imported" in r.err and "symlink" in r.err, r.err
    assert (victim / "project" / "densepose.yaml").read_text() == "my config"


def test_import_refuses_an_imported_folder_another_user_owns(cotenant, shared_cache, cli,
                                                             tmp_path):
    shared_cache.chmod(0o777)
    cotenant.run("mkdir", "-m", "0777", str(shared_cache / "imported"))
    tar = tmp_path / "densepose.tar"
    _handmade_bundle(tar, {}, [])
    r = cli("import", str(tar))
    assert r.code == 9 and f"uid {cotenant.uid}" in r.err, r.err
    assert os.listdir(shared_cache / "imported") == []


def test_the_compiled_catalog_is_never_written_through_a_planted_link(cotenant, shared_cache,
                                                                      cli, manifest, blob):
    victim = _victim(cotenant.home)
    shared_cache.chmod(0o777)
    cotenant.run("ln", "-s", str(victim), str(shared_cache / "catalog"))
    m = manifest(entry(blob("cat_link", 100)))
    r = cli("--manifest", str(m), "list")
    assert r.code == 0 and "cat_link" in r.out, r.err
    assert sorted(os.listdir(victim)) == ["notes.txt", "projects"]
    os.unlink(shared_cache / "catalog")            # without the link, it is written
    assert cli("--manifest", str(m), "list").code == 0
    assert list((shared_cache / "catalog").glob("*.json"))


def test_a_bundle_s_long_name_bomb_is_refused_in_bounded_memory(tmp_path, cache_dir):
    """33.9: bundles are read through the guarded tar reader ``--extract`` uses."""
    bomb = tmp_path / "bomb.tar"
    assert len(long_name_bomb(bomb)) < 400_000
    code, err, rss = _peak_rss_mb(["import", str(bomb)], dict(os.environ))
    assert code == 9 and "memory bomb" in err, err
    assert rss < 150, f"peak RSS {rss:.0f} MB"           # plain tarfile needed ~340 MB


def test_extraction_checks_for_links_at_the_act_not_only_before(tmp_path):
    """``extract_once`` opens the folders below the cache root itself, O_NOFOLLOW: a
    ``extracted/<host>`` swapped for a link after the fetcher's ``lstat`` walk (here:
    planted before a direct call that skips that walk) is refused, nothing written."""
    import hashlib

    from densezoo.content.unpack import extract_once
    from densezoo.errors import PlantedLinkError
    from densezoo.hashing import Digests
    from test_shared_cache import _tar_gz

    data = _tar_gz({"UV_data/a.txt": b"hello"})
    archive = tmp_path / "uv.tar.gz"
    archive.write_bytes(data)
    root, victim = tmp_path / "cache", tmp_path / "victim"
    victim.mkdir()
    (root / "extracted").mkdir(parents=True)
    (root / "extracted" / "evil.example").symlink_to(victim)
    digests = Digests(len(data), hashlib.md5(data).hexdigest(), None)
    with pytest.raises(PlantedLinkError, match="extracted/evil.example"):
        extract_once(archive, root / "extracted" / "evil.example" / "uv.tar.gz", digests,
                     root=root)
    assert list(victim.iterdir()) == []


def test_the_issue_s_repro_on_a_real_terminal_the_swap_while_remove_y_n_waits(
        cotenant, shared_cache):
    """33.1 as reported: the prompt waits, the co-tenant swaps both folders for links to
    the victim's home, the victim answers y.  Nothing outside the store goes; the CLI
    says which items it did not remove and why."""
    import pty
    import subprocess
    import sys
    import time

    victim = _victim(cotenant.home)
    _plant_junk(cotenant, shared_cache)
    main, child = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "densezoo", "--no-default-manifests", "cache",
                          "prune"], stdin=child, stdout=child, stderr=child,
                         env=dict(os.environ), close_fds=True)
    os.close(child)
    out = b""
    deadline = time.monotonic() + 60
    while b"Remove" not in out and time.monotonic() < deadline:
        out += os.read(main, 4096)
    assert b"Remove" in out, out
    _swap_for_links(cotenant, shared_cache, victim)
    os.write(main, b"y\n")
    out += read_to_end(main)
    assert p.wait(timeout=60) == 0, out
    _intact(victim)
    text = out.decode(errors="replace")
    assert "not removed:" in text and "symlink" in text, text


def test_a_trust_folder_planted_as_a_link_is_refused_not_written_through(cotenant,
                                                                        shared_cache, cli,
                                                                        manifest, blob):
    """The trust record's top folder is one of the root's top folders too: a co-tenant's
    ``trust`` -> the victim's project made every first-use pin a folder tree there."""
    victim = _victim(cotenant.home)
    shared_cache.chmod(0o777)
    cotenant.run("ln", "-s", str(victim), str(shared_cache / "trust"))
    m = manifest(entry(blob("trust_link", 3000), md5=False))       # first use: a record
    r = cli("--no-default-manifests", "--manifest", str(m), "fetch", "trust_link")
    assert r.code == 9 and "trust" in r.err and "symlink" in r.err, r.err
    assert sorted(os.listdir(victim)) == ["notes.txt", "projects"]
