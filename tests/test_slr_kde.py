"""Gaussian KDE, bandwidth selection and the paper's grid LR: checked against sklearn's exact
KernelDensity (bulk and far tails), GridSearchCV, and crafted cases for the paper's bandwidth rule."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KernelDensity

from slr.kde import (GaussianKDE1D, KDELikelihoodRatio, cv_bandwidth, paper_bandwidth, paper_grid_llr,
                     silverman_bandwidth, sklearn_log10_pdf)

# Stated accuracy of log10_pdf against the exact sum (docs/slr_metrics.md):
GRID_TOL = 5e-4          # grid path, where the density is above 1e-9 of its maximum
EXACT_RTOL = 1e-11       # exact path (relative, the log-density reaches -1e8 in the far tails)


def _bimodal(rng, n):
    return np.concatenate([rng.normal(0.80, 0.05, n // 2), rng.normal(0.55, 0.02, n - n // 2)])


def _tol(ref, atol):
    return atol + EXACT_RTOL * np.abs(ref)


def test_log10_pdf_matches_sklearn_bulk_and_tails():
    rng = np.random.default_rng(0)
    data = _bimodal(rng, 4000)
    h = 0.004
    x = np.concatenate([
        np.linspace(data.min() - 0.02, data.max() + 0.02, 1500),   # bulk and near tails
        rng.uniform(-1.0, 2.0, 300),                               # far tails
        [-50.0, 30.0, 0.25, 0.68, 1e3],                            # far off the grid, inside the gap
    ])
    ref = sklearn_log10_pdf(data, h, x)
    assert ref.min() < -1e5            # the check really reaches deep tails
    exact = GaussianKDE1D().fit(data, h)
    got = exact.log10_pdf(x)
    assert exact.last_method_["exact"] == x.size
    assert np.all(np.abs(got - ref) <= _tol(ref, 1e-9))
    grid = GaussianKDE1D(exact_budget=0).fit(data, h)             # force the FFT grid path
    got = grid.log10_pdf(x)
    assert grid.last_method_["grid"] > 1000 and grid.last_method_["exact"] > 200
    assert np.all(np.abs(got - ref) <= _tol(ref, GRID_TOL))
    # the density integrates to one
    fine = np.linspace(data.min() - 0.1, data.max() + 0.1, 20001)
    assert np.trapezoid(10 ** grid.log10_pdf(fine), fine) == pytest.approx(1.0, abs=1e-6)


def test_far_tail_is_gaussian_not_constant():
    data = np.array([0.1, 0.2, 0.2, 0.5])
    h = 0.05
    kde = GaussianKDE1D(exact_budget=0).fit(data, h)
    x = 0.5 + np.array([1.0, 2.0, 5.0, 10.0, 100.0])
    got = kde.log10_pdf(x)
    assert np.all(np.diff(got) < 0)
    # beyond the data only the largest point matters: log10 (1/n) N(x; 0.5, h)
    want = (math.log(1 / 4) - 0.5 * ((x - 0.5) / h) ** 2 - math.log(h * math.sqrt(2 * math.pi))) / math.log(10)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert kde.log10_pdf(np.array([np.inf, -np.inf])).tolist() == [-np.inf, -np.inf]
    assert np.isnan(kde.log10_pdf(np.array([np.nan])))[0]


def test_likelihood_ratio_and_tail_limits():
    rng = np.random.default_rng(1)
    hp, hd = rng.normal(0.8, 0.05, 800), rng.normal(0.5, 0.1, 600)
    model = KDELikelihoodRatio().fit(hp, hd, 0.01, 0.02)
    x = np.linspace(-1, 2, 301)
    want = sklearn_log10_pdf(hp, 0.01, x) - sklearn_log10_pdf(hd, 0.02, x)
    np.testing.assert_allclose(model.llr(x), want, rtol=1e-10, atol=1e-8)
    # the narrower Hp kernel loses far out on both sides
    assert model.llr(np.array([np.inf, -np.inf])).tolist() == [-np.inf, -np.inf]
    assert KDELikelihoodRatio.fit(hp, hd, 0.03, 0.02).llr(np.array([np.inf]))[0] == np.inf


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="non-finite"):
        GaussianKDE1D().fit([0.1, np.nan, 0.3], 0.1)
    with pytest.raises(ValueError, match="non-finite"):
        GaussianKDE1D().fit([0.1, np.inf], 0.1)
    with pytest.raises(ValueError, match="empty"):
        GaussianKDE1D().fit([], 0.1)
    with pytest.raises(ValueError, match="bandwidth"):
        GaussianKDE1D().fit([0.1, 0.2], 0.0)
    with pytest.raises(ValueError, match="Hd"):
        KDELikelihoodRatio().fit([0.1, 0.2], [0.3, np.nan], 0.1, 0.1)
    with pytest.raises(ValueError, match="at least 10"):
        cv_bandwidth([0.1, 0.2, 0.3], [0.1])
    with pytest.raises(RuntimeError, match="not fitted"):
        GaussianKDE1D().log10_pdf([0.0])


def test_cv_bandwidth_matches_gridsearch_and_silverman():
    rng = np.random.default_rng(2)
    x = rng.normal(0.7, 0.06, 400)
    grid = np.logspace(-3, -0.5, 25)
    best, table = cv_bandwidth(x, grid, n_folds=10, seed=42)
    gs = GridSearchCV(KernelDensity(), {"bandwidth": grid}, cv=KFold(10, shuffle=True, random_state=42))
    gs.fit(x.reshape(-1, 1))
    np.testing.assert_allclose(table["cv_loglik"], gs.cv_results_["mean_test_score"], rtol=1e-9)
    assert best == gs.best_params_["bandwidth"]
    # Gaussian data: CV lands within a factor 2 of Silverman's rule
    y = rng.normal(0.0, 1.0, 1000)
    best_y, _ = cv_bandwidth(y, np.logspace(-2, 0.5, 20))
    silver = 1.06 * y.std(ddof=1) * y.size ** -0.2
    assert silver / 2 < best_y < 2 * silver
    assert silverman_bandwidth(y) == pytest.approx(0.9 * min(y.std(ddof=1), np.subtract(
        *np.percentile(y, [75, 25])) / 1.34) * 1000 ** -0.2)


def test_paper_bandwidth_steps():
    rng = np.random.default_rng(3)
    # skewed data (exponential quantiles, so the histogram falls smoothly): x1.2 applied, no peak
    skewed = 0.5 + scipy.stats.expon.ppf((np.arange(1500) + 0.5) / 1500, scale=0.05)
    bw, d = paper_bandwidth(skewed)
    assert d["skewness"] > 1 and d["skew_applied"] and not d["multimodal_applied"]
    assert d["floor"] == 0.01                       # IQR < 0.1
    assert d["after_skew"] == pytest.approx(max(1.2 * d["cv_best"], d["floor"]))
    assert bw == pytest.approx(max(d["after_skew"], d["floor"]))
    assert d["cv_best"] in d["cv_grid"] and len(d["cv_grid"]) == 30
    # bimodal data with a wide IQR: x1.5 applied, floor 0.005. Only 8 FD bins here, so the
    # paper's find_peaks distance 0.8 (< 1, which scipy rejects) is raised to 1 and recorded
    q = scipy.stats.norm.ppf((np.arange(600) + 0.5) / 600)
    bimodal = np.concatenate([0.3 + 0.03 * q, 0.8 + 0.03 * q])
    bw, d = paper_bandwidth(bimodal)
    assert abs(d["skewness"]) < 1 and not d["skew_applied"]
    assert d["multimodal_applied"] and len(d["hist_peaks"]) == 2
    assert d["fd_bins"] == 8 and d["peak_distance"] == 1.0
    assert d["floor"] == 0.005
    assert bw == pytest.approx(max(1.5 * d["cv_best"], 0.005))
    # small n: floor 0.01 wins over a tiny CV bandwidth
    small = rng.normal(0.5, 0.004, 60)
    bw, d = paper_bandwidth(small)
    assert d["floor"] == 0.01 and d["cv_best"] < 0.01 and bw == 0.01
    # unimodal symmetric data with a wide IQR: the CV value untouched
    plain = 0.5 + 0.2 * scipy.stats.norm.ppf((np.arange(1000) + 0.5) / 1000)
    bw, d = paper_bandwidth(plain)
    assert not d["skew_applied"] and not d["multimodal_applied"] and d["floor"] == 0.005
    assert d["peak_distance"] == pytest.approx(0.1 * d["fd_bins"]) and d["fd_bins"] >= 10
    assert bw == max(d["cv_best"], 0.005)


def _paper_reference_llr(fit_hp, fit_hd, bw_hp, bw_hd, x):
    """The paper's script-5 steps written out with sklearn's KernelDensity."""
    lo = min(fit_hp.min(), fit_hd.min()) - 0.1
    hi = max(fit_hp.max(), fit_hd.max()) + 0.1
    g = np.linspace(lo, hi, 1000)
    dens = []
    for data, bw in ((fit_hp, bw_hp), (fit_hd, bw_hd)):
        f = np.exp(KernelDensity(bandwidth=bw).fit(data.reshape(-1, 1)).score_samples(g.reshape(-1, 1)))
        dens.append(np.maximum(f, 1e-20) / np.trapezoid(f, g))
    return np.log10(np.interp(x, g, dens[0])) - np.log10(np.interp(x, g, dens[1]))


def test_paper_grid_llr_matches_sklearn_recipe():
    rng = np.random.default_rng(4)
    hp, hd = rng.normal(0.85, 0.04, 500), rng.normal(0.6, 0.08, 400)
    x = np.r_[hp, hd, -3.0, 3.0]       # last two outside the grid: edge values, as in the paper
    got = paper_grid_llr(hp, hd, 0.01, 0.02, x)
    np.testing.assert_allclose(got, _paper_reference_llr(hp, hd, 0.01, 0.02, x), atol=1e-8)
    # outside the grid the paper uses the edge densities: constant LLR beyond the edges
    assert got[-1] == paper_grid_llr(hp, hd, 0.01, 0.02, [10.0])[0]
    assert got[-2] == paper_grid_llr(hp, hd, 0.01, 0.02, [-10.0])[0]
    # the 1e-20 floor caps the LLR where one density vanishes on the grid
    assert np.max(np.abs(got)) < 25


def test_large_fit_uses_grid_and_stays_accurate():
    """100,000 training scores: grid path for the bulk, exact for the other class's tail."""
    rng = np.random.default_rng(5)
    hp = rng.normal(0.8, 0.05, 100_000)
    kde = GaussianKDE1D().fit(hp, 0.004)
    x = np.r_[rng.normal(0.8, 0.05, 5000), rng.normal(0.45, 0.1, 5000)]
    got = kde.log10_pdf(x)
    assert kde.last_method_["grid"] > 4000 and kde.last_method_["exact"] > 1000
    sub = np.r_[x[:60], x[-60:]]
    ref = sklearn_log10_pdf(hp, 0.004, sub)
    assert np.all(np.abs(np.r_[got[:60], got[-60:]] - ref) <= _tol(ref, GRID_TOL))
