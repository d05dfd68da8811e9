"""An interval on every case LR (issue 21 item 2): a person-cluster bootstrap of the whole system fit.

At fit time, for one level's fitted system (:class:`slr.system.LevelModel`): ``n`` times
(``slr.case_interval.n``, seeded with ``slr.case_interval.seed``) the calib persons are drawn with
replacement (all their items together); on the drawn items the score model is refitted, then the
calibration and the bounds are refitted on the drawn items' cross-fitted model LLRs (each drawn
video counted once in the bounds, as in the fit), and the bounded LLR is computed on a fixed grid
of scores. The 2.5 % and 97.5 % quantiles per grid score are stored in the saved system; the
interval of an item is read off the grid by linear interpolation (outside the grid: the end
values), so a case costs two ``np.interp`` calls.

What is held fixed, and why: the KDE bandwidths are the fitted ones (the grouped bandwidth search
is not repeated, it would cost 200 x the fit), and the cross-fitted LLRs on which calibration and
bounds are refitted are those of the original cross-fitting (re-cross-fitting every resample would
cost 5 model fits more each). The score model itself, the calibration and the bounds are refitted
on every resample; the interval therefore reflects which persons happen to be in calib, not the
bandwidth choice.

Conventions: LLR = log10 LR, labels 0 = real = Hp, 1 = fake = Hd.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from . import models as models_mod
from .calibration import make_calibrator
from .elub import BOUNDERS, video_weights

GRID_POINTS = 401
GRID_MARGIN = 0.1        # the grid extends this fraction of the calib score range beyond it
LEVEL = 0.95


def single_blas(func):
    """Run ``func`` with one BLAS thread: scipy's L-BFGS-B (every logistic fit) otherwise waits on idle
    BLAS threads, up to 30x slower on a loaded machine (measured here); the results are the same."""
    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return func(*args, **kwargs)
    return wrapped


def score_grid(scores: np.ndarray, n: int = GRID_POINTS) -> np.ndarray:
    lo, hi = float(np.min(scores)), float(np.max(scores))
    pad = GRID_MARGIN * (hi - lo if hi > lo else 1.0)
    return np.linspace(lo - pad, hi + pad, n)


def refit_model(model: models_mod.ScoreModel, x: np.ndarray, y: np.ndarray, videos: np.ndarray
                ) -> models_mod.ScoreModel:
    """The score model refitted on (x, y); a KDE keeps its fitted bandwidths (no new search)."""
    if isinstance(model, models_mod.KDEModel):
        m = models_mod.KDEModel(model.grid, model.grid_scale, model.n_folds, model.seed)
        m.direction, m.bandwidth, m.details = model.direction, dict(model.bandwidth), model.details
        m.hp_scores, m.hd_scores = x[y == 0], x[y == 1]
        m._build()
        return m
    return type(model)().fit(x, y, videos)


def _draws(persons: np.ndarray, labels: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """Item indices of ``n`` person-cluster resamples that hold at least two items of each class
    (and two videos each, checked by the caller's fit); persons drawn k times appear k times."""
    uniq, inv = np.unique(persons, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(inv, minlength=len(uniq)))]
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        pick = rng.integers(0, len(uniq), len(uniq))
        idx = np.concatenate([order[starts[p]:starts[p + 1]] for p in pick])
        if np.count_nonzero(labels[idx] == 0) >= 2 and np.count_nonzero(labels[idx] == 1) >= 2:
            out.append(idx)
    return out


@single_blas
def bootstrap_llr_grid(lm, grid: np.ndarray, n: int, seed: int, bounds: str = "elub") -> np.ndarray:
    """(n, len(grid)) bounded LLRs of the resampled system fits (module docstring)."""
    c = lm.calib
    x, y = np.asarray(c["scores"], float), np.asarray(c["labels"], np.int64)
    videos, persons = np.asarray(c["video_ids"]).astype(str), np.asarray(c["person_ids"]).astype(str)
    cf_model, w_video = np.asarray(c["cf_llr_model"], float), video_weights(videos)
    out = np.empty((n, grid.size))
    _refits(lm.model, lm.calibration, bounds, x, y, videos, cf_model, w_video, grid, _draws(persons, y, n, seed), out)
    return out


def _refits(model0, calibration, bounds, x, y, videos, cf_model, w_video, grid, draws, out) -> None:
    for b, idx in enumerate(draws):
        model = refit_model(model0, x[idx], y[idx], videos[idx])
        cal = make_calibrator(calibration).fit(cf_model[idx], y[idx])
        cf_cal = np.asarray(cal.transform(cf_model[idx]), float)
        bounder = BOUNDERS.get(bounds)().fit(cf_cal, y[idx], w_video[idx])
        llr = np.asarray(cal.transform(model.llr(grid)), float)
        out[b] = np.clip(llr, bounder.lower_log10, bounder.upper_log10)


def case_interval_band(lm, n: int, seed: int, bounds: str = "elub", grid_points: int = GRID_POINTS) -> dict:
    """The stored band of one level: ``{"scores", "lower", "upper"}`` (arrays, log10) and its
    description (``n``, ``seed``, ``level``, ``method``)."""
    grid = score_grid(lm.calib["scores"], grid_points)
    draws = bootstrap_llr_grid(lm, grid, int(n), int(seed), bounds)
    a = (1.0 - LEVEL) / 2.0
    lower = np.quantile(draws, a, axis=0, method="lower")
    upper = np.quantile(draws, 1.0 - a, axis=0, method="higher")
    return {"scores": grid, "lower": lower, "upper": upper, "n": int(n), "seed": int(seed), "level": LEVEL,
            "method": (f"person-cluster bootstrap of the system fit: {int(n)} resamples of the calib persons "
                       f"(seed {int(seed)}); score model, calibration and {bounds} bounds refitted on each "
                       f"(KDE bandwidths and the cross-fitted LLRs held at the fitted ones); 2.5/97.5 % "
                       f"order statistics on {grid.size} scores, linear interpolation between them")}


def interval_at(band: dict, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) log10 LR of the items with ``scores`` from a stored band."""
    s = np.asarray(scores, dtype=np.float64)
    return np.interp(s, band["scores"], band["lower"]), np.interp(s, band["scores"], band["upper"])


def spans_categories(lower: float, upper: float, words_of) -> bool:
    """Whether [lower, upper] spans more than one verbal category (``words_of(llr)`` -> words;
    categories are intervals of the LLR, so comparing the two ends suffices)."""
    if not (math.isfinite(lower) and math.isfinite(upper)):
        return True
    return words_of(lower) != words_of(upper)


def band_state(band: dict | None) -> tuple[dict | None, dict]:
    """(JSON-able description, arrays) of a band for the saved system."""
    if not band:
        return None, {}
    return ({k: v for k, v in band.items() if k not in ("scores", "lower", "upper")},
            {k: np.asarray(band[k], np.float64) for k in ("scores", "lower", "upper")})


def band_from_state(meta: dict | None, arrays: dict) -> dict | None:
    if not meta or "scores" not in arrays:
        return None
    return {**meta, **{k: arrays[k] for k in ("scores", "lower", "upper")}}
