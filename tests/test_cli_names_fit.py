"""Issue 37 item 1: every name densezoo prints is one ``fetch``/``info`` accept, and
unique -- on a real 80-column terminal, for ``list`` and ``cache ls``."""

from __future__ import annotations

import os
import re
import sys

from conftest import entry, run_in_pty

HEADINGS = ("densepose-v1", "detectron2", "community", "test", "name ")


def _visible(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")


def _env(tmp_path) -> dict:
    return {**os.environ, "DENSEZOO_CACHE_DIR": str(tmp_path / "c"), "TERM": "xterm",
            "HOME": str(tmp_path)}


def _rows(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(HEADINGS)
            and not re.match(r"\d+ (artifact|file)", ln)]


def test_every_name_list_prints_at_80_columns_is_accepted_by_info_and_unique(tmp_path, cli):
    """The shipped zoos at 80 columns: no `…`, no line over 80, every first cell is a
    spelling `info` resolves to exactly one entry, and no two rows print the same."""
    for args in (("list",), ("list", "--kind", "model", "--sort", "ap"), ("list", "--all-kinds")):
        code, out = run_in_pty([sys.executable, "-m", "densezoo", *args], _env(tmp_path))
        text = _visible(out)
        assert code == 0, text[-500:]
        assert "…" not in text
        assert max(len(ln.rstrip()) for ln in text.splitlines()) <= 80
        names = [row.split()[0] for row in _rows(text)]
        assert len(names) > 50 and len(names) == len(set(n.lower() for n in names)), args
        from densezoo import Zoo

        catalog = Zoo().catalog
        resolved = [catalog.get(n).name for n in names]     # raises if refused or ambiguous
        assert len(set(resolved)) == len(resolved), args
    # The detectron2 models are shown by the short names people type.
    assert "R_50_FPN_s1x" in names and "cse_R_50_FPN_soft_s1x" in names


def test_a_wide_enough_terminal_shows_full_names_and_wide_shows_every_column(tmp_path):
    code, out = run_in_pty([sys.executable, "-m", "densezoo", "list", "--zoo", "densepose-v1"],
                           _env(tmp_path), columns=160)
    names = [row.split()[0] for row in _rows(_visible(out))]
    assert "DensePoseKeyPointsMask_ResNet50_FPN_s1x-e2e" in names and code == 0
    code, out = run_in_pty([sys.executable, "-m", "densezoo", "list", "--wide"],
                           _env(tmp_path), columns=80)
    text = _visible(out)
    assert "densepose_rcnn_R_50_FPN_s1x " in text and "mem GB" in text


def test_columns_empty_in_every_row_go_first(tmp_path, manifest, server):
    """Nothing cached, no note, no AP, no size known: none of those columns takes room
    (cached and note took 18 of 80); one known size brings its column back."""
    m = manifest({"name": "plain_thing", "url": server.url("/p.bin"), "md5": "a" * 32})
    code, out = run_in_pty([sys.executable, "-m", "densezoo", "--no-default-manifests",
                            "--manifest", str(m), "list"], _env(tmp_path))
    header = next(ln for ln in _visible(out).splitlines() if ln.startswith("name"))
    assert header.split() == ["name", "kind", "checksum"], header
    m = manifest({"name": "plain_thing", "url": server.url("/p.bin"), "md5": "a" * 32},
                 {"name": "sized_thing", "url": server.url("/s.bin"), "md5": "b" * 32,
                  "size": 2048})
    code, out = run_in_pty([sys.executable, "-m", "densezoo", "--no-default-manifests",
                            "--manifest", str(m), "list"], _env(tmp_path))
    lines = _visible(out).splitlines()
    assert next(ln for ln in lines if ln.startswith("name")).split() == [
        "name", "kind", "size", "checksum"]
    assert "2.0 KiB" in next(ln for ln in lines if ln.startswith("sized_thing"))


def test_an_exact_entry_name_wins_over_another_entrys_alias(cli):
    """`densepose_posetrack_train2017` is densepose-v1's entry; detectron2's annotation
    has the same word as an alias (and the same file name): the name wins."""
    for name in ("densepose_posetrack_train2017", "densepose_posetrack_val2017"):
        r = cli("info", name, "--json")
        assert r.code == 0, r.err
        assert r.items[0]["name"] == name and r.items[0]["zoo"] == "densepose-v1"
    # Two aliases that are equal stay ambiguous: densezoo never guesses.
    assert cli("info", "R-50").code == 3


def test_every_model_has_an_alias_it_is_listed_under(cli):
    from densezoo import Zoo

    catalog = Zoo().catalog
    for a in catalog.artifacts:
        if a.kind == "model":
            assert a.aliases, a.name
            assert len(catalog.shortest_name(a)) < len(a.name), a.name


def test_cache_ls_at_80_columns_never_cuts_a_name_or_a_path(blob, manifest, tmp_path):
    """A name is printed whole; a path is written store-relative (the footer names the
    root, ~-relative) and, if it still does not fit, wraps -- nothing is cut."""
    b = blob("cached_artifact_with_long_name", 500,
             path="/zoo/deep/folder/structure/for/a/long/path/weights_0123456789.bin")
    m = manifest(entry(b, aliases=["cached_short"]))
    env = _env(tmp_path)
    args = [sys.executable, "-m", "densezoo", "--no-default-manifests", "--manifest", str(m)]
    assert run_in_pty([*args, "fetch", b.name], env)[0] == 0
    code, out = run_in_pty([*args, "cache", "ls"], env)
    text = _visible(out)
    assert code == 0 and "…" not in text
    assert max(len(ln.rstrip()) for ln in text.splitlines()) <= 80, text
    # narrow: the entry's shorter accepted spelling, as in `list`
    assert any(ln.split()[:1] == ["cached_short"] for ln in text.splitlines()), text
    assert "paths are relative to ~/c" in text
    stored = next((tmp_path / "c" / "files").rglob("weights_0123456789.bin"))
    relative = str(stored.relative_to(tmp_path / "c"))
    assert relative in "".join(text.split()), text          # wrapped, not cut
    # wide enough: one line per file, the whole path written from ~
    code, out = run_in_pty([*args, "cache", "ls"], env, columns=240)
    row = next(ln for ln in _visible(out).splitlines() if ln.startswith(b.name))
    assert row.split()[-1] == "~/" + str(stored.relative_to(tmp_path))
    # and piped (no terminal): the full path, for scripts
