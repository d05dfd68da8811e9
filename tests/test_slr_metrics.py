"""LR metrics, calibration and ELUB: reference values of lr_reference.md, agreement with lir 1.3.1
and scikit-learn, the Gaussian large-sample case, and the paper's EER sign error."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.spatial
import scipy.stats
from sklearn.metrics import det_curve as sk_det_curve
from sklearn.metrics import roc_auc_score, roc_curve

from slr import metrics as M
from slr.calibration import LogisticCalibrator, PAVCalibrator, make_calibrator
from slr.elub import ELUBBounder, elub_bounds

import lir.metrics as lir_metrics  # noqa: E402  (lir==1.3.1, requirements-dev.txt)
from lir.algorithms.bayeserror import elub as lir_elub  # noqa: E402
from lir.data.models import LLRData  # noqa: E402


def _from_lrs(hd_lrs, hp_lrs):
    with np.errstate(divide="ignore"):
        return np.log10(np.asarray(hp_lrs, float)), np.log10(np.asarray(hd_lrs, float))


# (Hd LRs, Hp LRs, Cllr) from lr_reference.md (lir's own test suite)
CLLR_CASES = [
    ([1, 1], [1, 1], 1.0),
    ([3, 3], [1 / 3, 1 / 3], 2.0),
    ([1 / 3, 1 / 3], [3, 3], 0.4150374992788437),
    ([1 / 3, 1 / 3], [1], 0.7075187496394219),
    ([1 / 100] * 100, [1], 0.507177646488535),
    ([1 / 100] * 100 + [100], [1], 0.5400680236656377),
    ([1 / 100] * 100 + [100] * 6, [1], 0.6952113122368764),
    ([2], [2, 2], 1.0849625007211563),
    ([8], [8] * 8, 1.6699250014423126),
]


@pytest.mark.parametrize("hd_lrs,hp_lrs,expected", CLLR_CASES)
def test_cllr_reference_values(hd_lrs, hp_lrs, expected):
    hp, hd = _from_lrs(hd_lrs, hp_lrs)
    assert M.cllr(hp, hd) == pytest.approx(expected, abs=1e-12)
    # ECE at prior odds 1 is Cllr
    assert M.ece(hp, hd, [0.0])[0] == pytest.approx(expected, abs=1e-12)


def test_cllr_infinite_llrs():
    inf = np.inf
    assert M.cllr([0, 0], [-inf, -inf]) == 0.5
    assert M.cllr([inf, inf], [0, 0]) == 0.5
    assert M.cllr([inf, inf], [-inf, -inf]) == 0.0
    assert M.cllr([0, 1], [inf, 0]) == inf
    assert M.cllr([-inf, 1], [0, 0]) == inf
    assert M.cllr_cal([-inf, 1], [0, 0]) == inf
    # empty hypothesis or NaN -> NaN
    assert math.isnan(M.cllr([], [0.0]))
    assert math.isnan(M.cllr([0.0, np.nan], [0.0]))
    assert math.isnan(M.cllr_min([0.0], []))
    assert np.isnan(M.ece([1.0], [], [0.0, 1.0])).all()


ELUB_CASES = [  # (LRs, Hp flags, (lower LR, upper LR))
    ([0.101] * 990 + [1000] * 10 + [1000] * 90 + [0.101] * 10, [0] * 1000 + [1] * 100, (0.1122018, 79.4328235)),
    ([0.01, 0.1, 1, 10, 100], [0, 0, 1, 1, 1], (0.3801894, 1.4791084)),
    ([0.01, 0.1, 1, 10, 100], [0, 0, 0, 1, 1], (0.6760830, 2.6302680)),
    ([0.01, 0.1, 1, 10, 100], [1, 1, 1, 0, 0], (1.0, 1.0)),
    ([np.inf] * 3 + [0] * 3, [1, 1, 1, 0, 0, 0], (0.3388442, 2.9512092)),
    ([10] * 10 + [1], [1] * 10 + [0], (1.0, 1.7782794)),
]


@pytest.mark.parametrize("lrs,hp_flag,expected", ELUB_CASES)
def test_elub_reference_values(lrs, hp_flag, expected):
    with np.errstate(divide="ignore"):
        llr = np.log10(np.asarray(lrs, float))
    flag = np.asarray(hp_flag)
    lo, hi = elub_bounds(llr[flag == 1], llr[flag == 0])
    assert 10 ** lo == pytest.approx(expected[0], abs=1e-6)
    assert 10 ** hi == pytest.approx(expected[1], abs=1e-6)
    # the bounder takes project labels (0 = real = Hp, 1 = fake = Hd)
    b = ELUBBounder().fit(llr, 1 - flag)
    assert (b.lower_log10, b.upper_log10) == (lo, hi)
    assert np.all(b.transform(np.array([-50.0, 0.0, 50.0])) == np.array([lo, 0.0, hi]))


def _random_llr_sets():
    rng = np.random.default_rng(2024)
    for i in range(12):
        n_hp, n_hd = (int(v) for v in rng.integers(3, 600, 2))
        decimals = int(rng.integers(0, 3))       # rounding creates many ties
        shift, scale = rng.uniform(0.0, 3.0), rng.uniform(0.3, 3.0)
        hp = np.round(rng.normal(shift, scale, n_hp), decimals)
        hd = np.round(rng.normal(-shift, scale, n_hd), decimals)
        if i % 4 == 3:   # a few infinite LLRs of the harmless kind
            hp[0], hd[0] = np.inf, -np.inf
        yield hp, hd


@pytest.mark.parametrize("hp,hd", list(_random_llr_sets()))
def test_agreement_with_lir(hp, hd):
    llr = np.concatenate([hp, hd])
    y = np.concatenate([np.ones(hp.size), np.zeros(hd.size)])   # lir: 1 = H1 = Hp
    data = LLRData(features=llr.copy(), labels=y)
    assert M.cllr(hp, hd) == pytest.approx(lir_metrics.cllr(data), abs=1e-6)
    assert M.cllr_min(hp, hd) == pytest.approx(lir_metrics.cllr_min(data), abs=1e-6)
    assert M.cllr_cal(hp, hd) == pytest.approx(lir_metrics.cllr_cal(data), abs=1e-6)
    assert elub_bounds(hp, hd) == pytest.approx(lir_elub(llr.copy(), y), abs=1e-6)


def test_ece_properties():
    rng = np.random.default_rng(5)
    hp, hd = rng.normal(1, 1, 300), rng.normal(-1, 1.5, 200)
    odds = np.linspace(-2.5, 2.5, 11)
    got = M.ece(hp, hd, odds)
    for o, g in zip(odds, got):  # direct formula with posteriors
        pi = 1 / (1 + 10 ** -o)
        post_hp = 1 / (1 + 10 ** -(hp + o))
        post_hd = 1 / (1 + 10 ** -(hd + o))
        want = pi * np.mean(-np.log2(post_hp)) + (1 - pi) * np.mean(-np.log2(1 - post_hd))
        assert g == pytest.approx(want, rel=1e-10)
    # LR = 1 everywhere gives the prior entropy; PAV-calibrated LLRs never do worse than that
    pi = 1 / (1 + 10 ** -odds)
    h = -(pi * np.log2(pi) + (1 - pi) * np.log2(1 - pi))
    np.testing.assert_allclose(M.ece(np.zeros(4), np.zeros(3), odds), h, rtol=1e-12)
    assert np.all(M.ece(*M.pav_llr(hp, hd), odds) <= h + 1e-12)


def test_gaussian_large_sample():
    """Hp ~ N(1,1), Hd ~ N(-1,1), exact LLR = 2x/ln10: Cllr and EER against their exact values."""
    rng = np.random.default_rng(11)
    n = 100_000
    x_hp, x_hd = rng.normal(1, 1, n), rng.normal(-1, 1, n)
    hp, hd = 2 * x_hp / math.log(10), 2 * x_hd / math.log(10)
    # exact Cllr: E_{x~N(1,1)} log2(1 + exp(-2x)) (the Hd half is the same by symmetry)
    exact_cllr, _ = scipy.integrate.quad(
        lambda x: scipy.stats.norm.pdf(x, 1, 1) * np.logaddexp(0, -2 * x) / math.log(2), -12, 14)
    assert exact_cllr == pytest.approx(0.514, abs=0.001)
    terms = np.r_[np.logaddexp(0, -2 * x_hp), np.logaddexp(0, 2 * x_hd)] / math.log(2)
    se = terms.std() / math.sqrt(terms.size)
    assert M.cllr(hp, hd) == pytest.approx(exact_cllr, abs=4 * se)
    # the LLRs are calibrated, so Cllr_min is a little below Cllr (PAV overfits slightly)
    assert 0 <= M.cllr(hp, hd) - M.cllr_min(hp, hd) < 0.005
    exact_eer = scipy.stats.norm.cdf(-1)
    se_eer = math.sqrt(exact_eer * (1 - exact_eer) / n)
    e = M.eer(hp, hd)
    assert e["eer"] == pytest.approx(exact_eer, abs=4 * se_eer)
    assert e["eer_rocch"] == pytest.approx(exact_eer, abs=4 * se_eer)
    assert e["eer_rocch"] <= e["eer"] + 1e-12
    assert e["threshold"] == pytest.approx(0.0, abs=0.02)
    assert M.auc(hp, hd) == pytest.approx(scipy.stats.norm.cdf(2 / math.sqrt(2)), abs=0.003)


def test_det_curve_matches_sklearn():
    rng = np.random.default_rng(3)
    hp = np.round(rng.normal(0.8, 1, 400), 1)
    hd = np.round(rng.normal(-0.5, 1, 300), 1)
    t, p_miss, p_fa = M.det_curve(hp, hd)
    assert np.all(np.diff(t) > 0) and t[-1] == np.inf
    assert p_miss[0] == 0 and p_fa[0] == 1 and p_miss[-1] == 1 and p_fa[-1] == 0
    y = np.r_[np.ones(hp.size), np.zeros(hd.size)]
    s = np.r_[hp, hd]
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    fin = np.isfinite(thr)
    i = np.searchsorted(t, thr[fin])
    np.testing.assert_array_equal(t[i], thr[fin])
    np.testing.assert_allclose(p_fa[i], fpr[fin], atol=1e-15)
    np.testing.assert_allclose(p_miss[i], 1 - tpr[fin], atol=1e-15)
    fpr2, fnr2, thr2 = sk_det_curve(y, s)
    j = np.searchsorted(t, thr2)
    np.testing.assert_allclose(p_fa[j], fpr2, atol=1e-15)
    np.testing.assert_allclose(p_miss[j], fnr2, atol=1e-15)
    assert M.auc(hp, hd) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_eer_small_cases_and_rocch():
    # separable: EER 0; the crossing lies between the two groups
    e = M.eer([1.0, 2.0], [-2.0, -1.0])
    assert e["eer"] == 0.0 and e["eer_rocch"] == 0.0
    # identical LLRs: a single diagonal step, EER 1/2
    assert M.eer([0.0] * 5, [0.0] * 7)["eer"] == pytest.approx(0.5)
    # hand case: Hp {1, 3}, Hd {0, 2}: operating points (p_fa, p_miss) = (1,0),(1/2,0),(1/2,1/2),(0,1/2),(0,1)
    # -> the curve touches the diagonal at (1/2, 1/2) = threshold 2
    e = M.eer([1.0, 3.0], [0.0, 2.0])
    assert e["eer"] == pytest.approx(0.5) and e["threshold"] == 2.0
    # ROCCH-EER against a convex hull computed by scipy on the exact operating points
    rng = np.random.default_rng(9)
    for _ in range(5):
        hp = np.round(rng.normal(1, 1.2, int(rng.integers(5, 200))), 1)
        hd = np.round(rng.normal(-1, 1.2, int(rng.integers(5, 200))), 1)
        _, pm, pf = M.det_curve(hp, hd)
        pts = np.column_stack([np.r_[pf, 1.0], np.r_[pm, 1.0]])   # add the far corner (1, 1)
        hull = scipy.spatial.ConvexHull(pts)
        cands = []
        for a, b in hull.simplices:            # where each hull edge meets p_miss = p_fa
            (x0, y0), (x1, y1) = pts[a], pts[b]
            d0, d1 = x0 - y0, x1 - y1
            if d0 == d1 == 0:
                cands.append(min(y0, y1))
            elif d0 * d1 <= 0:
                cands.append(y0 + d0 / (d0 - d1) * (y1 - y0))
        best = min(cands)                      # the other crossing is the added corner (1, 1)
        assert M.rocch_eer(hp, hd) == pytest.approx(best, abs=1e-12)
        assert M.rocch_eer(hp, hd) <= M.eer(hp, hd)["eer"] + 1e-12


def test_paper_eer_sign_error():
    rng = np.random.default_rng(0)
    hp = 2 * rng.normal(1, 1, 2000) / math.log(10)
    hd = 2 * rng.normal(-1, 1, 2000) / math.log(10)
    p = M.paper_eer(hp, hd)
    correct = M.eer(hp, hd)["eer"]
    # the sign error extrapolates beyond the lower neighbour: too high by a visible amount
    assert p["extrapolated"] and p["fraction"] < 0
    assert p["eer"] > correct + 0.002
    # the same grid with the sign fixed is much closer to the exact EER
    assert abs(p["eer_corrected"] - correct) < 0.25 * (p["eer"] - correct)
    # the paper's steps written out (paper_method.md): neighbours i-1 and i+1, flipped denominator
    t = np.linspace(min(hp.min(), hd.min()), max(hp.max(), hd.max()), 1000)
    fap = np.mean(hd[None, :] >= t[:, None], axis=1)
    frp = np.mean(hp[None, :] < t[:, None], axis=1)
    i = int(np.argmin(np.abs(fap - frp)))
    a = (frp[i - 1] - fap[i - 1]) / ((frp[i + 1] - frp[i - 1]) - (fap[i + 1] - fap[i - 1]))
    assert p["eer"] == pytest.approx(fap[i - 1] + a * (fap[i + 1] - fap[i - 1]), abs=1e-15)
    assert p["fraction"] == pytest.approx(a, abs=1e-15)
    # where FAP is flat around the crossing (Hd LLRs far from it) the sign does not matter
    hp2 = np.linspace(-1, 1, 401)
    hd2 = np.r_[np.full(50, -3.0), np.full(50, 3.0)]
    p2 = M.paper_eer(hp2, hd2)
    assert p2["eer"] == p2["eer_corrected"] == 0.5
    assert M.eer(hp2, hd2)["eer"] == pytest.approx(0.5, abs=1e-12)


def test_misleading_and_tippett():
    hp = np.array([-1.0, 0.0, 2.0, 3.0])
    hd = np.array([-2.0, 0.0, 0.5])
    assert M.misleading_evidence(hp, hd) == {"hp": 0.25, "hd": 1 / 3}
    x, p_hp, p_hd = M.tippett(hp, hd)
    np.testing.assert_array_equal(x, [-2, -1, 0, 0.5, 2, 3])
    np.testing.assert_allclose(p_hp, [1, 1, 0.75, 0.5, 0.5, 0.25])
    np.testing.assert_allclose(p_hd, [1, 2 / 3, 2 / 3, 1 / 3, 0, 0])
    x2, q_hp, q_hd = M.paper_tippett(hp, hd)
    np.testing.assert_allclose(q_hp, [0, 0.25, 0.5, 0.5, 0.75, 1])
    np.testing.assert_allclose(q_hd, p_hd)


def test_split_hypotheses_and_bad_input():
    hp, hd = M.split_hypotheses([1.0, 2.0, 3.0], [0, 1, 0])
    np.testing.assert_array_equal(hp, [1.0, 3.0])
    np.testing.assert_array_equal(hd, [2.0])
    with pytest.raises(ValueError, match="labels must be 0"):
        M.split_hypotheses([1.0, 2.0], [0, 2])
    with pytest.raises(ValueError, match="labels has 1"):
        M.split_hypotheses([1.0, 2.0], [0])
    with pytest.raises(ValueError, match="empty"):
        M.eer([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        M.det_curve([np.nan, 1.0], [0.0])
    with pytest.raises(ValueError, match="empty"):
        elub_bounds([1.0], [])


def test_pav_calibrator():
    rng = np.random.default_rng(4)
    n = 3000
    x = np.r_[3 * rng.normal(1, 1, n) + 1, 3 * rng.normal(-1, 1, 2 * n) + 1]   # badly scaled LLRs
    labels = np.r_[np.zeros(n, int), np.ones(2 * n, int)]
    cal = PAVCalibrator().fit(x, labels)
    out = cal.transform(x)
    # on the fitting set: exactly the PAV LLRs behind Cllr_min
    hp, hd = M.split_hypotheses(x, labels)
    ref_hp, ref_hd = M.pav_llr(hp, hd)
    np.testing.assert_array_equal(out, np.r_[ref_hp, ref_hd])
    assert M.cllr(*M.split_hypotheses(out, labels)) == pytest.approx(M.cllr_min(hp, hd), abs=1e-12)
    # prior correction: doubling the Hd items leaves the calibrated LLRs unchanged
    cal2 = PAVCalibrator().fit(np.r_[x, x[labels == 1]], np.r_[labels, labels[labels == 1]])
    np.testing.assert_allclose(cal2.transform(x), out, atol=1e-12)
    # monotone on new data, constant beyond the fitted range, +-inf accepted
    grid = np.linspace(x.min() - 5, x.max() + 5, 2001)
    y = cal.transform(grid)
    assert np.all(y[1:] >= y[:-1])
    assert y[0] == out.min() and y[-1] == out.max()
    assert cal.transform(np.array([-np.inf, np.inf])).tolist() == [out.min(), out.max()]
    assert np.isnan(cal.transform(np.array([np.nan])))[0]
    # add_misleading keeps the output finite
    m = PAVCalibrator(add_misleading=1).fit(x, labels).transform(grid)
    assert np.all(np.isfinite(m))


def test_logistic_calibrator_and_factory():
    rng = np.random.default_rng(6)
    n = 20_000
    true_hp = 2 * rng.normal(1, 1, n) / math.log(10)
    true_hd = 2 * rng.normal(-1, 1, 2 * n) / math.log(10)
    x = 3 * np.r_[true_hp, true_hd] + 1            # calibrated LLR = (x - 1) / 3
    labels = np.r_[np.zeros(n, int), np.ones(2 * n, int)]
    cal = LogisticCalibrator().fit(x, labels)
    assert cal.slope == pytest.approx(1 / 3, abs=0.01)
    assert cal.intercept == pytest.approx(-1 / 3, abs=0.02)
    out = cal.transform(x)
    assert M.cllr(*M.split_hypotheses(out, labels)) < M.cllr(true_hp, true_hd) + 0.002
    assert cal.transform(np.array([np.inf, -np.inf])).tolist() == [np.inf, -np.inf]
    assert isinstance(make_calibrator("pav"), PAVCalibrator)
    np.testing.assert_array_equal(make_calibrator("none").fit(x, labels).transform(x), x)
    with pytest.raises(ValueError, match="unknown calibrator"):
        make_calibrator("platt")
    with pytest.raises(ValueError, match="no Hp"):
        PAVCalibrator().fit([1.0, 2.0], [1, 1])


def test_real_paper_probabilities(paper_features):
    """On the authors' dumped fake probabilities (real UADFV frames): Cllr, Cllr_min, ELUB as lir,
    AUC as sklearn, for LLR = log10((1 - p) / p) (Hp = real)."""
    z = np.load(paper_features)
    p = np.clip(z["fake_probability"].astype(np.float64), 1e-6, 1 - 1e-6)
    labels = z["labels"]
    llr = np.log10(1 - p) - np.log10(p)
    hp, hd = M.split_hypotheses(llr, labels)
    assert hp.size + hd.size == 2438 and hp.size > 500 and hd.size > 500
    y = (labels == 0).astype(float)
    data = LLRData(features=llr.copy(), labels=y)
    assert M.cllr(hp, hd) == pytest.approx(lir_metrics.cllr(data), abs=1e-9)
    assert M.cllr_min(hp, hd) == pytest.approx(lir_metrics.cllr_min(data), abs=1e-9)
    assert elub_bounds(hp, hd) == pytest.approx(lir_elub(llr.copy(), y), abs=1e-9)
    assert M.auc(hp, hd) == pytest.approx(roc_auc_score(y, llr), abs=1e-12)
    assert M.auc(hp, hd) > 0.9   # these features were trained on the same videos
