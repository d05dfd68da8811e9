"""Robustness stage (15), fast parts: the degradations (identity, determinism, peers: scipy's Gaussian
filter, exact area averages), the JPEG quality estimate (exact for OpenCV and Pillow files), the
validated-range logic on a hand-made table, the strong-misleading bootstrap against a naive loop,
the config checks and which system casework uses."""
from __future__ import annotations

import io
import json
import os
import time

import numpy as np
import pytest
import scipy.ndimage

from common import degrade as DG
from common.config import Config, ConfigError, load_config
from evaluation import robustness as R


def _image(seed=0, shape=(64, 80, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# ------------------------------------------------------------------------------------------ degradations
@pytest.mark.parametrize("family,identity", [("jpeg", None), ("downscale", None), ("downscale", 1.0), ("blur", None),
                                             ("blur", 0), ("noise", None), ("noise", 0.0)])
def test_identity_strength_returns_the_input_unchanged(family, identity):
    img = _image()
    before = img.copy()
    out = DG.apply(family, img, identity, seed=5)
    assert out is not img and out.dtype == np.uint8 and np.array_equal(out, img)
    assert np.array_equal(img, before)                         # the input is never modified
    assert DG.is_identity(family, identity)


def test_jpeg_quality_100_is_not_the_identity():
    img = _image()
    assert not DG.is_identity("jpeg", 100)
    assert not np.array_equal(DG.jpeg(img, 100), img)


@pytest.mark.parametrize("family,strength", [("jpeg", 30), ("downscale", 0.5), ("blur", 1.0), ("noise", 5.0)])
def test_degradations_are_pure_and_deterministic(family, strength):
    img = _image(1)
    a, b = DG.apply(family, img, strength, seed=7), DG.apply(family, img, strength, seed=7)
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, img)


def test_noise_has_the_configured_sigma_and_depends_on_the_seed():
    img = np.full((256, 256, 3), 128, np.uint8)                # mid-grey: no clipping at sigma 5
    d = DG.noise(img, 5.0, seed=1).astype(float) - 128
    assert abs(d.mean()) < 0.05 and abs(d.std() - np.sqrt(25 + 1 / 12)) < 0.05   # rounding adds 1/12
    assert not np.array_equal(DG.noise(img, 5.0, seed=1), DG.noise(img, 5.0, seed=2))
    assert DG.item_seed(1024, "noise", 5.0, "a.png") == DG.item_seed(1024, "noise", 5.0, "a.png")
    assert DG.item_seed(1024, "noise", 5.0, "a.png") != DG.item_seed(1024, "noise", 5.0, "b.png")


def test_blur_matches_scipy_gaussian_filter():
    img = _image(2, (48, 48, 1))[:, :, 0]
    for sigma in (0.5, 1.0, 2.0):
        ours = DG.blur(img, sigma).astype(float)
        # OpenCV: kernel side round(2 * 3 sigma + 1) | 1 (8-bit), reflect-101 border = scipy "mirror"
        radius = (int(round(sigma * 3 * 2 + 1)) | 1) // 2
        ref = scipy.ndimage.gaussian_filter(img.astype(float), sigma, mode="mirror", truncate=radius / sigma)
        assert np.abs(ours - ref).max() <= 1.5, sigma       # OpenCV: fixed-point kernel, rounded to uint8
        assert np.abs(ours - ref).mean() < 0.6


def test_downscale_averages_area_and_returns_the_original_size():
    flat = np.full((40, 60, 3), 77, np.uint8)
    assert np.array_equal(DG.downscale(flat, 0.35), flat)      # a constant image stays constant
    checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    out = DG.downscale(checker, 0.5)
    assert out.shape == (64, 64) and set(np.unique(out)) <= {127, 128}   # 2x2 area mean of 0/255 pairs
    assert DG.downscale(_image(), 0.5, up="cubic").shape == (64, 80, 3)


def test_jpeg_is_an_opencv_round_trip():
    import cv2
    img = _image(3)
    dec = cv2.cvtColor(cv2.imdecode(np.frombuffer(DG.jpeg_bytes(img, 50), np.uint8), cv2.IMREAD_COLOR),
                       cv2.COLOR_BGR2RGB)
    assert np.array_equal(DG.jpeg(img, 50), dec)
    err = [np.abs(DG.jpeg(img, q).astype(float) - img).mean() for q in (90, 70, 50, 30)]
    assert err == sorted(err)                                  # lower quality, larger error


@pytest.mark.parametrize("family,bad", [("jpeg", 0), ("jpeg", 101), ("jpeg", 50.5), ("downscale", 0), ("downscale", 1.5),
                                        ("blur", -1), ("noise", float("nan")), ("jpeg", "high"), ("unknown", 1)])
def test_bad_strengths_are_refused(family, bad):
    with pytest.raises(DG.DegradationError):
        DG.apply(family, _image(), bad)


def test_severity_order_runs_from_mild_to_strong():
    assert DG.severity_order("jpeg", [30, 90, 50]) == [90, 50, 30]
    assert DG.severity_order("downscale", [0.35, 0.75, 0.5]) == [0.75, 0.5, 0.35]
    assert DG.severity_order("noise", [10, 2, 5]) == [2, 5, 10]


# ------------------------------------------------------------------------------------------ JPEG quality
def test_jpeg_quality_estimate_is_exact_for_opencv_and_pillow_files():
    from PIL import Image
    img = _image(4)
    for q in (10, 30, 49, 50, 51, 75, 90, 95, 100):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=q)
        assert DG.estimate_jpeg_quality(DG.jpeg_bytes(img, q)) == q
        assert DG.estimate_jpeg_quality(buf.getvalue()) == q
    assert DG.estimate_jpeg_quality(b"\x89PNG\r\n\x1a\n") is None


def test_a_quality_30_image_lies_below_a_validated_min_quality_of_50(tmp_path):
    """The casework check (H4) compares the estimate with conditions.validated_degradations.jpeg.min_quality."""
    path = tmp_path / "questioned.jpg"
    path.write_bytes(DG.jpeg_bytes(_image(5, (128, 128, 3)), 30))
    validated = {"validated_degradations": {"jpeg": {"min_quality": 50}}}
    q = DG.estimate_jpeg_quality(path)
    assert q == 30 and q < validated["validated_degradations"]["jpeg"]["min_quality"]
    try:
        from common.conditions import check_conditions, jpeg_quality   # casework's own (when merged)
    except ImportError:
        return
    assert jpeg_quality(path)[0] == q
    res = check_conditions({"jpeg_quality": q}, validated, ["jpeg_quality"])
    assert [e["name"] for e in res["outside"]] == ["jpeg_quality"]


# ------------------------------------------------------------------------------------------ validated range
def _row(family, strength, level="frame", cllr=0.3, cllr_hi=None, eer=0.05, eer_hi=None, auc=0.95, auc_lo=None):
    return {"family": family, "strength": strength, "level": level, "cllr": cllr, "eer": eer, "auc": auc,
            "ci95": {"cllr": [cllr - 0.05, cllr if cllr_hi is None else cllr_hi],
                     "eer": [0.0, eer if eer_hi is None else eer_hi],
                     "auc": [auc if auc_lo is None else auc_lo, 1.0]}}


CRITERIA = [{"metric": "cllr", "max": 0.5}, {"metric": "eer", "max": 0.1, "level": "frame"},
            {"metric": "auc", "min": 0.8}, {"metric": "elub_range", "min": 1.0}]


def _table():
    return [
        _row("clean", None), _row("clean", None, "video", cllr=0.4, eer=0.5),         # video EER: not judged
        _row("jpeg", 90), _row("jpeg", 90, "video"),
        _row("jpeg", 70, cllr=0.45), _row("jpeg", 70, "video"),
        _row("jpeg", 50, cllr=0.49), _row("jpeg", 50, "video"),
        _row("jpeg", 30, cllr=0.6), _row("jpeg", 30, "video"),                        # fails: cllr
        _row("downscale", 0.75), _row("downscale", 0.75, "video"),
        _row("downscale", 0.5, cllr=0.45, cllr_hi=0.55), _row("downscale", 0.5, "video"),   # point passes, upper end fails
        _row("downscale", 0.35), _row("downscale", 0.35, "video"),                    # passes, but after a failure
        _row("blur", 2.0), _row("blur", 2.0, "video"),
        _row("blur", 0.5, auc=0.85, auc_lo=0.75), _row("blur", 0.5, "video"),          # "min" criterion: lower end fails
        _row("blur", 1.0), _row("blur", 1.0, "video"),
        _row("noise", 5.0, eer=0.05, eer_hi=0.2), _row("noise", 5.0, "video"),         # frame-level EER fails
    ]


def test_validated_range_returns_the_strongest_passing_setting():
    v = R.validated_range(_table(), CRITERIA)
    assert v["jpeg"]["strongest"] == 50 and v["jpeg"]["first_failure"] == 30
    assert v["jpeg"]["tested"] == [90, 70, 50, 30]
    assert v["downscale"]["strongest"] == 0.75 and v["downscale"]["first_failure"] == 0.5   # contiguous from clean
    assert [s["pass"] for s in v["downscale"]["settings"]] == [True, False, True]
    assert v["blur"]["strongest"] is None and v["blur"]["status"].startswith("clean only")
    assert v["noise"]["strongest"] is None
    checks = {(c["metric"], c["level"]): c for c in v["downscale"]["settings"][1]["checks"]}
    assert checks[("cllr", "frame")]["judged_value"] == 0.55 and checks[("cllr", "frame")]["basis"] == "ci95"
    assert ("eer", "video") not in checks                                   # the criterion names the frame level
    assert all(s["pass"] for s in v["jpeg"]["settings"][:3])


def test_validated_range_is_empty_when_clean_fails():
    table = [r if r["family"] != "clean" or r["level"] != "frame" else _row("clean", None, cllr=0.7)
             for r in _table()]
    v = R.validated_range(table, CRITERIA)
    assert all(x["strongest"] is None and not x["clean_passes"] for x in v.values())
    assert v["jpeg"]["status"].startswith("not validated")


def test_validated_range_without_interval_uses_the_point_value():
    table = [{"family": f, "strength": s, "level": "frame", "cllr": c, "ci95": {}}
             for f, s, c in (("clean", None, 0.2), ("noise", 2.0, 0.3), ("noise", 5.0, 0.6))]
    v = R.validated_range(table, [{"metric": "cllr", "max": 0.5}])
    assert v["noise"]["strongest"] == 2.0
    assert v["noise"]["settings"][0]["checks"][0]["basis"] == "point"


def test_conditions_have_the_documented_format():
    table = _table()
    cond = R.conditions_from_range(R.validated_range(table, CRITERIA), table)
    assert {f: {k: v for k, v in c.items() if k.startswith(("min_", "max_"))} for f, c in cond.items()} == \
        {"jpeg": {"min_quality": 50}, "downscale": {"min_factor": 0.75}, "blur": {"max_sigma": None},
         "noise": {"max_sigma": None}}
    assert cond["jpeg"]["tested"] == [90, 70, 50, 30] and cond["jpeg"]["passed"] == [90, 70, 50]
    assert {r["family"] for r in cond["jpeg"]["table"]} == {"clean", "jpeg"}
    json.dumps(cond)                                                        # plain JSON


# ------------------------------------------------------------------------------------------ bootstrap
def test_strong_misleading_interval_equals_a_naive_loop_over_the_same_resamples():
    rng = np.random.default_rng(0)
    persons = np.repeat(np.arange(12), 10).astype(str)
    labels = np.tile(np.r_[np.zeros(5, int), np.ones(5, int)], 12)
    llr = rng.normal(0, 1.2, persons.size) + np.where(labels == 0, 0.5, -0.5)
    ci = R.strong_misleading_ci(llr, labels, persons, 300, seed=3)
    # naive: the same draws, one resample at a time
    uniq, inv = np.unique(persons, return_inverse=True)
    draws = np.random.default_rng(3).integers(0, len(uniq), size=(300, len(uniq)))
    shares = []
    for d in draws:
        idx = np.concatenate([np.flatnonzero(inv == k) for k in d])
        lab, v = labels[idx], llr[idx]
        shares.append((np.mean(v[lab == 0] <= -1), np.mean(v[lab == 1] >= 1)))
    shares = np.array(shares)
    for j, name in enumerate(("strong_misleading_hp", "strong_misleading_hd")):
        assert ci[name] == [float(np.quantile(shares[:, j], 0.025, method="lower")),
                            float(np.quantile(shares[:, j], 0.975, method="higher"))]
    point = R.strong_misleading(llr, labels)
    assert ci["strong_misleading_hp"][0] <= point["strong_misleading_hp"] <= ci["strong_misleading_hp"][1]


def test_strong_misleading_without_events_gets_the_clopper_pearson_bound():
    from slr.bootstrap import cp_upper
    persons = np.repeat(np.arange(8), 4).astype(str)
    labels = np.tile([0, 0, 1, 1], 8)
    llr = np.where(labels == 0, 0.5, -0.5)
    ci = R.strong_misleading_ci(llr, labels, persons, 100, seed=0)
    assert ci["strong_misleading_hp"] == [0.0, pytest.approx(cp_upper(8))]
    assert ci["strong_misleading_hd"] == [0.0, pytest.approx(cp_upper(8))]


# ------------------------------------------------------------------------------------------ config
def _cfg(tmp_path, *overrides):
    path = tmp_path / "min.yaml"
    path.write_text("seed: 11\noutput_dir: /tmp/unused\nreport:\n  criteria: [{metric: cllr, max: 0.5}]\n")
    return load_config(path, list(overrides))


def test_settings_defaults_and_fallbacks(tmp_path):
    s = R.Settings.from_config(_cfg(tmp_path))                        # every default from common/schema.py
    assert s.degradations == {"jpeg": [90, 70, 50, 30], "downscale": [0.75, 0.5, 0.35], "blur": [0.5, 1.0, 2.0],
                              "noise": [2.0, 5.0, 10.0]}
    assert s.seed == 11 and s.max_frames is None and s.bootstrap_n == 1000 and s.upscale == "linear"
    assert s.criteria == [{"metric": "cllr", "max": 0.5}]              # ${report.criteria}
    assert s.settings_list()[:3] == [("clean", None), ("jpeg", 90), ("jpeg", 70)]
    s = R.Settings.from_config(_cfg(tmp_path, "robustness.bootstrap_n=0", "robustness.seed=3"))
    assert s.bootstrap_n == 0 and s.seed == 3


@pytest.mark.parametrize("override,key", [("robustness.degradations={jpeg: [90, 0]}", "robustness.degradations.jpeg[1]"),
                                          ("robustness.degradations={blur: [0]}", "robustness.degradations.blur[0]"),
                                          ("robustness.degradations={downscale: [1.5]}",
                                           "robustness.degradations.downscale[0]"),
                                          ("robustness.max_frames=1", "robustness.max_frames")])
def test_bad_config_names_the_key(tmp_path, override, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        R.Settings.from_config(_cfg(tmp_path, override))


@pytest.mark.parametrize("override,key", [("robustness.degradations={sharpen: [1]}", "robustness.degradations"),
                                          ("robustness.bootstrap_n=-1", "robustness.bootstrap_n"),
                                          ("robustness.criteria=[{metric: cllr}]", "robustness.criteria"),
                                          ("robustness.upscale=nearest", "robustness.upscale")])
def test_bad_config_is_refused_by_the_schema(tmp_path, override, key):
    with pytest.raises(ConfigError, match=key):
        _cfg(tmp_path, override)


# ------------------------------------------------------------------------------------------ which system
def _tiny_system(seed):
    from slr.io import ScoreSet
    from slr.settings import Settings
    from slr.system import LRSystem
    rng = np.random.default_rng(seed)
    labels = np.tile([0, 1], 40)
    persons = np.repeat(np.arange(10), 8).astype(str)
    videos = np.array([f"{p}_{lab}" for p, lab in zip(persons, labels)])
    scores = rng.normal(0, 1, 80) + np.where(labels == 0, 1.0, -1.0)
    s = ScoreSet(scores, labels, videos, None, "synthetic", person_ids=persons)
    return LRSystem.fit({"frame": s}, Settings(model="logistic", crossfit_folds=2, bootstrap_n=0), "logit")


def test_casework_system_dir_prefers_a_current_robustness_system(tmp_path):
    cfg = Config({"output_dir": str(tmp_path)}, "test.yaml")
    base_dir, robust_dir = R.base_system_dir(cfg), R.robust_system_dir(cfg)
    assert R.casework_system_dir(cfg) == base_dir                     # nothing there yet: stage 10's
    base = _tiny_system(0)
    base_sha = base.save(base_dir)
    assert R.casework_system_dir(cfg) == base_dir                     # no robustness system
    time.sleep(0.01)
    robust = base.with_conditions({"validated_degradations": {"jpeg": {"min_quality": 50}}})
    sha = robust.save(robust_dir)
    (robust_dir.parent / "casework_system.json").write_text(json.dumps({"base_sha256": base_sha, "sha256": sha}))
    assert sha != base_sha
    assert R.casework_system_dir(cfg) == robust_dir
    # stage 10 re-ran afterwards (another system, newer files): back to stage 10's
    _tiny_system(1).save(base_dir)
    later = time.time() + 5
    for p in base_dir.iterdir():
        os.utime(p, (later, later))
    assert R.casework_system_dir(cfg) == base_dir


# ------------------------------------------------------------------------------------------ sources
def test_a_dataset_of_crops_only_degrades_the_crop_and_says_so(uadfv_root):
    """UADFV ships crops, no videos and no stage-01 manifest: downscale falls back to the crop."""
    from common.splits import Sample
    cfg = Config({"dataset": {"root": str(uadfv_root)}, "preprocessing": {"input": str(uadfv_root / "videos")}},
                 "test.yaml")
    frame = next((uadfv_root / "real" / "frames").rglob("*.png"))
    sample = Sample(frame.relative_to(uadfv_root).as_posix(), 0, frame.parent.name)
    sources, note = R.source_index(cfg, [sample])
    assert sources is None and "crops only" in note and "degrades the aligned crop" in note
    frames = R.PoolFrames([sample], np.array(["p"]), uadfv_root, None, note)
    crop = R.read_crop(frame)
    (out,) = list(R.degraded_crops(frames, "downscale", 0.5, seed=0))
    assert np.array_equal(out, DG.downscale(crop, 0.5))
