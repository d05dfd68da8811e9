"""The validation report (stage 15) on a sound-v2 run: counts above the matrix, decisions judged on
the pessimistic end of the person intervals for test and calib, the saved LR system loaded and
verified, a degenerate system flagged and never passed, numbers formatted for reading."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from common.config import Config
from common.io import write_csv
from evaluation import report as R
from slr import run_scores


def _scores(directory, sep=1.0, seed=0):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for pool, n_persons in (("calib", 16), ("test", 10)):
        cols = {"person_id": [], "video_id": [], "label": [], "score": []}
        for i in range(n_persons):
            pe = rng.normal(0, 0.3)
            for lab in (0, 1):
                for _ in range(6):
                    cols["person_id"].append(f"{pool}{i}")
                    cols["video_id"].append(f"{pool}{i}_{lab}")
                    cols["label"].append(lab)
                    cols["score"].append(float((sep if lab == 0 else -sep) + pe + rng.normal(0, 1)))
        write_csv(directory / f"{pool}.csv", cols)


def _cfg(out, criteria):
    return Config({"experiment": "t", "output_dir": str(out), "demo": {"enabled": False},
                   "report": {"split": "test", "criteria": criteria, "compare": []}}, "test-config")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    _scores(tmp / "in")
    assert run_scores.main(["--scores-dir", str(tmp / "in"), "--output-dir", str(tmp / "out"), "--model", "logistic",
                            "--bootstrap", "200", "--no-video-level"]) == 0
    return tmp


def test_matrix_judges_the_pessimistic_end_for_test_and_calib(run_dir):
    out = run_dir / "out"
    s10 = json.loads((out / "10_kde_lr" / "summary.json").read_text())
    test = s10["levels"]["frame"]["test"]
    lo, hi = test["ci95"]["cllr"]
    between = round((test["cllr"] + hi) / 2, 6)          # the point value passes, the upper end does not
    cfg = _cfg(out, [{"metric": "cllr", "max": between}, {"metric": "auc", "min": 0.5}])
    html, summary = R.render(R.load_run(out, cfg), cfg)
    rows = {(r["metric"], r["pool"], r["level"]): r for r in summary["validation_matrix"]}
    r = rows[("cllr", "test", "frame")]
    assert r["value"] == test["cllr"] and r["interval"] == [lo, hi] and r["judged_value"] == hi
    assert r["decision"] == "fail"
    assert rows[("cllr", "calib", "frame")]["value"] == s10["levels"]["frame"]["calib"]["cllr"]
    assert rows[("auc", "test", "frame")]["judged_value"] == test["ci95"]["auc"][0]
    assert rows[("auc", "test", "frame")]["decision"] == "pass"
    assert rows[("direction_changes", "calib score range", "frame")]["value"] == 0      # logistic: monotone
    assert summary["lr_system"]["loaded"] and summary["lr_system"]["sha256"] == s10["system"]["sha256"]
    assert not summary["degenerate"]
    # order: counts, then the matrix, then the system
    assert html.index('id="pool-counts"') < html.index('id="validation-matrix"') < html.index("SHA-256 <code>")
    assert f"[{R.fmt(lo)}, {R.fmt(hi)}]" in html
    assert "<details><summary>10_kde_lr/summary.json: all values</summary>" in html


def test_degenerate_system_is_flagged_and_never_passes(run_dir):
    out = run_dir / "degen"
    shutil.copytree(run_dir / "out", out)
    path = out / "10_kde_lr" / "summary.json"
    s10 = json.loads(path.read_text())
    s10["system"]["bounds_log10"]["frame"] = [0.0, 0.0]
    s10["levels"]["frame"]["test"]["n_persons_hd"] = 2
    path.write_text(json.dumps(s10))
    cfg = _cfg(out, [{"metric": "auc", "min": 0.0}])
    html, summary = R.render(R.load_run(out, cfg), cfg)
    assert any("zero width" in d for d in summary["degenerate"])
    assert any("test: 2 person(s) with fake items" in d for d in summary["degenerate"])
    assert "id='degenerate'" in html
    decisions = {r["decision"] for r in summary["validation_matrix"] if r["metric"] == "auc"}
    assert decisions == {"not passed (degenerate system)"}


def test_tampered_system_is_shown_not_crashed(run_dir):
    out = run_dir / "tampered"
    shutil.copytree(run_dir / "out", out)
    npy = sorted((out / "system").glob("*.npy"))[0]
    npy.write_bytes(npy.read_bytes()[:-1] + b"\x01")
    cfg = _cfg(out, [])
    html, summary = R.render(R.load_run(out, cfg), cfg)
    assert not summary["lr_system"]["loaded"] and "SHA-256 differs" in summary["lr_system"]["reason"]
    assert "id='system-error'" in html


@pytest.mark.parametrize("value,text", [(3, "3"), (0.123456, "0.123"), (1234.5, "1.23×10^3"), (0.0, "0"),
                                        (float("inf"), "∞"), (None, "n/a"), (2.5e-5, "2.5×10^-5")])
def test_numbers_are_formatted_for_reading(value, text):
    assert R.fmt(value) == text
