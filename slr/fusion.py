"""Logistic-regression fusion of several detectors' scores, safe under shift (issue 21 item 4).

The speaker-recognition practice: LLR = (w . z + b) / ln 10 with z the per-detector standardised
scores, w and b from an L2-penalised, class-balanced logistic regression fitted on calib (balanced
classes: the output is an LLR without a prior term). Fusion weights fitted on some sources
(generators, datasets) can fail on others; so both the penalty and the members are chosen by
cross-validation grouped by source on calib:

1. the candidates are every single member (a one-score logistic system) and the fusion of all
   members at each penalty of :data:`C_GRID` (inverse penalty strength, scikit-learn's C);
2. each candidate is cross-fitted over folds of whole sources (leave-one-source-out when calib has
   2-10 sources; without source labels or with one source, folds of whole persons); its figure is
   the Cllr (bits) of the pooled held-out LLRs;
3. the fusion is used only when its best penalty beats the best single member; otherwise the best
   member is used and ``choice["fusion_used"]`` is False with the reason.

Conventions: labels 0 = real = Hp, 1 = fake = Hd; LLR = log10 LR; Cllr in bits.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from . import metrics as M
from .models import group_folds

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
LN10 = math.log(10.0)


class LogisticFusion:
    """LLR = (w . z + b) / ln 10 on the columns ``members`` of a score matrix (z standardised on the
    fitting data); ``C`` the inverse L2 penalty. One member = a plain logistic score-to-LLR system."""

    def __init__(self, members: tuple[int, ...], C: float = 1.0):
        self.members, self.C = tuple(int(m) for m in members), float(C)
        self.mu = self.sd = self.w = None
        self.b = 0.0

    def fit(self, scores: Any, labels: Any) -> "LogisticFusion":
        s = np.asarray(scores, dtype=np.float64)[:, self.members]
        y = np.asarray(labels).astype(np.int64)
        self.mu, sd = s.mean(axis=0), s.std(axis=0)
        self.sd = np.where(sd > 0, sd, 1.0)
        lr = LogisticRegression(C=self.C, class_weight="balanced", max_iter=1000, tol=1e-10)
        lr.fit((s - self.mu) / self.sd, 1 - y)                    # sklearn's class 1 = Hp (numerator)
        self.w, self.b = lr.coef_[0].copy(), float(lr.intercept_[0])
        return self

    def llr(self, scores: Any) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)[:, self.members]
        return (((s - self.mu) / self.sd) @ self.w + self.b) / LN10

    def describe(self, names: list[str]) -> dict:
        return {"members": [names[m] for m in self.members], "C": self.C,
                "weights_log10_per_std": (self.w / LN10).tolist(), "intercept_log10": self.b / LN10,
                "score_mean": self.mu.tolist(), "score_std": self.sd.tolist(),
                "member_index": list(self.members), "weights_ln": self.w.tolist(), "intercept_ln": self.b}

    @classmethod
    def from_record(cls, rec: dict) -> "LogisticFusion":
        """The fitted fusion back from :meth:`describe`'s record (casework): the same LLRs, bit for bit."""
        f = cls(tuple(rec["member_index"]), rec["C"])
        f.mu, f.sd = np.asarray(rec["score_mean"], float), np.asarray(rec["score_std"], float)
        f.w, f.b = np.asarray(rec["weights_ln"], float), float(rec["intercept_ln"])
        return f


def source_folds(sources: Any, persons: Any, labels: Any, n_folds: int, seed: int) -> tuple[np.ndarray, int, str]:
    """Fold per item: whole sources (leave-one-source-out for 2-10 sources), else whole persons."""
    if sources is not None:
        src = np.asarray(sources).astype(str)
        uniq = np.unique(src)
        if 2 <= len(uniq) <= 10:
            return np.searchsorted(uniq, src), len(uniq), f"leave-one-source-out over {len(uniq)} sources"
        if len(uniq) > 10:
            fold, k = group_folds(src, n_folds, seed, labels)
            return fold, k, f"{k} folds of whole sources"
    fold, k = group_folds(persons, n_folds, seed, labels)
    return fold, k, f"{k} folds of whole persons (fewer than 2 sources)"


def _cv_cllr(make, scores: np.ndarray, y: np.ndarray, fold: np.ndarray, k: int) -> float:
    out = np.full(len(y), np.nan)
    for i in range(k):
        tr, te = fold != i, fold == i
        if len(np.unique(y[tr])) < 2 or not te.any():
            continue
        out[te] = make().fit(scores[tr], y[tr]).llr(scores[te])
    ok = np.isfinite(out)
    hp, hd = M.split_hypotheses(out[ok], y[ok])
    return float(M.cllr(hp, hd)) if hp.size and hd.size else math.inf


def choose_fusion(scores: Any, labels: Any, names: list[str], persons: Any, sources: Any = None,
                  n_folds: int = 5, seed: int = 0) -> tuple[LogisticFusion, dict]:
    """(the chosen system fitted on all of calib, the choice record) -- module docstring."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    if s.ndim != 2 or s.shape[1] < 2:
        raise ValueError(f"fusion needs a score matrix with at least 2 detectors, got shape {s.shape}")
    fold, k, how = source_folds(sources, persons, y, n_folds, seed)
    members = {names[m]: _cv_cllr(lambda m=m: LogisticFusion((m,)), s, y, fold, k) for m in range(s.shape[1])}
    every = tuple(range(s.shape[1]))
    fused = {c: _cv_cllr(lambda c=c: LogisticFusion(every, c), s, y, fold, k) for c in C_GRID}
    best_member = min(members, key=members.get)
    best_c = min(fused, key=fused.get)
    used = fused[best_c] < members[best_member]
    system = LogisticFusion(every, best_c) if used else LogisticFusion((names.index(best_member),))
    system.fit(s, y)
    choice = {"fusion_used": bool(used), "cv": how, "member_cllr": members,
              "fusion_cllr": {str(c): v for c, v in fused.items()}, "best_member": best_member, "best_C": best_c,
              "system": system.describe(names),
              "reason": (f"fusion of {', '.join(names)} (C = {best_c}) has cross-validated Cllr "
                         f"{fused[best_c]:.4f} bits, below the best member {best_member} ({members[best_member]:.4f})"
                         if used else
                         f"the fusion is not used: its best cross-validated Cllr ({fused[best_c]:.4f} bits, C = "
                         f"{best_c}) is no better than {best_member} alone ({members[best_member]:.4f}); "
                         f"{best_member} is used")}
    return system, choice
