"""Fast checks of the end-to-end parts: demo builder, report reading/judging, verbal scale (casework: test_casework.py)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from common import schema
from common.config import Config, ConfigError, config_from_dict, load_config
from evaluation import report as R
from casework.statement import verbal
from preprocessing.demo_videos import DemoOptions, LandmarkFinder, build_demo, load_portrait, make_person

ENFSI = load_config("configs/demo.yaml").get("evidence.verbal_scale")
HYPS = {"hp": "the image is real", "hd": "the image is a deepfake"}


# ------------------------------------------------------------------------------------------ demo
def test_demo_builder_writes_readable_videos_deterministically(tmp_path):
    opts = DemoOptions(persons=3, frames=3, frame_size=256)
    a = build_demo(tmp_path / "a", seed=7, options=opts, progress=False)
    build_demo(tmp_path / "b", seed=7, options=opts, progress=False)
    ids = sorted(v["video_id"] for v in a["videos"])
    assert ids == ["0000", "0000_fake", "0001", "0001_fake", "0002", "0002_fake"]
    for v in a["videos"]:
        cap = cv2.VideoCapture(str(tmp_path / "a" / v["file"]))
        frames = []
        while True:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(f)
        assert len(frames) == 3 and frames[0].shape == (256, 256, 3)
    # same seed, same videos (the encoder is deterministic); the fake differs from its real video
    for v in a["videos"]:
        assert (tmp_path / "a" / v["file"]).read_bytes() == (tmp_path / "b" / v["file"]).read_bytes()
    assert a["mean_abs_difference_fake_real"] > 1.0           # the self-blend changed the face
    assert 0.02 < a["mean_mask_area"] < 0.6                    # ... and only the face region


def test_demo_persons_keep_a_detectable_face():
    finder = LandmarkFinder()
    portrait = load_portrait()
    lm = finder.find(portrait)
    assert lm is not None and lm.shape == (68, 2)
    rng = np.random.default_rng(0)
    opts = DemoOptions()
    found = [finder.find(make_person(portrait, lm, rng, opts, mirror=bool(i % 2))) is not None for i in range(4)]
    assert sum(found) >= 3


@pytest.mark.parametrize("section, message", [
    ({"persons": 2}, "at least 3 persons"),
    ({"colour": 1}, "unknown key"),
    ({"jpeg_quality": [90, 40]}, "jpeg_quality"),
])
def test_demo_options_errors(section, message):
    with pytest.raises(ValueError, match=message):
        DemoOptions.from_section(section)


def test_demo_options_from_config():
    o = DemoOptions.from_section(load_config("configs/demo.yaml").section("demo"))
    assert o.persons >= 3 and o.shift == 0.04 and o.gain == 0.15


# ------------------------------------------------------------------------------------------ verbal
@pytest.mark.parametrize("llr, words", [
    (0.0, "do not support"), (0.2, "do not support"), (-0.3, "do not support"),
    (0.30103, "weak support for the proposition that the image is real"),
    (-0.5, "weak support for the proposition that the image is a deepfake"),
    (1.0, "moderate support for the proposition that the image is real"),
    (-2.5, "moderately strong support for the proposition that the image is a deepfake"),
    (3.2, "strong support"), (5.9, "very strong support"), (-7, "extremely strong support"),
])
def test_verbal_scale_enfsi(llr, words):
    assert words in verbal(llr, ENFSI, HYPS)


def test_verbal_scale_errors():
    with pytest.raises(ConfigError):
        verbal(1.0, [[1.0, "x"]], HYPS)
    with pytest.raises(ValueError):
        verbal(float("inf"), ENFSI, HYPS)


# ------------------------------------------------------------------------------------------ report
SUMMARY13 = {"levels": {"frame": {"train": {"cllr": 0.1, "cllr_min": 0.05, "cllr_cal": 0.05, "auc": 0.99},
                                  "test": {"cllr": 0.6, "cllr_min": 0.2, "cllr_cal": 0.4, "auc": 0.8}},
                        "video": {"test": {"cllr": 0.3, "cllr_min": 0.1, "cllr_cal": 0.2, "auc": 0.9}}}}


def test_pick_prefers_split_and_level():
    assert R.pick(SUMMARY13, "cllr", "test", "frame") == 0.6
    assert R.pick(SUMMARY13, "cllr", "train", "frame") == 0.1
    assert R.pick(SUMMARY13, "cllr", "test", "video") == 0.3
    assert R.pick(SUMMARY13, "cllr", "val", "frame") is None
    assert R.pick({"eer": 0.1}, "eer", "test", "frame") == 0.1   # a flat summary is taken as it is


def test_criteria_are_checked_when_the_config_loads():
    """A bad validation criterion is a config error at load (report.criteria and robustness.criteria), and the
    report knows every metric the schema allows."""
    assert set(R.METRICS) == set(schema.CRITERION_METRICS)
    for bad, match in (([{"metric": "nope", "max": 1}], "unknown metric 'nope'"),
                       ([{"metric": "cllr"}], "'max' \\(or 'min'\\)"),
                       ([{"metric": "cllr", "max": "high"}], "max must be a number"),
                       ([{"metric": "cllr", "max": 1, "level": "clip"}], "level must be frame or video")):
        for section in ("report", "robustness"):
            with pytest.raises(ConfigError, match=match):
                config_from_dict({"output_dir": "x", section: {"criteria": bad}})


def _cfg(tmp_path, **more) -> Config:
    data = {"experiment": "t", "output_dir": str(tmp_path), "demo": {"enabled": False},
            "report": {"split": "test", "criteria": [{"metric": "cllr", "max": 0.5}], "compare": []}, **more}
    return config_from_dict(data, "test-config")


def test_report_of_an_empty_run_says_not_run(tmp_path):
    run = R.load_run(tmp_path, _cfg(tmp_path))
    html, summary = R.render(run, _cfg(tmp_path))
    assert summary["stages"]["08_scores"] == "not run" and summary["stages"]["00_demo_videos"] == "not enabled"
    assert summary["validation_matrix"][0]["decision"] == "not available"
    assert "Stage 13_ece_cllr: not run" in html and "<img" not in html


def test_report_reads_partial_run_and_compares(tmp_path):
    run_dir = tmp_path / "a"
    (run_dir / "13_ece_cllr").mkdir(parents=True)
    (run_dir / "13_ece_cllr" / "summary.json").write_text(json.dumps(SUMMARY13))
    (run_dir / "14_elub").mkdir()
    (run_dir / "14_elub" / "summary.json").write_text(json.dumps(
        {"levels": {"frame": {"test": {"elub": {"lower_log10": -1.5, "upper_log10": 2.0}}}}}))
    (run_dir / "12_det_eer").mkdir()
    (run_dir / "12_det_eer" / "bad.json").write_text("{not json")        # unreadable: ignored, no crash
    cv2.imwrite(str(run_dir / "14_elub" / "elub.png"), np.zeros((10, 10, 3), np.uint8))
    cfg = _cfg(run_dir)
    other = R.load_run(run_dir)
    html, summary = R.render(R.load_run(run_dir, cfg), cfg, [other])
    assert summary["lr_metrics"]["frame"]["cllr"] == 0.6
    assert summary["lr_metrics"]["frame"]["elub_range"] == 3.5
    assert summary["validation_matrix"][0]["decision"] == "fail"
    assert summary["validation_matrix"][1]["decision"] == "pass"      # video level: 0.3 <= 0.5
    assert html.count("data:image/png;base64,") == 1
    assert 'id="validation-matrix"' in html and "id='comparison'" in html
    assert "[-1.50, 2.00]" in html


def test_compare_missing_folder_is_a_config_error(tmp_path):
    cfg = _cfg(tmp_path, report={"compare": [str(tmp_path / "missing")]})
    with pytest.raises(ConfigError, match=r"report.compare\[0\]"):
        R.load_compare_runs(cfg)
