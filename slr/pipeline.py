"""The two protocols and the stage logic of 08-14, shared by the numbered scripts and ``slr.run_scores``.

Conventions: label 1 = fake = Hd, 0 = real = Hp; LLR = log10 LR (Hp in the numerator); Cllr and
ECE in bits; rates in [0, 1]. Each ``stageNN`` function writes its figures (PNG) and a
``summary.json`` into a folder it is given; the callers make that folder atomic (a temporary
folder renamed into place), so a failed run leaves nothing half-written.

Protocols (docs/slr.md has the full list of differences):

- ``sound``: bandwidths by k-fold CV on the train scores, KDEs fitted on train; an optional
  calibration (``none | pav | logistic``) and the standard ELUB bounds fitted on val; the resulting
  system (KDE -> calibration -> bounds) is applied unchanged to every split. The final LLR of an
  item is the bounded one.
- ``paper``: the paper's code: inflated CV bandwidths from train, KDEs re-fitted on each split's
  own scores on a 1,000-point grid; no calibration or bounds in the final LLR. The paper's
  figures (its EER interpolation, PAV fitted on the evaluated split, hard-coded "ELUB" fallback
  bounds) are reported beside the correct ones.

Video level: a video's score is the mean of its frames' scores; the same protocol is then fitted
on video-level scores (its own bandwidths, calibration and bounds), so video LLRs are LRs for the
video-level evidence rather than averages of frame LLRs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.config import Config, ConfigError
from common.io import InputError, numeric_column, read_csv, read_json, write_csv, write_json
from common.splits import SPLITS

from . import calibration, elub, kde, metrics, plots
from .io import ScoreSet, check_scores, video_level

log = logging.getLogger(__name__)

PROTOCOLS = ("sound", "paper")
CALIBRATIONS = ("none", "pav", "logistic")
LEVELS = ("frame", "video")
PAPER_ELUB_FALLBACK = {"lower_log10": -12.0, "upper_log10": 6.5}   # hard-coded in the paper's code
ECE_LOG10_ODDS = np.linspace(-2.5, 2.5, 101)                        # includes 0 (prior 0.5)
MIN_VIDEOS_TRAIN = 10   # per hypothesis: 10-fold CV of the bandwidth needs at least 10 videos
MIN_VIDEOS_EVAL = 2     # per hypothesis in val and test


# ----------------------------------------------------------------------------------------- settings
@dataclass
class Settings:
    """The ``slr`` config section, validated. ``grid``: the bandwidths of the CV search (sound
    protocol), in score units (``grid_scale="absolute"``) or as multiples of the standard deviation
    of the hypothesis's training scores (``grid_scale="std"``, the default: any score scale works)."""
    protocol: str = "sound"
    calibration: str = "none"
    grid: np.ndarray = field(default_factory=lambda: np.geomspace(0.01, 3.0, 40))
    grid_scale: str = "std"
    n_folds: int = 10
    seed: int = 1024
    paper_seed: int = 42
    video_level: bool = True

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"slr.protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.calibration not in CALIBRATIONS:
            raise ConfigError(f"slr.calibration must be one of {CALIBRATIONS}, got {self.calibration!r}")
        self.grid = np.asarray(self.grid, dtype=float)
        if self.grid.ndim != 1 or len(self.grid) < 2 or not np.all(self.grid > 0):
            raise ConfigError("slr.bandwidth: the grid needs grid_n >= 2 and 0 < grid_min < grid_max")
        if self.grid_scale not in ("std", "absolute"):
            raise ConfigError(f"slr.bandwidth.scale must be 'std' or 'absolute', got {self.grid_scale!r}")
        if int(self.n_folds) < 2:
            raise ConfigError(f"slr.bandwidth.n_folds must be >= 2, got {self.n_folds}")

    @classmethod
    def from_config(cls, cfg: Config) -> "Settings":
        bw = cfg.section("slr.bandwidth")
        try:
            lo, hi, n = float(bw.get("grid_min", 0.01)), float(bw.get("grid_max", 3.0)), int(bw.get("grid_n", 40))
        except (TypeError, ValueError):
            raise ConfigError(f"{cfg.source}: slr.bandwidth.grid_min/grid_max/grid_n must be numbers") from None
        if not 0 < lo < hi or n < 2:
            raise ConfigError(f"{cfg.source}: slr.bandwidth needs 0 < grid_min < grid_max and grid_n >= 2, "
                              f"got {lo}, {hi}, {n}")
        return cls(protocol=str(cfg.get("slr.protocol", "sound")),
                   calibration=str(cfg.get("slr.calibration", "none")),
                   grid=np.geomspace(lo, hi, n), grid_scale=str(bw.get("scale", "std")),
                   n_folds=int(bw.get("n_folds", 10)),
                   seed=int(bw.get("seed", cfg.get("seed", 1024))),
                   paper_seed=int(cfg.get("slr.paper_seed", 42)),
                   video_level=bool(cfg.get("slr.video_level", True)))

    def to_dict(self) -> dict:
        d = {"protocol": self.protocol, "video_level": self.video_level}
        if self.protocol == "sound":
            d.update(calibration=self.calibration, bandwidth_grid=[float(self.grid[0]), float(self.grid[-1]),
                                                                   len(self.grid)], bandwidth_scale=self.grid_scale,
                     n_folds=self.n_folds, seed=self.seed)
        else:
            d.update(paper_seed=self.paper_seed)
        return d


# ----------------------------------------------------------------------------------------- LR data
@dataclass
class SplitLR:
    """One split's items and their LLRs: ``llr_kde`` (KDE), ``llr_cal`` (after calibration),
    ``llr`` (final: after the bounds under ``sound``; equal to ``llr_kde`` under ``paper``)."""
    scores: np.ndarray
    labels: np.ndarray
    llr_kde: np.ndarray
    llr_cal: np.ndarray
    llr: np.ndarray
    video_ids: np.ndarray | None = None
    image_paths: np.ndarray | None = None
    n_frames: np.ndarray | None = None

    def by_hypothesis(self, llr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(values of the Hp = real items, values of the Hd = fake items)."""
        x = self.llr if llr is None else llr
        return x[self.labels == 0], x[self.labels == 1]


@dataclass
class LevelLR:
    """The fitted system and LLRs of one level (``frame`` or ``video``)."""
    level: str
    protocol: str
    splits: dict[str, SplitLR]
    bandwidth: dict[str, float]
    bandwidth_details: dict
    elub: dict[str, dict | None]          # per split: bounds applied or diagnosed, see docs/slr.md
    calibration: str = "none"


def _cv_table(table: dict) -> dict:
    """``kde.cv_bandwidth``'s table as JSON-able lists ``{"bandwidth": [...], "score": [...]}``
    (score = mean held-out log-likelihood over the folds, nats)."""
    return {"bandwidth": np.asarray(table["bandwidth"], float).tolist(),
            "score": np.asarray(table["cv_loglik"], float).tolist()}


def _check_sets(sets: dict[str, ScoreSet], what: str) -> None:
    missing = [s for s in SPLITS if s not in sets]
    if missing:
        raise InputError(f"{what}: no scores for split(s) {missing}; train, val and test are all needed")
    for s in SPLITS:
        check_scores(sets[s].scores, sets[s].labels, sets[s].source or f"{what} [{s}]")
        tr = sets[s]
        if s == "train":
            for name, x in (("real (Hp)", tr.hp), ("fake (Hd)", tr.hd)):
                if np.ptp(x) == 0:
                    raise InputError(f"{tr.source}: all {len(x)} {name} training scores are equal ({x[0]}); "
                                     f"a density cannot be fitted to them")


def fit_level(sets: dict[str, ScoreSet], settings: Settings, level: str = "frame") -> LevelLR:
    """Fit the protocol's LR system on ``sets`` (``{"train"|"val"|"test": ScoreSet}``) and apply it.
    Data the LR library cannot fit (e.g. fewer training items than CV folds) is an InputError."""
    _check_sets(sets, level)
    try:
        return _fit_level(sets, settings, level)
    except ValueError as exc:
        if isinstance(exc, (InputError, ConfigError)):
            raise
        raise InputError(f"{sets['train'].source or 'train scores'}: {level} level, {settings.protocol} protocol: "
                         f"{exc}") from exc


def _fit_level(sets: dict[str, ScoreSet], settings: Settings, level: str) -> LevelLR:
    tr = sets["train"]
    out: dict[str, SplitLR] = {}
    bounds: dict[str, dict | None] = {}
    if settings.protocol == "sound":
        bw, details = {}, {}
        for key, x in (("hp", tr.hp), ("hd", tr.hd)):
            unit = float(np.std(x, ddof=1)) if settings.grid_scale == "std" else 1.0
            grid = settings.grid * unit
            best, table = kde.cv_bandwidth(x, grid, n_folds=min(settings.n_folds, len(x)), seed=settings.seed)
            bw[key] = float(best)
            edge = bool(np.isclose(best, grid[0]) or np.isclose(best, grid[-1]))
            if edge:
                log.warning("%s level, %s: the CV bandwidth %.4g is at the edge of the grid [%.4g, %.4g]; "
                            "widen slr.bandwidth.grid_min/grid_max", level, key, best, grid[0], grid[-1])
            details[key] = {"method": f"{min(settings.n_folds, len(x))}-fold CV log-likelihood on train",
                            "grid_scale": settings.grid_scale, "grid_unit": unit, "cv_best": float(best),
                            "at_grid_edge": edge, **_cv_table(table)}
        model = kde.KDELikelihoodRatio().fit(tr.hp, tr.hd, bw["hp"], bw["hd"])
        llr_kde = {s: np.asarray(model.llr(sets[s].scores), float) for s in SPLITS}
        cal = calibration.make_calibrator(settings.calibration).fit(llr_kde["val"], sets["val"].labels)
        llr_cal = {s: np.asarray(cal.transform(llr_kde[s]), float) for s in SPLITS}
        bounder = elub.ELUBBounder().fit(llr_cal["val"], sets["val"].labels)
        lo, hi = float(bounder.lower_log10), float(bounder.upper_log10)
        for s in SPLITS:
            final = bounder.transform(llr_cal[s])
            out[s] = SplitLR(sets[s].scores, sets[s].labels, llr_kde[s], llr_cal[s], final,
                             sets[s].video_ids, sets[s].image_paths, sets[s].n_frames)
            bounds[s] = {"lower_log10": lo, "upper_log10": hi, "fitted_on": "val", "applied": True}
        calib = settings.calibration
    else:
        bw, details = {}, {}
        for key, x in (("hp", tr.hp), ("hd", tr.hd)):
            value, det = kde.paper_bandwidth(x, seed=settings.paper_seed)
            bw[key] = float(value)
            det = {k: _jsonable_detail(v) for k, v in dict(det).items()}
            details[key] = {"method": "paper rule: 10-fold CV (random_state %d) then floor/skew/peak inflation"
                            % settings.paper_seed, "cv_best": det.pop("cv_best", None),
                            "bandwidth": det.pop("cv_grid", []), "score": det.pop("cv_loglik", []), **det}
        for s in SPLITS:
            x = sets[s]
            llr = np.asarray(kde.paper_grid_llr(x.hp, x.hd, bw["hp"], bw["hd"], x.scores), float)
            out[s] = SplitLR(x.scores, x.labels, llr, llr, llr, x.video_ids, x.image_paths, x.n_frames)
            lo, hi = elub.elub_bounds(llr[x.labels == 0], llr[x.labels == 1])
            bounds[s] = {"lower_log10": float(lo), "upper_log10": float(hi), "fitted_on": s, "applied": False}
        calib = "none"
    return LevelLR(level, settings.protocol, out, bw, details, bounds, calib)


def _jsonable_detail(v):
    if isinstance(v, dict):
        return {str(k): _jsonable_detail(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return np.asarray(v).tolist()
    if isinstance(v, (np.generic,)):
        return v.item()
    return v


def video_sets(sets: dict[str, ScoreSet]) -> tuple[dict[str, ScoreSet] | None, str | None]:
    """Video-level score sets, or ``(None, reason)`` when they cannot be fitted."""
    if any(sets[s].video_ids is None for s in SPLITS):
        return None, "no video_id column in the score files"
    vs = {s: video_level(sets[s]) for s in SPLITS}
    for s in SPLITS:
        need = MIN_VIDEOS_TRAIN if s == "train" else MIN_VIDEOS_EVAL
        n_hp, n_hd = int((vs[s].labels == 0).sum()), int((vs[s].labels == 1).sum())
        if min(n_hp, n_hd) < need:
            return None, (f"split '{s}' has {n_hp} real and {n_hd} fake videos; the video level needs at least "
                          f"{need} of each")
        if np.ptp(vs[s].scores) == 0:
            return None, f"split '{s}': all video scores are equal"
    return vs, None


def fit_all(sets: dict[str, ScoreSet], settings: Settings) -> tuple[dict[str, LevelLR], dict[str, str]]:
    """Frame level always, video level when requested and possible. Returns (levels, skipped reasons)."""
    levels = {"frame": fit_level(sets, settings, "frame")}
    skipped = {}
    if settings.video_level:
        vs, why = video_sets(sets)
        if vs is None:
            log.warning("video level skipped: %s", why)
            skipped["video"] = why
        else:
            levels["video"] = fit_level(vs, settings, "video")
    else:
        skipped["video"] = "slr.video_level is false"
    return levels, skipped


# ----------------------------------------------------------------------------------------- metrics
def split_metrics(sl: SplitLR, protocol: str, elub_entry: dict | None) -> dict:
    """Every figure of one split, computed on its final ``llr``."""
    hp, hd = metrics.split_hypotheses(sl.llr, sl.labels)
    e = metrics.eer(hp, hd)
    mis = metrics.misleading_evidence(hp, hd)
    cllr = float(metrics.cllr(hp, hd))
    d = {"n_hp": int(len(hp)), "n_hd": int(len(hd)),
         "cllr": cllr, "cllr_min": float(metrics.cllr_min(hp, hd)), "cllr_cal": float(metrics.cllr_cal(hp, hd)),
         "ece_prior_0.5": float(np.asarray(metrics.ece(hp, hd, np.array([0.0]))).ravel()[0]),
         "eer": float(e["eer"]), "eer_method": e.get("method"), "eer_rocch": _f(e.get("eer_rocch")),
         "eer_threshold_log10": _f(e.get("threshold")),
         "auc": float(metrics.auc(hp, hd)),
         "misleading_hp": float(mis["hp"]), "misleading_hd": float(mis["hd"]),
         "llr_range": [float(np.min(sl.llr)), float(np.max(sl.llr))],
         "elub": ({"lower_log10": elub_entry["lower_log10"], "upper_log10": elub_entry["upper_log10"]}
                  if elub_entry else None),
         "elub_fitted_on": elub_entry.get("fitted_on") if elub_entry else None,
         "elub_applied": bool(elub_entry.get("applied")) if elub_entry else False,
         "score_auc": float(metrics.auc(sl.scores[sl.labels == 0], sl.scores[sl.labels == 1]))}
    if protocol == "paper":
        pe = metrics.paper_eer(hp, hd)
        d["paper_eer"] = float(pe["eer"])
        d["paper_eer_extrapolated"] = bool(pe.get("extrapolated", False))
        pav = calibration.make_calibrator("pav").fit(sl.llr, sl.labels)
        phs, phd = metrics.split_hypotheses(np.asarray(pav.transform(sl.llr), float), sl.labels)
        d["paper_cllr_calibrated"] = float(metrics.cllr(phs, phd))
        d["paper_elub"] = dict(PAPER_ELUB_FALLBACK)
    return d


def _f(x):
    return None if x is None else float(x)


def evaluate(levels: dict[str, LevelLR]) -> dict[str, dict[str, dict]]:
    """``{level: {split: metrics}}``."""
    return {lv: {s: split_metrics(r.splits[s], r.protocol, r.elub.get(s)) for s in SPLITS}
            for lv, r in levels.items()}


# ----------------------------------------------------------------------------------------- stage 08
def stage08(dumps: dict, out: Path, batch_size: int = 64, **kw) -> dict:
    """Stage 08 lives in :func:`slr.scores.stage08` (scores of every pool); kept here for callers."""
    from .scores import stage08 as _stage08
    return _stage08(dumps, out, batch_size=batch_size, **kw)


# ----------------------------------------------------------------------------------------- stage 09
def _describe(x: np.ndarray) -> dict:
    return {"n": int(len(x)), "mean": float(np.mean(x)), "std": float(np.std(x, ddof=1)) if len(x) > 1 else 0.0,
            "min": float(np.min(x)), "median": float(np.median(x)), "max": float(np.max(x))}


def stage09(sets: dict[str, ScoreSet], out: Path, settings: Settings) -> dict:
    """Score distributions per split and hypothesis: violins, densities, n / mean / std."""
    _check_sets(sets, "scores")
    levels = {"frame": sets}
    skipped = {}
    if settings.video_level:
        vs, why = video_sets(sets)
        if vs is None:
            skipped["video"] = why
        else:
            levels["video"] = vs
    summary = {"levels": {}, "skipped": skipped}
    for lv, ss in levels.items():
        unit = "frames" if lv == "frame" else "videos (mean frame score)"
        fig, axes = plots.new_figure(1, width=7)
        plots.plot_score_violins(axes[0], {s: (ss[s].hp, ss[s].hd) for s in SPLITS}, ylabel="score")
        plots.save_figure(fig, out / f"violin_{lv}.png", f"Stage 09: score distributions, {unit}")
        fig, axes = plots.new_figure(len(SPLITS))
        for ax, s in zip(axes, SPLITS):
            plots.plot_score_density(ax, ss[s].hp, ss[s].hd, title=s, xlabel="score")
        plots.save_figure(fig, out / f"density_{lv}.png", f"Stage 09: score densities, {unit}")
        summary["levels"][lv] = {s: {"hp": _describe(ss[s].hp), "hd": _describe(ss[s].hd),
                                     "auc": float(metrics.auc(ss[s].hp, ss[s].hd))} for s in SPLITS}
    write_json(out / "summary.json", summary)
    return summary


# ----------------------------------------------------------------------------------------- stage 10
def _lr_columns(sl: SplitLR, level: str) -> dict:
    n = len(sl.scores)
    cols = {}
    if level == "frame":
        cols["image_path"] = list(sl.image_paths) if sl.image_paths is not None else [""] * n
    cols["video_id"] = list(sl.video_ids) if sl.video_ids is not None else [""] * n
    if level == "video":
        cols["n_frames"] = [int(v) for v in sl.n_frames]
    cols.update(label=[int(v) for v in sl.labels], score=[float(v) for v in sl.scores],
                llr_kde=[float(v) for v in sl.llr_kde], llr_calibrated=[float(v) for v in sl.llr_cal],
                llr=[float(v) for v in sl.llr])
    with np.errstate(over="ignore"):
        cols["lr"] = [float(v) for v in np.power(10.0, sl.llr)]
    return cols


def lr_file(level: str, split: str) -> str:
    return f"{split}_lr.csv" if level == "frame" else f"{split}_video_lr.csv"


def stage10(sets: dict[str, ScoreSet], out: Path, settings: Settings) -> tuple[dict[str, LevelLR], dict]:
    """Fit the protocol's LR system; write per split ``<split>_lr.csv`` (and ``<split>_video_lr.csv``),
    the bandwidth search, the densities, the LLR histograms and ``summary.json``."""
    levels, skipped = fit_all(sets, settings)
    summary = {"protocol": settings.protocol, "calibration": levels["frame"].calibration,
               "settings": settings.to_dict(), "bandwidth": levels["frame"].bandwidth, "levels": {},
               "skipped": skipped}
    for lv, r in levels.items():
        for s in SPLITS:
            write_csv(out / lr_file(lv, s), _lr_columns(r.splits[s], lv))
        tr = r.splits["train"]
        hp, hd = tr.by_hypothesis(tr.scores)
        # bandwidth search
        fig, axes = plots.new_figure(1, width=6)
        tables = {k: (np.asarray(d["bandwidth"]), np.asarray(d["score"])) for k, d in r.bandwidth_details.items()
                  if "bandwidth" in d and "score" in d}
        chosen = {k: float(d.get("cv_best", d.get("cv_bandwidth", r.bandwidth[k])))
                  for k, d in r.bandwidth_details.items()}
        plots.plot_bandwidth_search(axes[0], tables, chosen, r.bandwidth, title=f"{lv} level, train scores")
        plots.save_figure(fig, out / f"bandwidth_{lv}.png", "Stage 10: KDE bandwidth search")
        # densities fitted on train (sound: the model; paper: the train re-fit)
        lo, hi = float(min(hp.min(), hd.min())), float(max(hp.max(), hd.max()))
        pad = 0.1 * (hi - lo)
        grid = np.linspace(lo - pad, hi + pad, 600)
        f_hp = kde.GaussianKDE1D().fit(hp, r.bandwidth["hp"]).log10_pdf(grid)
        f_hd = kde.GaussianKDE1D().fit(hd, r.bandwidth["hd"]).log10_pdf(grid)
        fig, axes = plots.new_figure(1, width=6)
        plots.plot_densities(axes[0], grid, f_hp, f_hd, hp, hd, r.bandwidth, title=f"{lv} level, train")
        plots.save_figure(fig, out / f"densities_{lv}.png", "Stage 10: KDEs of the training scores")
        fig, axes = plots.new_figure(len(SPLITS))
        for ax, s in zip(axes, SPLITS):
            a, b = r.splits[s].by_hypothesis()
            plots.plot_llr_hist(ax, a, b, title=s)
        plots.save_figure(fig, out / f"llr_hist_{lv}.png",
                          f"Stage 10: final log10 LRs ({settings.protocol} protocol, {lv} level)")
        summary["levels"][lv] = {
            "bandwidth": r.bandwidth, "bandwidth_details": r.bandwidth_details, "calibration": r.calibration,
            "elub": r.elub,
            "splits": {s: {"n_hp": int((r.splits[s].labels == 0).sum()), "n_hd": int((r.splits[s].labels == 1).sum()),
                           "llr_min": float(r.splits[s].llr.min()), "llr_max": float(r.splits[s].llr.max())}
                       for s in SPLITS}}
    write_json(out / "summary.json", summary)
    return levels, summary


def load_stage10(directory: str | Path) -> dict[str, LevelLR]:
    """Read stage 10's outputs back (``summary.json`` and the LR CSVs)."""
    directory = Path(directory)
    summary = read_json(directory / "summary.json") if (directory / "summary.json").is_file() else None
    if summary is None:
        raise InputError(f"{directory}: stage 10 outputs not found (summary.json); run stage 10 first")
    levels = {}
    for lv, info in summary["levels"].items():
        splits = {}
        for s in SPLITS:
            path = directory / lr_file(lv, s)
            cols = read_csv(path, required=("label", "score", "llr_kde", "llr_calibrated", "llr"))
            num = {c: numeric_column(cols, c, path) for c in ("score", "llr_kde", "llr_calibrated", "llr")}
            splits[s] = SplitLR(num["score"], numeric_column(cols, "label", path, int).astype(np.int64),
                                num["llr_kde"], num["llr_calibrated"], num["llr"],
                                np.asarray(cols["video_id"], str) if "video_id" in cols else None,
                                np.asarray(cols["image_path"], str) if "image_path" in cols else None,
                                numeric_column(cols, "n_frames", path, int) if "n_frames" in cols else None)
        levels[lv] = LevelLR(lv, summary["protocol"], splits, info["bandwidth"], info["bandwidth_details"],
                             info["elub"], info.get("calibration", "none"))
    return levels


# ----------------------------------------------------------------------------------------- stages 11-14
def _title(r: LevelLR) -> str:
    return f"{r.protocol} protocol, {r.level} level"


def stage11(levels: dict[str, LevelLR], out: Path) -> dict:
    """Tippett plots (standard form: both hypotheses as P(LLR >= x)); rates of misleading evidence.
    Under ``paper`` also the paper's form (Hp as P(LLR <= x))."""
    summary = {}
    for lv, r in levels.items():
        fig, axes = plots.new_figure(len(SPLITS))
        summary[lv] = {}
        for ax, s in zip(axes, SPLITS):
            hp, hd = r.splits[s].by_hypothesis()
            x, p_hp, p_hd = metrics.tippett(hp, hd)
            plots.plot_tippett(ax, x, p_hp, p_hd, title=f"{s} (n = {len(hp)}/{len(hd)})")
            mis = metrics.misleading_evidence(hp, hd)
            summary[lv][s] = {"misleading_hp": float(mis["hp"]), "misleading_hd": float(mis["hd"]),
                              "n_hp": int(len(hp)), "n_hd": int(len(hd))}
        plots.save_figure(fig, out / f"tippett_{lv}.png", f"Stage 11: Tippett plot, {_title(r)}")
        if r.protocol == "paper":
            fig, axes = plots.new_figure(len(SPLITS))
            for ax, s in zip(axes, SPLITS):
                hp, hd = r.splits[s].by_hypothesis()
                x, p_hp, p_hd = metrics.paper_tippett(hp, hd)
                plots.plot_tippett(ax, x, p_hp, p_hd, title=s, hp_form="<=")
            plots.save_figure(fig, out / f"tippett_paper_form_{lv}.png",
                              f"Stage 11: the paper's Tippett form (not standard), {lv} level")
    write_json(out / "summary.json", {"levels": summary,
                                      "definition": "misleading_hp = P(LLR < 0 | Hp), misleading_hd = P(LLR > 0 | Hd)"})
    return summary


def stage12(levels: dict[str, LevelLR], out: Path) -> dict:
    """DET curves on probit axes, EER (and the paper's EER under ``paper``), threshold."""
    summary = {}
    colors = {"train": "tab:gray", "val": "tab:green", "test": "tab:purple"}
    for lv, r in levels.items():
        fig, axes = plots.new_figure(1, width=6, height=5.5)
        summary[lv] = {}
        for s in SPLITS:
            hp, hd = r.splits[s].by_hypothesis()
            _, p_miss, p_fa = metrics.det_curve(hp, hd)
            e = metrics.eer(hp, hd)
            plots.plot_det(axes[0], p_miss, p_fa, label=s, eer=float(e["eer"]), color=colors[s])
            summary[lv][s] = {"eer": float(e["eer"]), "eer_rocch": _f(e.get("eer_rocch")),
                              "threshold_log10": _f(e.get("threshold")), "method": e.get("method")}
            if r.protocol == "paper":
                pe = metrics.paper_eer(hp, hd)
                summary[lv][s].update(paper_eer=float(pe["eer"]),
                                      paper_eer_extrapolated=bool(pe.get("extrapolated", False)),
                                      paper_eer_method=pe.get("method"))
        axes[0].set_title(_title(r))
        plots.save_figure(fig, out / f"det_{lv}.png", "Stage 12: DET curves")
    write_json(out / "summary.json", {"levels": summary})
    return summary


def stage13(levels: dict[str, LevelLR], out: Path) -> dict:
    """ECE plots (LRs, PAV-calibrated LRs, neutral), Cllr, Cllr_min, Cllr_cal, AUC."""
    summary = {}
    for lv, r in levels.items():
        fig, axes = plots.new_figure(len(SPLITS))
        summary[lv] = {}
        for ax, s in zip(axes, SPLITS):
            sl = r.splits[s]
            hp, hd = sl.by_hypothesis()
            pav_hp, pav_hd = metrics.pav_llr(hp, hd)
            ece = np.asarray(metrics.ece(hp, hd, ECE_LOG10_ODDS), float)
            ece_pav = np.asarray(metrics.ece(pav_hp, pav_hd, ECE_LOG10_ODDS), float)
            ece_0 = np.asarray(metrics.ece(np.zeros(len(hp)), np.zeros(len(hd)), ECE_LOG10_ODDS), float)
            plots.plot_ece(ax, ECE_LOG10_ODDS, ece, ece_pav, ece_0, title=f"{s} (n = {len(hp)}/{len(hd)})")
            m = split_metrics(sl, r.protocol, r.elub.get(s))
            summary[lv][s] = {k: m[k] for k in ("n_hp", "n_hd", "cllr", "cllr_min", "cllr_cal", "ece_prior_0.5",
                                                "auc") + (("paper_cllr_calibrated",) if r.protocol == "paper" else ())}
        plots.save_figure(fig, out / f"ece_{lv}.png", f"Stage 13: empirical cross-entropy, {_title(r)}")
    write_json(out / "summary.json", {"levels": summary, "units": "Cllr and ECE in bits; AUC with Hp as positive"})
    return summary


def nbe_curve(llr_hp: np.ndarray, llr_hd: np.ndarray, log10_t: np.ndarray) -> np.ndarray:
    """log10( EU(neutral) / EU(LRs) ) over thresholds log10 t, with one added misleading item per
    hypothesis (lr_reference.md): EU(t) = P(LR <= t | Hp) + t P(LR > t | Hd), EU0(t) = min(1, t).
    Negative where the LRs do worse than the neutral LR = 1 (the ELUB criterion)."""
    hp = np.clip(np.asarray(llr_hp, float), -9, 9)
    hd = np.clip(np.asarray(llr_hd, float), -9, 9)
    rho = np.asarray(log10_t, float)[:, None]
    p_miss = ((hp[None, :] <= rho).sum(1) + 1) / (len(hp) + 1)
    p_fa = ((hd[None, :] > rho).sum(1) + 1) / (len(hd) + 1)
    t = 10.0 ** rho[:, 0]
    return np.log10(np.minimum(1.0, t) / (p_miss + t * p_fa))


def stage14(levels: dict[str, LevelLR], out: Path) -> dict:
    """ELUB bounds, bounded LRs, NBE plot. Under ``sound`` the bounds are fitted on val's calibrated
    LLRs and applied to every split; under ``paper`` each split's own bounds are a diagnostic (not
    applied) and the paper's fallback (-12, 6.5) is reported beside them."""
    summary = {}
    for lv, r in levels.items():
        sound = r.protocol == "sound"
        fit_splits = ["val"] if sound else list(SPLITS)
        fig, axes = plots.new_figure(len(fit_splits) + (len(SPLITS) if sound else 0))
        k = 0
        for s in fit_splits:
            sl = r.splits[s]
            hp, hd = sl.by_hypothesis(sl.llr_cal)
            b = r.elub[s]
            lo_t = min(-0.5, b["lower_log10"] - 0.5, float(np.percentile(np.r_[hp, hd], 1)))
            hi_t = max(0.5, b["upper_log10"] + 0.5, float(np.percentile(np.r_[hp, hd], 99)))
            grid = np.linspace(max(lo_t, -9.5), min(hi_t, 9.5), 400)
            plots.plot_nbe(axes[k], grid, nbe_curve(hp, hd, grid), (b["lower_log10"], b["upper_log10"]),
                           title=f"fitted on {s}")
            k += 1
        if sound:
            for s in SPLITS:
                sl = r.splits[s]
                b = r.elub[s]
                plots.plot_bounded(axes[k], sl.llr_cal, sl.llr, sl.labels, (b["lower_log10"], b["upper_log10"]),
                                   title=f"{s}: bounds from val applied")
                k += 1
        plots.save_figure(fig, out / f"elub_{lv}.png", f"Stage 14: ELUB bounds, {_title(r)}")
        summary[lv] = {}
        for s in SPLITS:
            sl, b = r.splits[s], r.elub[s]
            inside = bool(np.all((sl.llr >= b["lower_log10"] - 1e-12) & (sl.llr <= b["upper_log10"] + 1e-12)))
            summary[lv][s] = {"elub": {"lower_log10": b["lower_log10"], "upper_log10": b["upper_log10"]},
                              "fitted_on": b["fitted_on"], "applied": b["applied"],
                              "n_clipped": int(np.sum(sl.llr != sl.llr_cal)),
                              "final_llr_inside_bounds": inside}
            if not sound:
                summary[lv][s]["paper_elub"] = dict(PAPER_ELUB_FALLBACK)
    write_json(out / "summary.json", {"levels": summary, "method": "standard ELUB (Vergeer et al. 2016, as in lir)"})
    return summary


# ----------------------------------------------------------------------------------------- everything
STAGE_DIRS = {9: "09_score_distributions", 10: "10_kde_lr", 11: "11_tippett", 12: "12_det_eer",
              13: "13_ece_cllr", 14: "14_elub"}


def run_scores(sets: dict[str, ScoreSet], out: Path, settings: Settings) -> dict:
    """Stages 09-14 on score sets into ``out/<NN_name>/``, plus ``out/<split>_lr.csv`` (frame level)
    and ``out/summary.json`` (figures computed on the final ``llr`` column). ``out`` must exist."""
    out = Path(out)
    dirs = {n: out / name for n, name in STAGE_DIRS.items()}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    stage09(sets, dirs[9], settings)
    levels, s10 = stage10(sets, dirs[10], settings)
    stage11(levels, dirs[11])
    stage12(levels, dirs[12])
    stage13(levels, dirs[13])
    stage14(levels, dirs[14])
    for s in SPLITS:
        write_csv(out / f"{s}_lr.csv", _lr_columns(levels["frame"].splits[s], "frame"))
        if "video" in levels:
            write_csv(out / f"{s}_video_lr.csv", _lr_columns(levels["video"].splits[s], "video"))
    return write_summary(levels, s10["skipped"], settings, out / "summary.json")


def write_summary(levels: dict[str, LevelLR], skipped: dict, settings: Settings, path: Path) -> dict:
    ev = evaluate(levels)
    summary = {"protocol": settings.protocol, "settings": settings.to_dict(),
               "bandwidth": levels["frame"].bandwidth, "splits": ev["frame"]}
    if "video" in levels:
        summary["video_level"] = {"bandwidth": levels["video"].bandwidth, "splits": ev["video"]}
    else:
        summary["video_level"] = {"skipped": skipped.get("video")}
    if settings.protocol == "paper":
        summary["paper_notes"] = ("llr = the paper's KDE LR (KDEs re-fitted on each split's own scores); "
                                  "eer is the correctly interpolated EER, paper_eer the paper's code; "
                                  "paper_cllr_calibrated = Cllr after PAV fitted on the same split; elub = "
                                  "standard ELUB of that split's own LLRs (not applied), paper_elub = the code's "
                                  "hard-coded fallback")
    write_json(path, summary)
    return summary
