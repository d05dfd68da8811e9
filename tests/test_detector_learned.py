"""The raw detector AUC per pool and the "detector did not learn" flag (training/learned.py): a detector
trained for 2 steps on real UADFV frames is flagged by stage 03, stage 04 and the stage-16 banner; the AUC
is sklearn's; the verdict follows the interval's pessimistic end and training.learned.margin."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from common.config import Config
from common.io import read_csv
from evaluation import report as R
from training import dump as DUMP
from training import learned as L
from training import trainer as T

from test_training_trainer import make_cfg, small_split


def _synthetic(n_persons: int, shift: float, seed: int = 0):
    """Per person 10 real and 10 fake frames; fake scores shifted by ``shift`` plus a person offset."""
    rng = np.random.default_rng(seed)
    scores, labels, persons = [], [], []
    for p in range(n_persons):
        off = rng.normal(0, 0.5)
        for lab in (0, 1):
            scores += list(off + lab * shift + rng.normal(0, 1, 10))
            labels += [lab] * 10
            persons += [f"p{p}"] * 10
    return np.array(scores), np.array(labels), np.array(persons)


def test_auc_is_sklearns_and_the_verdict_follows_the_interval():
    s, y, p = _synthetic(12, 2.5)
    rec = L.detector_auc(s, y, p, bootstrap_n=500, seed=1)
    assert rec["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert rec["n_persons"] == 12 and rec["n_frames"] == 240
    lo, hi = rec["ci95"]
    assert lo < rec["auc"] < hi and lo > 0.8                    # measured: AUC 0.95, interval about [0.91, 0.97]
    ok = L.verdict({"val": rec, "calib": rec}, 0.0)
    assert ok["learned"] is True and ok["flag"] is None and ok["failing"] == [] and ok["threshold"] == 0.5
    # a margin that puts the threshold above the interval's lower end flags the same detector
    strict = L.verdict({"val": rec}, margin=lo - 0.5 + 0.01)
    assert strict["learned"] is False and strict["flag"] == "detector did not learn" and strict["failing"] == ["val"]
    # scores unrelated to the label: the interval includes 0.5, flagged on that pool only
    s0, y0, p0 = _synthetic(12, 0.0, seed=3)
    chance = L.detector_auc(s0, y0, p0, bootstrap_n=500, seed=1)
    assert chance["ci95"][0] < 0.5 < chance["ci95"][1]
    v = L.verdict({"train": rec, "val": rec, "calib": chance, "test": chance}, 0.0)
    assert v["learned"] is False and v["failing"] == ["calib"] and v["judged"] == ["val", "calib"]
    # train and test are not judged; a pool with one class has no AUC
    assert L.verdict({"train": chance, "test": chance}, 0.0)["learned"] is None
    assert L.detector_auc(s[y == 0], y[y == 0], p[y == 0], 100, 0)["auc"] is None


def test_two_step_detector_is_flagged_by_stages_03_and_04(uadfv_root, tmp_path):
    split = small_split(uadfv_root, tmp_path, n_train=6, n_val=10, frames=4)
    cfg = make_cfg(uadfv_root, split, tmp_path, epochs=1, max_steps_per_epoch=2)
    summary = T.train(cfg, progress=False)
    assert summary["steps"] == 2
    val = summary["detector_auc"]["val"]
    assert val["n_persons"] == 5 and val["ci95"][0] <= 0.5 < val["ci95"][1]
    assert summary["detector_learned"]["learned"] is False
    assert summary["detector_learned"]["flag"] == "detector did not learn"
    # stage 04: every dumped pool gets its raw AUC; the val figure is the logits' sklearn AUC
    s04 = DUMP.dump_features(cfg, progress=False)
    meta = read_csv(tmp_path / "04_features" / "val" / "meta.csv")
    y = np.array([int(v) for v in meta["label"]])
    z = np.array([float(v) for v in meta["logit"]])
    assert s04["detector_auc"]["val"]["auc"] == pytest.approx(roc_auc_score(y, z), abs=1e-12)
    assert set(s04["detector_auc"]) == {"train", "val"}
    assert s04["detector_learned"]["learned"] is False and "val" in s04["detector_learned"]["failing"]
    # stage 16's report says so in its own banner, apart from the LR system's degenerate flags
    rcfg = Config({"experiment": "t", "output_dir": str(tmp_path), "demo": {"enabled": False},
                   "report": {"split": "test", "criteria": [], "compare": []}}, "test-config")
    html, rsum = R.render(R.load_run(tmp_path, rcfg), rcfg)
    assert "id='detector-did-not-learn'" in html and "Detector did not learn." in html
    assert rsum["detector_learned"]["learned"] is False and rsum["degenerate"] == []
