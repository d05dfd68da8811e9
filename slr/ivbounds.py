"""Invariance-Verification (IV) bounds on log10 likelihood ratios, beside ELUB (``slr.bounds``).

Alberink, Leegwater, Malmborg, Nordgaard, Sjerps, van der Ham, "A transparent method to determine
limit values for likelihood ratio systems" (2025); the algorithm and its grid are those of NFI's
``lir`` 1.3.1 (``lir.algorithms.invariance_bounds``), and the results agree with it
(tests/test_slr_level2.py).

Conventions: LLR = log10 LR; ``llr_hp`` = LLRs of Hp-true items (real, project label 0), ``llr_hd``
= LLRs of Hd-true items (fake, label 1). Fit on the (cross-fitted) calib LLRs, clip every LLR.

For each threshold rho on a grid (step 0.001 from min(0, min LLR) to max(0, max LLR)), the
probability that an item's LLR is >= rho is estimated per hypothesis with a Jeffreys prior,
p = (count + 1/2) / (n + 1). An LR system is invariant when "the LR of the LR is the LR"; the
upper bound is the largest rho for which the evidence "LLR >= rho" still supports Hp at least as
strongly as rho says: delta_upper(rho) = log10 p_Hp(>= rho) - log10 p_Hd(>= rho) - rho, and
upper = the grid point before the first rho with delta_upper < 0 (none: the largest Hp LLR);
likewise delta_lower(rho) = rho - log10 p_Hp(< rho) + log10 p_Hd(< rho) and lower = the grid
point after the last rho with delta_lower < 0 (none: the smallest Hd LLR); finally
lower <= 0 <= upper. LLRs are first clipped to +-20 / ln 10 (lir's LR substitutes e^-+20).

``weights_hp`` / ``weights_hd`` (optional, per item): count an item as w items (e.g. 1 / frames of
its video, so each video counts once, as the ELUB bounds do); every count is then a sum of weights.
Without weights the result is lir's.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .elub import ELUBBounder, _weights
from .metrics import checked_pair, split_hypotheses

IV_STEP = 0.001
IV_EXTREME = 20.0 / math.log(10.0)     # lir substitutes LRs outside [e^-20, e^20]
JEFFREYS = 0.5


def _sanitised(llr: np.ndarray) -> np.ndarray:
    """LLRs clipped to +-IV_EXTREME through LR space, as lir compares them (log10(10^llr))."""
    with np.errstate(over="ignore"):
        lr = np.clip(10.0 ** llr, math.exp(-20.0), math.exp(20.0))
    return np.log10(lr)


def _share_at_or_above(x: np.ndarray, w: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Jeffreys-prior estimate of P(LLR >= rho) per threshold from weighted items."""
    o = np.argsort(x, kind="stable")
    cw = np.r_[0.0, np.cumsum(w[o])]
    above = cw[-1] - cw[np.searchsorted(x[o], rho, side="left")]
    return (above + JEFFREYS) / (cw[-1] + 2.0 * JEFFREYS)


def iv_delta_functions(llr_hp: Any, llr_hd: Any, rho: Any, weights_hp: Any = None, weights_hd: Any = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(delta_lower, delta_upper) at the thresholds ``rho`` (log10), see the module docstring."""
    hp, hd = _sanitised(np.asarray(llr_hp, float)), _sanitised(np.asarray(llr_hd, float))
    rho = np.asarray(rho, dtype=np.float64)
    p_hp = _share_at_or_above(hp, _weights(weights_hp, hp), rho)
    p_hd = _share_at_or_above(hd, _weights(weights_hd, hd), rho)
    delta_upper = np.log10(p_hp) - np.log10(p_hd) - rho
    delta_lower = rho - np.log10(1.0 - p_hp) + np.log10(1.0 - p_hd)
    return delta_lower, delta_upper


def iv_grid(llr_hp: np.ndarray, llr_hd: np.ndarray, step: float = IV_STEP) -> np.ndarray:
    """lir's threshold grid: arange(min(0, min LLR), max(0, max LLR) + step, step)."""
    allx = _sanitised(np.concatenate([llr_hp, llr_hd]))
    return np.arange(min(0.0, allx.min()), max(0.0, allx.max()) + step, step)


def iv_bounds(llr_hp: Any, llr_hd: Any, step: float = IV_STEP, weights_hp: Any = None, weights_hd: Any = None
              ) -> tuple[float, float]:
    """(lower, upper) IV bounds in log10 (module docstring). ValueError on an empty hypothesis or NaN."""
    hp, hd = checked_pair(llr_hp, llr_hd, "IV bounds")
    rho = iv_grid(hp, hd, step)
    d_low, d_up = iv_delta_functions(hp, hd, rho, weights_hp, weights_hd)
    neg_up = np.flatnonzero(d_up < 0)
    # lir takes "no negative delta" when the only negative one is the grid's first point
    upper = float(rho[neg_up[0] - 1]) if np.any(neg_up) else float(_sanitised(hp).max())
    neg_low = np.flatnonzero(d_low < 0)
    lower = float(rho[min(neg_low[-1] + 1, rho.size - 1)]) if np.any(neg_low) else float(_sanitised(hd).min())
    return min(lower, 0.0), max(upper, 0.0)


class IVBounder(ELUBBounder):
    """Fit IV bounds on (llr, labels[, weights]) and clip LLRs to them; labels 0 = real = Hp,
    1 = fake = Hd. Same interface as :class:`slr.elub.ELUBBounder` (``lower_log10``, ``upper_log10``,
    ``transform`` clips)."""

    def __init__(self, step: float = IV_STEP):
        super().__init__(step=step, add_misleading=0)

    def fit(self, llr: Any, labels: Any, weights: Any = None) -> "IVBounder":
        hp, hd = split_hypotheses(llr, labels)
        w_hp = w_hd = None
        if weights is not None:
            w_hp, w_hd = split_hypotheses(weights, labels)
        self.lower_log10, self.upper_log10 = iv_bounds(hp, hd, self.step, w_hp, w_hd)
        return self
