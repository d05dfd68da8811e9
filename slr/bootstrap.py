"""Person-cluster bootstrap of LR validation metrics, vectorised over resamples.

A resample draws the clusters (persons) with replacement, all their items together; item i then
carries the weight K[b, cluster(i)] (how often its cluster was drawn) and every metric is computed
on the weighted items. All resamples are evaluated together: the items are sorted once by LLR and
grouped by distinct value. Cllr and the rates of misleading evidence are products of the
(resamples x clusters) weights with per-cluster sums; the AUC (weighted Mann-Whitney) is a
quadratic form with a (clusters x clusters) pair matrix; the EER (exact DET operating points,
linear interpolation at the crossing, as :func:`slr.metrics.eer`) is found by bisection on
per-cluster cumulative counts. Cllr_min needs one PAV per
resample (scipy's compiled ``isotonic_regression`` on the group weights, about 0.1 ms for 10^4
groups). With all weights 1 every metric equals the function of :mod:`slr.metrics`.

Intervals: the 2.5 % and 97.5 % order statistics of the resampled values (``lower`` / ``higher``
order statistic: conservative, and safe with infinite Cllr). Resamples without an item of one
class are dropped. Where the observed count behind a rate is zero (no misleading evidence, EER 0)
a bootstrap cannot produce anything but [0, 0]; the upper end is then the Clopper-Pearson 95 %
upper bound with the persons of that class as trials: 1 - 0.025^(1/n) (two-sided 95 %).

devPAV and the LLR-overestimation (slr.consistency) get intervals on the same resamples
(:func:`consistency_ci`: one weighted PAV, resp. one overestimation curve, per resample); a resample on
which one is undefined (a class missing, every PAV value infinite, no overlap) is left out of its
interval and counted (``ci95_usable`` in :func:`pool_metrics`).

Conventions: labels 0 = real = Hp, 1 = fake = Hd; LLR = log10 LR; Cllr in bits.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import scipy.optimize
import scipy.sparse
from tqdm import tqdm

from . import metrics as M
from .consistency import BOOTSTRAP_KDE_EXACT_TERMS, devpav, devpav_groups, llr_overestimation

METRICS = ("cllr", "cllr_min", "cllr_cal", "eer", "auc", "misleading_hp", "misleading_hd")
CONSISTENCY = ("devpav", "llr_overestimation")     # lir's calibration characteristics (consistency_ci)
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


def _checked(llr, labels, clusters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(llr float64, labels int64, clusters str), flat; ValueError on unequal lengths, NaN LLRs or labels
    other than 0 / 1."""
    llr = np.asarray(llr, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    clusters = np.asarray(clusters).reshape(-1).astype(str)
    if not (llr.size == labels.size == clusters.size):
        raise ValueError(f"llr ({llr.size}), labels ({labels.size}) and clusters ({clusters.size}) differ in length")
    if np.isnan(llr).any():
        raise ValueError("cluster_bootstrap: NaN LLRs; remove them first")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("cluster_bootstrap: labels must be 0 (real, Hp) or 1 (fake, Hd)")
    return llr, labels, clusters


def resample_counts(n_clusters: int, n: int, seed: int, chunk: int = 250):
    """Yields the (b x C) counts of each cluster in successive chunks of ``n`` resamples (row = one
    resample of the C clusters with replacement). Every interval of a summary draws its persons here:
    the same seed gives the same resamples to every metric."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n:
        b = min(chunk, n - done)
        draws = rng.integers(0, n_clusters, size=(b, n_clusters))
        flat = (np.arange(b)[:, None] * n_clusters + draws).reshape(-1)
        yield np.bincount(flat, minlength=b * n_clusters).reshape(b, n_clusters).astype(np.float64)
        done += b


CLUSTER_MATRIX_MAX = 2e7   # entries of the (clusters x distinct LLRs) matrices of the fast AUC/EER path


class _Prepared:
    """Items sorted by LLR and grouped by distinct value; per cluster: counts, Cllr costs and
    misleading counts (so Cllr and the rates are products of the cluster weights with these),
    the pair matrix of the AUC (A[c, c'] = Hp items of c above Hd items of c', ties 1/2: AUC =
    k A k / (W_hp W_hd)) and the cumulative counts below each distinct LLR (the DET curve of a
    resample at any threshold is one product; the EER is found by bisection on the monotone
    difference p_fa - p_miss). Beyond CLUSTER_MATRIX_MAX entries (e.g. every item its own cluster
    on large data) AUC and EER fall back to (resamples x distinct LLRs) arrays."""

    def __init__(self, llr, labels, clusters):
        llr, labels, clusters = _checked(llr, labels, clusters)
        uniq, g = np.unique(llr, return_inverse=True)
        self.cl_names, c = np.unique(clusters, return_inverse=True)
        C = len(self.cl_names)
        hp, hd = labels == 0, labels == 1
        # runs: consecutive distinct LLRs holding only Hp (or only Hd) items are pooled into one run
        # (a group holding both stays alone). PAV, the DET operating points that matter for the EER
        # and the AUC's pairs are unchanged by this pooling; it shortens every array below.
        comp = (np.bincount(g, weights=hp, minlength=len(uniq)) > 0) + 2 * (np.bincount(g, weights=hd,
                                                                                           minlength=len(uniq)) > 0)
        new_run = np.r_[True, (comp[1:] != comp[:-1]) | (comp[1:] == 3)]
        r = (np.cumsum(new_run) - 1)[g]
        G = int(r.max()) + 1 if r.size else 0
        self.n_clusters, self.n_groups = C, G
        self.m_hp = scipy.sparse.csr_matrix((np.ones(hp.sum()), (c[hp], r[hp])), shape=(C, G))
        self.m_hd = scipy.sparse.csr_matrix((np.ones(hd.sum()), (c[hd], r[hd])), shape=(C, G))
        self.persons_hp = int(len(np.unique(c[hp])))
        self.persons_hd = int(len(np.unique(c[hd])))
        self.labels, self.llr = labels, llr
        cost_hp, cost_hd = _log2_1p_pow10(-llr), _log2_1p_pow10(llr)
        f_hp, f_hd = hp & np.isfinite(cost_hp), hd & np.isfinite(cost_hd)
        cnt = lambda w: np.bincount(c, weights=w.astype(np.float64), minlength=C)   # noqa: E731
        self.n_hp_c, self.n_hd_c = cnt(hp), cnt(hd)
        self.cost_hp_c = cnt(np.where(f_hp, cost_hp, 0.0))
        self.cost_hd_c = cnt(np.where(f_hd, cost_hd, 0.0))
        self.inf_hp_c, self.inf_hd_c = cnt(hp & ~f_hp), cnt(hd & ~f_hd)
        self.mis_hp_c, self.mis_hd_c = cnt(hp & (llr < 0)), cnt(hd & (llr > 0))
        self.fast = C * (G + 1) <= CLUSTER_MATRIX_MAX
        if self.fast:
            # counts of Hp / Hd items with LLR < u_g per cluster; column G = all items
            # cb[j, c]: Hp / Hd items of cluster c with LLR < u_j (row G: all); (G + 1, C), float32 holds
            # these integer counts exactly
            t_hp = self.m_hp.T.toarray().astype(np.float32)
            t_hd = self.m_hd.T.toarray().astype(np.float32)
            self.cb_hp = np.zeros((G + 1, C), dtype=np.float32)
            self.cb_hd = np.zeros((G + 1, C), dtype=np.float32)
            np.cumsum(t_hp, axis=0, out=self.cb_hp[1:])
            np.cumsum(t_hd, axis=0, out=self.cb_hd[1:])
            t_hd *= 0.5
            t_hd += self.cb_hd[:G]
            self.auc_pairs = np.asarray(self.m_hp @ t_hd, dtype=np.float64)   # (C, C)

    def group_weights(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B x G) weights of the Hp and Hd items per distinct LLR for cluster weights k (B x C)."""
        return (np.ascontiguousarray(np.asarray(self.m_hp.T @ k.T).T),
                np.ascontiguousarray(np.asarray(self.m_hd.T @ k.T).T))


def _eer_bisect(p: _Prepared, k: np.ndarray, w_hp: np.ndarray, w_hd: np.ndarray) -> np.ndarray:
    """EER per resample: first threshold index j with p_fa(j) <= p_miss(j) by bisection (the
    difference is non-increasing in j), then the crossing interpolated as slr.metrics.eer does."""
    B, G = k.shape[0], p.n_groups
    rows = np.arange(B)

    def d_at(j):
        pm = np.einsum("bc,bc->b", k, p.cb_hp[j], dtype=np.float64) / w_hp
        pf = (w_hd - np.einsum("bc,bc->b", k, p.cb_hd[j], dtype=np.float64)) / w_hd
        return pf - pm, pm

    lo, hi = np.zeros(B, dtype=np.int64), np.full(B, G, dtype=np.int64)   # d(lo) > 0 >= d(hi)
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        dm, _ = d_at(mid)
        pos = dm > 0
        lo = np.where(pos, mid, lo)
        hi = np.where(pos, hi, mid)
    d1, pm1 = d_at(hi)
    d0, pm0 = d_at(lo)
    del rows
    with np.errstate(invalid="ignore", divide="ignore"):
        a = d0 / (d0 - d1)
        e = pm0 + a * (pm1 - pm0)
    return np.where(d1 == 0, pm1, e)


def _weighted_metrics(p: _Prepared, k: np.ndarray, wanted: set) -> dict:
    w_hp, w_hd = k @ p.n_hp_c, k @ p.n_hd_c
    ok = (w_hp > 0) & (w_hd > 0)
    out = {}
    need_groups = bool(wanted & {"cllr_min", "cllr_cal"}) or (not p.fast and bool(wanted & {"auc", "eer"}))
    ghp = ghd = None
    if need_groups:
        ghp, ghd = p.group_weights(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        if wanted & {"cllr", "cllr_cal"}:
            s_hp = k @ p.cost_hp_c + np.where(k @ p.inf_hp_c > 0, np.inf, 0.0)
            s_hd = k @ p.cost_hd_c + np.where(k @ p.inf_hd_c > 0, np.inf, 0.0)
            out["cllr"] = 0.5 * (s_hp / w_hp + s_hd / w_hd)
        if "misleading_hp" in wanted:
            out["misleading_hp"] = (k @ p.mis_hp_c) / w_hp
        if "misleading_hd" in wanted:
            out["misleading_hd"] = (k @ p.mis_hd_c) / w_hd
        if "auc" in wanted and ghp is not None:          # weighted Mann-Whitney over the runs
            below_hd = np.cumsum(ghd, axis=1) - ghd
            out["auc"] = np.sum(ghp * (below_hd + 0.5 * ghd), axis=1) / (w_hp * w_hd)
        if p.fast:
            if "auc" in wanted and "auc" not in out:
                out["auc"] = np.einsum("bc,bc->b", k @ p.auc_pairs, k) / (w_hp * w_hd)
            if "eer" in wanted:
                out["eer"] = _eer_bisect(p, k, np.where(ok, w_hp, 1.0), np.where(ok, w_hd, 1.0))
        elif "eer" in wanted:
            below_hd = np.cumsum(ghd, axis=1) - ghd
            if True:
                below_hp = np.cumsum(ghp, axis=1) - ghp
                pm = np.concatenate([below_hp / w_hp[:, None], np.ones((len(w_hp), 1))], axis=1)
                pf = np.concatenate([(w_hd[:, None] - below_hd) / w_hd[:, None], np.zeros((len(w_hp), 1))], axis=1)
                d = pf - pm
                j = np.argmax(d <= 0, axis=1)
                r = np.arange(len(j))
                jm = np.maximum(j - 1, 0)
                a = d[r, jm] / (d[r, jm] - d[r, j])
                e = pm[r, jm] + a * (pm[r, j] - pm[r, jm])
                out["eer"] = np.where(d[r, j] == 0, pm[r, j], e)
        if wanted & {"cllr_min", "cllr_cal"}:
            cm = np.full(len(w_hp), np.nan)
            tot_all = ghp + ghd
            for b in np.flatnonzero(ok):
                keep = np.flatnonzero(tot_all[b])
                h, f, t = ghp[b, keep], ghd[b, keep], tot_all[b, keep]
                starts = scipy.optimize.isotonic_regression(h / t, weights=t, increasing=True).blocks[:-1]
                bh, bf = np.add.reduceat(h, starts), np.add.reduceat(f, starts)   # PAV block sums
                odds = w_hp[b] / w_hd[b]
                c1 = np.sum(bh[bh > 0] * np.log2(1.0 + bf[bh > 0] * odds / bh[bh > 0]))
                c2 = np.sum(bf[bf > 0] * np.log2(1.0 + bh[bf > 0] / (bf[bf > 0] * odds)))
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
    wanted = set(metrics)
    parts: dict[str, list] = {m: [] for m in metrics}
    bar = tqdm(total=n, desc="bootstrap", unit="resample", leave=False, disable=None if n >= 200 else True)  # on a terminal
    for k in resample_counts(p.n_clusters, n, seed, chunk):
        res = _weighted_metrics(p, k, wanted)
        for m in metrics:
            parts[m].append(res[m])
        bar.update(len(k))
    bar.close()
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


def consistency_metrics(llr_hp: Any, llr_hd: Any) -> dict:
    """``{devpav, llr_overestimation}`` (log10; slr.consistency) of one pool."""
    return {"devpav": float(devpav(llr_hp, llr_hd)), "llr_overestimation": float(llr_overestimation(llr_hp, llr_hd))}


def consistency_samples(llr: Any, labels: Any, clusters: Any, n: int = 1000, seed: int = 0,
                        chunk: int = 250) -> dict[str, np.ndarray]:
    """``{devpav, llr_overestimation}: (n,)`` on the person resamples of :func:`bootstrap_samples` (same
    ``seed``, same draws). Resample b repeats every item of a drawn person as often as the person was
    drawn; devPAV comes from the weighted PAV on the distinct LLRs (slr.consistency.devpav_groups, equal
    to devPAV of the repeated items), the overestimation from the repeated items (its KDEs exact up to
    BOOTSTRAP_KDE_EXACT_TERMS kernel terms, on slr.kde's FFT grid beyond: about 1e-5). NaN where the metric is
    undefined on the resample: one class missing, every PAV value infinite (devPAV), no overlap of the
    two LLR sets (overestimation)."""
    llr, labels, clusters = _checked(llr, labels, clusters)
    _, c = np.unique(clusters, return_inverse=True)
    n_cl = int(c.max()) + 1 if c.size else 0
    x, g = np.unique(llr, return_inverse=True)
    hp = labels == 0
    m_hp = scipy.sparse.csr_matrix((np.ones(hp.sum()), (c[hp], g[hp])), shape=(n_cl, x.size))
    m_hd = scipy.sparse.csr_matrix((np.ones((~hp).sum()), (c[~hp], g[~hp])), shape=(n_cl, x.size))
    out = {m: np.full(n, np.nan) for m in CONSISTENCY}
    i = 0
    for k in resample_counts(n_cl, n, seed, chunk):
        ghp, ghd = np.asarray(m_hp.T @ k.T).T, np.asarray(m_hd.T @ k.T).T
        for b in range(len(k)):
            w = k[b, c].astype(np.int64)
            r_hp, r_hd = np.repeat(llr[hp], w[hp]), np.repeat(llr[~hp], w[~hp])
            if r_hp.size and r_hd.size:
                out["devpav"][i] = devpav_groups(x, ghp[b], ghd[b])
                out["llr_overestimation"][i] = llr_overestimation(r_hp, r_hd, BOOTSTRAP_KDE_EXACT_TERMS)
            i += 1
    return out


def consistency_ci(llr: Any, labels: Any, clusters: Any, n: int = 1000, seed: int = 0
                   ) -> tuple[dict[str, list], dict[str, int]]:
    """(``{devpav, llr_overestimation}: [lo, hi]``, ``{metric: usable resamples}``): the 2.5 / 97.5 % order
    statistics (``lower`` / ``higher``, as :func:`cluster_bootstrap`) over the resamples where the metric
    is defined (not NaN; +inf devPAV is kept and ordered last). Undefined resamples are counted, not
    hidden: the interval is conditional on the metric being defined; [None, None] when none is."""
    samples = consistency_samples(llr, labels, clusters, n, seed)
    ci, usable = {}, {}
    for m, v in samples.items():
        v = v[~np.isnan(v)]
        usable[m] = int(v.size)
        ci[m] = ([float(np.quantile(v, 0.025, method="lower")), float(np.quantile(v, 0.975, method="higher"))]
                 if v.size else [None, None])
    return ci, usable


def pool_metrics(llr: Any, labels: Any, person_ids: Any = None, video_ids: Any = None, bootstrap_n: int = 1000,
                 seed: int = 0) -> dict:
    """The summary block of one pool at one level (issue 10 item 8):
    ``{n_hp, n_hd, n_persons, n_videos, n_persons_hp, n_persons_hd, cllr, cllr_min, cllr_cal, eer, auc,
    misleading_hp, misleading_hd, devpav, llr_overestimation, ci95: {metric: [lo, hi]}, ci95_resamples,
    ci95_usable, ci95_method}``. Point values from slr.metrics (devPAV and the mean absolute
    LLR-overestimation from slr.consistency); intervals from :func:`cluster_bootstrap` and
    :func:`consistency_ci` over persons (``person_ids``; without them each video is a person, without
    ``video_ids`` each item), on the same resamples. ``ci95_usable``: of the ``ci95_resamples``
    (= ``bootstrap_n``) resamples, how many gave a defined devPAV and overestimation (the others are
    left out of their intervals). ``bootstrap_n = 0``: no intervals."""
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
        d.update(consistency_metrics(hp, hd))
    else:
        d.update({m: math.nan for m in METRICS + CONSISTENCY})
    if bootstrap_n > 0 and hp.size and hd.size:
        ci = cluster_bootstrap(llr, labels, persons, METRICS, int(bootstrap_n), int(seed))
        d["ci95"] = {m: [lo, hi] for m, (lo, hi) in ci.items()}
        ci_c, d["ci95_usable"] = consistency_ci(llr, labels, persons, int(bootstrap_n), int(seed))
        d["ci95_resamples"] = int(bootstrap_n)
        d["ci95"].update(ci_c)
        d["ci95_method"] = (f"person-cluster bootstrap, {int(bootstrap_n)} resamples of {d['n_persons']} persons "
                            f"(seed {int(seed)}), 2.5/97.5 % order statistics; zero counts: Clopper-Pearson 95 % "
                            f"upper bound over persons; devpav / llr_overestimation: over the resamples where they "
                            f"are defined (ci95_usable)")
    else:
        d["ci95"] = {m: [None, None] for m in METRICS + CONSISTENCY}
        d["ci95_method"] = "no intervals (slr.bootstrap.n = 0)" if bootstrap_n <= 0 else "no intervals (one class)"
    return d


# ------------------------------------------------------------------------------------------ stage 15
def clopper_pearson_upper_zero(n: int) -> float:
    """Clopper-Pearson upper limit (two-sided 95 %) of a rate with no event in ``n`` trials, as the LR
    system's own bootstrap uses it (slr.bootstrap.cp_upper): 1 - 0.025^(1/n)."""
    return float(1.0 - 0.025 ** (1.0 / n)) if n > 0 else math.nan


def _cluster_weights(clusters: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(inverse index of each item's cluster, (n, C) resample counts of each cluster)."""
    uniq, inv = np.unique(np.asarray(clusters).astype(str), return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(uniq), size=(n, len(uniq)))
    w = np.zeros((n, len(uniq)), dtype=np.int64)
    rows = np.repeat(np.arange(n), len(uniq))
    np.add.at(w, (rows, draws.ravel()), 1)
    return inv, w


def strong_misleading_ci(llr, labels, clusters, n: int, seed: int) -> dict[str, list]:
    """Person-cluster bootstrap 95 % intervals of the two strong-misleading shares (vectorised: the
    share in a resample is (W @ events per person) / (W @ items per person)); a share with no event
    gets [0, one-sided 95 % Clopper-Pearson upper bound over the class's persons]."""
    llr, labels = np.asarray(llr, float), np.asarray(labels)
    clusters = np.asarray(clusters).astype(str)
    inv, w = _cluster_weights(clusters, n, seed)
    out = {}
    for name, cls, flag in (("strong_misleading_hp", 0, llr <= -M.STRONG_LLR), ("strong_misleading_hd", 1, llr >= M.STRONG_LLR)):
        sel = labels == cls
        events = np.bincount(inv[sel], weights=flag[sel].astype(float), minlength=w.shape[1])
        items = np.bincount(inv[sel], minlength=w.shape[1]).astype(float)
        if not sel.any():
            out[name] = [math.nan, math.nan]
        elif events.sum() == 0:
            out[name] = [0.0, clopper_pearson_upper_zero(int((items > 0).sum()))]
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                share = (w @ events) / (w @ items)
            share = share[np.isfinite(share)]
            out[name] = ([float(np.quantile(share, 0.025, method="lower")),
                          float(np.quantile(share, 0.975, method="higher"))] if share.size else [math.nan, math.nan])
    return out


def level_metrics(llr, labels, persons, videos, bootstrap_n: int, seed: int) -> dict:
    """The LR system's pool summary block (slr.bootstrap.pool_metrics: counts, Cllr, Cllr_min, Cllr_cal,
    EER, AUC, both misleading rates, ``ci95``) plus the two strong-misleading shares and their intervals."""
    llr, labels = np.asarray(llr, float), np.asarray(labels, np.int64)
    persons, videos = np.asarray(persons).astype(str), np.asarray(videos).astype(str)
    out = pool_metrics(llr, labels, persons, videos, bootstrap_n, seed)
    out.update(M.strong_misleading(llr, labels))
    ci = dict(out.get("ci95") or {})
    if bootstrap_n > 0 and out["n_hp"] and out["n_hd"]:
        ci.update(strong_misleading_ci(llr, labels, persons, bootstrap_n, seed))
    else:
        ci.update({m: [None, None] for m in ("strong_misleading_hp", "strong_misleading_hd")})
    out["ci95"] = ci
    return out
