"""Issue 37 item 6: a progress bar is one line at 80 columns and says which artifact it
is (the name `fetch` accepts), not the downloader's file name."""

from __future__ import annotations

import os
import re
import sys

from conftest import entry, run_in_pty


def _frames(text: str) -> list[str]:
    """Every line rich drew, cursor moves and erasures removed."""
    text = text.replace("\x1b[2K", "\n").replace("\r", "\n")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    return [ln for ln in text.split("\n") if ln.strip()]


def test_the_bar_fits_80_columns_and_carries_the_artifacts_name(blob, manifest, server,
                                                                   tmp_path):
    b = blob("densepose_rcnn_R_101_FPN_DL_WC2M_s1x_bar", 60_000,
             path="/zoo/143908726/model_final_0123ab.bin")
    server.fault(b.path, "trickle", -1, step=6000, delay=0.1)
    m = manifest(entry(b, aliases=["R_101_DL_WC2M_bar"]))
    env = {**os.environ, "DENSEZOO_CACHE_DIR": str(tmp_path / "c"), "TERM": "xterm"}
    code, out = run_in_pty([sys.executable, "-m", "densezoo", "--manifest", str(m), "fetch",
                            b.name], env, columns=80)
    lines = _frames(out)
    assert code == 0, out[-500:]
    bars = [ln for ln in lines if "KiB/58.6 KiB" in ln or "B/58.6 KiB" in ln]
    assert bars, lines[-20:]
    for bar in bars:
        assert len(bar) <= 80, bar
        # the artifact's shortest accepted name, the whole size pair on the same line
        assert bar.startswith("R_101_DL_WC2M_bar "), bar
        assert re.search(r"[\d.]+ (B|KiB)/58\.6 KiB", bar), bar
    assert not any("model_final_" in ln for ln in bars)
    assert not any(ln.strip().startswith(("KiB", "/")) for ln in lines[:-1])  # never wrapped


def test_library_bars_are_named_by_the_artifact(blob, manifest, monkeypatch):
    """progress=True (tqdm.auto): the description is the entry's name."""
    import densezoo
    from densezoo import progress as progress_mod

    seen: list[str] = []
    real = progress_mod.TqdmProgress.start

    def spy(self, label, total, initial=0):
        real(self, label, total, initial)
        seen.append(self._bar.desc)

    monkeypatch.setattr(progress_mod.TqdmProgress, "start", spy)
    b = blob("lib_named_bar", 2000, path="/zoo/x/model_final_ffffff.bin")
    m = manifest(entry(b))
    densezoo.fetch("lib_named_bar", manifests=[m], progress=True)
    assert seen == ["lib_named_bar"]
