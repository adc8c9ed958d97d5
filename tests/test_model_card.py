"""The dependency graph and model card match upstream (detectron2 @ 02b5c4e), and `list`
reads well: one AP scale, 80 columns without cutting a value, sorting, pipes."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from densezoo import Zoo
from densezoo.catalog import Catalog

TSV = Path(__file__).resolve().parent / "data" / "detectron2-densepose-models.tsv"  # copied from
# shared/reference/ (detectron2 @ 02b5c4e doc tables), so the test needs no outside file
CA = "evolution.densepose_R_50_FPN_DL_WC1M_3x_Atop10P_CA"
SOFT = "cse.densepose_rcnn_R_50_FPN_soft_s1x"
MASK_354 = "cse.densepose_rcnn_R_50_FPN_soft_animals_finetune_maskonly_24k"
MASK_21B = MASK_354 + "-270668502"


@pytest.fixture(scope="module")
def catalog():
    return Catalog.load()


def init_weights(catalog, name):
    """The model/backbone entries a model's closure starts from (data files aside)."""
    art = catalog.get(name)
    return {a.name for a in catalog.closure([art]) if a is not art and a.kind in
            ("model", "backbone")} - {a.name for d in art.requires for a in
                                      catalog.closure([catalog.get(d)]) if a.name != d}


def lbo(catalog, name):
    """The LBO bases the model's own config names (its direct requirements)."""
    return {d.rsplit(".", 1)[-1] for d in catalog.get(name).requires if ".lbo." in d}


def test_every_requires_closure_matches_the_upstream_configs(catalog):
    models = [a for a in catalog.artifacts if a.kind == "model"]
    for a in models:
        closure = catalog.closure([a])          # resolves, no cycle
        assert closure[-1] is a
    for suffix in ("_B_uniform", "_B_uv", "_B_finesegm", "_B_coarsesegm"):
        for a in models:
            if a.name.startswith(CA + suffix):               # current and superseded -222…
                assert a.requires == (CA,), a.name
    for name in ("soft_chimps_finetune_4k", "soft_animals_finetune_4k",
                 "soft_animals_CA_finetune_4k"):
        assert catalog.get(f"cse.densepose_rcnn_R_50_FPN_{name}").requires[0] == SOFT
    for name in ("soft_animals_I0_finetune_16k", "soft_animals_I0_finetune_i2m_16k"):
        assert catalog.get(f"cse.densepose_rcnn_R_50_FPN_{name}").requires[0] == MASK_21B
    assert catalog.get("cse.densepose_rcnn_R_50_FPN_soft_animals_I0_finetune_m2m_16k"
                       ).requires[0] == MASK_354
    for name in (MASK_354, MASK_21B):
        assert catalog.get(name).requires[0] == SOFT
        assert catalog.get(name).url.endswith(("model_final_354e61.pkl",
                                                "model_final_21b1d2.pkl"))
    assert catalog.get(CA).url.endswith("217578784/model_final_9fe1cc.pkl")
    assert catalog.get(SOFT).url.endswith("250533982/model_final_2c4512.pkl")
    for a in models:                                   # every CSE model needs its LBO basis
        if a.name.startswith("cse."):
            bases = lbo(catalog, a.name)
            if "chimps" in a.name:
                assert "phi_chimp_5029_256" in bases
            elif "animals" in a.name:
                assert bases and "phi_smpl_27554_256" not in bases
            else:
                assert bases == {"phi_smpl_27554_256"}, a.name
    assert catalog.get("densepose-v1:rpn_person_only_R-50-FPN_1x").requires == ("ImageNet_R-50",)
    assert catalog.get("rpn_person_only_X-101-32x8d-FPN_1x").requires == ("ImageNet_X-101-32x8d",)


def test_the_model_card_carries_every_documented_number(catalog):
    rows = list(csv.reader(TSV.read_text().splitlines()[1:], delimiter="\t"))
    head, rows = rows[0], rows[1:]
    by_url = {a.url: a for a in catalog.artifacts}
    assert len(rows) == 41                              # every documented model
    for r in rows:
        d = dict(zip(head, r))
        m = by_url[d["model_url"]].metrics
        assert m["densepose"]["GPSm"] == float(d["dp. AP GPSm"])
        assert m["densepose"]["GPS"] == float(d["dp. AP GPS"])
        assert m["bbox"]["AP"] == float(d["box AP"]) and m["segm"]["AP"] == float(d["segm AP"])
        assert m["speed"] == {"train_s_per_iter": float(d["train time (s/iter)"]),
                              "inference_s_per_im": float(d["inference time (s/im)"]),
                              "train_mem_GB": float(d["train mem (GB)"])}


def test_info_shows_the_card_and_list_sorts_by_it(cli):
    r = cli("info", "R_50_FPN_s1x")
    assert r.code == 0 and "inference 0.066 s/image" in r.out and "GPSm 65.3" in r.out
    rows = [line.split("\t") for line in cli("list", "--zoo", "detectron2", "--kind", "model",
                                             "--sort", "ap").out.splitlines()]
    aps = [float(r[5]) for r in rows if r[5]]
    assert aps == sorted(aps, reverse=True) and aps[0] == 67.6
    rows = [line.split("\t") for line in cli("list", "--kind", "model", "--sort",
                                             "speed").out.splitlines()]
    speeds = [float(r[7]) for r in rows if r[7]]
    assert speeds == sorted(speeds) and rows[0][7] == "0.051"


def test_one_ap_scale_and_which_metric(cli):
    rows = {r["name"]: r for r in cli("list", "--kind", "model", "--json").items}
    assert rows["ResNet50_FPN_s1x"]["ap"] == 47.48 and rows["ResNet50_FPN_s1x"]["ap_metric"] \
        == "AP (GPS)"
    assert rows["densepose_rcnn_R_50_FPN_s1x"]["ap"] == 65.3
    assert rows["densepose_rcnn_R_50_FPN_s1x"]["ap_metric"] == "AP (GPSm)"


def test_list_fits_80_columns_and_cuts_no_value():
    from densezoo.cli.render import list_table

    z = Zoo()
    infos = z.list()
    text = list_table(infos, width=80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    flat = text.replace("\n", "")
    # A column is shown whole or left out (issue 37: names are never cut, other columns
    # make room); every value of a shown column is there.
    sections = dict(re.findall(r"^(densepose-v1|detectron2|community)\b.*\n(name .*)$", text,
                               re.M))
    for i in infos:
        header = sections[i.artifact.zoo].split()
        ap = i.to_dict()["ap"]
        if ap is not None and "AP" in header:
            assert f"{ap:.1f}" in text
        if "checksum" in header:
            assert str(i.checksum) in text
    assert "AP" in sections["densepose-v1"].split() and "AP" in sections["detectron2"].split()
    for heading in ("densepose-v1  (AP column: DensePose AP (GPS), in %)",
                    "detectron2  (AP column: DensePose AP (GPSm), in %)"):
        assert heading in lines
    assert "densepose_coco_2014_valminusminival" in flat        # short enough: whole
    wide = list_table(infos, width=None, wide=True)
    assert "0.066" in wide and "detectron2_ImageNet_R-50" in wide


def test_r50_is_ambiguous_and_says_which_zoo(cli):
    r = cli("info", "R-50")
    assert r.code == 3 and "densepose-v1:ImageNet_R-50" in r.err
    assert "detectron2:detectron2_ImageNet_R-50" in r.err
    assert "zoo           detectron2" in cli("info", "detectron2:R-50").out


def test_progress_uses_binary_units():
    from densezoo.cli.render import progress_display

    p = progress_display()
    task = p.add_task("x.pkl", total=60 * 2 ** 20, completed=30 * 2 ** 20)
    text = "".join(str(c(p.tasks[task])) for c in p.columns[2:3])
    assert "MiB" in text and "MB" not in text.replace("MiB", "")


def test_a_batch_ends_with_one_summary_line(cli, blob, manifest):
    from conftest import entry

    a, b = blob("sum-a"), blob("sum-b")
    m = str(manifest(entry(a), entry(b)))
    assert cli("--manifest", m, "fetch", "sum-a").code == 0
    r = cli("--manifest", m, "fetch", "sum-a", "sum-b")
    assert r.code == 0 and r.err.strip().splitlines()[-1] == "1 fetched, 1 cached, 0 failed"


def test_every_runtime_file_densepose_downloads_is_a_manifest_entry(catalog):
    from densezoo.configs import UrlIndex, runtime_urls

    meshes = ["smpl_27554", "chimp_5029", "cat_5001", "cat_7466", "sheep_5004", "zebra_5002",
              "horse_5004", "giraffe_5002", "elephant_5002", "dog_5002", "dog_7466",
              "cow_5002", "bear_4936"]
    cse = {"MODEL": {"ROI_DENSEPOSE_HEAD": {"CSE": {"EMBEDDERS": {m: {} for m in meshes}}}}}
    index = UrlIndex(catalog)
    for config in ({}, cse):
        urls = runtime_urls(config)
        assert urls and all(index.find(u) is not None for u in urls), [
            u for u in urls if index.find(u) is None]
