"""Performance metrics of likelihood ratios: Cllr, Cllr_min, ECE, DET/EER, AUC, Tippett, misleading evidence.

Conventions for every function: LLR = log10 LR; ``llr_hp`` = LLRs of items for which Hp ("the image
is real", project label 0) is true, ``llr_hd`` = LLRs of items for which Hd ("fake", label 1) is
true. Cllr and ECE are in bits. LLRs of +-inf are allowed (an LR of 0 or infinity):
Cllr follows lr_reference.md (+inf under Hp / -inf under Hd cost 0, -inf under Hp / +inf under Hd
make Cllr infinite); an empty hypothesis or a NaN anywhere gives NaN for the scalar metrics.
Functions that must order the LLRs (PAV, DET, EER, AUC, Tippett) raise ValueError on NaN instead.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.stats
from sklearn.isotonic import isotonic_regression

LN2 = math.log(2.0)
LN10 = math.log(10.0)


# --------------------------------------------------------------------------- inputs
def _arr(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _pair(llr_hp: Any, llr_hd: Any) -> tuple[np.ndarray, np.ndarray]:
    return _arr(llr_hp), _arr(llr_hd)


def checked_pair(llr_hp: Any, llr_hd: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays, non-empty and NaN-free (ValueError naming the problem otherwise)."""
    hp, hd = _pair(llr_hp, llr_hd)
    for name, a in (("llr_hp (Hp = real)", hp), ("llr_hd (Hd = fake)", hd)):
        if a.size == 0:
            raise ValueError(f"{what}: {name} is empty; both hypotheses need at least one LLR")
        if np.isnan(a).any():
            raise ValueError(f"{what}: {name} contains {int(np.isnan(a).sum())} NaN LLR(s); remove them first")
    return hp, hd


def split_hypotheses(llr: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Split LLRs by project labels (0 = real = Hp, 1 = fake = Hd) into (llr_hp, llr_hd)."""
    llr = _arr(llr)
    lab = np.asarray(labels).reshape(-1)
    if lab.shape[0] != llr.shape[0]:
        raise ValueError(f"llr has {llr.shape[0]} values but labels has {lab.shape[0]}")
    labf = lab.astype(np.float64)
    bad = ~((labf == 0) | (labf == 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"labels must be 0 (real, Hp) or 1 (fake, Hd); found {lab[i]!r} at index {i} "
                         f"({int(bad.sum())} bad label(s))")
    return llr[labf == 0], llr[labf == 1]


# ------------------------------------------------------------------------- Cllr, ECE
def _log2_1p_pow10(a: np.ndarray) -> np.ndarray:
    """log2(1 + 10^a), overflow-free; +inf -> +inf, -inf -> 0."""
    return np.logaddexp(0.0, a * LN10) / LN2


def ece(llr_hp: Any, llr_hd: Any, log10_prior_odds: Any) -> np.ndarray:
    """Empirical cross-entropy (bits) at each log10 prior odds O = pi/(1 - pi), pi = P(Hp):

    ECE = pi mean_Hp[log2(1 + 1/(LR O))] + (1 - pi) mean_Hd[log2(1 + LR O)];
    at log10 odds 0 it equals Cllr. NaN if a hypothesis is empty or an LLR is NaN.
    (Ramos and Gonzalez-Rodriguez; not the machine-learning "expected calibration error".)
    """
    hp, hd = _pair(llr_hp, llr_hd)
    lo = np.asarray(log10_prior_odds, dtype=np.float64)
    flat = lo.reshape(-1)
    out = np.full(flat.size, np.nan)
    if hp.size and hd.size and not (np.isnan(hp).any() or np.isnan(hd).any()):
        for i, o in enumerate(flat):
            pi = 1.0 / (1.0 + 10.0 ** (-o))
            with np.errstate(invalid="ignore"):
                c_hp = np.mean(_log2_1p_pow10(-(hp + o)))
                c_hd = np.mean(_log2_1p_pow10(hd + o))
            # a zero-weight term contributes 0 even if infinite (extreme priors)
            out[i] = (pi * c_hp if pi > 0 else 0.0) + ((1 - pi) * c_hd if pi < 1 else 0.0)
    return out.reshape(lo.shape)


def cllr(llr_hp: Any, llr_hd: Any) -> float:
    """Log-likelihood-ratio cost (bits): 1/2 [mean_Hp log2(1 + 1/LR) + mean_Hd log2(1 + LR)].

    +inf under Hp and -inf under Hd contribute 0; -inf under Hp or +inf under Hd give inf;
    an empty hypothesis or any NaN gives NaN (Brummer and du Preez 2006; lr_reference.md).
    """
    hp, hd = _pair(llr_hp, llr_hd)
    if hp.size == 0 or hd.size == 0 or np.isnan(hp).any() or np.isnan(hd).any():
        return math.nan
    return float(0.5 * (np.mean(_log2_1p_pow10(-hp)) + np.mean(_log2_1p_pow10(hd))))


# ------------------------------------------------------------------------------ PAV
def pav_blocks(llr_hp: Any, llr_hd: Any) -> dict[str, np.ndarray]:
    """Pool-adjacent-violators fit of P(Hp | LLR) on the pooled LLRs, ties pooled.

    Returns per PAV block (in increasing LLR order): ``lo``/``hi`` (smallest/largest LLR in the
    block), ``n_hp``/``n_hd`` (counts), ``llr`` (calibrated log10 LR = log10 of the block's Hp:Hd
    count ratio minus log10(N_Hp / N_Hd), i.e. posterior odds divided by the prior odds of the set;
    +inf for a block without Hd items, -inf for a block without Hp items).
    """
    hp, hd = checked_pair(llr_hp, llr_hd, "PAV")
    x = np.concatenate([hp, hd])
    is_hp = np.concatenate([np.ones(hp.size), np.zeros(hd.size)])
    uniq, inv = np.unique(x, return_inverse=True)
    c_hp = np.bincount(inv, weights=is_hp, minlength=uniq.size)
    c_tot = np.bincount(inv, minlength=uniq.size).astype(np.float64)
    # weighted isotonic fit of the Hp fraction per distinct value; blocks = runs of equal fit
    fit = isotonic_regression(c_hp / c_tot, sample_weight=c_tot, increasing=True)
    new_block = np.concatenate(([True], fit[1:] != fit[:-1]))
    starts = np.flatnonzero(new_block)
    ends = np.concatenate((starts[1:], [uniq.size])) - 1
    b_hp = np.add.reduceat(c_hp, starts)
    b_hd = np.add.reduceat(c_tot, starts) - b_hp
    with np.errstate(divide="ignore"):
        llr = np.log10(b_hp) - np.log10(b_hd) - (math.log10(hp.size) - math.log10(hd.size))
    return {"lo": uniq[starts], "hi": uniq[ends], "n_hp": b_hp, "n_hd": b_hd, "llr": llr,
            "_inverse": np.repeat(np.arange(starts.size), ends - starts + 1)[inv]}


def pav_llr(llr_hp: Any, llr_hd: Any) -> tuple[np.ndarray, np.ndarray]:
    """PAV-calibrated LLRs of the same items (prior-corrected, see pav_blocks): (cal_hp, cal_hd).
    These are the LLRs behind Cllr_min and the "PAV" curve of the ECE plot; they may be +-inf."""
    hp, hd = _pair(llr_hp, llr_hd)
    b = pav_blocks(hp, hd)
    cal = b["llr"][b["_inverse"]]
    return cal[:hp.size], cal[hp.size:]


def cllr_min(llr_hp: Any, llr_hd: Any) -> float:
    """Cllr (bits) of the PAV-calibrated LLRs of the same set: the discrimination part of Cllr.
    NaN if a hypothesis is empty or an LLR is NaN. Agrees with lir.metrics.cllr_min."""
    hp, hd = _pair(llr_hp, llr_hd)
    if hp.size == 0 or hd.size == 0 or np.isnan(hp).any() or np.isnan(hd).any():
        return math.nan
    return cllr(*pav_llr(hp, hd))


def cllr_cal(llr_hp: Any, llr_hd: Any) -> float:
    """Calibration loss Cllr - Cllr_min (bits); inf if Cllr is inf, NaN as for cllr."""
    c = cllr(llr_hp, llr_hd)
    if math.isinf(c):
        return c
    return c - cllr_min(llr_hp, llr_hd)


# --------------------------------------------------------------------------- DET, EER
def det_curve(llr_hp: Any, llr_hd: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact DET operating points for the rule "decide Hp iff LLR >= t".

    thresholds: every distinct LLR (sorted ascending), plus a final +inf ("never decide Hp") when
    the largest LLR is finite. p_miss(t) = P(LLR < t | Hp), p_false_alarm(t) = P(LLR >= t | Hd).
    p_miss is non-decreasing and p_fa non-increasing along the thresholds; the first point has
    p_miss = 0 and p_fa = 1.
    """
    hp, hd = checked_pair(llr_hp, llr_hd, "DET curve")
    t = np.unique(np.concatenate([hp, hd]))
    if np.isfinite(t[-1]):
        t = np.append(t, np.inf)
    shp, shd = np.sort(hp), np.sort(hd)
    p_miss = np.searchsorted(shp, t, side="left") / hp.size
    p_fa = (hd.size - np.searchsorted(shd, t, side="left")) / hd.size
    return t, p_miss, p_fa


def _crossing(p_miss: np.ndarray, p_fa: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """Point where the piecewise-linear curve through (p_fa, p_miss) crosses p_miss = p_fa.

    The curve runs from (p_fa = 1, p_miss = 0) to (0, 1) (end points added if missing); the
    crossing lies on the segment between the last point with p_miss < p_fa and the next one,
    at fraction a = d0 / (d0 - d1) of d = p_fa - p_miss. Returns (eer, threshold).
    """
    pm, pf, tt = p_miss, p_fa, t
    if pm[0] != 0.0 or pf[0] != 1.0:
        pm, pf, tt = np.r_[0.0, pm], np.r_[1.0, pf], np.r_[-np.inf, tt]
    if pm[-1] != 1.0 or pf[-1] != 0.0:
        pm, pf, tt = np.r_[pm, 1.0], np.r_[pf, 0.0], np.r_[tt, np.inf]
    d = pf - pm
    k = int(np.argmax(d <= 0))  # first point at or past the crossing (exists: d[-1] = -1)
    if d[k] == 0:
        return float(pm[k]), float(tt[k])
    a = d[k - 1] / (d[k - 1] - d[k])
    e = pm[k - 1] + a * (pm[k] - pm[k - 1])
    t0, t1 = tt[k - 1], tt[k]
    thr = t0 + a * (t1 - t0) if np.isfinite(t0) and np.isfinite(t1) else (t0 if np.isfinite(t0) else t1)
    return float(e), float(thr)


def rocch_eer(llr_hp: Any, llr_hd: Any) -> float:
    """EER of the ROC convex hull (ROCCH-EER, as in BOSARIS / PYLLR).

    The hull vertices are the operating points at the PAV block boundaries (Fawcett and
    Niculescu-Mizil 2007); the EER is where the hull crosses p_miss = p_fa. It is never above the
    interpolated EER of the raw DET curve and is invariant to any monotone recalibration.
    """
    hp, hd = checked_pair(llr_hp, llr_hd, "ROCCH-EER")
    b = pav_blocks(hp, hd)
    cum_hp = np.r_[0.0, np.cumsum(b["n_hp"])]
    cum_hd = np.r_[0.0, np.cumsum(b["n_hd"])]
    p_miss = cum_hp / hp.size
    p_fa = (hd.size - cum_hd) / hd.size
    return _crossing(p_miss, p_fa, np.arange(p_miss.size, dtype=float))[0]


def eer(llr_hp: Any, llr_hd: Any) -> dict[str, Any]:
    """Equal error rate where P(LLR < t | Hp) = P(LLR >= t | Hd).

    ``eer``: linear interpolation between the two neighbouring exact operating points of
    det_curve (the intersection of the DET segment with the diagonal); ``threshold``: the LLR
    interpolated the same way; ``eer_rocch``: the ROC-convex-hull EER (rocch_eer).
    """
    t, pm, pf = det_curve(llr_hp, llr_hd)
    e, thr = _crossing(pm, pf, t)
    return {"eer": e, "threshold": thr, "eer_rocch": rocch_eer(llr_hp, llr_hd),
            "method": "exact operating points, linear interpolation at the crossing; ROCCH-EER as well"}


def paper_eer(llr_hp: Any, llr_hd: Any, num_thresholds: int = 1000) -> dict[str, Any]:
    """The paper's EER (its script 7), with its sign error, so its numbers can be reproduced.

    thresholds = linspace(min, max, 1000) over all LLRs; FAP(t) = P(LLR_hd >= t),
    FRP(t) = P(LLR_hp < t); i = argmin |FAP - FRP|. At the first or last threshold the paper
    returns (FAP_i + FRP_i)/2. Otherwise it interpolates between i-1 ("low") and i+1 ("high"):

        a_paper = (FRP_low - FAP_low) / ((FRP_high - FRP_low) - (FAP_high - FAP_low))   # bug
        EER     = FAP_low + a_paper (FAP_high - FAP_low)

    Solving FAP_low + a dFAP = FRP_low + a dFRP gives a = (FRP_low - FAP_low) / (dFAP - dFRP):
    the paper's denominator has the opposite sign, so a_paper = -a. Since FAP_low > FRP_low at the
    low point (FAP falls, FRP rises), a_paper < 0 and the "EER" is extrapolated beyond the low
    point, i.e. FAP_low + |a| |dFAP| -- too high, unless FAP is flat over the three thresholds
    (dFAP = 0), when both give FAP_low. Returns eer (paper value), threshold, the fraction used,
    ``extrapolated`` (fraction outside [0, 1]) and ``eer_corrected`` (same grid, correct sign).
    """
    hp, hd = checked_pair(llr_hp, llr_hd, "paper EER")
    lo = min(hp.min(), hd.min())
    hi = max(hp.max(), hd.max())
    t = np.linspace(lo, hi, num_thresholds)
    # counts by binary search: the same numbers as the paper's mean(hd >= t), mean(hp < t)
    fap = (hd.size - np.searchsorted(np.sort(hd), t, side="left")) / hd.size
    frp = np.searchsorted(np.sort(hp), t, side="left") / hp.size
    i = int(np.nanargmin(np.abs(fap - frp)))
    out: dict[str, Any] = {"method": "paper: 1,000-threshold grid, interpolation with the sign error"}
    if i == 0 or i == t.size - 1:
        e = (fap[i] + frp[i]) / 2
        out.update(eer=float(e), eer_corrected=float(e), threshold=float(t[i]), fraction=math.nan,
                   extrapolated=False, boundary=True)
        return out
    fl, fh, rl, rh = fap[i - 1], fap[i + 1], frp[i - 1], frp[i + 1]
    denom_paper = (rh - rl) - (fh - fl)
    if denom_paper == 0:
        e = (fap[i] + frp[i]) / 2
        out.update(eer=float(e), eer_corrected=float(e), threshold=float(t[i]), fraction=math.nan,
                   extrapolated=False, boundary=False)
        return out
    a_paper = (rl - fl) / denom_paper
    a_right = -a_paper
    out.update(
        eer=float(fl + a_paper * (fh - fl)),
        threshold=float(t[i - 1] + a_paper * (t[i + 1] - t[i - 1])),
        fraction=float(a_paper), extrapolated=bool(a_paper < 0 or a_paper > 1),
        eer_corrected=float(fl + a_right * (fh - fl)), boundary=False)
    return out


# ----------------------------------------------------------- AUC, misleading, Tippett
def auc(llr_hp: Any, llr_hd: Any) -> float:
    """P(LLR_hp > LLR_hd) + 0.5 P(tie) (Hp as the positive class), by mid-ranks."""
    hp, hd = checked_pair(llr_hp, llr_hd, "AUC")
    r = scipy.stats.rankdata(np.concatenate([hp, hd]))
    u = r[:hp.size].sum() - hp.size * (hp.size + 1) / 2.0
    return float(u / (hp.size * hd.size))


def misleading_evidence(llr_hp: Any, llr_hd: Any) -> dict[str, float]:
    """Rates of misleading evidence: {"hp": P(LLR < 0 | Hp), "hd": P(LLR > 0 | Hd)} (NaN if empty)."""
    hp, hd = _pair(llr_hp, llr_hd)
    return {"hp": float(np.mean(hp < 0)) if hp.size else math.nan,
            "hd": float(np.mean(hd > 0)) if hd.size else math.nan}


def tippett(llr_hp: Any, llr_hd: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standard Tippett curves at every distinct LLR x: (x, P(LLR >= x | Hp), P(LLR >= x | Hd))."""
    hp, hd = checked_pair(llr_hp, llr_hd, "Tippett")
    x = np.unique(np.concatenate([hp, hd]))
    p_hp = (hp.size - np.searchsorted(np.sort(hp), x, side="left")) / hp.size
    p_hd = (hd.size - np.searchsorted(np.sort(hd), x, side="left")) / hd.size
    return x, p_hp, p_hd


def paper_tippett(llr_hp: Any, llr_hd: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The paper's Tippett variant: (x, P(LLR <= x | Hp), P(LLR >= x | Hd)) -- Hp drawn as a CDF."""
    hp, hd = checked_pair(llr_hp, llr_hd, "Tippett")
    x = np.unique(np.concatenate([hp, hd]))
    p_hp = np.searchsorted(np.sort(hp), x, side="right") / hp.size
    p_hd = (hd.size - np.searchsorted(np.sort(hd), x, side="left")) / hd.size
    return x, p_hp, p_hd


STRONG_LLR = 1.0   # |log10 LR| >= 1: an LR of 10 or more


def strong_misleading(llr: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Shares of LRs of 10 or more in the wrong direction: real items with LLR <= -1, fakes with LLR >= 1."""
    llr, labels = np.asarray(llr, float), np.asarray(labels)
    hp, hd = llr[labels == 0], llr[labels == 1]
    return {"strong_misleading_hp": float(np.mean(hp <= -STRONG_LLR)) if hp.size else math.nan,
            "strong_misleading_hd": float(np.mean(hd >= STRONG_LLR)) if hd.size else math.nan}
