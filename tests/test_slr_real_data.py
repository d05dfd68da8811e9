"""Stages 08-14 on the real UADFV features of the paper (``paper_srm_features.npz``), split by
person, under both protocols, through the numbered scripts (08 and 14 as commands, the others
through their ``main``; a second sound run checks determinism). Asserts what must hold on any data, the peer
library's (lir) values, and the recorded behaviour of these features."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from common.cli import call_main
from sklearn.metrics import roc_auc_score

from common.config import REPO_ROOT, load_config
from common.io import read_csv
from common.stages import get

from slr_helpers import lir_cllr, lir_elub, load_script, person_split_json, write_config

STAGES = range(8, 15)
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def real(tmp_path_factory, paper_features):
    """Run 08-14 under sound (as commands) and paper (in process); returns {protocol: output_dir}."""
    tmp = tmp_path_factory.mktemp("slr_real")
    person_split_json(paper_features, tmp / "split.json", seed=0)
    outs = {}
    cfg_sound = write_config(tmp, paper_features, tmp / "split.json", "sound", name="sound.yaml")
    for n in STAGES:
        if n in (8, 14):   # the first and last as commands (argument parsing, exit code), the rest in process
            p = subprocess.run([sys.executable, str(REPO_ROOT / get(n).script), "--config", str(cfg_sound)],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
            assert p.returncode == 0, f"stage {n}: {p.stderr[-2000:]}"
            assert "outputs in" in p.stdout
        else:
            call_main(load_script(n), load_config(cfg_sound))
    outs["sound"] = load_config(cfg_sound).output_dir
    cfg_paper = load_config(write_config(tmp, paper_features, tmp / "split.json", "paper", name="paper.yaml"))
    for n in STAGES:
        call_main(load_script(n), cfg_paper)
    outs["paper"] = cfg_paper.output_dir
    outs["tmp"] = tmp
    return outs


def _summary(out, stage):
    return json.loads((out / get(stage).folder / "summary.json").read_text())


def _lr(out, split, level="frame"):
    name = f"{split}_lr.csv" if level == "frame" else f"{split}_video_lr.csv"
    cols = read_csv(out / "10_kde_lr" / name)
    return {k: (np.array(v, float) if k not in ("image_path", "video_id") else np.array(v)) for k, v in cols.items()}


def test_every_stage_writes_figures_and_summary(real):
    for protocol in ("sound", "paper"):
        for n in STAGES:
            d = real[protocol] / get(n).folder
            assert (d / "summary.json").is_file(), d
            pngs = list(d.glob("*.png"))
            assert pngs and all(p.stat().st_size > 5000 for p in pngs), d
            assert not [p for p in d.parent.iterdir() if p.name.endswith(".tmp")]
    assert (real["sound"] / "08_scores" / "centroid.npy").is_file()
    assert (real["sound"] / "11_tippett" / "tippett_video.png").is_file()
    assert (real["paper"] / "11_tippett" / "tippett_paper_form_frame.png").is_file()


def test_similarity_scores_separate_real_from_fake(real, paper_features):
    s08 = _summary(real["sound"], 8)
    assert s08["feature_dim"] == 512
    assert sum(s["n_hp"] + s["n_hd"] for s in s08["splits"].values()) == 2438
    for split in SPLITS:
        cols = read_csv(real["sound"] / "08_scores" / f"{split}.csv", required=("image_path", "video_id", "label",
                                                                                 "score"))
        y, x = np.array(cols["label"], int), np.array(cols["score"], float)
        auc = roc_auc_score(1 - y, x)           # Hp (real) positive: real frames are closer to the centroid
        assert auc > 0.95 and s08["splits"][split]["auc"] == pytest.approx(auc, abs=1e-12)
    # persons never cross splits
    persons = {s: {v.replace("_fake", "") for v in read_csv(real["sound"] / "08_scores" / f"{s}.csv")["video_id"]}
               for s in SPLITS}
    assert not (persons["train"] & persons["val"]) and not (persons["train"] & persons["test"])
    assert not (persons["val"] & persons["test"])


@pytest.mark.parametrize("protocol", ["sound", "paper"])
def test_lr_metrics_hold_their_properties_and_match_lir(real, protocol):
    out = real[protocol]
    s13, s12, s14 = _summary(out, 13), _summary(out, 12), _summary(out, 14)
    for level in ("frame", "video"):
        for split in SPLITS:
            m = s13["levels"][level][split]
            assert 0 <= m["cllr_min"] <= m["cllr"] + 1e-12
            assert m["cllr_cal"] >= -1e-12
            assert m["cllr_cal"] == pytest.approx(m["cllr"] - m["cllr_min"], abs=1e-12)
            assert m["ece_prior_0.5"] == pytest.approx(m["cllr"], rel=1e-9, abs=1e-12)
            lr = _lr(out, split, level)
            y, llr = lr["label"].astype(int), lr["llr"]
            assert m["auc"] == pytest.approx(roc_auc_score(1 - y, llr), abs=1e-9)
            assert m["cllr"] == pytest.approx(lir_cllr(llr, y), abs=1e-6)
            assert 0 <= s12["levels"][level][split]["eer"] <= 0.5
            e = s14["levels"][level][split]
            lo, hi = e["elub"]["lower_log10"], e["elub"]["upper_log10"]
            if protocol == "sound":
                # bounds fitted on val's calibrated LLRs (lir agrees), every final LLR inside them
                val = _lr(out, "val", level)
                ref = lir_elub(val["llr_calibrated"], val["label"])
                assert (lo, hi) == pytest.approx(ref, abs=1e-6)
                assert e["final_llr_inside_bounds"] and llr.min() >= lo - 1e-12 and llr.max() <= hi + 1e-12
                n_val = len(val["label"])
                assert -np.log10(n_val + 1) - 1e-9 <= lo <= 0 <= hi <= np.log10(n_val + 1) + 1e-9
            else:
                assert (lo, hi) == pytest.approx(lir_elub(llr, y), abs=1e-6)
                assert e["paper_elub"] == {"lower_log10": -12.0, "upper_log10": 6.5}
                assert "paper_eer" in s12["levels"][level][split]
                assert m["paper_cllr_calibrated"] >= 0


def test_protocol_specific_llrs(real):
    from slr.kde import KDELikelihoodRatio, paper_grid_llr

    s_sound, s_paper = _summary(real["sound"], 10), _summary(real["paper"], 10)
    # sound: llr_kde is the train-fitted KDE LR, identical for every split's items
    bw = s_sound["bandwidth"]
    tr = _lr(real["sound"], "train")
    model = KDELikelihoodRatio().fit(tr["score"][tr["label"] == 0], tr["score"][tr["label"] == 1], bw["hp"], bw["hd"])
    te = _lr(real["sound"], "test")
    np.testing.assert_allclose(te["llr_kde"], model.llr(te["score"]), atol=1e-9)
    # paper: each split's KDEs re-fitted on its own scores with the train bandwidths, no bounds
    bw = s_paper["bandwidth"]
    assert min(bw.values()) >= 0.005
    for split in SPLITS:
        lr = _lr(real["paper"], split)
        hp, hd = lr["score"][lr["label"] == 0], lr["score"][lr["label"] == 1]
        np.testing.assert_allclose(lr["llr"], paper_grid_llr(hp, hd, bw["hp"], bw["hd"], lr["score"]), atol=1e-9)
        np.testing.assert_array_equal(lr["llr"], lr["llr_kde"])


def test_second_run_gives_identical_numbers(real, paper_features):
    cfg = load_config(write_config(real["tmp"], paper_features, real["tmp"] / "split.json", "sound",
                                   name="again.yaml"), [f"output_dir={real['tmp'] / 'again'}"])
    for n in STAGES:
        call_main(load_script(n), cfg)
    for n in STAGES:
        a = _summary(real["sound"], n)
        b = _summary(cfg.output_dir, n)
        a.pop("sources", None), b.pop("sources", None)
        assert a == b, f"stage {n} differs between runs"
    for split in SPLITS:
        assert (real["sound"] / "10_kde_lr" / f"{split}_lr.csv").read_bytes() == \
            (cfg.output_dir / "10_kde_lr" / f"{split}_lr.csv").read_bytes()
