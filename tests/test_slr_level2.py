"""Issue 21: the IV bounder, devPAV and the LLR-overestimation against lir 1.3.1 on the same inputs,
and the logistic calibrator on perfectly separated data (against scikit-learn's unpenalised fit)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

pytest.importorskip("lir")
from lir.algorithms.invariance_bounds import IVBounder as LirIVBounder  # noqa: E402  (lir==1.3.1)
from lir.algorithms.llr_overestimation import calc_llr_overestimation  # noqa: E402
from lir.metrics.devpav import devpav as lir_devpav  # noqa: E402

from slr.calibration import LogisticCalibrator  # noqa: E402
from slr.consistency import devpav, llr_overestimation, llr_overestimation_curve  # noqa: E402
from slr.elub import BOUNDERS  # noqa: E402
from slr.ivbounds import IVBounder, iv_bounds  # noqa: E402


def _sets(seed: int):
    rng = np.random.default_rng(seed)
    n_hp, n_hd = rng.integers(20, 400, 2)
    scale, shift = rng.uniform(0.3, 3.0), rng.normal(0, 0.5)
    return rng.normal(1, 1, n_hp) * scale + shift, rng.normal(-1, 1, n_hd) * scale + shift


def _lir_inputs(hp, hd):
    return np.concatenate([hp, hd]), np.concatenate([np.ones(hp.size), np.zeros(hd.size)])  # lir: 1 = Hp


@pytest.mark.parametrize("seed", range(6))
def test_iv_bounds_agree_with_lir(seed):
    hp, hd = _sets(seed)
    llr, y = _lir_inputs(hp, hd)
    lo, hi = LirIVBounder().calculate_bounds(llr.copy(), y)
    got = iv_bounds(hp, hd)
    assert got == pytest.approx((lo, hi), abs=1e-12)
    assert got[0] < 0 < got[1]


def test_iv_bounds_weights_count_videos_once():
    """Every item repeated k times with weight 1/k gives the bounds of the items counted once."""
    hp, hd = _sets(11)
    k_hp, k_hd = 3, 5
    got = iv_bounds(np.repeat(hp, k_hp), np.repeat(hd, k_hd), weights_hp=np.full(hp.size * k_hp, 1 / k_hp),
                    weights_hd=np.full(hd.size * k_hd, 1 / k_hd))
    assert got == pytest.approx(iv_bounds(hp, hd), abs=1e-12)
    assert iv_bounds(np.repeat(hp, k_hp), np.repeat(hd, k_hd)) != pytest.approx(iv_bounds(hp, hd), abs=1e-3)


def test_iv_bounder_clips_like_elub_interface():
    hp, hd = _sets(2)
    llr = np.concatenate([hp, hd])
    labels = np.concatenate([np.zeros(hp.size), np.ones(hd.size)])   # project: 0 = real = Hp
    b = BOUNDERS.get("iv")().fit(llr, labels)
    assert isinstance(b, IVBounder)
    assert (b.lower_log10, b.upper_log10) == pytest.approx(iv_bounds(hp, hd))
    out = b.transform([-50.0, 0.1, 50.0])
    assert out.tolist() == [b.lower_log10, 0.1, b.upper_log10]
    with pytest.raises(ValueError, match="slr.bounds"):
        BOUNDERS.get("elbow")


@pytest.mark.parametrize("seed", range(6))
def test_devpav_agrees_with_lir(seed):
    hp, hd = _sets(seed)
    llr, y = _lir_inputs(hp, hd)
    assert devpav(hp, hd) == pytest.approx(lir_devpav(llr.copy(), y), rel=1e-12)


def test_devpav_larger_for_overconfident_lrs():
    hp, hd = _sets(4)
    assert devpav(3 * hp, 3 * hd) > devpav(hp, hd)


@pytest.mark.parametrize("seed", range(6))
def test_llr_overestimation_agrees_with_lir(seed):
    hp, hd = _sets(seed)
    llr, y = _lir_inputs(hp, hd)
    grid, over, _ = calc_llr_overestimation(llr.copy(), y, num_fids=0)
    g, o = llr_overestimation_curve(hp, hd)
    np.testing.assert_allclose(g, grid, atol=1e-12)
    np.testing.assert_allclose(o, over, atol=1e-9)
    assert llr_overestimation(hp, hd) == pytest.approx(float(np.mean(np.abs(over))), abs=1e-9)


def test_llr_overestimation_sign_and_no_overlap():
    rng = np.random.default_rng(0)
    # calibrated by construction: LLR = log10 N(x; 1, s) / N(x; -1, s) with s^2 = 2 / ln 10 -> x
    s = math.sqrt(2 / math.log(10))
    hp, hd = rng.normal(1, s, 4000), rng.normal(-1, s, 4000)
    assert llr_overestimation(hp, hd) < 0.15
    g, over = llr_overestimation_curve(2 * hp, 2 * hd)          # overstated evidence, both directions
    assert np.all(over[g > 0.5] > 0.2) and np.all(over[g < -0.5] < -0.2)
    assert math.isnan(llr_overestimation(hp + 100, hd - 100))


def _separated(rng, n_hp=200, n_hd=300):
    x = np.r_[rng.normal(3, 0.5, n_hp), rng.normal(-3, 0.5, n_hd)]
    return x, np.r_[np.zeros(n_hp), np.ones(n_hd)]


def test_logistic_calibrator_separated_is_finite_and_warning_free():
    from sklearn.linear_model import LogisticRegression

    x, y = _separated(np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cal = LogisticCalibrator().fit(x, y)
    assert cal.separated
    # the same as scikit-learn's unpenalised, class-balanced fit with the two misleading items added
    hp, hd = x[y == 0], x[y == 1]
    xa = np.r_[hp, hd.min(), hd, hp.max()]
    ya = np.r_[np.ones(hp.size + 1), np.zeros(hd.size + 1)]        # sklearn: 1 = Hp
    ref = LogisticRegression(C=np.inf, class_weight="balanced", tol=1e-12, max_iter=10000).fit(xa[:, None], ya)
    assert cal.slope == pytest.approx(ref.coef_[0, 0] / math.log(10), rel=1e-4)
    assert cal.intercept == pytest.approx(ref.intercept_[0] / math.log(10), abs=1e-4)
    assert 0 < cal.slope < 5
    for f in (-1.0, 100.0, 0.01):                                   # scale and direction free
        c = LogisticCalibrator().fit(f * x, y)
        assert c.slope * f == pytest.approx(cal.slope, rel=1e-4)


def test_logistic_calibrator_overlapping_data_not_flagged():
    rng = np.random.default_rng(1)
    x = np.r_[rng.normal(1, 1, 300), rng.normal(-1, 1, 300)]
    y = np.r_[np.zeros(300), np.ones(300)]
    cal = LogisticCalibrator().fit(x, y)
    assert not cal.separated
    assert 0.5 < cal.slope < 1.5


def test_system_fitted_with_iv_bounds(tmp_path):
    from slr.elub import video_weights
    from slr.io import ScoreSet
    from slr.settings import Settings
    from slr.system import LRSystem

    rng = np.random.default_rng(5)
    labels = np.tile(np.repeat([0, 1], 5), 30)
    persons = np.repeat([f"p{i}" for i in range(30)], 10)
    videos = np.array([f"{p}_{lab}" for p, lab in zip(persons, labels)])
    calib = ScoreSet(np.where(labels == 0, 1.0, -1.0) + rng.normal(0, 1, labels.size), labels, videos, None, "<c>",
                     person_ids=persons)
    st = Settings(model="logistic", bounds="iv", bootstrap_n=0, case_interval_n=0, video_level=False)
    system = LRSystem.fit({"frame": calib}, st, "logit")
    lm = system.level("frame")
    cf, w = lm.calib["cf_llr_calibrated"], video_weights(videos)
    expect = iv_bounds(cf[labels == 0], cf[labels == 1], weights_hp=w[labels == 0], weights_hd=w[labels == 1])
    assert (lm.lower_log10, lm.upper_log10) == pytest.approx(expect)
    system.save(tmp_path / "s")
    again = LRSystem.load(tmp_path / "s")
    assert again.settings.bounds == "iv" and again.bounds_log10("frame") == pytest.approx(expect)
