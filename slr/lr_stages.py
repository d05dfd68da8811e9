"""Stages 11-14 on the LLRs of stage 10 (slr.lrdata.LevelLLR), and the figures of one pool.

Protocol-free loops over levels and pools: what a protocol reports of its own comes from its system's
hooks (slr.interface: ``extra_metrics``, ``extra_eer``, ``extra_figures``, ``elub_fits``, ...).
Stage 11: Tippett plots, rates of misleading evidence; 12: DET curves and EER; 13: ECE, Cllr,
Cllr_min, Cllr_cal, AUC; 14: ELUB bounds, bounded LRs, NBE plot.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.io import write_json

from . import metrics, plots
from .bootstrap import pool_metrics
from .interface import SystemInterface, system_class
from .lrdata import LevelLLR, PoolLLR

ECE_LOG10_ODDS = np.linspace(-2.5, 2.5, 101)                        # includes 0 (prior 0.5)
POOL_COLORS = {"train": "tab:gray", "val": "tab:green", "calib": "tab:orange", "test": "tab:purple"}


# ----------------------------------------------------------------------------------------- metrics
def _f(x):
    return None if x is None else float(x)


def split_metrics(sl: PoolLLR, cls: type[SystemInterface], bootstrap_n: int = 0, seed: int = 0) -> dict:
    """Every figure of one pool, computed on its final ``llr``, in the summary shape of
    :func:`slr.bootstrap.pool_metrics` (with person-cluster intervals when ``bootstrap_n`` > 0),
    then the protocol's own figures."""
    hp, hd = metrics.split_hypotheses(sl.llr, sl.labels)
    e = metrics.eer(hp, hd)
    b = sl.bounds
    d = pool_metrics(sl.llr, sl.labels, sl.persons(), sl.videos(), bootstrap_n, seed)
    d.update({
        "ece_prior_0.5": float(np.asarray(metrics.ece(hp, hd, np.array([0.0]))).ravel()[0]),
        "eer_method": e.get("method"), "eer_rocch": _f(e.get("eer_rocch")),
        "eer_threshold_log10": _f(e.get("threshold")),
        "llr_range": [float(np.min(sl.llr)), float(np.max(sl.llr))],
        "elub": {"lower_log10": b["lower_log10"], "upper_log10": b["upper_log10"]} if b else None,
        "elub_fitted_on": b.get("fitted_on") if b else None,
        "elub_applied": bool(b.get("applied")) if b else False,
        "score_auc": float(metrics.auc(sl.scores[sl.labels == 0], sl.scores[sl.labels == 1]))})
    d.update(cls.extra_metrics(sl))
    return d


def evaluate(levels: dict[str, LevelLLR], bootstrap_n: int = 0, seed: int = 0,
             system: type | None = None) -> dict[str, dict[str, dict]]:
    """``{level: {pool: metrics}}`` (see split_metrics), with each pool's role where the system that made
    the LLRs (``system``; default: the protocol's) gives one."""
    out = {}
    for lv, r in levels.items():
        cls = system or system_class(r.protocol)
        out[lv] = {}
        for s in r.pools:
            m = split_metrics(r.splits[s], cls, bootstrap_n, seed)
            role = cls.pool_role(s)
            if role is not None:
                m["role"] = role
            out[lv][s] = m
    return out


# ----------------------------------------------------------------------------------------- stages 11-14
def _title(r: LevelLLR) -> str:
    t = f"{r.protocol} protocol, {r.level} level"
    return f"{t} [{r.note}]" if r.note else t


def _block(r: LevelLLR, s: str) -> dict:
    """Stage 10's summary block of pool ``s`` (figures with intervals) as the base of 11-14's blocks."""
    base = r.metrics.get(s) if r.metrics else None
    return dict(base) if base else split_metrics(r.splits[s], system_class(r.protocol))


def _stage_summary(levels: dict[str, LevelLLR], blocks: dict, **extra) -> dict:
    any_r = next(iter(levels.values()))
    return {"protocol": any_r.protocol, "note": any_r.note, "levels": blocks, "system": any_r.system_summary, **extra}


def stage11(levels: dict[str, LevelLLR], out: Path) -> dict:
    """Tippett plots (standard form: both hypotheses as P(LLR >= x)); rates of misleading evidence;
    the protocol's own forms (paper: Hp as P(LLR <= x))."""
    summary = {}
    for lv, r in levels.items():
        cls = system_class(r.protocol)
        fig, axes = plots.new_figure(len(r.pools))
        summary[lv] = {}
        for ax, s in zip(axes, r.pools):
            hp, hd = r.splits[s].by_hypothesis()
            plots.plot_tippett(ax, hp, hd, title=f"{cls.pool_label(s)} (n = {len(hp)}/{len(hd)})")
            mis = metrics.misleading_evidence(hp, hd)
            summary[lv][s] = {**_block(r, s), "misleading_hp": float(mis["hp"]), "misleading_hd": float(mis["hd"]),
                              "n_hp": int(len(hp)), "n_hd": int(len(hd))}
        plots.save_figure(fig, out / f"tippett_{lv}.png", f"Tippett plot, {_title(r)}")
        cls.extra_figures("11", r, out)
    write_json(out / "summary.json", _stage_summary(
        levels, summary, definition="misleading_hp = P(LLR < 0 | Hp), misleading_hd = P(LLR > 0 | Hd)"))
    return summary


def stage12(levels: dict[str, LevelLLR], out: Path) -> dict:
    """DET curves on probit axes, EER (and the protocol's own EER figures), threshold."""
    summary = {}
    for lv, r in levels.items():
        cls = system_class(r.protocol)
        fig, axes = plots.new_figure(1, width=6, height=5.5)
        summary[lv] = {}
        for s in r.pools:
            hp, hd = r.splits[s].by_hypothesis()
            _, p_miss, p_fa = metrics.det_curve(hp, hd)
            e = metrics.eer(hp, hd)
            plots.plot_det(axes[0], p_miss, p_fa, label=cls.pool_label(s), eer=float(e["eer"]),
                           color=POOL_COLORS.get(s))
            summary[lv][s] = {**_block(r, s), "eer": float(e["eer"]), "eer_rocch": _f(e.get("eer_rocch")),
                              "threshold_log10": _f(e.get("threshold")), "method": e.get("method"),
                              **cls.extra_eer(hp, hd)}
        axes[0].set_title(_title(r))
        plots.save_figure(fig, out / f"det_{lv}.png", "DET curves")
    write_json(out / "summary.json", _stage_summary(levels, summary))
    return summary


def stage13(levels: dict[str, LevelLLR], out: Path) -> dict:
    """ECE plots (LRs, PAV-calibrated LRs, neutral), Cllr, Cllr_min, Cllr_cal, AUC."""
    summary = {}
    for lv, r in levels.items():
        cls = system_class(r.protocol)
        fig, axes = plots.new_figure(len(r.pools))
        summary[lv] = {}
        for ax, s in zip(axes, r.pools):
            sl = r.splits[s]
            hp, hd = sl.by_hypothesis()
            pav_hp, pav_hd = metrics.pav_llr(hp, hd)
            ece = np.asarray(metrics.ece(hp, hd, ECE_LOG10_ODDS), float)
            ece_pav = np.asarray(metrics.ece(pav_hp, pav_hd, ECE_LOG10_ODDS), float)
            ece_0 = np.asarray(metrics.ece(np.zeros(len(hp)), np.zeros(len(hd)), ECE_LOG10_ODDS), float)
            plots.plot_ece(ax, ECE_LOG10_ODDS, ece, ece_pav, ece_0,
                           title=f"{cls.pool_label(s)} (n = {len(hp)}/{len(hd)})")
            m = split_metrics(sl, cls)
            summary[lv][s] = {**_block(r, s), **{k: m[k] for k in (
                "n_hp", "n_hd", "cllr", "cllr_min", "cllr_cal", "ece_prior_0.5", "auc") + cls.ece_keys}}
        plots.save_figure(fig, out / f"ece_{lv}.png", f"Empirical cross-entropy, {_title(r)}")
    write_json(out / "summary.json", _stage_summary(levels, summary,
                                                    units="Cllr and ECE in bits; AUC with Hp as positive"))
    return summary


def nbe_curve(llr_hp: np.ndarray, llr_hd: np.ndarray, log10_t: np.ndarray, w_hp: np.ndarray | None = None,
              w_hd: np.ndarray | None = None) -> np.ndarray:
    """log10( EU(neutral) / EU(LRs) ) over thresholds log10 t, with one added misleading item per
    hypothesis (lr_reference.md): EU(t) = P(LR <= t | Hp) + t P(LR > t | Hd), EU0(t) = min(1, t).
    Negative where the LRs do worse than the neutral LR = 1 (the ELUB criterion). Optional weights
    per item (1 / frames of the video: each video counted once)."""
    hp = np.clip(np.asarray(llr_hp, float), -9, 9)
    hd = np.clip(np.asarray(llr_hd, float), -9, 9)
    w_hp = np.ones(hp.size) if w_hp is None else np.asarray(w_hp, float)
    w_hd = np.ones(hd.size) if w_hd is None else np.asarray(w_hd, float)
    rho = np.asarray(log10_t, float)[:, None]
    p_miss = (((hp[None, :] <= rho) * w_hp).sum(1) + 1) / (w_hp.sum() + 1)
    p_fa = (((hd[None, :] > rho) * w_hd).sum(1) + 1) / (w_hd.sum() + 1)
    t = 10.0 ** rho[:, 0]
    return np.log10(np.minimum(1.0, t) / (p_miss + t * p_fa))


def _nbe_panel(ax, sl: PoolLLR, w: np.ndarray, title: str) -> None:
    hp, hd = sl.by_hypothesis(sl.llr_calibrated)
    b = sl.bounds
    both = np.r_[hp, hd]
    both = both[np.isfinite(both)] if np.isfinite(both).any() else np.zeros(1)   # PAV can give +-inf
    lo_t = min(-0.5, b["lower_log10"] - 0.5, float(np.percentile(both, 1)))
    hi_t = max(0.5, b["upper_log10"] + 0.5, float(np.percentile(both, 99)))
    grid = np.linspace(max(lo_t, -9.5), min(hi_t, 9.5), 400)
    plots.plot_nbe(ax, grid, nbe_curve(hp, hd, grid, w[sl.labels == 0], w[sl.labels == 1]),
                   (b["lower_log10"], b["upper_log10"]), title=title)


def stage14(levels: dict[str, LevelLLR], out: Path) -> dict:
    """ELUB bounds, bounded LRs, NBE plot: an NBE panel per pool the bounds were fitted on (sound: the
    calibrated cross-fitted calib LLRs, each video counted once; paper: each split's own, a diagnostic),
    a bounded-LLR panel per pool whose bounds are applied, the protocol's own bounds beside them."""
    summary = {}
    for lv, r in levels.items():
        cls = system_class(r.protocol)
        fits = cls.elub_fits(r)
        applied = [s for s in r.pools if r.splits[s].bounds["applied"]]
        fig, axes = plots.new_figure(len(fits) + len(applied))
        for ax, (s, w, title) in zip(axes, fits):
            _nbe_panel(ax, r.splits[s], w, title)
        for ax, s in zip(axes[len(fits):], applied):
            sl = r.splits[s]
            b = sl.bounds
            plots.plot_bounded(ax, sl.llr_calibrated, sl.llr, sl.labels, (b["lower_log10"], b["upper_log10"]),
                               title=f"{cls.pool_label(s)}: bounds from {cls.fit_pool}")
        plots.save_figure(fig, out / f"elub_{lv}.png", f"ELUB bounds, {_title(r)}")
        summary[lv] = {}
        for s in r.pools:
            sl, b = r.splits[s], r.splits[s].bounds
            inside = bool(np.all((sl.llr >= b["lower_log10"] - 1e-12) & (sl.llr <= b["upper_log10"] + 1e-12)))
            summary[lv][s] = {**_block(r, s),
                              "elub": {"lower_log10": b["lower_log10"], "upper_log10": b["upper_log10"]},
                              "fitted_on": b["fitted_on"], "applied": b["applied"],
                              "n_clipped": int(np.sum(sl.llr != sl.llr_calibrated)),
                              "final_llr_inside_bounds": inside, **cls.extra_elub()}
    write_json(out / "summary.json", _stage_summary(
        levels, summary, method="standard ELUB (Vergeer et al. 2016, as in lir); sound: each video counted once"))
    return summary
