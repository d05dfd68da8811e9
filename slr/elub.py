"""Empirical lower and upper bounds (ELUB) on log10 likelihood ratios.

Vergeer, van Es, de Jongh, Alberink, Stoel, "Numerical likelihood ratios outputted by LR systems
are often based on extrapolation: when to stop extrapolating?", Science & Justice 56 (2016)
482-491; the algorithm and its grid are those of the NFI ``lir`` package (lr_reference.md), and the
results agree with ``lir.algorithms.bayeserror.elub`` (tests/test_slr_metrics.py).

Conventions: LLR = log10 LR; ``llr_hp`` = LLRs of Hp-true items (real, project label 0),
``llr_hd`` = LLRs of Hd-true items (fake, label 1). Fit the bounds on calibration data and clip
test LLRs with them.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from common.registry import Registry, import_target
from slr.metrics import checked_pair, split_hypotheses

ELUB_STEP = 0.01
ELUB_EXTREMES = (-9.0, 9.0)


def elub_bounds(llr_hp: Any, llr_hd: Any, step: float = ELUB_STEP,
                add_misleading: int = 1, weights_hp: Any = None, weights_hd: Any = None) -> tuple[float, float]:
    """(lower, upper) ELUB bounds in log10.

    ``weights_hp`` / ``weights_hd`` (optional, per item): count item i as w_i items, e.g.
    1 / (frames of its video) so that each video counts once (lr_validation.md, section 2). Every
    count below is then a sum of weights (n_Hp = number of Hp videos), and the bounds are finally
    capped at log10(n_Hd + 1) and -log10(n_Hp + 1) (the unweighted grid can pass that cap by less
    than one step). Without weights the result is lir's, unchanged.

    1. LLRs are clipped to [-9, 9] (so +-inf is allowed); the threshold grid rho runs in steps of
       ``step`` from floor(max(min LLR, -log10(n_Hp + 1)) / step) * step (at most 0) to
       (floor(min(max LLR, log10(n_Hd + 1)) / step) + 1) * step (at least 0), as in lir.
    2. Decision "accept Hp iff LR > t", t = 10^rho; ``add_misleading`` Hp items that are never
       accepted and as many Hd items that are always accepted are added; expected utility
       EU(t) = P(reject | Hp) + t P(accept | Hd); neutral EU0(t) = min(1, t).
    3. rho is worse than neutral where EU0/EU < 1; lower = (largest such rho <= 0) + step, else
       the grid minimum; upper = (smallest such rho >= 0) - step, else the grid maximum; finally
       lower = min(lower, 0), upper = max(upper, 0).
    Raises ValueError if a hypothesis is empty or an LLR is NaN.
    """
    hp, hd = checked_pair(llr_hp, llr_hd, "ELUB")
    lo_x, hi_x = ELUB_EXTREMES
    hp = np.clip(hp, lo_x, hi_x)
    hd = np.clip(hd, lo_x, hi_x)
    weighted = weights_hp is not None or weights_hd is not None
    w_hp, w_hd = _weights(weights_hp, hp), _weights(weights_hd, hd)   # unit weights: sums are exact counts
    n_hp, n_hd = float(w_hp.sum()), float(w_hd.sum())
    llr_min = max(min(hp.min(), hd.min()), -math.log10(n_hp + 1))
    llr_max = min(max(hp.max(), hd.max()), math.log10(n_hd + 1))
    k_min = min(0, int(np.floor_divide(llr_min, step)))
    k_max = max(0, int(np.floor_divide(llr_max, step)) + 1)
    rho = np.linspace(k_min * step, k_max * step, k_max - k_min + 1)
    t = 10.0 ** rho

    def accepted(x, w):   # weight of the items with LR > t, per threshold, compared in LR space like lir
        o = np.argsort(10.0 ** x, kind="stable")
        lr, cw = (10.0 ** x)[o], np.r_[0.0, np.cumsum(w[o])]
        return cw[-1] - cw[np.searchsorted(lr, t, side="right")]

    acc_hp = accepted(hp, w_hp) / (n_hp + add_misleading)
    acc_hd = (accepted(hd, w_hd) + add_misleading) / (n_hd + add_misleading)
    eu = 1.0 - acc_hp + t * acc_hd
    eu0 = np.where(1.0 > t, t, 1.0)
    worse = eu0 / eu < 1.0
    lower = min(float(np.max(rho[(rho <= 0) & worse] + step, initial=rho.min())), 0.0)
    upper = max(float(np.min(rho[(rho >= 0) & worse] - step, initial=rho.max())), 0.0)
    if weighted:
        lower, upper = max(lower, -math.log10(n_hp + 1)), min(upper, math.log10(n_hd + 1))
    return lower, upper


def _weights(w: Any, x: np.ndarray) -> np.ndarray:
    if w is None:
        return np.ones(x.size)
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    if w.shape != x.shape or not np.all(np.isfinite(w) & (w > 0)):
        raise ValueError(f"ELUB weights must be {x.size} finite positive numbers")
    return w


def video_weights(video_ids: Any) -> np.ndarray:
    """1 / (number of items of the item's video), per item: each video then counts once."""
    v = np.asarray(video_ids).astype(str)
    _, inv, cnt = np.unique(v, return_inverse=True, return_counts=True)
    return 1.0 / cnt[inv]


class ELUBBounder:
    """Fit ELUB bounds on (llr, labels) and clip LLRs to them.

    Labels follow the project convention: 0 = real = Hp, 1 = fake = Hd. Attributes after fit:
    ``lower_log10`` and ``upper_log10``. transform clips to [lower, upper]; NaN stays NaN.
    """

    def __init__(self, step: float = ELUB_STEP, add_misleading: int = 1):
        self.step = step
        self.add_misleading = add_misleading
        self.lower_log10: float | None = None
        self.upper_log10: float | None = None

    def fit(self, llr: Any, labels: Any, weights: Any = None) -> "ELUBBounder":
        """``weights`` (per item, optional): see elub_bounds; e.g. ``video_weights(video_ids)``."""
        hp, hd = split_hypotheses(llr, labels)
        if weights is None:
            self.lower_log10, self.upper_log10 = elub_bounds(hp, hd, self.step, self.add_misleading)
        else:
            w_hp, w_hd = split_hypotheses(weights, labels)
            self.lower_log10, self.upper_log10 = elub_bounds(hp, hd, self.step, self.add_misleading, w_hp, w_hd)
        return self

    def transform(self, llr: Any) -> np.ndarray:
        if self.lower_log10 is None:
            raise RuntimeError("ELUBBounder is not fitted: call fit(llr, labels) on calibration data first")
        return np.clip(np.asarray(llr, dtype=np.float64), self.lower_log10, self.upper_log10)

    def fit_transform(self, llr: Any, labels: Any) -> np.ndarray:
        return self.fit(llr, labels).transform(llr)


# bounds of the final LLR (slr.bounds; slr.system): entries imported on demand (ivbounds builds on this module)
BOUNDERS = Registry("bounder", {"elub": "slr.elub:ELUBBounder", "iv": "slr.ivbounds:IVBounder"},
                    unknown="unknown bounder {name}; slr.bounds is one of {names}", load=import_target)
