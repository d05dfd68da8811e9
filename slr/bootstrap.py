"""Person-cluster bootstrap of LR validation metrics, vectorised over resamples.

A resample draws the clusters (persons) with replacement, all their items together; item i then
carries the weight K[b, cluster(i)] (how often its cluster was drawn) and every metric is computed
on the weighted items. All resamples are evaluated together: the items are sorted once by LLR and
grouped by distinct value, the per-resample weights of each group come from one sparse product
(clusters x groups), and Cllr, the rates of misleading evidence, AUC (weighted Mann-Whitney) and
the EER (exact DET operating points, linear interpolation at the crossing, as
:func:`slr.metrics.eer`) are array operations over (resamples x groups). Cllr_min needs one PAV per
resample (sklearn's compiled ``isotonic_regression`` on the group weights, about 0.2 ms for 10^4
groups). With all weights 1 every metric equals the function of :mod:`slr.metrics`.

Intervals: the 2.5 % and 97.5 % order statistics of the resampled values (``lower`` / ``higher``
order statistic: conservative, and safe with infinite Cllr). Resamples without an item of one
class are dropped. Where the observed count behind a rate is zero (no misleading evidence, EER 0)
a bootstrap cannot produce anything but [0, 0]; the upper end is then the Clopper-Pearson 95 %
upper bound with the persons of that class as trials: 1 - 0.025^(1/n) (two-sided 95 %).

Conventions: labels 0 = real = Hp, 1 = fake = Hd; LLR = log10 LR; Cllr in bits.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import scipy.sparse
from sklearn.isotonic import isotonic_regression

from . import metrics as M

METRICS = ("cllr", "cllr_min", "cllr_cal", "eer", "auc", "misleading_hp", "misleading_hd")
LN2, LN10 = math.log(2.0), math.log(10.0)


def _log2_1p_pow10(a):
    return np.logaddexp(0.0, a * LN10) / LN2


def cp_upper(n: int, x: int = 0, level: float = 0.95) -> float:
    """Clopper-Pearson upper limit of a two-sided ``level`` interval for x successes in n trials."""
    from scipy.stats import beta

    if n <= 0:
        return math.nan
    if x >= n:
        return 1.0
    return float(beta.ppf(1 - (1 - level) / 2, x + 1, n - x))


class _Prepared:
    """Items sorted by LLR, grouped by distinct value, and the cluster x group count matrices."""

    def __init__(self, llr, labels, clusters):
        llr = np.asarray(llr, dtype=np.float64).reshape(-1)
        labels = np.asarray(labels).reshape(-1).astype(np.int64)
        clusters = np.asarray(clusters).reshape(-1).astype(str)
        if not (llr.size == labels.size == clusters.size):
            raise ValueError(f"llr ({llr.size}), labels ({labels.size}) and clusters ({clusters.size}) differ in length")
        if np.isnan(llr).any():
            raise ValueError("cluster_bootstrap: NaN LLRs; remove them first")
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("cluster_bootstrap: labels must be 0 (real, Hp) or 1 (fake, Hd)")
        self.uniq, g = np.unique(llr, return_inverse=True)
        self.cl_names, c = np.unique(clusters, return_inverse=True)
        self.n_clusters, self.n_groups = len(self.cl_names), len(self.uniq)
        shape = (self.n_clusters, self.n_groups)
        hp, hd = labels == 0, labels == 1
        self.m_hp = scipy.sparse.csr_matrix((np.ones(hp.sum()), (c[hp], g[hp])), shape=shape)
        self.m_hd = scipy.sparse.csr_matrix((np.ones(hd.sum()), (c[hd], g[hd])), shape=shape)
        self.persons_hp = int(len(np.unique(c[hp])))
        self.persons_hd = int(len(np.unique(c[hd])))
        self.labels, self.llr = labels, llr

    def group_weights(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B x G) weights of the Hp and Hd items per distinct LLR for cluster weights k (B x C)."""
        return (self.m_hp.T @ k.T).T, (self.m_hd.T @ k.T).T


def _weighted_metrics(p: _Prepared, ghp: np.ndarray, ghd: np.ndarray, wanted: set) -> dict:
    u = p.uniq
    w_hp, w_hd = ghp.sum(1), ghd.sum(1)
    ok = (w_hp > 0) & (w_hd > 0)
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        if wanted & {"cllr", "cllr_cal"}:
            c_hp, c_hd = _log2_1p_pow10(-u), _log2_1p_pow10(u)
            f_hp, f_hd = np.isfinite(c_hp), np.isfinite(c_hd)
            s_hp = ghp[:, f_hp] @ c_hp[f_hp] + np.where(ghp[:, ~f_hp].sum(1) > 0, np.inf, 0.0)
            s_hd = ghd[:, f_hd] @ c_hd[f_hd] + np.where(ghd[:, ~f_hd].sum(1) > 0, np.inf, 0.0)
            out["cllr"] = 0.5 * (s_hp / w_hp + s_hd / w_hd)
        if "misleading_hp" in wanted:
            out["misleading_hp"] = ghp[:, u < 0].sum(1) / w_hp
        if "misleading_hd" in wanted:
            out["misleading_hd"] = ghd[:, u > 0].sum(1) / w_hd
        if wanted & {"auc", "eer"}:
            cum_hd = np.cumsum(ghd, axis=1)
            below_hd = cum_hd - ghd
            if "auc" in wanted:
                out["auc"] = np.sum(ghp * (below_hd + 0.5 * ghd), axis=1) / (w_hp * w_hd)
            if "eer" in wanted:
                below_hp = np.cumsum(ghp, axis=1) - ghp
                pm = np.concatenate([below_hp / w_hp[:, None], np.ones((len(w_hp), 1))], axis=1)
                pf = np.concatenate([(w_hd[:, None] - below_hd) / w_hd[:, None], np.zeros((len(w_hp), 1))], axis=1)
                d = pf - pm
                k = np.argmax(d <= 0, axis=1)
                r = np.arange(len(k))
                km = np.maximum(k - 1, 0)
                a = d[r, km] / (d[r, km] - d[r, k])
                e = pm[r, km] + a * (pm[r, k] - pm[r, km])
                out["eer"] = np.where(d[r, k] == 0, pm[r, k], e)
        if wanted & {"cllr_min", "cllr_cal"}:
            cm = np.full(len(w_hp), np.nan)
            for b in np.flatnonzero(ok):
                a_hp, a_hd = ghp[b], ghd[b]
                tot = a_hp + a_hd
                keep = tot > 0
                h, f, t = a_hp[keep], a_hd[keep], tot[keep]
                post = isotonic_regression(h / t, sample_weight=t, increasing=True)
                odds = w_hp[b] / w_hd[b]
                c1 = np.where(h > 0, h * np.log2(1.0 + (1.0 - post) * odds / post), 0.0).sum()
                c2 = np.where(f > 0, f * np.log2(1.0 + post / ((1.0 - post) * odds)), 0.0).sum()
                cm[b] = 0.5 * (c1 / w_hp[b] + c2 / w_hd[b])
            out["cllr_min"] = cm
        if "cllr_cal" in wanted:
            c = out["cllr"]
            out["cllr_cal"] = np.where(np.isinf(c), c, c - out["cllr_min"])
    for key in out:
        out[key] = np.where(ok, out[key], np.nan)
    return out


def bootstrap_samples(llr: Any, labels: Any, clusters: Any, metrics: Sequence[str] = METRICS, n: int = 1000,
                      seed: int = 0, chunk: int = 250) -> dict[str, np.ndarray]:
    """``{metric: (n,) resampled values}`` (NaN where a resample lacks a class)."""
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metric(s) {sorted(unknown)}; known: {METRICS}")
    p = _Prepared(llr, labels, clusters)
    rng = np.random.default_rng(seed)
    wanted = set(metrics)
    parts: dict[str, list] = {m: [] for m in metrics}
    done = 0
    while done < n:
        b = min(chunk, n - done)
        draws = rng.integers(0, p.n_clusters, size=(b, p.n_clusters))
        k = np.zeros((b, p.n_clusters))
        np.add.at(k, (np.repeat(np.arange(b), p.n_clusters), draws.reshape(-1)), 1.0)
        ghp, ghd = p.group_weights(k)
        res = _weighted_metrics(p, np.asarray(ghp), np.asarray(ghd), wanted)
        for m in metrics:
            parts[m].append(res[m])
        done += b
    return {m: np.concatenate(v) for m, v in parts.items()}


def cluster_bootstrap(llr: Any, labels: Any, clusters: Any, metrics: Sequence[str] = METRICS, n: int = 1000,
                      seed: int = 0) -> dict[str, tuple[float, float]]:
    """95 % person-cluster bootstrap intervals ``{metric: (lo, hi)}`` of the LLRs ``llr`` with
    ``labels`` (0 = Hp, 1 = Hd), resampling ``clusters`` (person ids; pass ``np.arange(len(llr))``
    for a naive item bootstrap). Zero observed counts (misleading rates, EER) get the
    Clopper-Pearson upper bound over the persons of the class (module docstring)."""
    p = _Prepared(llr, labels, clusters)
    samples = bootstrap_samples(llr, labels, clusters, metrics, n, seed)
    hp, hd = M.split_hypotheses(p.llr, p.labels)
    out = {}
    for m, v in samples.items():
        v = v[~np.isnan(v)]
        if v.size == 0:
            out[m] = (math.nan, math.nan)
            continue
        out[m] = (float(np.quantile(v, 0.025, method="lower")), float(np.quantile(v, 0.975, method="higher")))
    zero_n = {"misleading_hp": (int(np.sum(hp < 0)), p.persons_hp), "misleading_hd": (int(np.sum(hd > 0)), p.persons_hd)}
    for m, (count, persons) in zero_n.items():
        if m in out and count == 0:
            out[m] = (0.0, cp_upper(persons))
    if "eer" in out and hp.size and hd.size and M.eer(hp, hd)["eer"] == 0:
        out["eer"] = (0.0, cp_upper(min(p.persons_hp, p.persons_hd)))
    return out


def naive_bootstrap_loop(llr, labels, clusters, n: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """Reference implementation (slow): one Python iteration per resample with slr.metrics on the
    repeated items. Used by the tests (agreement) and the benchmark (speed-up)."""
    llr = np.asarray(llr, float)
    labels = np.asarray(labels)
    names, c = np.unique(np.asarray(clusters).astype(str), return_inverse=True)
    members = [np.flatnonzero(c == i) for i in range(len(names))]
    rng = np.random.default_rng(seed)
    out = {m: np.full(n, np.nan) for m in METRICS}
    for b in range(n):
        draws = rng.integers(0, len(names), size=len(names))
        idx = np.concatenate([members[d] for d in draws])
        hp, hd = M.split_hypotheses(llr[idx], labels[idx])
        if not hp.size or not hd.size:
            continue
        mis = M.misleading_evidence(hp, hd)
        out["cllr"][b], out["cllr_min"][b] = M.cllr(hp, hd), M.cllr_min(hp, hd)
        out["cllr_cal"][b] = M.cllr_cal(hp, hd)
        out["eer"][b], out["auc"][b] = M.eer(hp, hd)["eer"], M.auc(hp, hd)
        out["misleading_hp"][b], out["misleading_hd"][b] = mis["hp"], mis["hd"]
    return out


def pool_metrics(llr: Any, labels: Any, person_ids: Any = None, video_ids: Any = None, bootstrap_n: int = 1000,
                 seed: int = 0) -> dict:
    """The summary block of one pool at one level (issue 10 item 8):
    ``{n_hp, n_hd, n_persons, n_videos, n_persons_hp, n_persons_hd, cllr, cllr_min, cllr_cal, eer, auc,
    misleading_hp, misleading_hd, ci95: {metric: [lo, hi]}, ci95_method}``. Point values from
    slr.metrics; intervals from :func:`cluster_bootstrap` over persons (``person_ids``; without them
    each video is a person, without ``video_ids`` each item). ``bootstrap_n = 0``: no intervals."""
    llr = np.asarray(llr, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    n = len(llr)
    videos = np.asarray(video_ids).astype(str) if video_ids is not None else np.array([f"i{i}" for i in range(n)])
    persons = np.asarray(person_ids).astype(str) if person_ids is not None else videos
    hp, hd = M.split_hypotheses(llr, labels)
    d = {"n_hp": int(hp.size), "n_hd": int(hd.size), "n_persons": int(len(np.unique(persons))),
         "n_videos": int(len(np.unique(videos))),
         "n_persons_hp": int(len(np.unique(persons[labels == 0]))),
         "n_persons_hd": int(len(np.unique(persons[labels == 1])))}
    if hp.size and hd.size:
        mis = M.misleading_evidence(hp, hd)
        d.update(cllr=float(M.cllr(hp, hd)), cllr_min=float(M.cllr_min(hp, hd)), cllr_cal=float(M.cllr_cal(hp, hd)),
                 eer=float(M.eer(hp, hd)["eer"]), auc=float(M.auc(hp, hd)),
                 misleading_hp=float(mis["hp"]), misleading_hd=float(mis["hd"]))
    else:
        d.update({m: math.nan for m in METRICS})
    if bootstrap_n > 0 and hp.size and hd.size:
        ci = cluster_bootstrap(llr, labels, persons, METRICS, int(bootstrap_n), int(seed))
        d["ci95"] = {m: [lo, hi] for m, (lo, hi) in ci.items()}
        d["ci95_method"] = (f"person-cluster bootstrap, {int(bootstrap_n)} resamples of {d['n_persons']} persons "
                            f"(seed {int(seed)}), 2.5/97.5 % order statistics; zero counts: Clopper-Pearson 95 % "
                            f"upper bound over persons")
    else:
        d["ci95"] = {m: [None, None] for m in METRICS}
        d["ci95_method"] = "no intervals (slr.bootstrap.n = 0)" if bootstrap_n <= 0 else "no intervals (one class)"
    return d
