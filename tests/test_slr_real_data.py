"""Stages 08-14 on the real UADFV features of the paper (``paper_srm_features.npz``), under both
protocols through the numbered scripts (08 and 14 as commands, the others through their ``main``;
a second sound run checks determinism):

- ``paper`` on a three-pool person split: its numbers are those of the paper's code (checked
  against the peer library lir and against the paper's own KDE recomputation);
- ``sound`` v2 on a four-pool person split (issue 10): the LR system fitted on calib only, saved and
  reloaded bit-identically, cross-fitted calib figures, per-video ELUB bounds, intervals, and every
  summary labelled as contaminated (the paper's detector saw every person)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from common.cli import call_main
from common.config import REPO_ROOT, load_config
from common.io import read_csv
from common.stages import get
from preprocessing.splits import make_split, write_split

from slr_helpers import lir_cllr, lir_elub, load_script, person_split_json, write_config

STAGES = range(8, 15)
SPLITS = ("train", "val", "test")
POOLS = ("train", "val", "calib", "test")


@pytest.fixture(scope="module")
def real(tmp_path_factory, paper_features, uadfv_root):
    """Run 08-14 under sound v2 (four pools; 08 and 14 as commands) and paper (three pools)."""
    tmp = tmp_path_factory.mktemp("slr_real")
    write_split(tmp / "split4.json", make_split(uadfv_root, unit="person", ratios=(0.45, 0.15, 0.25, 0.15),
                                                  seed=1024, dataset_name="UADFV"))
    person_split_json(paper_features, tmp / "split.json", seed=0)
    outs = {}
    cfg_sound = write_config(tmp, paper_features, tmp / "split4.json", "sound", name="sound.yaml",
                             bootstrap={"n": 300, "seed": 7})
    for n in STAGES:
        if n in (8, 14):   # the first and last as commands (argument parsing, exit code), the rest in process
            p = subprocess.run([sys.executable, str(REPO_ROOT / get(n).script), "--config", str(cfg_sound)],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
            assert p.returncode == 0, f"stage {n}: {p.stderr[-2000:]}"
            assert "outputs in" in p.stdout
        else:
            call_main(load_script(n), load_config(cfg_sound))
    outs["sound"] = load_config(cfg_sound).output_dir
    cfg_paper = load_config(write_config(tmp, paper_features, tmp / "split.json", "paper", name="paper.yaml",
                                         bootstrap={"n": 0}))
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
    return {k: (np.array(v, float) if k not in ("image_path", "video_id", "person_id") else np.array(v))
            for k, v in cols.items()}


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
    assert (real["sound"] / "10_kde_lr" / "llr_curve_frame.png").is_file()
    assert (real["paper"] / "11_tippett" / "tippett_paper_form_frame.png").is_file()


def test_similarity_scores_separate_real_from_fake(real):
    for split in POOLS:
        cols = read_csv(real["sound"] / "08_scores" / f"{split}.csv", required=("image_path", "person_id", "video_id",
                                                                                 "label", "score"))
        y, x = np.array(cols["label"], int), np.array(cols["score"], float)
        assert roc_auc_score(1 - y, x) > 0.95   # real frames are closer to the centroid (contaminated features)
    persons = {s: set(read_csv(real["sound"] / "08_scores" / f"{s}.csv")["person_id"]) for s in POOLS}
    assert sum(len(p) for p in persons.values()) == len(set().union(*persons.values())) == 49


def test_sound_v2_summary_shape_and_contamination_label(real):
    for n in range(10, 15):
        s = _summary(real["sound"], n)
        assert "contaminated" in s["note"], n
        assert s["system"]["sha256"] and len(s["system"]["sha256"]) == 64
        for level in ("frame", "video"):
            assert tuple(s["levels"][level]) == POOLS
            for pool in POOLS:
                m = s["levels"][level][pool]
                for key in ("n_hp", "n_hd", "n_persons", "n_videos", "cllr", "cllr_min", "cllr_cal", "eer", "auc",
                            "misleading_hp", "misleading_hd"):
                    assert key in m, (n, level, pool, key)
                for key, (lo, hi) in m["ci95"].items():
                    if lo is None:      # devPAV / overestimation undefined on every resample (separated pool)
                        assert m[key] is None and m["ci95_usable"][key] == 0, (n, level, pool, key)
                        continue
                    assert lo <= m[key] + 1e-12 and m[key] <= hi + 1e-12, (n, level, pool, key, lo, m[key], hi)
    s10 = _summary(real["sound"], 10)
    counts = {p: s10["levels"]["frame"][p]["n_persons"] for p in POOLS}
    assert counts == {"train": 22, "val": 8, "calib": 12, "test": 7}
    assert s10["labels"]["train"].endswith("(detector-training data, diagnostic only)")
    assert s10["levels"]["frame"]["train"]["role"].startswith("detector-training data")


def test_sound_v2_system_loads_and_reproduces_every_llr(real):
    from slr.elub import elub_bounds
    from slr.system import LRSystem

    s10 = _summary(real["sound"], 10)
    system = LRSystem.load(real["sound"] / "10_kde_lr" / "system")
    assert system.sha256 == s10["system"]["sha256"]
    assert system.conditions["data_note"].startswith("contaminated")
    for level in ("frame", "video"):
        lo, hi = system.bounds_log10(level)
        assert [lo, hi] == s10["system"]["bounds_log10"][level]
        for pool in ("train", "val", "test"):
            lr = _lr(real["sound"], pool, level)
            np.testing.assert_array_equal(system.llr(lr["score"], level), lr["llr"])
        # calib: the cross-fitted LLRs, bounded by the ELUB of their calibrated values, each video once
        cal = _lr(real["sound"], "calib", level)
        cf = system.crossfit_llr(level)
        np.testing.assert_array_equal(cf["cf_llr"], cal["llr"])
        y, v = cal["label"].astype(int), cal["video_id"]
        _, inv, cnt = np.unique(v, return_inverse=True, return_counts=True)
        w = 1.0 / cnt[inv]
        assert (lo, hi) == elub_bounds(cal["llr_calibrated"][y == 0], cal["llr_calibrated"][y == 1],
                                       weights_hp=w[y == 0], weights_hd=w[y == 1])
        n_v_hp, n_v_hd = len(set(v[y == 0])), len(set(v[y == 1]))
        assert -np.log10(n_v_hp + 1) - 1e-12 <= lo <= 0 <= hi <= np.log10(n_v_hd + 1) + 1e-12
        # the test figures are computed on those LLRs (lir agrees)
        te = _lr(real["sound"], "test", level)
        assert s10["levels"][level]["test"]["cllr"] == pytest.approx(lir_cllr(te["llr"], te["label"]), abs=1e-6)
        mono = s10["system"]["monotonicity"][level]["model"]
        assert mono["direction_changes"] >= 0 and mono["largest_drop_log10"] >= 0


def test_paper_lr_metrics_hold_their_properties_and_match_lir(real):
    out = real["paper"]
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
            assert (lo, hi) == pytest.approx(lir_elub(llr, y), abs=1e-6)
            assert e["paper_elub"] == {"lower_log10": -12.0, "upper_log10": 6.5}
            assert "paper_eer" in s12["levels"][level][split]
            assert m["paper_cllr_calibrated"] >= 0


def test_protocol_specific_llrs(real):
    from slr.kde import paper_grid_llr

    s_paper = _summary(real["paper"], 10)
    # paper: each split's KDEs re-fitted on its own scores with the train bandwidths, no bounds
    bw = s_paper["system"]["bandwidth"]["frame"]
    assert min(bw.values()) >= 0.005
    assert s_paper["system"]["bounds_log10"]["frame"] is None and s_paper["system"]["sha256"] is None
    for split in SPLITS:
        lr = _lr(real["paper"], split)
        hp, hd = lr["score"][lr["label"] == 0], lr["score"][lr["label"] == 1]
        np.testing.assert_allclose(lr["llr"], paper_grid_llr(hp, hd, bw["hp"], bw["hd"], lr["score"]), atol=1e-9)
        np.testing.assert_array_equal(lr["llr"], lr["llr_kde"])


def test_second_run_gives_identical_numbers(real, paper_features):
    cfg = load_config(write_config(real["tmp"], paper_features, real["tmp"] / "split4.json", "sound",
                                   name="again.yaml", bootstrap={"n": 300, "seed": 7}),
                      [f"output_dir={real['tmp'] / 'again'}", f"slr.scores_dir={real['sound'] / '08_scores'}"])
    call_main(load_script(10), cfg)       # stage 10 holds every number; 11-14 only redraw them
    assert _summary(real["sound"], 10) == _summary(cfg.output_dir, 10)
    for split in POOLS:
        assert (real["sound"] / "10_kde_lr" / f"{split}_lr.csv").read_bytes() == \
            (cfg.output_dir / "10_kde_lr" / f"{split}_lr.csv").read_bytes()
    assert (real["sound"] / "10_kde_lr" / "system" / "SHA256SUMS").read_bytes() == \
        (cfg.output_dir / "10_kde_lr" / "system" / "SHA256SUMS").read_bytes()
