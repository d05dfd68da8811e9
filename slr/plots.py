"""Figures of stages 08-14. Every function draws on an Axes the caller owns and returns it; the
caller creates, saves and closes the figure (``new_figure`` / ``save_figure`` help with that).

Conventions: Hp = real (label 0), Hd = fake (label 1); LLR = log10 LR.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402

from common.figures import save_figure as common_save_figure  # noqa: E402
from common.figures import set_wrapped_title, wrap_to  # noqa: E402

from . import metrics  # noqa: E402

HP_COLOR, HD_COLOR = "tab:blue", "tab:red"
HP_NAME, HD_NAME = "Hp (real)", "Hd (fake)"


def new_figure(n_panels: int = 1, width: float = 5.0, height: float = 4.0):
    """A figure with ``n_panels`` side-by-side Axes (always returned as a list)."""
    fig, axes = plt.subplots(1, n_panels, figsize=(width * n_panels, height), squeeze=False)
    return fig, list(axes[0])


def save_figure(fig, path: str | Path, title: str | None = None) -> Path:
    """Tight layout, then save at 110 dpi. ``tight_layout`` leaves a placeholder layout engine behind,
    which makes ``savefig`` lay out every text of the figure once more for nothing: it is removed
    (the same PNG bytes, about a third less time per figure)."""
    if title:
        fig.suptitle(wrap_to(title, 0.95 * fig.get_figwidth(), 12))
    fig.tight_layout()
    fig.set_layout_engine(None)
    return common_save_figure(fig, path, dpi=110, tight=False)


def _stats_label(name: str, x: np.ndarray) -> str:
    return f"{name}: n={len(x)}, mean={np.mean(x):.4f}, std={np.std(x, ddof=1) if len(x) > 1 else 0:.4f}"


def plot_score_violins(ax, groups: dict[str, tuple[np.ndarray, np.ndarray]], xlabel: str = "split",
                       ylabel: str = "cosine similarity to the real-train centroid"):
    """Violins of Hp and Hd scores side by side for each group (``{group: (hp, hd)}``)."""
    pos, data, colors, ticks = [], [], [], []
    for k, (name, (hp, hd)) in enumerate(groups.items()):
        for j, (x, c) in enumerate(((hp, HP_COLOR), (hd, HD_COLOR))):
            pos.append(3 * k + j)
            data.append(np.asarray(x, float))
            colors.append(c)
        ticks.append((3 * k + 0.5, f"{name}\nn={len(hp)}/{len(hd)}"))
    parts = ax.violinplot(data, positions=pos, showmeans=True, showextrema=True, widths=0.9)
    for body, c in zip(parts["bodies"], colors):
        body.set_facecolor(c)
        body.set_alpha(0.5)
    per_group = ax.get_position().width * ax.figure.get_figwidth() / max(1, len(ticks))   # inches
    ax.set_xticks([t[0] for t in ticks], [wrap_to(t[1], 0.9 * per_group, 9) for t in ticks], fontsize=9)
    ax.set_xlabel(f"{xlabel} (n = Hp/Hd)")
    ax.set_ylabel(ylabel)
    ax.plot([], [], color=HP_COLOR, lw=6, alpha=0.5, label=HP_NAME)
    ax.plot([], [], color=HD_COLOR, lw=6, alpha=0.5, label=HD_NAME)
    ax.legend(loc="best")
    return ax


def plot_score_density(ax, hp: np.ndarray, hd: np.ndarray, title: str = "",
                       xlabel: str = "cosine similarity to the real-train centroid"):
    """Histograms (as densities) of Hp and Hd scores with a smooth (Scott's rule) density line."""
    from scipy.stats import gaussian_kde

    lo, hi = float(min(hp.min(), hd.min())), float(max(hp.max(), hd.max()))
    pad = 0.05 * (hi - lo or 1.0)
    grid = np.linspace(lo - pad, hi + pad, 400)
    bins = np.linspace(lo, hi, 41)
    for x, c, name in ((hp, HP_COLOR, HP_NAME), (hd, HD_COLOR, HD_NAME)):
        ax.hist(x, bins=bins, density=True, color=c, alpha=0.3)
        if len(x) > 1 and np.ptp(x) > 0:
            ax.plot(grid, gaussian_kde(x)(grid), color=c, label=_stats_label(name, x))
        else:
            ax.plot([], [], color=c, label=_stats_label(name, x))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density (1 / score unit)")
    set_wrapped_title(ax, title)
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_bandwidth_search(ax, tables: dict[str, tuple[np.ndarray, np.ndarray]], chosen: dict[str, float],
                          final: dict[str, float] | None = None, title: str = ""):
    """CV score against bandwidth per hypothesis (``{name: (bandwidths, cv_loglik)}``), best marked."""
    for name, c in ((HP_NAME, HP_COLOR), (HD_NAME, HD_COLOR)):
        key = "hp" if name == HP_NAME else "hd"
        if key not in tables:
            continue
        bw, score = tables[key]
        ax.plot(bw, score, "o-", ms=3, color=c, label=f"{name}: CV best {chosen[key]:.4g}")
        ax.axvline(chosen[key], color=c, ls=":")
        if final and not np.isclose(final[key], chosen[key]):
            ax.axvline(final[key], color=c, ls="--", label=f"{name}: used {final[key]:.4g} (paper inflation)")
    ax.set_xscale("log")
    ax.set_xlabel("bandwidth (score units)")
    ax.set_ylabel("held-out log-likelihood (nats, mean over folds)")
    set_wrapped_title(ax, title)
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_densities(ax, grid: np.ndarray, log10_hp: np.ndarray, log10_hd: np.ndarray,
                   hp: np.ndarray, hd: np.ndarray, bw: dict[str, float], title: str = "",
                   xlabel: str = "score"):
    """The two fitted KDEs (lines) over histograms of the scores they were fitted on."""
    bins = np.linspace(min(hp.min(), hd.min()), max(hp.max(), hd.max()), 41)
    ax.hist(hp, bins=bins, density=True, color=HP_COLOR, alpha=0.25)
    ax.hist(hd, bins=bins, density=True, color=HD_COLOR, alpha=0.25)
    ax.plot(grid, 10.0 ** log10_hp, color=HP_COLOR, label=f"{HP_NAME} KDE, bw={bw['hp']:.4g}, n={len(hp)}")
    ax.plot(grid, 10.0 ** log10_hd, color=HD_COLOR, label=f"{HD_NAME} KDE, bw={bw['hd']:.4g}, n={len(hd)}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density (1 / score unit)")
    set_wrapped_title(ax, title)
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_llr_hist(ax, llr_hp: np.ndarray, llr_hd: np.ndarray, title: str = ""):
    """Histogram of log10 LRs by hypothesis (counts)."""
    both = np.concatenate([llr_hp, llr_hd])
    both = both[np.isfinite(both)]
    bins = np.linspace(both.min(), both.max(), 41) if len(both) and np.ptp(both) > 0 else 20
    ax.hist(llr_hp[np.isfinite(llr_hp)], bins=bins, color=HP_COLOR, alpha=0.5, label=f"{HP_NAME}, n={len(llr_hp)}")
    ax.hist(llr_hd[np.isfinite(llr_hd)], bins=bins, color=HD_COLOR, alpha=0.5, label=f"{HD_NAME}, n={len(llr_hd)}")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("log10 LR")
    ax.set_ylabel("number of items")
    set_wrapped_title(ax, title)
    ax.legend(loc="best", fontsize="small")
    return ax


TIPPETT_FORMS = ("standard", "paper")


def tippett_span(*llrs) -> tuple[float, float]:
    """The x range of a Tippett plot: from below the lowest to above the highest finite LLR of
    ``llrs`` (a margin of 5 % of the range, at least 0.5), so the first and last steps show."""
    v = np.concatenate([np.asarray(x, float).ravel() for x in llrs]) if llrs else np.zeros(0)
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (-1.0, 1.0)
    pad = max(0.5, 0.05 * (hi - lo))
    return lo - pad, hi + pad


def tippett_steps(x: np.ndarray, p: np.ndarray, cdf: bool, span: tuple[float, float]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of a Tippett curve as drawn. ``x``: distinct LLRs (ascending); ``p``: the curve's
    value at each. ``cdf=False``: p = P(LLR >= x), left-continuous (1 below every LLR, 0 above);
    ``cdf=True``: p = P(LLR <= x), right-continuous (0 below, 1 above). At each x_k the line runs
    horizontally at the left limit, steps vertically to the right limit and runs on to x_(k+1);
    LLRs outside ``span`` (infinite ones) step at its edge."""
    x, p = np.asarray(x, float), np.asarray(p, float)
    left, right = (np.r_[0.0, p[:-1]], p) if cdf else (p, np.r_[p[1:], 0.0])
    xs = np.r_[span[0], np.repeat(np.clip(x, *span), 2), span[1]]
    ys = np.r_[left[0], np.column_stack([left, right]).ravel(), right[-1]]
    return xs, ys


def plot_tippett(ax, llr_hp: np.ndarray, llr_hd: np.ndarray, title: str = "", form: str = "standard",
                 span: tuple[float, float] | None = None, ls: str = "-", tag: str = ""):
    """Tippett plot of final LLRs per hypothesis, the one drawing of stages 11 and 15, run_scores and
    the results page. ``form="standard"``: both curves P(LLR >= x) (left-continuous); ``"paper"``: Hp
    as P(LLR <= x) (right-continuous), as the paper's code draws it. Drawn over ``span`` (default
    :func:`tippett_span`); ``ls`` and ``tag`` tell several systems on one Axes apart."""
    if form not in TIPPETT_FORMS:
        raise ValueError(f"Tippett form must be one of {TIPPETT_FORMS}, got {form!r}")
    x, p_hp, p_hd = (metrics.paper_tippett if form == "paper" else metrics.tippett)(llr_hp, llr_hd)
    span = span or tippett_span(llr_hp, llr_hd)
    suffix = f", {tag}" if tag else ""
    for p, cdf, color, name, rel in ((p_hp, form == "paper", HP_COLOR, HP_NAME, "<=" if form == "paper" else ">="),
                                     (p_hd, False, HD_COLOR, HD_NAME, ">=")):
        ax.plot(*tippett_steps(x, p, cdf, span), color=color, ls=ls, label=f"{name}: P(LLR {rel} x){suffix}")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlim(*span)
    ax.set_xlabel("log10 LR threshold x")
    ax.set_ylabel("proportion of items")
    ax.set_ylim(-0.02, 1.02)
    set_wrapped_title(ax, title)
    ax.legend(loc="best", fontsize="small")
    return ax


_PROBIT_TICKS = np.array([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])


def plot_det(ax, p_miss: np.ndarray, p_fa: np.ndarray, label: str, eer: float | None = None,
             color=None, title: str = ""):
    """DET curve on probit (normal deviate) axes; rates clipped to [1e-4, 1 - 1e-4] for drawing."""
    lo = 1e-4
    xm = norm.ppf(np.clip(p_fa, lo, 1 - lo))
    ym = norm.ppf(np.clip(p_miss, lo, 1 - lo))
    line, = ax.plot(xm, ym, color=color, label=label + (f" (EER {100 * eer:.2f}%)" if eer is not None else ""))
    if eer is not None and np.isfinite(eer):
        e = norm.ppf(np.clip(eer, lo, 1 - lo))
        ax.plot([e], [e], "o", color=line.get_color())
    ticks = norm.ppf(_PROBIT_TICKS)
    labels = [f"{100 * t:g}" for t in _PROBIT_TICKS]
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    lim = (norm.ppf(5e-4), norm.ppf(0.5))
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.plot(lim, lim, color="0.7", lw=0.6)
    ax.set_xlabel("false-alarm rate P(LLR >= t | Hd) (%)")
    ax.set_ylabel("miss rate P(LLR < t | Hp) (%)")
    set_wrapped_title(ax, title)
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_ece(ax, log10_odds: np.ndarray, ece_lr: np.ndarray, ece_pav: np.ndarray, ece_neutral: np.ndarray,
             title: str = ""):
    """Empirical cross-entropy (bits) against log10 prior odds: LRs, PAV-calibrated LRs, neutral LR = 1."""
    ax.plot(log10_odds, ece_lr, color="tab:red", label=f"LRs (Cllr {np.interp(0, log10_odds, ece_lr):.3f})")
    ax.plot(log10_odds, ece_pav, color="tab:blue", ls="--",
            label=f"PAV-calibrated LRs (Cllr_min {np.interp(0, log10_odds, ece_pav):.3f})")
    ax.plot(log10_odds, ece_neutral, color="0.4", ls=":", label="neutral (LR = 1)")
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel("log10 prior odds (Hp : Hd)")
    ax.set_ylabel("empirical cross-entropy (bits)")
    top = np.nanmax(np.concatenate([ece_neutral, np.where(np.isfinite(ece_lr), ece_lr, np.nan)]))
    ax.set_ylim(0, 1.15 * top if np.isfinite(top) else None)
    set_wrapped_title(ax, title)
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_nbe(ax, log10_t: np.ndarray, log10_ratio: np.ndarray, bounds: tuple[float, float], title: str = ""):
    """ELUB / neutral-baseline plot: log10( EU(neutral) / EU(system) ) over the decision threshold
    log10 t; where it is below 0 the system is worse than neutral; the ELUB bounds are marked."""
    ax.plot(log10_t, log10_ratio, color="tab:purple", label="log10 EU(neutral) / EU(LRs)")
    ax.axhline(0, color="k", lw=0.8)
    lo, hi = bounds
    ax.axvline(lo, color="tab:green", ls="--", label=f"ELUB lower {lo:.2f}")
    ax.axvline(hi, color="tab:orange", ls="--", label=f"ELUB upper {hi:.2f}")
    ax.set_xlabel("decision threshold log10 t (accept Hp iff LR > t)")
    ax.set_ylabel("log10 expected-utility ratio (neutral / system)")
    set_wrapped_title(ax, title)
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_bounded(ax, llr: np.ndarray, bounded: np.ndarray, labels: np.ndarray, bounds: tuple[float, float],
                 title: str = ""):
    """Bounded against unbounded LLRs (label 1 = fake)."""
    for lab, c, name in ((0, HP_COLOR, HP_NAME), (1, HD_COLOR, HD_NAME)):
        m = labels == lab
        ax.plot(llr[m], bounded[m], ".", ms=3, color=c, alpha=0.6, label=f"{name}, n={int(m.sum())}")
    ax.axhline(bounds[0], color="tab:green", ls="--", label=f"lower bound {bounds[0]:.2f}")
    ax.axhline(bounds[1], color="tab:orange", ls="--", label=f"upper bound {bounds[1]:.2f}")
    if bounds[1] - bounds[0] < 0.2:         # (nearly) zero-width bounds: no axis in units of 1e-18
        mid = (bounds[0] + bounds[1]) / 2
        ax.set_ylim(mid - 0.5, mid + 0.5)
    ax.set_xlabel("log10 LR before bounding")
    ax.set_ylabel("log10 LR after ELUB bounding")
    set_wrapped_title(ax, title)
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_llr_curve(ax, grid: np.ndarray, parts: dict, bounds: tuple[float, float], scores: np.ndarray,
                   cf_llr: np.ndarray, labels: np.ndarray, title: str = "", band: tuple | None = None):
    """The LR system as a function of the score: the score model's LLR, after calibration, after the
    bounds (lines, over the calib score range), the calib items' cross-fitted LLRs (points) and, when
    given, ``band`` = (lower, upper): the 95 % case interval of the final LLR on ``grid``."""
    if band is not None:
        ax.fill_between(grid, band[0], band[1], color="0.6", alpha=0.35, lw=0,
                        label="95 % case interval (person-cluster refits)")
    ax.plot(grid, parts["model"], color="0.3", lw=1, label="score model LLR")
    if not np.array_equal(parts["model"], parts["calibrated"]):
        ax.plot(grid, parts["calibrated"], color="tab:purple", lw=1, ls="--", label="after calibration")
    ax.plot(grid, parts["llr"], color="k", lw=2, label=f"final (bounds [{bounds[0]:.2f}, {bounds[1]:.2f}])")
    for lab, c, name in ((0, HP_COLOR, HP_NAME), (1, HD_COLOR, HD_NAME)):
        m = labels == lab
        ax.plot(scores[m], cf_llr[m], ".", ms=3, alpha=0.4, color=c, label=f"{name} calib, cross-fitted, n={int(m.sum())}")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("score (score units)")
    ax.set_ylabel("log10 LR")
    set_wrapped_title(ax, title, 10)
    ax.legend(loc="best", fontsize="small")
    return ax
