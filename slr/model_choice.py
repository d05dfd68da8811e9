"""``slr.model: auto``: the score model chosen by person-grouped cross-validated Cllr on calib only.

Candidates (:data:`CANDIDATES`): ``kde`` with the video-grouped CV bandwidth search (``kde/cv``, the
default model) and with Silverman's rule per hypothesis (``kde/silverman``), ``logistic`` and
``isotonic``. Each is cross-fitted on the calib persons with the folds of the system fit
(:func:`slr.models.group_folds` with ``settings.crossfit_folds`` and ``settings.seed``): fitted on
k-1 folds of persons, it gives the LLRs of the held-out persons; the candidate's figure is the Cllr
(bits) of those LLRs, uncalibrated and unbounded (what the model itself contributes). The lowest
Cllr wins; ties go to the earlier candidate. Test data never take part. The choice, every
candidate's Cllr and Cllr_min, and the folds are recorded (``describe``), stored in the saved
system and shown in the report.

Conventions: labels 0 = real = Hp, 1 = fake = Hd; LLR = log10 LR; Cllr in bits.
"""
from __future__ import annotations

import math

import numpy as np

from . import kde as kde_mod
from . import metrics as M
from . import models as models_mod
from .case_interval import single_blas

CANDIDATES = ("kde/cv", "kde/silverman", "logistic", "isotonic")


class SilvermanKDEModel(models_mod.KDEModel):
    """The KDE model with Silverman's rule per hypothesis instead of the CV search; saved and
    restored as a ``kde`` model (its bandwidths are stored)."""

    def fit(self, scores, labels, videos):
        scores, labels = np.asarray(scores, float), np.asarray(labels)
        self.direction = models_mod.find_direction(scores, labels)
        for key, lab in (("hp", 0), ("hd", 1)):
            x = scores[labels == lab]
            if np.ptp(x) == 0:
                raise ValueError(f"all {len(x)} {'real (Hp)' if lab == 0 else 'fake (Hd)'} scores are equal "
                                 f"({x[0]}); a density cannot be fitted to them")
            bw = kde_mod.silverman_bandwidth(x)
            self.bandwidth[key] = bw
            self.details[key] = {"method": "Silverman's rule 0.9 min(sd, IQR/1.34) n^(-1/5)", "cv_best": bw,
                                 "at_grid_edge": False}
        self.hp_scores, self.hd_scores = scores[labels == 0].copy(), scores[labels == 1].copy()
        self._build()
        return self


def make_candidate(name: str, settings) -> models_mod.ScoreModel:
    if name == "kde/cv":
        return models_mod.KDEModel.from_settings(settings)
    if name == "kde/silverman":
        return SilvermanKDEModel.from_settings(settings)
    if name in ("logistic", "isotonic"):
        return models_mod.MODELS.get(name).from_settings(settings)
    raise ValueError(f"unknown model candidate {name!r}; one of {CANDIDATES}")


def crossfitted_llr(name: str, settings, x, y, videos, fold, k) -> np.ndarray:
    out = np.empty(len(x))
    for i in range(k):
        tr, te = fold != i, fold == i
        out[te] = make_candidate(name, settings).fit(x[tr], y[tr], videos[tr]).llr(x[te])
    return out


@single_blas
def choose_model(x, y, videos, persons, settings, candidates=CANDIDATES) -> dict:
    """``{"chosen", "model", "bandwidth_rule", "candidates": {name: {cllr, cllr_min}}, "folds", "method"}``;
    ``model`` is the ``slr.model`` value to fit, ``bandwidth_rule`` "cv" / "silverman" for kde."""
    x, y = np.asarray(x, float), np.asarray(y, np.int64)
    videos, persons = np.asarray(videos).astype(str), np.asarray(persons).astype(str)
    fold, k = models_mod.group_folds(persons, settings.crossfit_folds, settings.seed, y)
    figures = {}
    for name in candidates:
        try:
            llr = crossfitted_llr(name, settings, x, y, videos, fold, k)
            hp, hd = M.split_hypotheses(llr, y)
            figures[name] = {"cllr": float(M.cllr(hp, hd)), "cllr_min": float(M.cllr_min(hp, hd))}
        except ValueError as exc:          # e.g. a fold without spread in one class
            figures[name] = {"cllr": math.inf, "cllr_min": math.nan, "error": str(exc)}
    chosen = min(candidates, key=lambda c: (figures[c]["cllr"], candidates.index(c)))
    if not math.isfinite(figures[chosen]["cllr"]):
        raise ValueError("slr.model auto: no candidate could be cross-fitted on calib: "
                         + "; ".join(f"{c}: {figures[c].get('error')}" for c in candidates))
    model, _, rule = chosen.partition("/")
    return {"chosen": chosen, "model": model, "bandwidth_rule": rule or None, "candidates": figures,
            "folds": int(k), "method": (f"Cllr (bits) of each candidate's LLRs cross-fitted over {k} person-grouped "
                                        f"folds of calib (seed {settings.seed}), uncalibrated and unbounded; "
                                        f"lowest wins")}


def model_factory(settings, x, y, videos, persons):
    """(a function making a fresh, unfitted score model, the choice record or None): for
    ``settings.model == "auto"`` the chosen candidate (:func:`choose_model`), else ``settings.model``."""
    if settings.model != "auto":
        return (lambda: models_mod.make_model(settings)), None
    choice = choose_model(x, y, videos, persons, settings)
    return (lambda: make_candidate(choice["chosen"], settings)), choice
