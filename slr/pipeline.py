"""Stages 09-10 and ``run_scores`` (09-14 on score sets): protocol-free loops over pools.

The LR system of ``slr.protocol`` (slr.interface: ``sound`` = slr.system.LRSystem, fitted on calib and
saved; ``paper`` = slr.paper.PaperSystem, the paper's code) is fitted on the pools and applied to each
pool at each level; its hooks add what a protocol reports of its own. Conventions: label 1 = fake = Hd,
0 = real = Hp; LLR = log10 LR (Hp in the numerator); Cllr and ECE in bits; rates in [0, 1]. Each
``stageNN`` function writes its figures (PNG) and a ``summary.json`` into a folder it is given; the
callers make that folder atomic, so a failed run leaves nothing half-written.

Summaries (issue 10 item 8), the same shape for stages 10-14 and run_scores:
``levels.<level>.<pool>.{n_hp, n_hd, n_persons, n_videos, cllr, cllr_min, cllr_cal, eer, auc,
misleading_hp, misleading_hd, devpav, llr_overestimation}`` with ``levels.<level>.<pool>.ci95.<metric> =
[lo, hi]`` (person-cluster bootstrap, slr.bootstrap; ``ci95_usable``: resamples on which devPAV and the
overestimation were defined, of ``ci95_resamples``), ``system.bounds_log10.<level>``, ``system.bandwidth.<level>`` and
``system.sha256``; stage-specific figures are added to the same pool blocks.

Video level: a video's score is the mean of its frames' scores; the system is then fitted on
video-level scores (its own score model, calibration and bounds), so video LLRs are LRs for the
video-level evidence rather than averages of frame LLRs.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from common.io import write_csv, write_json
from common.stages import folder

from . import kde, metrics, plots
from .casework_system import CASEWORK_DIR, save_casework_system
from .interface import SystemInterface, level_sets, system_class, system_for
from .io import ScoreSet
from .lr_stages import evaluate, split_metrics, stage11, stage12, stage13, stage14  # noqa: F401
from .lrdata import LevelLLR, PoolLLR, lr_file, read_levels
from .settings import Settings

log = logging.getLogger(__name__)

LEVELS = ("frame", "video")


def fit_all(sets: dict[str, ScoreSet], settings: Settings, score_spec: dict | None = None,
            centroid: np.ndarray | None = None, conditions: dict | None = None
            ) -> tuple[dict[str, LevelLLR], dict[str, str], SystemInterface]:
    """Fit the protocol's system (frame level always, video level when asked and possible) and apply it
    to every pool. Returns (levels, skipped reasons, the fitted system)."""
    cls = system_for(settings)
    cls.check(sets, "scores")
    sets = cls.lr_pools(sets)
    by_level, skipped = level_sets(sets, settings, cls)
    system = cls.fit_pools(by_level, settings, score_spec, centroid, conditions)
    for lv, why in system.skipped.items():
        log.warning("video level skipped: %s", why)
        skipped[lv] = why
    return system.apply_all(by_level), skipped, system


def fit_level(sets: dict[str, ScoreSet], settings: Settings) -> LevelLLR:
    """The frame level of the protocol's system fitted on ``sets`` and applied to its pools."""
    cls = system_class(settings.protocol)
    cls.check(sets, "frame")
    return cls.fit_pools({"frame": sets}, settings).apply_all({"frame": sets})["frame"]


# ----------------------------------------------------------------------------------------- stage 09
def _describe(x: np.ndarray) -> dict:
    return {"n": int(len(x)), "mean": float(np.mean(x)), "std": float(np.std(x, ddof=1)) if len(x) > 1 else 0.0,
            "min": float(np.min(x)), "median": float(np.median(x)), "max": float(np.max(x))}


def stage09(sets: dict[str, ScoreSet], out: Path, settings: Settings, note: str = "") -> dict:
    """Score distributions per pool and hypothesis: violins, densities, n / mean / std."""
    cls = system_for(settings)
    cls.check(sets, "scores")
    pools = cls.evaluated_pools(sets)
    levels, skipped = level_sets(sets, settings, cls, warn=False)
    skipped = {lv: why for lv, why in skipped.items() if settings.video_level}
    summary = {"levels": {}, "skipped": skipped, "pools": pools, "note": note,
               "labels": {p: cls.pool_label(p) for p in pools}}
    tail = f" [{note}]" if note else ""
    for lv, ss in levels.items():
        unit = "frames" if lv == "frame" else "videos (mean frame score)"
        fig, axes = plots.new_figure(1, width=7)
        plots.plot_score_violins(axes[0], {cls.pool_label(s).replace(" (", "\n("): (ss[s].hp, ss[s].hd)
                                           for s in pools}, xlabel="pool", ylabel="score")
        plots.save_figure(fig, out / f"violin_{lv}.png", f"Score distributions, {unit}{tail}")
        fig, axes = plots.new_figure(len(pools))
        for ax, s in zip(axes, pools):
            plots.plot_score_density(ax, ss[s].hp, ss[s].hd, title=cls.pool_label(s), xlabel="score")
        plots.save_figure(fig, out / f"density_{lv}.png", f"Score densities, {unit}{tail}")
        summary["levels"][lv] = {s: {"hp": _describe(ss[s].hp), "hd": _describe(ss[s].hd),
                                     "auc": float(metrics.auc(ss[s].hp, ss[s].hd))} for s in pools}
    write_json(out / "summary.json", summary)
    return summary


# ----------------------------------------------------------------------------------------- stage 10
def _fit_figures(r: LevelLLR, fit_pool: str, out: Path, tail: str) -> None:
    """The bandwidth search and the KDEs of the fitting pool's scores (kde models)."""
    lv = r.level
    hp, hd = r.splits[fit_pool].by_hypothesis(r.splits[fit_pool].scores)
    fig, axes = plots.new_figure(1, width=6)
    tables = {k: (np.asarray(d["bandwidth"]), np.asarray(d["score"])) for k, d in r.bandwidth_details.items()
              if isinstance(d, dict) and "bandwidth" in d and "score" in d}
    chosen = {k: float(d.get("cv_best", d.get("cv_bandwidth", r.bandwidth[k])))
              for k, d in r.bandwidth_details.items() if isinstance(d, dict)}
    plots.plot_bandwidth_search(axes[0], tables, chosen, r.bandwidth, title=f"{lv} level, {fit_pool} scores")
    plots.save_figure(fig, out / f"bandwidth_{lv}.png", f"KDE bandwidth search{tail}")
    lo, hi = float(min(hp.min(), hd.min())), float(max(hp.max(), hd.max()))
    pad = 0.1 * (hi - lo)
    grid = np.linspace(lo - pad, hi + pad, 600)
    f_hp = kde.GaussianKDE1D().fit(hp, r.bandwidth["hp"]).log10_pdf(grid)
    f_hd = kde.GaussianKDE1D().fit(hd, r.bandwidth["hd"]).log10_pdf(grid)
    fig, axes = plots.new_figure(1, width=6)
    plots.plot_densities(axes[0], grid, f_hp, f_hd, hp, hd, r.bandwidth, title=f"{lv} level, {fit_pool}")
    plots.save_figure(fig, out / f"densities_{lv}.png", f"KDEs of the {fit_pool} scores{tail}")


def _curve_figure(r: LevelLLR, lm, fp: PoolLLR, model: str, out: Path, tail: str) -> None:
    """The LLR as a function of the score (model, calibrated, bounded) over the fitting pool's range."""
    lo, hi = float(fp.scores.min()), float(fp.scores.max())
    pad = 0.05 * (hi - lo)
    grid = np.linspace(lo - pad, hi + pad, 800)
    fig, axes = plots.new_figure(1, width=7)
    mono = lm.monotonicity["model"]
    plots.plot_llr_curve(axes[0], grid, lm.llr_parts(grid), (lm.lower_log10, lm.upper_log10), fp.scores, fp.llr,
                         fp.labels, title=f"{r.level} level, {model} model: {mono['direction_changes']} direction "
                                          f"changes, largest drop {mono['largest_drop_log10']:.3g}",
                         band=lm.interval(grid) if hasattr(lm, "interval") else None)
    plots.save_figure(fig, out / f"llr_curve_{r.level}.png",
                      f"LLR as a function of the score (fitted on calib){tail}")


def stage10(sets: dict[str, ScoreSet], out: Path, settings: Settings, score_spec: dict | None = None,
            centroid: np.ndarray | None = None, conditions: dict | None = None, note: str = "",
            system_dir: str | Path | None = "system", detector: dict | None = None, extra: dict | None = None
            ) -> tuple[dict[str, LevelLLR], dict]:
    """Fit the protocol's LR system; write per pool ``<pool>_lr.csv`` (and ``<pool>_video_lr.csv``),
    the bandwidth search, the densities, the LLR curve, the LLR histograms and ``summary.json``;
    a system that saves itself is written to ``out/<system_dir>`` (or ``system_dir`` if absolute); ``extra``
    is added to the summary (a fused run's ``fusion`` choice record)."""
    levels, skipped, system = fit_all(sets, settings, score_spec, centroid, conditions)
    tail = f" [{note}]" if note else ""
    for lv, r in levels.items():
        r.note = note
        for s in r.pools:
            write_csv(out / lr_file(lv, s), r.splits[s].columns(lv, system.model_column))
        if r.bandwidth:
            _fit_figures(r, system.fit_pool, out, tail)
        lm = system.llr_curve(lv)
        if lm is not None:
            _curve_figure(r, lm, r.splits[system.fit_pool], settings.model, out, tail)
        fig, axes = plots.new_figure(len(r.pools))
        for ax, s in zip(axes, r.pools):
            a, b = r.splits[s].by_hypothesis()
            plots.plot_llr_hist(ax, a, b, title=system.pool_label(s))
        plots.save_figure(fig, out / f"llr_hist_{lv}.png",
                          f"Final log10 LRs ({settings.protocol} protocol, {lv} level){tail}")
    ev = evaluate(levels, settings.bootstrap_n, settings.bootstrap_seed, type(system))
    pools, lr_sets = levels["frame"].pools, system.lr_pools(sets)      # lr_sets: the pools as fitted
    summary = {"protocol": settings.protocol, "settings": settings.to_dict(), "note": note, "pools": pools,
               "labels": {p: system.pool_label(p) for p in pools}, "levels": ev,
               "system": system.summary_block(levels), "skipped": skipped,
               "counts": {p: lr_sets[p].counts() for p in pools}, **system.summary_extra(), **(extra or {})}
    if system.saves and system_dir is not None:
        system.validation = {**system.validation, "levels": ev, "note": note, "protocol": system.protocol}
        system.detector = dict(detector or {})
        if note:
            system.conditions["data_note"] = note
        target = Path(system_dir) if Path(system_dir).is_absolute() else out / system_dir
        summary["system"]["sha256"] = system.save(target)
        summary["system"]["directory"] = str(system_dir)
        if settings.protocol == "sound" and settings.casework_system == "calib+test":
            summary["system"]["casework"] = save_casework_system(
                type(system), sets, settings, score_spec, centroid, conditions, summary["system"]["sha256"],
                target.parent / CASEWORK_DIR, system.detector)
    for lv, r in levels.items():
        r.metrics, r.system_summary = ev[lv], summary["system"]
    write_json(out / "summary.json", summary)
    return levels, summary


def load_stage10(directory: str | Path) -> dict[str, LevelLLR]:
    """Read stage 10's outputs back (``summary.json`` and the LR CSVs)."""
    return read_levels(directory)


# ----------------------------------------------------------------------------------------- everything
STAGE_DIRS = {int(i): folder(i) for i in ("09", "10", "11", "12", "13", "14")}   # names from the stage table


def run_scores(sets: dict[str, ScoreSet], out: Path, settings: Settings, note: str = "") -> dict:
    """Stages 09-14 on score sets into ``out/<NN_name>/``, plus ``out/<pool>_lr.csv`` (frame level),
    ``out/system/`` (a system that saves itself) and ``out/summary.json`` (stage 10's summary: the
    common shape). ``out`` must exist."""
    out = Path(out)
    dirs = {n: out / name for n, name in STAGE_DIRS.items()}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    stage09(sets, dirs[9], settings, note)
    levels, s10 = stage10(sets, dirs[10], settings, note=note, system_dir=(out / "system").resolve())
    if s10["system"].get("sha256"):
        s10["system"]["directory"] = "system"
    for n, stage in ((11, stage11), (12, stage12), (13, stage13), (14, stage14)):
        stage(levels, dirs[n])
    column = system_for(settings).model_column
    for s in levels["frame"].pools:
        for lv, r in levels.items():
            write_csv(out / lr_file(lv, s), r.splits[s].columns(lv, column))
    write_json(out / "summary.json", s10)
    return s10
