"""`densezoo config` says exactly what it did (issue 18.5), sees every reference
(issue 19.7) and reads hostile configs with bounded work (issue 19.8)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import yaml

from conftest import entry, run_in_pty

UV_SYM = "https://dl.fbaipublicfiles.com/densepose/data/UV_symmetry_transforms.mat"
CATALOG_R50 = "https://dl.fbaipublicfiles.com/detectron/ImageNetPretrained/MSRA/R-50.pkl"


def _config(tmp_path: Path, body: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


def _run(cli, m, *args):
    return cli("--no-default-manifests", "--manifest", str(m), "config", *args)


def test_dry_run_lists_and_never_says_verified(cli, blob, manifest, tmp_path, server):
    a = blob("cs_model", 20_000)
    m = manifest(entry(a))
    cfg = _config(tmp_path, f"""\
        MODEL: {{WEIGHTS: "{a.url}"}}
        EXTRA: "https://example.invalid/x.pkl"
        """)
    r = _run(cli, m, str(cfg), "--dry-run", "--json")
    assert r.code == 0 and server.requests == []
    out = r.json["summary"]
    refs = {x["key"]: x for x in r.items}
    assert (refs["MODEL.WEIGHTS"]["state"], refs["MODEL.WEIGHTS"]["verified"]) == ("listed", False)
    assert refs["EXTRA"]["state"] == "not in any manifest"
    assert out["counts"]["verified"] == 0 and out["counts"]["listed"] == 1
    summary = _run(cli, m, str(cfg), "--dry-run").err.splitlines()[-1]
    assert summary == "2 references: 1 listed, 1 not in any manifest", summary


def test_a_failed_download_writes_no_config_and_says_which(cli, blob, manifest, tmp_path,
                                                           server):
    ok, bad = blob("cs_ok", 20_000), blob("cs_bad", 20_000)
    m = manifest(entry(ok), entry(bad))
    server.fault(bad.path, "status", -1, code=404)
    cfg = _config(tmp_path, f"""\
        MODEL: {{WEIGHTS: "{ok.url}"}}
        DATASETS: {{PROPOSAL: "{bad.url}"}}
        """)
    out = tmp_path / "verified.yaml"
    r = _run(cli, m, str(cfg), "-o", str(out))
    assert r.code == 5 and not out.exists()
    assert "the config was not written: DATASETS.PROPOSAL (cs_bad) failed" in r.err
    assert "1 verified, 1 failed" in r.err
    r = _run(cli, m, str(cfg), "-o", str(out), "--json")
    states = {x["key"]: x["state"] for x in r.items}
    assert states == {"MODEL.WEIGHTS": "verified", "DATASETS.PROPOSAL": "failed"}
    assert r.json["summary"]["output"] is None and not out.exists()
    assert _run(cli, m, str(cfg)).out == ""                 # nor to stdout


def test_a_first_use_pin_is_a_state_with_the_fetch_warning(cli, blob, manifest, tmp_path):
    a = blob("cs_pin", 20_000)
    m = manifest(entry(a, md5=False, size=False))
    cfg = _config(tmp_path, f'MODEL: {{WEIGHTS: "{a.url}"}}\n')
    out = tmp_path / "v.yaml"
    r = _run(cli, m, str(cfg), "-o", str(out), "--json")
    assert r.code == 0, r.err
    (ref,) = r.items
    assert ref["state"] == "pinned" and "origin-pinned -- nothing is published for it; pinned md5" in r.err
    assert Path(yaml.safe_load(out.read_text())["MODEL"]["WEIGHTS"]).read_bytes() == a.data
    again = _run(cli, m, str(cfg), "--json")                 # now checked against the pin
    (ref,) = again.items
    assert (ref["state"], ref["strength"]) == ("verified", "origin-pinned")


def test_seed_iopath_runtime_files_are_best_effort_unless_strict(cli, blob, manifest,
                                                                 tmp_path, server):
    model, uvsym = blob("cs_seed", 20_000), blob("cs_uvsym", 10_000)
    m = manifest(entry(model), entry(uvsym, legacy_urls=[UV_SYM]))
    server.fault(uvsym.path, "status", -1, code=404)
    cfg = _config(tmp_path, f'MODEL: {{WEIGHTS: "{model.url}"}}\n')
    out, seed = tmp_path / "v.yaml", tmp_path / "iopath"
    r = _run(cli, m, str(cfg), "-o", str(out), "--seed-iopath", "--to", str(seed))
    assert r.code == 0, r.err
    assert out.exists() and "runtime file cs_uvsym not seeded" in r.err
    seeded = [p for p in seed.rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in seeded] == [model.data]
    out.unlink()
    r = _run(cli, m, str(cfg), "-o", str(out), "--seed-iopath", "--to", str(seed), "--strict")
    assert r.code == 5 and "cs_uvsym" in r.err


def test_catalog_and_any_scheme_are_references(cli, blob, manifest, tmp_path, server):
    r50 = blob("cs_r50", 20_000)
    m = manifest(entry(r50, legacy_urls=[CATALOG_R50]))
    cfg = _config(tmp_path, """\
        MODEL: {WEIGHTS: "catalog://ImageNetPretrained/MSRA/R-50"}
        DATASETS: {EXTRA: "ftp://files.example.invalid/proposals.pkl"}
        """)
    r = _run(cli, m, str(cfg), "--json")
    assert r.code == 0, r.err
    refs = {x["key"]: x for x in r.items}
    assert refs["MODEL.WEIGHTS"]["name"] == "cs_r50"
    assert Path(refs["MODEL.WEIGHTS"]["path"]).read_bytes() == r50.data
    assert refs["DATASETS.EXTRA"]["state"] == "not in any manifest"
    assert "ftp://files.example.invalid/proposals.pkl is not in any manifest" in r.err
    strict = _run(cli, m, str(cfg), "--strict")
    assert strict.code == 9 and "ftp://" in strict.err
    unknown = _config(tmp_path, 'MODEL: {WEIGHTS: "catalog://ImageNetPretrained/NOPE"}\n',
                      "u.yaml")
    assert _run(cli, m, str(unknown), "--strict").code == 9


def test_a_config_url_with_a_password_is_redacted_in_warnings(cli, manifest, tmp_path, blob):
    m = manifest(entry(blob("cs_any", 1000)))
    cfg = _config(tmp_path, 'X: "https://bob:hunter2@example.invalid/w.pkl?token=abc"\n')
    r = _run(cli, m, str(cfg), "--dry-run")
    assert "not in any manifest" in r.err and "hunter2" not in r.err and "abc" not in r.err


# -- 19.8: bounded work on hostile configs ------------------------------------------------

def test_an_alias_bomb_config_is_refused(cli, manifest, tmp_path, blob):
    m = manifest(entry(blob("cs_bomb", 1000)))
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, "
              f"*a{i-1}, *a{i-1}]" for i in range(1, 9)]
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    assert len(cfg.read_bytes()) < 1000
    r = _run(cli, m, str(cfg), "--dry-run")
    assert r.code == 7 and "alias bomb" in r.err


def test_a_diamond_of_bases_is_read_once_per_file(cli, manifest, tmp_path, blob, monkeypatch):
    """16 levels naming the next one twice: 2**16 paths through 17 files."""
    import densezoo.configs as configs

    reads: list[str] = []
    real_read = configs._read

    def counted(path, *rest):
        reads.append(str(path))
        return real_read(path, *rest)

    monkeypatch.setattr(configs, "_read", counted)
    a = blob("cs_diamond", 1000)
    m = manifest(entry(a))
    depth = 16
    (tmp_path / f"d{depth}.yaml").write_text(f'MODEL: {{WEIGHTS: "{a.url}"}}\n')
    for i in range(depth - 1, -1, -1):         # each level names the next one twice
        (tmp_path / f"d{i}.yaml").write_text(
            f'_BASE_: ["d{i + 1}.yaml", "./d{i + 1}.yaml"]\nLEVEL{i}: {i}\n')
    r = _run(cli, m, str(tmp_path / "d0.yaml"), "--dry-run", "--json")
    assert r.code == 0, r.err
    assert [x["name"] for x in r.items] == ["cs_diamond"]
    assert len(reads) == depth + 1


def test_a_base_that_is_not_a_regular_file_is_refused(cli, manifest, tmp_path, blob):
    m = manifest(entry(blob("cs_zero", 1000)))
    cfg = _config(tmp_path, '_BASE_: "/dev/zero"\n')
    r = _run(cli, m, str(cfg), "--dry-run")
    assert r.code == 7 and "not a regular file" in r.err


# -- 25.5: a preview that shows everything at 80 columns -----------------------------------

def test_dry_run_preview_shows_every_file_whole_at_80_columns(blob, manifest, tmp_path,
                                                               cache_dir):
    import os

    model = blob("densepose_rcnn_R_101_FPN_DL_WC2M_s1x_with_a_long_name", 30_000)
    uvsym = blob("cs_runtime_uv_symmetry_transforms", 10_000)
    m = manifest(entry(model), entry(uvsym, legacy_urls=[UV_SYM]))
    key = "MODEL.ROI_DENSEPOSE_HEAD.BOOTSTRAP.TEACHER_WEIGHTS_FOR_THE_STUDENT_MODEL"
    cfg = _config(tmp_path, f"""\
        MODEL:
          ROI_DENSEPOSE_HEAD:
            BOOTSTRAP: {{TEACHER_WEIGHTS_FOR_THE_STUDENT_MODEL: "{model.url}"}}
        """)
    env = {**os.environ, "DENSEZOO_CACHE_DIR": str(cache_dir)}
    _, out = run_in_pty([sys.executable, "-m", "densezoo", "--no-default-manifests",
                         "--manifest", str(m), "config", str(cfg), "--dry-run", "--seed-iopath"],
                        env)
    out = out.replace("\r", "")
    for whole in (key, model.name, model.url, uvsym.name, uvsym.url, "29.3 KiB"):
        assert whole in out, (whole, out)
    assert "not cached" in out
    assert "2 files, 39.1 KiB; to download: 39.1 KiB (2 not cached)" in out, out
