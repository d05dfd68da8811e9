"""Robustness stage (15) on the embedded demo run (the session's ``demo`` fixture, conftest.py): the
identity strength of every family reproduces the clean figures exactly, the clean scores are stage
08's test scores, JPEG quality 30 changes the scores, the conditions written into
``15_robustness/system`` have the documented format, casework is pointed at that system, and a
second run reuses every finished setting from the resume area."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from common.config import load_config
from common.io import _jsonable, numeric_column, read_csv
from evaluation import robustness as R

pytestmark = pytest.mark.slow   # one full demo run (minutes on CPU)
CONFIG = "configs/demo.yaml"


def _cfg(out):
    return load_config(CONFIG, [f"output_dir={out}"])


def _frame_scores(out) -> dict[str, np.ndarray]:
    path = out / "15_robustness" / "frame_llrs.csv"
    cols = read_csv(path, required=("setting", "score", "llr", "image_path"))
    scores = numeric_column(cols, "score", path)
    settings = np.array(cols["setting"])
    return {s: scores[settings == s] for s in dict.fromkeys(cols["setting"])}


def test_stage_outputs_and_conditions_format(demo):
    from slr.system import LRSystem
    out = demo[0]
    cfg = _cfg(out)
    d = out / "15_robustness"
    for name in ("summary.json", "robustness.csv", "frame_llrs.csv", "cllr_vs_strength.png", "tippett_strongest.png",
                 "casework_system.json", "system/system.json"):
        assert (d / name).is_file() and (d / name).stat().st_size > 0, name
    summary = json.loads((d / "summary.json").read_text())
    configured = cfg.get("robustness.degradations")
    labels = [s["setting"] for s in summary["settings"]]
    assert labels == ["clean", "jpeg_q70", "jpeg_q30", "downscale_x0.5", "blur_s1", "noise_s5"]
    assert {r["level"] for r in summary["table"]} == {"frame", "video"}
    assert len(summary["table"]) == 2 * len(labels)
    assert summary["settings"][3]["applied_to"] == "frame"                # the demo has its source videos
    assert summary["recrop_check"]["max_abs_diff_grey_levels"] == 0      # re-cropping a clean frame = stage 01
    base = LRSystem.load(out / "10_kde_lr" / "system")
    robust = LRSystem.load(d / "system")
    assert robust.sha256 == summary["system"]["sha256"] != base.sha256
    assert summary["base_sha256"] == base.sha256
    vd = robust.conditions["validated_degradations"]
    assert set(vd) == set(configured)
    for fam, key in R.CONDITION_KEYS.items():
        entry = vd[fam]
        assert key in entry and (entry[key] is None or isinstance(entry[key], (int, float)))
        assert entry["tested"] == list(R.DG.severity_order(fam, [float(x) if fam != "jpeg" else x
                                                                 for x in configured[fam]]))
        assert isinstance(entry["status"], str) and entry["table"]
        assert entry[key] is None or entry[key] in entry["passed"]
    # every other condition of stage 10 is kept
    assert {k: v for k, v in robust.conditions.items() if k not in ("validated_degradations", "robustness")} == \
        base.conditions
    assert R.casework_system_dir(cfg) == d / "system"
    # the validated range agrees with the pure function on the written table
    assert summary["validated_range"] == json.loads(json.dumps(_jsonable(
        R.validated_range(summary["table"], summary["criteria"]))))


def test_clean_scores_are_stage08s_and_jpeg30_changes_them(demo):
    out = demo[0]
    scores = _frame_scores(out)
    s08 = out / "08_scores" / "test.csv"
    cols = read_csv(s08, required=("image_path", "score"))
    ref = dict(zip(cols["image_path"], numeric_column(cols, "score", s08)))
    f = read_csv(out / "15_robustness" / "frame_llrs.csv")
    paths = [p for p, s in zip(f["image_path"], f["setting"]) if s == "clean"]
    assert len(paths) == len(ref)
    assert np.array_equal(scores["clean"], np.array([ref[p] for p in paths]))    # bit-identical
    diff = np.abs(scores["jpeg_q30"] - scores["clean"])
    assert diff.max() > 1e-4 and np.mean(diff > 0) > 0.9                 # not a no-op, on almost every frame
    assert np.abs(scores["jpeg_q30"] - scores["clean"]).mean() > np.abs(scores["jpeg_q70"] - scores["clean"]).mean()


def test_identity_strengths_reproduce_the_clean_figures_exactly(demo):
    from slr.system import LRSystem
    out = demo[0]
    cfg = _cfg(out)
    settings = R.Settings.from_config(cfg)
    frames = R.load_test_frames(cfg, settings)
    system = LRSystem.load(out / "10_kde_lr" / "system")
    scorer = R.Scorer(cfg, system)
    summary = json.loads((out / "15_robustness" / "summary.json").read_text())
    clean_rows = {r["level"]: r for r in summary["table"] if r["family"] == "clean"}
    clean_scores = _frame_scores(out)["clean"]
    n = len(frames.samples)
    for family, identity in (("jpeg", None), ("downscale", 1.0), ("blur", 0), ("noise", 0)):
        crops = R.degraded_crops(frames, family, identity, settings.seed)
        scores = scorer.score_all(crops, n, f"identity {family}", progress=False)
        assert np.array_equal(scores, clean_scores), family
        for level, (llr, labels, persons, videos) in R.level_data(system, frames, scores).items():
            row = R.level_metrics(llr, labels, persons, videos, settings.bootstrap_n, settings.seed)
            row = json.loads(json.dumps(_jsonable(row)))
            expect = {k: v for k, v in clean_rows[level].items() if k in row}
            assert row == expect, (family, level)
    assert not math.isnan(clean_rows["frame"]["auc"])


def test_second_run_reuses_every_setting(demo, tmp_path):
    from tests.conftest import run_repo_cmd
    out = tmp_path / "run"
    shutil.copytree(demo[0], out, symlinks=True)
    before = json.loads((out / "15_robustness" / "summary.json").read_text())
    p, _ = run_repo_cmd(["evaluation/15_robustness.py", "--config", CONFIG, "--set", f"output_dir={out}"], timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    after = json.loads((out / "15_robustness" / "summary.json").read_text())
    assert all(s["resumed"] for s in after["settings"])
    assert after["table"] == before["table"] and after["validated_range"] == before["validated_range"]
    assert after["system"]["sha256"] == before["system"]["sha256"]       # same conditions, same system files
    # a changed seed changes the noise draws: only the noise setting is recomputed
    p, _ = run_repo_cmd(["evaluation/15_robustness.py", "--config", CONFIG, "--set", f"output_dir={out}",
                         "--set", "robustness.seed=7"], timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    again = json.loads((out / "15_robustness" / "summary.json").read_text())
    assert {s["setting"]: s["resumed"] for s in again["settings"]} == \
        {s["setting"]: s["family"] != "noise" for s in again["settings"]}
    scores = _frame_scores(out)
    assert np.array_equal(scores["clean"], _frame_scores(demo[0])["clean"])
    assert not np.array_equal(scores["noise_s5"], _frame_scores(demo[0])["noise_s5"])


def test_questioned_jpeg_quality_against_the_written_condition(demo, tmp_path):
    """Casework's check (H4) compares a questioned image's estimated JPEG quality with
    conditions.validated_degradations.jpeg.min_quality: the estimate is exact on re-compressed demo
    crops, and a quality-30 file lies below the documented example bound of 50."""
    from common import degrade as DG
    from evaluation.robustness import read_crop
    from slr.system import LRSystem
    out = demo[0]
    jpeg = LRSystem.load(out / "15_robustness" / "system").conditions["validated_degradations"]["jpeg"]
    assert "min_quality" in jpeg
    crop = read_crop(next((out / "01_faces" / "real" / "frames").rglob("*.png")))
    for quality in (30, 50, 90):
        path = tmp_path / f"questioned_q{quality}.jpg"
        path.write_bytes(DG.jpeg_bytes(crop, quality))
        assert DG.estimate_jpeg_quality(path) == quality
    assert DG.estimate_jpeg_quality(tmp_path / "questioned_q30.jpg") < 50
