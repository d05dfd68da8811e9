"""Score-to-LLR models of the sound protocol (v2), fitted on the calib pool.

Conventions: label 0 = real = Hp, 1 = fake = Hd; LLR = log10 LR with Hp in the numerator.
``direction`` is found on the fitting data: +1 when higher scores are more typical of Hp (real),
-1 otherwise (AUC of the raw scores below 0.5). Monotone models are monotone non-decreasing in
``direction * score``: a score more typical of real frames never gets a lower LR.

- ``kde``: one Gaussian KDE per hypothesis (the paper's family); bandwidth per hypothesis by
  k-fold cross-validated log-likelihood with folds grouped by video (no video on both sides of a
  fold). Not monotone in general: see :func:`monotonicity`.
- ``logistic``: logistic regression of the label on the standardised score, class-balanced (an
  LLR without prior term): LLR = a z + b with a >= 0. Monotone.
- ``isotonic``: PAV of P(Hp | score) on the standardised score with one misleading point per
  hypothesis added beyond the data (as lir's IsotonicCalibrator does), prior-corrected. Monotone.

Every model saves itself as ``(meta: JSON-able dict, arrays: {name: float64 array})`` and is
restored bit-identically by :func:`model_from_state`.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from common.registry import Registry

from . import kde as kde_mod
from .calibration import LogisticCalibrator, PAVCalibrator
from .metrics import auc

CV_EXACT_BUDGET = 1e6   # kernel terms up to which the bandwidth CV evaluates densities exactly


# ------------------------------------------------------------------------------------- folds
def group_folds(groups: Any, n_folds: int, seed: int, labels: Any = None) -> tuple[np.ndarray, int]:
    """Fold index per item, whole groups per fold. Groups are shuffled with ``seed`` and dealt
    round-robin within strata of their label composition (only real / only fake / both) when
    ``labels`` are given, so every fold gets a share of each. Returns (fold per item, k) with
    k = min(n_folds, number of groups)."""
    g = np.asarray(groups).astype(str)
    uniq, inv = np.unique(g, return_inverse=True)
    k = int(min(n_folds, len(uniq)))
    if k < 2:
        raise ValueError(f"{len(uniq)} group(s): grouped folds need at least 2")
    rng = np.random.default_rng(seed)
    strata = np.zeros(len(uniq), dtype=np.int64)
    if labels is not None:
        lab = np.asarray(labels, dtype=np.float64)
        frac = np.bincount(inv, weights=lab, minlength=len(uniq)) / np.bincount(inv, minlength=len(uniq))
        strata = np.where(frac == 0, 0, np.where(frac == 1, 1, 2))
    fold_of = np.empty(len(uniq), dtype=np.int64)
    offset = 0
    for st in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == st))
        fold_of[members] = (offset + np.arange(len(members))) % k
        offset += len(members)
    return fold_of[inv], k


def heldout_loglik(train: np.ndarray, test: np.ndarray, grid: np.ndarray, exact_budget: float) -> np.ndarray:
    """Total ln f(test) under the KDE of ``train`` for every bandwidth of ``grid``: the same values as
    ``sum(GaussianKDE1D(exact_budget=...).fit(train, bw).ln_pdf(test))`` (same exact-or-grid choice
    per bandwidth), with the sorting and nearest-point searches done once for all bandwidths.
    ``train`` and ``test`` must be finite (as the CV callers check)."""
    kde = kde_mod.GaussianKDE1D(exact_budget=exact_budget)
    kde.data_ = np.sort(train)
    xs = np.sort(test)
    near, dist = kde._nearest(xs)
    step = max(1, test.size // 2000)
    sample = (xs, near, dist) if step == 1 else None    # the strided sample is the sorted test itself
    if sample is None:
        ss = np.sort(test[::step])
        sample = (ss, *kde._nearest(ss))
    out = np.empty(len(grid))
    for j, bw in enumerate(grid):
        kde.bandwidth_, kde._grid = float(bw), None
        if kde._exact_is_cheap(xs, sample):
            out[j] = float(np.sum(kde._exact(xs, *kde._bounds(xs, near, dist), near)))
        else:
            out[j] = float(np.sum(kde._ln_pdf_grid(test)))
    return out


def grouped_cv_bandwidth(scores: Any, groups: Any, grid: Any, n_folds: int = 10, seed: int = 0
                         ) -> tuple[float, dict]:
    """KDE bandwidth maximising the mean over folds of the held-out fold's total log-likelihood
    (nats), folds grouped by ``groups`` (videos). Ties go to the first grid value. Held-out
    densities are exact while that takes at most 10^6 kernel terms, beyond that from the KDE's FFT
    grid (within 5e-4 in log10, exact in the tails; docs/slr_metrics.md): 20x faster on 10^4 scores.
    Each fold is sorted and searched once for all bandwidths (:func:`heldout_loglik`).
    Returns (best, {"bandwidth", "cv_loglik", "n_folds", "n_groups"})."""
    x = np.asarray(scores, dtype=np.float64).reshape(-1)
    grid = np.asarray(grid, dtype=np.float64).reshape(-1)
    fold, k = group_folds(groups, n_folds, seed)
    cv = np.zeros(grid.size)
    for i in range(k):
        cv += heldout_loglik(x[fold != i], x[fold == i], grid, CV_EXACT_BUDGET)
    cv /= k
    best = int(np.argmax(cv))
    return float(grid[best]), {"bandwidth": grid.copy(), "cv_loglik": cv, "n_folds": k,
                               "n_groups": int(len(np.unique(np.asarray(groups).astype(str))))}


def find_direction(scores: np.ndarray, labels: np.ndarray) -> float:
    """+1 if higher scores are more typical of Hp (real, label 0), else -1."""
    hp, hd = scores[labels == 0], scores[labels == 1]
    return 1.0 if auc(hp, hd) >= 0.5 else -1.0


# ------------------------------------------------------------------------------------- models
class ScoreModel:
    name = "base"
    monotone = False

    def __init__(self):
        self.direction = 1.0

    def fit(self, scores: np.ndarray, labels: np.ndarray, videos: np.ndarray) -> "ScoreModel":
        raise NotImplementedError

    def llr(self, x: Any) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name, "direction": self.direction, "monotone_by_construction": self.monotone}

    def state(self) -> tuple[dict, dict]:
        raise NotImplementedError

    @classmethod
    def from_settings(cls, settings) -> "ScoreModel":
        """A fresh model with its options from the LR settings."""
        return cls()


class KDEModel(ScoreModel):
    """Gaussian KDE per hypothesis, bandwidths by video-grouped CV (Settings.grid / grid_scale /
    n_folds / seed)."""
    name = "kde"

    def __init__(self, grid=None, grid_scale: str = "std", n_folds: int = 10, seed: int = 1024):
        super().__init__()
        self.grid = np.geomspace(0.01, 3.0, 40) if grid is None else np.asarray(grid, float)
        self.grid_scale, self.n_folds, self.seed = grid_scale, int(n_folds), int(seed)
        self.bandwidth: dict[str, float] = {}
        self.details: dict[str, dict] = {}
        self._lr: kde_mod.KDELikelihoodRatio | None = None
        self.hp_scores = self.hd_scores = None

    @classmethod
    def from_settings(cls, settings) -> "KDEModel":
        return cls(settings.grid, settings.grid_scale, settings.n_folds, settings.seed)

    def fit(self, scores, labels, videos):
        scores, labels, videos = np.asarray(scores, float), np.asarray(labels), np.asarray(videos).astype(str)
        self.direction = find_direction(scores, labels)
        for key, lab in (("hp", 0), ("hd", 1)):
            x, g = scores[labels == lab], videos[labels == lab]
            if np.ptp(x) == 0:
                raise ValueError(f"all {len(x)} {'real (Hp)' if lab == 0 else 'fake (Hd)'} scores are equal "
                                 f"({x[0]}); a density cannot be fitted to them")
            unit = float(np.std(x, ddof=1)) if self.grid_scale == "std" else 1.0
            grid = self.grid * unit
            best, table = grouped_cv_bandwidth(x, g, grid, self.n_folds, self.seed)
            edge = bool(np.isclose(best, grid[0]) or np.isclose(best, grid[-1]))
            self.bandwidth[key] = best
            self.details[key] = {"method": f"{table['n_folds']}-fold CV log-likelihood, folds grouped by video "
                                           f"({table['n_groups']} videos)",
                                 "grid_scale": self.grid_scale, "grid_unit": unit, "cv_best": best,
                                 "at_grid_edge": edge, "bandwidth": table["bandwidth"].tolist(),
                                 "score": table["cv_loglik"].tolist()}
        self.hp_scores, self.hd_scores = scores[labels == 0].copy(), scores[labels == 1].copy()
        self._build()
        return self

    def _build(self):
        self._lr = kde_mod.KDELikelihoodRatio().fit(self.hp_scores, self.hd_scores, self.bandwidth["hp"],
                                                    self.bandwidth["hd"])

    def llr(self, x):
        return np.asarray(self._lr.llr(np.asarray(x, dtype=np.float64)), dtype=np.float64)

    @property
    def at_grid_edge(self) -> bool:
        return any(d.get("at_grid_edge") for d in self.details.values())

    def describe(self):
        return {**super().describe(), "bandwidth": dict(self.bandwidth), "at_grid_edge": self.at_grid_edge}

    def state(self):
        meta = {"name": self.name, "direction": self.direction, "bandwidth": self.bandwidth, "details": self.details,
                "grid": self.grid.tolist(), "grid_scale": self.grid_scale, "n_folds": self.n_folds, "seed": self.seed}
        return meta, {"hp_scores": self.hp_scores, "hd_scores": self.hd_scores}

    @classmethod
    def from_state(cls, meta, arrays):
        m = cls(meta["grid"], meta["grid_scale"], meta["n_folds"], meta["seed"])
        m.direction = float(meta["direction"])
        m.bandwidth = {k: float(v) for k, v in meta["bandwidth"].items()}
        m.details = meta["details"]
        m.hp_scores, m.hd_scores = arrays["hp_scores"], arrays["hd_scores"]
        m._build()
        return m


class _Standardised(ScoreModel):
    monotone = True

    def _z_fit(self, scores, labels):
        self.direction = find_direction(scores, labels)
        self.mu = float(np.mean(scores))
        sd = float(np.std(scores))
        self.sd = sd if sd > 0 else 1.0

    def _z(self, x):
        return self.direction * (np.asarray(x, dtype=np.float64) - self.mu) / self.sd


class LogisticModel(_Standardised):
    """LLR = slope * z + intercept (log10), z = direction (score - mean) / std, slope >= 0."""
    name = "logistic"

    def fit(self, scores, labels, videos=None):
        scores, labels = np.asarray(scores, float), np.asarray(labels)
        self._z_fit(scores, labels)
        cal = LogisticCalibrator().fit(self._z(scores), labels)
        self.slope, self.intercept = float(cal.slope), float(cal.intercept)
        if self.slope < 0:      # cannot happen with the direction found on the same data; kept monotone
            self.slope, self.intercept = 0.0, 0.0
        return self

    def llr(self, x):
        return self.slope * self._z(x) + self.intercept

    def describe(self):
        return {**super().describe(), "slope_log10_per_std": self.slope, "intercept_log10": self.intercept,
                "score_mean": self.mu, "score_std": self.sd}

    def state(self):
        return {"name": self.name, "direction": self.direction, "mu": self.mu, "sd": self.sd, "slope": self.slope,
                "intercept": self.intercept}, {}

    @classmethod
    def from_state(cls, meta, arrays):
        m = cls()
        for k in ("direction", "mu", "sd", "slope", "intercept"):
            setattr(m, k, float(meta[k]))
        return m


class IsotonicModel(_Standardised):
    """PAV on z = direction (score - mean) / std with one misleading point per hypothesis (lir)."""
    name = "isotonic"

    def fit(self, scores, labels, videos=None):
        scores, labels = np.asarray(scores, float), np.asarray(labels)
        self._z_fit(scores, labels)
        self._pav = PAVCalibrator(add_misleading=1).fit(self._z(scores), labels)
        return self

    def llr(self, x):
        return self._pav.transform(self._z(x))

    def describe(self):
        return {**super().describe(), "n_blocks": int(len(self._pav.blocks_.get("llr", []))) if self._pav.blocks_
                else None, "misleading_points": 1, "score_mean": self.mu, "score_std": self.sd}

    def state(self):
        pav, arrays = self._pav.state()
        return ({"name": self.name, "direction": self.direction, "mu": self.mu, "sd": self.sd,
                 "first": pav["first"], "last": pav["last"]}, arrays)

    @classmethod
    def from_state(cls, meta, arrays):
        m = cls()
        for k in ("direction", "mu", "sd"):
            setattr(m, k, float(meta[k]))
        m._pav = PAVCalibrator.from_state({**meta, "add_misleading": 1}, arrays)
        return m


MODELS = Registry("LR model", {m.name: m for m in (KDEModel, LogisticModel, IsotonicModel)})   # slr.model


def make_model(settings) -> ScoreModel:
    """A fresh model for ``settings.model``."""
    return MODELS.get(settings.model).from_settings(settings)


def model_from_state(meta: dict, arrays: dict) -> ScoreModel:
    return MODELS.get(meta["name"]).from_state(meta, arrays)


# ------------------------------------------------------------------------------------- monotonicity
def monotonicity(llr_fn, lo: float, hi: float, direction: float = 1.0, n: int = 2001) -> dict:
    """Direction changes of the LLR over [lo, hi] (the calib score range) on ``n`` evenly spaced
    scores, walked in the higher-real direction, and the largest drop: max over s1 < s2 (in that
    direction) of LLR(s1) - LLR(s2), in log10 (0 for a monotone non-decreasing LLR).
    ``direction_changes`` counts sign changes of the successive differences, zeros skipped."""
    s = np.linspace(float(lo), float(hi), int(n))
    if direction < 0:
        s = s[::-1]
    y = np.asarray(llr_fn(s), dtype=np.float64)
    fin = np.isfinite(y)
    y = y[fin]
    d = np.diff(y)
    sign = np.sign(d[d != 0])
    changes = int(np.count_nonzero(sign[1:] != sign[:-1])) if sign.size > 1 else 0
    drop = float(np.max(np.maximum.accumulate(y) - y)) if y.size else math.nan
    return {"direction_changes": changes, "largest_drop_log10": drop, "grid_points": int(n),
            "score_range": [float(lo), float(hi)], "walked": "increasing" if direction > 0 else "decreasing score",
            "monotone": bool(drop <= 1e-12)}
