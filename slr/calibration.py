"""Calibrators that map LLRs to calibrated LLRs: fit on one set (validation), apply to another.

Conventions: LLR = log10 LR; labels follow the project convention 0 = real = Hp (numerator),
1 = fake = Hd. Every calibrator is prior-corrected: its output is a likelihood ratio, not
posterior odds, so the proportion of Hp and Hd items in the fitting set does not leak into it.

Each calibrator saves and loads itself like the LR models: ``state()`` -> (JSON-able meta with its
registry ``name``, arrays) and ``from_state(meta, arrays)``; ``CALIBRATORS`` is the registry
(``slr.calibration`` names), ``calibrator_from_state`` the loader of a saved one.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import scipy.optimize

from common.registry import Registry
from slr.metrics import pav_blocks, split_hypotheses

log = logging.getLogger(__name__)
LN10 = math.log(10.0)


def _fit_inputs(llr: Any, labels: Any, who: str) -> tuple[np.ndarray, np.ndarray]:
    hp, hd = split_hypotheses(llr, labels)
    for name, a in (("Hp (real, label 0)", hp), ("Hd (fake, label 1)", hd)):
        if a.size == 0:
            raise ValueError(f"{who}.fit: no {name} items; calibration needs both hypotheses")
        if np.isnan(a).any():
            raise ValueError(f"{who}.fit: {name} LLRs contain NaN; remove them first")
    return hp, hd


class IdentityCalibrator:
    """No calibration ("none"): transform returns the LLRs unchanged."""

    name = "none"

    def fit(self, llr: Any, labels: Any) -> "IdentityCalibrator":
        return self

    def state(self) -> tuple[dict, dict]:
        return {"name": self.name}, {}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict) -> "IdentityCalibrator":
        return cls()

    def transform(self, llr: Any) -> np.ndarray:
        return np.asarray(llr, dtype=np.float64).copy()

    def fit_transform(self, llr: Any, labels: Any) -> np.ndarray:
        return self.fit(llr, labels).transform(llr)


class PAVCalibrator:
    """Isotonic (pool-adjacent-violators) calibration with the prior correction n_Hp / n_Hd.

    fit: PAV of P(Hp | LLR) on the fitting set (ties pooled, +-inf allowed; see
    slr.metrics.pav_blocks); each block gets LLR = log10(block Hp:Hd ratio) - log10(n_Hp / n_Hd).
    ``add_misleading`` > 0 first adds that many Hd items above the largest finite LLR (+1) and Hp
    items below the smallest (-1), as lir's IsotonicCalibrator does, so no block is pure and the
    output stays finite; the default 0 is plain PAV (blocks without Hd items map to +inf, without
    Hp items to -inf; an ELUB bounder after the calibrator makes them finite).

    transform: at the fitted LLRs the block values are returned exactly. In between, the
    calibrated posterior at equal priors p = 1/(1 + 10^-LLR) is interpolated linearly between the
    end points of neighbouring blocks (as sklearn/lir isotonic regression do) and mapped back to
    an LLR. Outside the fitted range of finite LLRs the value of the first/last block is used;
    x = -inf / +inf get the first/last block's value; NaN stays NaN.
    """

    name = "pav"

    def __init__(self, add_misleading: int = 0):
        self.add_misleading = int(add_misleading)
        self.knots_x: np.ndarray | None = None
        self.knots_p: np.ndarray | None = None
        self.knots_llr: np.ndarray | None = None
        self.blocks_: dict | None = None

    def fit(self, llr: Any, labels: Any) -> "PAVCalibrator":
        hp, hd = _fit_inputs(llr, labels, "PAVCalibrator")
        if self.add_misleading > 0:
            fin = np.concatenate([hp, hd])
            fin = fin[np.isfinite(fin)]
            top = (fin.max() if fin.size else 0.0) + 1.0
            bottom = (fin.min() if fin.size else 0.0) - 1.0
            hp = np.concatenate([hp, np.full(self.add_misleading, bottom)])
            hd = np.concatenate([hd, np.full(self.add_misleading, top)])
        b = pav_blocks(hp, hd)
        self.blocks_ = {k: v for k, v in b.items() if not k.startswith("_")}
        with np.errstate(over="ignore"):
            p = 1.0 / (1.0 + 10.0 ** (-b["llr"]))     # -inf -> 0, +inf -> 1
        xs = np.column_stack([b["lo"], b["hi"]]).reshape(-1)
        keep = np.isfinite(xs)
        self.knots_x = xs[keep]
        self.knots_p = np.repeat(p, 2)[keep]
        self.knots_llr = np.repeat(b["llr"], 2)[keep]
        self._first, self._last = float(b["llr"][0]), float(b["llr"][-1])
        return self

    def transform(self, llr: Any) -> np.ndarray:
        if self.blocks_ is None:
            raise RuntimeError("PAVCalibrator is not fitted: call fit(llr, labels) first")
        x = np.asarray(llr, dtype=np.float64)
        out = np.full(x.shape, np.nan)
        out[x == np.inf] = self._last
        out[x == -np.inf] = self._first
        fin = np.isfinite(x)
        xf = x[fin]
        kx, kp, kv = self.knots_x, self.knots_p, self.knots_llr
        if kx.size == 0:          # every fitted LLR was infinite
            out[fin] = np.where(xf > 0, self._last, self._first)
        elif kx.size == 1:
            out[fin] = kv[0]
        else:
            j = np.clip(np.searchsorted(kx, xf, side="right") - 1, 0, kx.size - 2)
            x0, x1 = kx[j], kx[j + 1]
            with np.errstate(invalid="ignore", divide="ignore"):
                t = np.clip(np.where(x1 > x0, (xf - x0) / (x1 - x0), 0.0), 0.0, 1.0)
                p = kp[j] + t * (kp[j + 1] - kp[j])
                v = np.log10(p) - np.log10(1.0 - p)
            # block values exactly (no round trip through p) at and between equal knots
            v = np.where((t == 0) | (kp[j] == kp[j + 1]), kv[j], np.where(t == 1, kv[j + 1], v))
            out[fin] = v
        return out

    def state(self) -> tuple[dict, dict]:
        return ({"name": self.name, "add_misleading": self.add_misleading, "first": self._first, "last": self._last},
                {"knots_x": self.knots_x, "knots_p": self.knots_p, "knots_llr": self.knots_llr,
                 "blocks_llr": np.asarray(self.blocks_["llr"], float)})

    @classmethod
    def from_state(cls, meta: dict, arrays: dict) -> "PAVCalibrator":
        cal = cls(int(meta.get("add_misleading", 0)))
        cal.knots_x, cal.knots_p, cal.knots_llr = arrays["knots_x"], arrays["knots_p"], arrays["knots_llr"]
        cal._first, cal._last = float(meta["first"]), float(meta["last"])
        cal.blocks_ = {"llr": arrays["blocks_llr"]}
        return cal

    def fit_transform(self, llr: Any, labels: Any) -> np.ndarray:
        return self.fit(llr, labels).transform(llr)


class LogisticCalibrator:
    """Linear logistic-regression calibration: calibrated LLR = a * LLR + b (log10 units).

    a and b minimise the class-balanced logistic loss (each hypothesis weighted by half over its
    count), which is Cllr of the output times ln 2: the prior-weighted logistic regression of
    BOSARIS/FoCal at an effective prior of 0.5, so the output is an LLR without any prior term.
    Only finite LLRs are used for fitting; transform maps +-inf to +-inf (times the sign of a) and
    NaN to NaN.

    Separation (issue 21 item 7): when the finite Hp and Hd LLRs do not overlap, the maximum-likelihood
    slope is infinite (a plain fit overflowed and stopped near slope 1e3). The fit then adds one
    misleading pseudo-item per hypothesis, as lir's isotonic calibrator does: an Hp item at the Hd
    LLR farthest from the Hp items and an Hd item at the Hp LLR farthest from the Hd items, each
    weighted like a real item of its class. That makes the fit finite (the slope says how strongly a
    set of this size can support the split) and ``separated`` records it; data that overlap are
    fitted exactly as before.
    """

    name = "logistic"

    def __init__(self):
        self.slope: float | None = None
        self.intercept: float | None = None
        self.separated = False

    def state(self) -> tuple[dict, dict]:
        return {"name": self.name, "slope": self.slope, "intercept": self.intercept, "separated": self.separated}, {}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict) -> "LogisticCalibrator":
        cal = cls()
        cal.slope, cal.intercept = float(meta["slope"]), float(meta["intercept"])
        cal.separated = bool(meta.get("separated", False))
        return cal

    def fit(self, llr: Any, labels: Any) -> "LogisticCalibrator":
        hp, hd = _fit_inputs(llr, labels, "LogisticCalibrator")
        hp, hd = hp[np.isfinite(hp)], hd[np.isfinite(hd)]
        if hp.size == 0 or hd.size == 0:
            raise ValueError("LogisticCalibrator.fit: needs finite LLRs of both hypotheses")
        self.separated = bool(hp.min() > hd.max() or hp.max() < hd.min())
        if self.separated:
            up = hp.min() > hd.max()       # Hp items above the Hd items
            hp, hd = (np.r_[hp, hd.min() if up else hd.max()], np.r_[hd, hp.max() if up else hp.min()])
        # separated sets are fitted on a unit scale (the optimiser's start suits it), then scaled back
        scale = float(np.std(np.r_[hp, hd])) if self.separated else 1.0
        hp, hd = hp / scale, hd / scale
        w_hp, w_hd = 0.5 / hp.size, 0.5 / hd.size

        def loss(theta):
            a, b = theta
            z_hp = (a * hp + b) * LN10
            z_hd = (a * hd + b) * LN10
            f = w_hp * np.logaddexp(0, -z_hp).sum() + w_hd * np.logaddexp(0, z_hd).sum()
            with np.errstate(over="ignore"):              # exp -> inf gives the limit 0
                s_hp = -1.0 / (1.0 + np.exp(z_hp))          # d softplus(-z)/dz
                s_hd = 1.0 / (1.0 + np.exp(-z_hd))          # d softplus(z)/dz
            g_a = LN10 * (w_hp * (s_hp * hp).sum() + w_hd * (s_hd * hd).sum())
            g_b = LN10 * (w_hp * s_hp.sum() + w_hd * s_hd.sum())
            return f, np.array([g_a, g_b])

        res = scipy.optimize.minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B",
                                      options={"maxiter": 1000, "gtol": 1e-10})
        self.slope, self.intercept = float(res.x[0]) / scale, float(res.x[1])
        if self.separated:
            log.warning("LogisticCalibrator: fitting data perfectly separated; one misleading item per "
                        "hypothesis added (slope %.3g, intercept %.3g)", self.slope, self.intercept)
        elif not res.success:
            log.warning("LogisticCalibrator: %s; slope %.3g, intercept %.3g", res.message, self.slope,
                        self.intercept)
        return self

    def transform(self, llr: Any) -> np.ndarray:
        if self.slope is None:
            raise RuntimeError("LogisticCalibrator is not fitted: call fit(llr, labels) first")
        x = np.asarray(llr, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return self.slope * x + self.intercept

    def fit_transform(self, llr: Any, labels: Any) -> np.ndarray:
        return self.fit(llr, labels).transform(llr)


CALIBRATORS = Registry("calibrator", {c.name: c for c in (IdentityCalibrator, PAVCalibrator, LogisticCalibrator)})


def make_calibrator(name: str, **options: Any):
    """Calibrator by name: "none" (identity), "pav" (PAVCalibrator), "logistic" (LogisticCalibrator)."""
    return CALIBRATORS.get(str(name).lower())(**options)


def calibrator_from_state(meta: dict, arrays: dict):
    """A saved calibrator (``state()`` of one) restored."""
    return CALIBRATORS.get(meta["name"]).from_state(meta, arrays)
