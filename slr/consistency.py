"""Calibration characteristics NFI's ``lir`` reports beside Cllr_cal: devPAV and the LLR-overestimation.

Conventions: LLR = log10 LR; ``llr_hp`` = LLRs of Hp-true items (real, label 0), ``llr_hd`` = of
Hd-true items (fake, label 1). Both agree with ``lir`` 1.3.1 on the same inputs
(tests/test_slr_level2.py; lir's labels are the other way round: its y = 1 is Hp).

- ``devpav``: the mean absolute vertical distance, in log10, between the PAV-transform of the LLRs
  and the identity line: the area between the piecewise-linear curve through the points
  (LLR, PAV-calibrated LLR) and y = x, divided by the LLR range it spans (Vergeer et al. 2021,
  "Why calibrating LR-systems is best practice"). 0 for a perfectly calibrated set; points whose
  PAV value is +-inf (pure end blocks) are left out as lir does; +inf when a finite PAV value sits
  at an infinite LLR, NaN when every PAV value is infinite.
- ``llr_overestimation``: on 100 LLRs from max(0.1 % quantiles) to min(99.9 % quantiles) of the
  two hypotheses ('hazen'), the system LLR minus the empirical LLR log10 f_Hp / f_Hd, the
  densities Gaussian KDEs of the LLRs with Silverman's rule-of-thumb bandwidth as KDEpy computes it
  (sigma (3n/4)^(-1/5), sigma = min(sd, IQR / 1.349); from the LLRs inside the grid's range,
  applied to all of them). Positive = the system overstates its evidence (+1: ten times
  too strong). The metric is the mean absolute overestimation over the grid (lir's
  ``llr_overestimation``; lir 1.3.1's own function fails on an array, so the tests compare the
  curve of ``calc_llr_overestimation`` and take its mean here); NaN when the two LLR sets do not
  overlap or a hypothesis has no LLR inside the grid's range (possible on a few-person resample).

Person-cluster 95 % intervals of both: slr.bootstrap.consistency_ci (via ``devpav_groups``, devPAV of
weighted items, on the resamples of every other interval of a summary).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import isotonic_regression

from .kde import GaussianKDE1D
from .metrics import _pair

OVERESTIMATION_GRID = 100
OVERESTIMATION_QUANTILE = 0.001
# resamples of the bootstrap: exact KDE up to this many kernel terms (grid x items, e.g. 100 x 2,000), the
# FFT grid of slr.kde beyond (4x faster on 10^4 items; measured |difference| of the log10 densities 2e-6)
BOOTSTRAP_KDE_EXACT_TERMS = 2e5


def _segment_area(x1, y1, x2, y2) -> np.ndarray:
    """Integral of |y(x) - x| over each straight segment (x1, y1)-(x2, y2) (arrays)."""
    d1, d2, w = y1 - x1, y2 - x2, x2 - x1
    a1, a2 = np.abs(d1), np.abs(d2)
    same_side = d1 * d2 >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        crossing = w * (d1 * d1 + d2 * d2) / (2.0 * (a1 + a2))
    return np.where(same_side, 0.5 * w * (a1 + a2), crossing)


def devpav(llr_hp: Any, llr_hd: Any) -> float:
    """devPAV in log10 (module docstring). ValueError when a hypothesis is empty."""
    hp, hd = _pair(llr_hp, llr_hd)
    if hp.size == 0 or hd.size == 0:
        raise ValueError("devPAV needs LLRs of both hypotheses (Hp = real and Hd = fake)")
    x, inv = np.unique(np.concatenate([hp, hd]), return_inverse=True)
    c_hp = np.bincount(inv[:hp.size], minlength=x.size).astype(np.float64)
    c_hd = np.bincount(inv[hp.size:], minlength=x.size).astype(np.float64)
    return devpav_groups(x, c_hp, c_hd)


def devpav_groups(x: np.ndarray, w_hp: np.ndarray, w_hd: np.ndarray) -> float:
    """devPAV of weighted items: ``x`` the distinct LLRs (increasing), ``w_hp`` / ``w_hd`` the Hp / Hd
    weight at each (a person-cluster resample's counts; groups of weight 0 are left out). With the
    counts of the items it is :func:`devpav` (the PAV of slr.metrics.pav_blocks on the groups, ties
    pooled). NaN when a hypothesis has no weight."""
    x, w_hp, w_hd = np.asarray(x, np.float64), np.asarray(w_hp, np.float64), np.asarray(w_hd, np.float64)
    tot = w_hp + w_hd
    keep = tot > 0
    x, w_hp, tot = x[keep], w_hp[keep], tot[keep]
    n_hp, n_hd = float(w_hp.sum()), float(tot.sum() - w_hp.sum())
    if n_hp <= 0 or n_hd <= 0:
        return math.nan
    fit = isotonic_regression(w_hp / tot, weights=tot, increasing=True).x   # scipy's PAV: no per-call validation
    starts = np.flatnonzero(np.concatenate(([True], fit[1:] != fit[:-1])))
    b_hp = np.add.reduceat(w_hp, starts)
    b_hd = np.add.reduceat(tot, starts) - b_hp
    with np.errstate(divide="ignore"):
        block = np.log10(b_hp) - np.log10(b_hd) - (math.log10(n_hp) - math.log10(n_hd))
    y = block[np.cumsum(np.concatenate(([True], fit[1:] != fit[:-1]))) - 1]
    fin = np.isfinite(y)
    if not fin.any():
        return math.nan
    x, y = x[fin], y[fin]
    if not np.all(np.isfinite(x)):
        return math.inf
    if x.size == 1:
        return float(abs(x[0] - y[0]))
    return float(np.sum(_segment_area(x[:-1], y[:-1], x[1:], y[1:])) / (x[-1] - x[0]))


def silverman_kdepy(x: np.ndarray) -> float:
    """KDEpy's Silverman rule: sigma (3n/4)^(-1/5), sigma = min(sd (ddof 1), IQR / 1.349)."""
    if x.size == 1:
        return 1.0
    sigma = min(float(np.std(x, ddof=1)), float(np.subtract(*np.percentile(x, [75, 25]))) / 1.3489795003921634)
    if sigma > 0:
        return sigma * (x.size * 3 / 4.0) ** (-0.2)
    spread = float(np.subtract(*np.percentile(x, [99, 1]))) / 4.6526957480816815
    return spread * (x.size * 3 / 4.0) ** (-0.2) if spread > 0 else 1.0


def llr_overestimation_curve(llr_hp: Any, llr_hd: Any, n_grid: int = OVERESTIMATION_GRID,
                             kde_exact_terms: float = math.inf) -> tuple[np.ndarray, np.ndarray] | None:
    """(system LLR grid, overestimation in log10) or None when the hypotheses' LLRs do not overlap (or one
    has no LLR inside the overlap)."""
    hp, hd = _pair(llr_hp, llr_hd)
    q = OVERESTIMATION_QUANTILE
    (hp_lo, hp_hi), (hd_lo, hd_hi) = (np.quantile(x, (q, 1 - q), method="hazen") for x in (hp, hd))
    lo, hi = max(hp_lo, hd_lo), min(hp_hi, hd_hi)
    if not lo < hi:
        return None
    inside = [x[(x >= lo) & (x <= hi)] for x in (hp, hd)]
    if not (inside[0].size and inside[1].size):      # a hypothesis without an LLR on the grid: no bandwidth
        return None
    grid = np.linspace(lo, hi, n_grid)
    log10_f = []
    for x, x_in in zip((hp, hd), inside):
        bw = silverman_kdepy(x_in)
        log10_f.append(GaussianKDE1D(exact_budget=kde_exact_terms).fit(x, bw).log10_pdf(grid))
    return grid, grid - (log10_f[0] - log10_f[1])


def llr_overestimation(llr_hp: Any, llr_hd: Any, kde_exact_terms: float = math.inf) -> float:
    """Mean absolute LLR-overestimation over the grid (log10); NaN without overlap. The KDEs are exact;
    ``kde_exact_terms`` finite lets slr.kde.GaussianKDE1D use its FFT grid beyond that many kernel terms
    (the bootstrap's resamples: BOOTSTRAP_KDE_EXACT_TERMS)."""
    curve = llr_overestimation_curve(llr_hp, llr_hd, kde_exact_terms=kde_exact_terms)
    return math.nan if curve is None else float(np.mean(np.abs(curve[1])))
