"""The two protocols and the stage logic of 08-14, shared by the numbered scripts and ``slr.run_scores``.

Conventions: label 1 = fake = Hd, 0 = real = Hp; LLR = log10 LR (Hp in the numerator); Cllr and
ECE in bits; rates in [0, 1]. Each ``stageNN`` function writes its figures (PNG) and a
``summary.json`` into a folder it is given; the callers make that folder atomic (a temporary
folder renamed into place), so a failed run leaves nothing half-written.

Protocols (docs/slr.md has the full list of differences):

- ``sound`` (v2): the LR system (:class:`slr.system.LRSystem`) is fitted on the ``calib`` pool only:
  score model (``slr.model``: kde | logistic | isotonic), calibration (``none | pav | logistic``) and
  ELUB bounds, the latter two on cross-fitted calib LLRs (person-grouped folds), the score model then
  refitted on all of calib. It is applied unchanged to every pool; the figures of ``calib`` are those
  of its cross-fitted LLRs, ``train`` and ``val`` are reported as diagnostics of detector-training
  data. Needs ``calib`` and ``test`` pools.
- ``paper``: the paper's code: inflated CV bandwidths from train, KDEs re-fitted on each split's
  own scores on a 1,000-point grid; no calibration or bounds in the final LLR. The paper's
  figures (its EER interpolation, PAV fitted on the evaluated split, hard-coded "ELUB" fallback
  bounds) are reported beside the correct ones. Uses train / val / test.

Summaries (issue 10 item 8), the same shape for stages 10-14 and run_scores:
``levels.<level>.<pool>.{n_hp, n_hd, n_persons, n_videos, cllr, cllr_min, cllr_cal, eer, auc,
misleading_hp, misleading_hd}`` with ``levels.<level>.<pool>.ci95.<metric> = [lo, hi]`` (person-cluster
bootstrap, slr.bootstrap), ``system.bounds_log10.<level>``, ``system.bandwidth.<level>`` and
``system.sha256``; stage-specific figures are added to the same pool blocks.

Video level: a video's score is the mean of its frames' scores; the same protocol is then fitted
on video-level scores (its own score model, calibration and bounds), so video LLRs are LRs for the
video-level evidence rather than averages of frame LLRs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.io import InputError, numeric_column, read_csv, read_json, write_csv, write_json
from common.splits import SPLITS
from common.stages import folder

from . import calibration, elub, kde, metrics, plots
from .bootstrap import pool_metrics
from .io import POOLS, ScoreSet, check_disjoint, check_scores, video_level
from .settings import CALIBRATIONS, MODELS, PROTOCOLS, Settings  # noqa: F401  (re-exported)
from .system import LevelModel, LRSystem, fit_level_model

log = logging.getLogger(__name__)

LEVELS = ("frame", "video")
PAPER_ELUB_FALLBACK = {"lower_log10": -12.0, "upper_log10": 6.5}   # hard-coded in the paper's code
ECE_LOG10_ODDS = np.linspace(-2.5, 2.5, 101)                        # includes 0 (prior 0.5)
MIN_VIDEOS_TRAIN = 10   # per hypothesis: 10-fold CV of the bandwidth needs at least 10 videos (paper)
MIN_VIDEOS_EVAL = 2     # per hypothesis in every other pool
SOUND_REQUIRED = ("calib", "test")
SOUND_OPTIONAL = ("train", "val")
DIAGNOSTIC = "detector-training data, diagnostic only"
NO_CALIB = ("the sound protocol fits the LR system on a 'calib' pool of persons that the detector never saw, and "
            "there is none: make one with split.ratios of 4 values [train, val, calib, test] (e.g. "
            "[0.45, 0.15, 0.25, 0.15]) and re-run stages 02-08 (stage 08 then writes calib.csv), give "
            "run_scores a DIR/calib.csv, or use slr.protocol=paper")


def pools_of(sets: dict) -> list[str]:
    """The pools of ``sets`` in the order train, val, calib, test."""
    return [p for p in POOLS if p in sets] + [p for p in sets if p not in POOLS]


def pool_label(pool: str, protocol: str) -> str:
    """Title of a pool in figures: train/val under sound are marked as detector-training data."""
    if protocol == "sound" and pool in ("train", "val"):
        return f"{pool} ({DIAGNOSTIC})"
    if protocol == "sound" and pool == "calib":
        return "calib (cross-fitted)"
    return pool


# ----------------------------------------------------------------------------------------- LR data
@dataclass
class SplitLR:
    """One pool's items and their LLRs: ``llr_kde`` (score model; the KDE under paper), ``llr_cal``
    (after calibration), ``llr`` (final: after the bounds under ``sound``; equal to ``llr_kde`` under
    ``paper``). Under sound the calib pool holds its cross-fitted LLRs."""
    scores: np.ndarray
    labels: np.ndarray
    llr_kde: np.ndarray
    llr_cal: np.ndarray
    llr: np.ndarray
    video_ids: np.ndarray | None = None
    image_paths: np.ndarray | None = None
    n_frames: np.ndarray | None = None
    person_ids: np.ndarray | None = None

    def by_hypothesis(self, llr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(values of the Hp = real items, values of the Hd = fake items)."""
        x = self.llr if llr is None else llr
        return x[self.labels == 0], x[self.labels == 1]

    def videos(self) -> np.ndarray:
        return ScoreSet(self.scores, self.labels, self.video_ids).videos()

    def persons(self) -> np.ndarray:
        return ScoreSet(self.scores, self.labels, self.video_ids, person_ids=self.person_ids).persons()


@dataclass
class LevelLR:
    """The fitted system and LLRs of one level (``frame`` or ``video``)."""
    level: str
    protocol: str
    splits: dict[str, SplitLR]
    bandwidth: dict[str, float]
    bandwidth_details: dict
    elub: dict[str, dict | None]          # per pool: bounds applied or diagnosed, see docs/slr.md
    calibration: str = "none"
    system: LevelModel | None = None      # sound: the fitted level of the LR system
    model: str = "kde"
    note: str = ""                        # data note shown in every title (e.g. contaminated features)
    metrics: dict = field(default_factory=dict)         # per pool: stage 10's summary block (with ci95)
    system_summary: dict = field(default_factory=dict)  # stage 10's "system" block

    @property
    def pools(self) -> list[str]:
        return pools_of(self.splits)


def _cv_table(table: dict) -> dict:
    """``kde.cv_bandwidth``'s table as JSON-able lists ``{"bandwidth": [...], "score": [...]}``
    (score = mean held-out log-likelihood over the folds, nats)."""
    return {"bandwidth": np.asarray(table["bandwidth"], float).tolist(),
            "score": np.asarray(table["cv_loglik"], float).tolist()}


def _check_sets(sets: dict[str, ScoreSet], what: str, protocol: str = "paper", need_test: bool = True) -> None:
    if protocol == "sound":
        if "calib" not in sets:
            raise InputError(f"{what}: no calib pool: {NO_CALIB}")
        if "test" not in sets and need_test:   # crossval (slr/crossval.py): test is optional
            raise InputError(f"{what}: no test pool; the sound protocol needs calib and test scores")
        for s in pools_of(sets):
            check_scores(sets[s].scores, sets[s].labels, sets[s].source or f"{what} [{s}]")
        return
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


def fit_level(sets: dict[str, ScoreSet], settings: Settings, level: str = "frame",
              system_level: LevelModel | None = None) -> LevelLR:
    """Fit the protocol's LR system on ``sets`` ({pool: ScoreSet}) and apply it to every pool.
    Under sound the system is fitted on ``sets["calib"]`` unless ``system_level`` is given.
    Data the LR library cannot fit (e.g. fewer training items than CV folds) is an InputError."""
    _check_sets(sets, level, settings.protocol)
    if settings.protocol == "sound":
        lm = system_level or fit_level_model(sets["calib"], settings, level)
        return _sound_level(sets, settings, level, lm)
    try:
        return _fit_level(sets, settings, level)
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{sets['train'].source or 'train scores'}: {level} level, {settings.protocol} protocol: "
                         f"{exc}") from exc


def _sound_level(sets: dict[str, ScoreSet], settings: Settings, level: str, lm: LevelModel) -> LevelLR:
    out: dict[str, SplitLR] = {}
    bounds: dict[str, dict | None] = {}
    for pool in pools_of(sets):
        s = sets[pool]
        if pool == "calib":
            c = lm.calib
            parts = {"model": c["cf_llr_model"], "calibrated": c["cf_llr_calibrated"], "llr": c["cf_llr"]}
        else:
            parts = lm.llr_parts(s.scores)
        out[pool] = SplitLR(s.scores, s.labels, parts["model"], parts["calibrated"], parts["llr"], s.video_ids,
                            s.image_paths, s.n_frames, s.person_ids)
        bounds[pool] = {"lower_log10": lm.lower_log10, "upper_log10": lm.upper_log10,
                        "fitted_on": "calib (cross-fitted, each video counted once)", "applied": True}
    bw = lm.bandwidth() or {}
    details = lm.model.details if hasattr(lm.model, "details") else {"model": lm.model.describe()}
    return LevelLR(level, "sound", out, bw, details, bounds, settings.calibration, lm, settings.model)


def _fit_level(sets: dict[str, ScoreSet], settings: Settings, level: str) -> LevelLR:
    """The paper protocol (train / val / test)."""
    tr = sets["train"]
    out: dict[str, SplitLR] = {}
    bounds: dict[str, dict | None] = {}
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
        out[s] = SplitLR(x.scores, x.labels, llr, llr, llr, x.video_ids, x.image_paths, x.n_frames,
                             x.person_ids)
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



def video_sets(sets: dict[str, ScoreSet], protocol: str = "paper") -> tuple[dict[str, ScoreSet] | None, str | None]:
    """Video-level score sets, or ``(None, reason)`` when they cannot be fitted."""
    pools = pools_of(sets) if protocol == "sound" else list(SPLITS)
    if any(sets[s].video_ids is None for s in pools):
        return None, "no video_id column in the score files"
    vs = {s: video_level(sets[s]) for s in pools}
    for s in pools:
        need = MIN_VIDEOS_TRAIN if (s == "train" and protocol == "paper") else MIN_VIDEOS_EVAL
        n_hp, n_hd = int((vs[s].labels == 0).sum()), int((vs[s].labels == 1).sum())
        if min(n_hp, n_hd) < need:
            return None, (f"pool '{s}' has {n_hp} real and {n_hd} fake videos; the video level needs at least "
                          f"{need} of each")
        if np.ptp(vs[s].scores) == 0:
            return None, f"pool '{s}': all video scores are equal"
    return vs, None


def calib_conditions(s: ScoreSet) -> dict:
    """Conditions of the calib data that the scores themselves tell (frames per video, score range);
    stage 10 adds these to the LR system's ``conditions`` (casework compares items with them)."""
    _, counts = np.unique(s.videos(), return_counts=True)
    return {"frames_per_video": {"min": int(counts.min()), "median": float(np.median(counts)),
                                 "max": int(counts.max())},
            "score_range": [float(np.min(s.scores)), float(np.max(s.scores))],
            "n_persons": int(len(np.unique(s.persons()))), "n_videos": int(len(counts)), "n_frames": int(len(s))}


def fit_all(sets: dict[str, ScoreSet], settings: Settings, score_spec: dict | None = None,
            centroid: np.ndarray | None = None, conditions: dict | None = None
            ) -> tuple[dict[str, LevelLR], dict[str, str], LRSystem | None]:
    """Frame level always, video level when requested and possible.
    Returns (levels, skipped reasons, the fitted LRSystem under sound / None under paper)."""
    skipped: dict[str, str] = {}
    if settings.protocol == "paper":
        levels = {"frame": fit_level(sets, settings, "frame")}
        if settings.video_level:
            vs, why = video_sets(sets, "paper")
            if vs is None:
                log.warning("video level skipped: %s", why)
                skipped["video"] = why
            else:
                levels["video"] = fit_level(vs, settings, "video")
        else:
            skipped["video"] = "slr.video_level is false"
        return levels, skipped, None
    _check_sets(sets, "scores", "sound")
    check_disjoint(sets)
    lms = {"frame": fit_level_model(sets["calib"], settings, "frame")}
    levels = {"frame": _sound_level(sets, settings, "frame", lms["frame"])}
    if settings.video_level:
        vs, why = video_sets(sets, "sound")
        if vs is not None:
            try:
                lms["video"] = fit_level_model(vs["calib"], settings, "video")
                levels["video"] = _sound_level(vs, settings, "video", lms["video"])
            except InputError as exc:
                why = f"the calib videos cannot be fitted: {exc}"
        if "video" not in levels:
            log.warning("video level skipped: %s", why)
            skipped["video"] = why
    else:
        skipped["video"] = "slr.video_level is false"
    pools = {p: sets[p].counts() for p in pools_of(sets)}
    cond = {"calib": calib_conditions(sets["calib"]), **(conditions or {})}
    spec = dict(score_spec or {"name": settings.score})
    system = LRSystem(lms, spec, centroid, cond, pools, {}, settings)
    return levels, skipped, system


# ----------------------------------------------------------------------------------------- metrics
def split_metrics(sl: SplitLR, protocol: str, elub_entry: dict | None, bootstrap_n: int = 0, seed: int = 0) -> dict:
    """Every figure of one pool, computed on its final ``llr``, in the summary shape of
    :func:`slr.bootstrap.pool_metrics` (with person-cluster intervals when ``bootstrap_n`` > 0)."""
    hp, hd = metrics.split_hypotheses(sl.llr, sl.labels)
    e = metrics.eer(hp, hd)
    d = pool_metrics(sl.llr, sl.labels, sl.persons(), sl.videos(), bootstrap_n, seed)
    d.update({
        "ece_prior_0.5": float(np.asarray(metrics.ece(hp, hd, np.array([0.0]))).ravel()[0]),
        "eer_method": e.get("method"), "eer_rocch": _f(e.get("eer_rocch")),
        "eer_threshold_log10": _f(e.get("threshold")),
        "llr_range": [float(np.min(sl.llr)), float(np.max(sl.llr))],
        "elub": ({"lower_log10": elub_entry["lower_log10"], "upper_log10": elub_entry["upper_log10"]}
                 if elub_entry else None),
        "elub_fitted_on": elub_entry.get("fitted_on") if elub_entry else None,
        "elub_applied": bool(elub_entry.get("applied")) if elub_entry else False,
        "score_auc": float(metrics.auc(sl.scores[sl.labels == 0], sl.scores[sl.labels == 1]))})
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


def evaluate(levels: dict[str, LevelLR], bootstrap_n: int = 0, seed: int = 0) -> dict[str, dict[str, dict]]:
    """``{level: {pool: metrics}}`` (see split_metrics)."""
    out = {}
    for lv, r in levels.items():
        out[lv] = {}
        for s in r.pools:
            m = split_metrics(r.splits[s], r.protocol, r.elub.get(s), bootstrap_n, seed)
            if r.protocol == "sound":
                m["role"] = {"train": DIAGNOSTIC, "val": DIAGNOSTIC, "calib": "cross-fitted LLRs (fitting data)",
                             "test": "validation"}.get(s, "other")
            out[lv][s] = m
    return out


# ----------------------------------------------------------------------------------------- stage 08
def stage08(dumps: dict, out: Path, batch_size: int = 64, **kw) -> dict:
    """Stage 08 lives in :func:`slr.scores.stage08` (scores of every pool); kept here for callers."""
    from .scores import stage08 as _stage08
    return _stage08(dumps, out, batch_size=batch_size, **kw)


# ----------------------------------------------------------------------------------------- stage 09
def _describe(x: np.ndarray) -> dict:
    return {"n": int(len(x)), "mean": float(np.mean(x)), "std": float(np.std(x, ddof=1)) if len(x) > 1 else 0.0,
            "min": float(np.min(x)), "median": float(np.median(x)), "max": float(np.max(x))}


def stage09(sets: dict[str, ScoreSet], out: Path, settings: Settings, note: str = "") -> dict:
    """Score distributions per pool and hypothesis: violins, densities, n / mean / std."""
    _check_sets(sets, "scores", settings.protocol, need_test=settings.validation != "crossval")
    pools = pools_of(sets) if settings.protocol == "sound" else list(SPLITS)
    levels = {"frame": sets}
    skipped = {}
    if settings.video_level:
        vs, why = video_sets(sets, settings.protocol)
        if vs is None:
            skipped["video"] = why
        else:
            levels["video"] = vs
    summary = {"levels": {}, "skipped": skipped, "pools": pools, "note": note,
               "labels": {p: pool_label(p, settings.protocol) for p in pools}}
    tail = f" [{note}]" if note else ""
    for lv, ss in levels.items():
        unit = "frames" if lv == "frame" else "videos (mean frame score)"
        fig, axes = plots.new_figure(1, width=7)
        plots.plot_score_violins(axes[0], {pool_label(s, settings.protocol).replace(" (", "\n("): (ss[s].hp, ss[s].hd)
                                           for s in pools}, xlabel="pool", ylabel="score")
        plots.save_figure(fig, out / f"violin_{lv}.png", f"Stage 09: score distributions, {unit}{tail}")
        fig, axes = plots.new_figure(len(pools))
        for ax, s in zip(axes, pools):
            plots.plot_score_density(ax, ss[s].hp, ss[s].hd, title=pool_label(s, settings.protocol), xlabel="score")
        plots.save_figure(fig, out / f"density_{lv}.png", f"Stage 09: score densities, {unit}{tail}")
        summary["levels"][lv] = {s: {"hp": _describe(ss[s].hp), "hd": _describe(ss[s].hd),
                                     "auc": float(metrics.auc(ss[s].hp, ss[s].hd))} for s in pools}
    write_json(out / "summary.json", summary)
    return summary


# ----------------------------------------------------------------------------------------- stage 10
def _lr_columns(sl: SplitLR, level: str, protocol: str = "paper") -> dict:
    n = len(sl.scores)
    cols = {}
    if level == "frame":
        cols["image_path"] = list(sl.image_paths) if sl.image_paths is not None else [""] * n
    cols["person_id"] = list(sl.persons())
    cols["video_id"] = list(sl.video_ids) if sl.video_ids is not None else [""] * n
    if level == "video":
        cols["n_frames"] = [int(v) for v in sl.n_frames]
    cols.update(label=[int(v) for v in sl.labels], score=[float(v) for v in sl.scores])
    cols["llr_kde" if protocol == "paper" else "llr_model"] = [float(v) for v in sl.llr_kde]
    cols.update(llr_calibrated=[float(v) for v in sl.llr_cal], llr=[float(v) for v in sl.llr])
    with np.errstate(over="ignore"):
        cols["lr"] = [float(v) for v in np.power(10.0, sl.llr)]
    return cols


def lr_file(level: str, split: str) -> str:
    return f"{split}_lr.csv" if level == "frame" else f"{split}_video_lr.csv"


def _system_block(levels: dict[str, LevelLR], settings: Settings, system: LRSystem | None) -> dict:
    blk = {"protocol": settings.protocol, "model": settings.model if settings.protocol == "sound" else
           "kde (paper: re-fitted on each split's own scores)",
           "calibration": settings.calibration if settings.protocol == "sound" else "none",
           "score": settings.score, "bounds_log10": {}, "bandwidth": {}, "bandwidth_details": {},
           "monotonicity": {}, "sha256": None}
    for lv, r in levels.items():
        blk["bandwidth"][lv] = dict(r.bandwidth) if r.bandwidth else None
        blk["bandwidth_details"][lv] = r.bandwidth_details
        if r.protocol == "sound":
            lm = r.system
            blk["bounds_log10"][lv] = [lm.lower_log10, lm.upper_log10]
            blk["monotonicity"][lv] = lm.monotonicity
            blk.setdefault("crossfit", {})[lv] = lm.crossfit
            blk.setdefault("direction", {})[lv] = lm.model.direction
            blk.setdefault("model_details", {})[lv] = lm.model.describe()
        else:
            blk["bounds_log10"][lv] = None
            blk["monotonicity"][lv] = {}
            for s in r.pools:
                x = r.splits[s]
                hp, hd = x.by_hypothesis(x.scores)
                blk["monotonicity"][lv][s] = _paper_monotonicity(hp, hd, r.bandwidth)
    if settings.protocol == "paper":
        blk["bounds_note"] = ("paper protocol: no bounds in the final LLR; each split's own standard ELUB bounds "
                              "are diagnostics (levels.<level>.<split>.elub), paper_elub the code's fallback")
    if system is not None:
        blk["conditions"] = system.conditions
    return blk


def _paper_monotonicity(hp, hd, bw) -> dict:
    from .models import monotonicity

    lo, hi = float(min(hp.min(), hd.min())), float(max(hp.max(), hd.max()))
    return monotonicity(lambda s: kde.paper_grid_llr(hp, hd, bw["hp"], bw["hd"], s), lo, hi,
                        1.0 if metrics.auc(hp, hd) >= 0.5 else -1.0)


def stage10(sets: dict[str, ScoreSet], out: Path, settings: Settings, score_spec: dict | None = None,
            centroid: np.ndarray | None = None, conditions: dict | None = None, note: str = "",
            system_dir: str | Path | None = "system") -> tuple[dict[str, LevelLR], dict]:
    """Fit the protocol's LR system; write per pool ``<pool>_lr.csv`` (and ``<pool>_video_lr.csv``),
    the bandwidth search, the densities, the LLR curve, the LLR histograms and ``summary.json``;
    under sound also the LR system (``out/<system_dir>``, or ``system_dir`` if absolute)."""
    if settings.validation == "crossval":   # every person validated out of fold (slr/crossval.py)
        from .crossval import fit_all as fit_crossval
        levels, skipped, system = fit_crossval(sets, settings, score_spec, centroid, conditions)
    else:
        levels, skipped, system = fit_all(sets, settings, score_spec, centroid, conditions)
    tail = f" [{note}]" if note else ""
    for lv, r in levels.items():
        r.note = note
        for s in r.pools:
            write_csv(out / lr_file(lv, s), _lr_columns(r.splits[s], lv, r.protocol))
        fit_pool = "calib" if r.protocol == "sound" else "train"
        fp = r.splits[fit_pool]
        hp, hd = fp.by_hypothesis(fp.scores)
        if r.bandwidth:
            fig, axes = plots.new_figure(1, width=6)
            tables = {k: (np.asarray(d["bandwidth"]), np.asarray(d["score"])) for k, d in r.bandwidth_details.items()
                      if isinstance(d, dict) and "bandwidth" in d and "score" in d}
            chosen = {k: float(d.get("cv_best", d.get("cv_bandwidth", r.bandwidth[k])))
                      for k, d in r.bandwidth_details.items() if isinstance(d, dict)}
            plots.plot_bandwidth_search(axes[0], tables, chosen, r.bandwidth, title=f"{lv} level, {fit_pool} scores")
            plots.save_figure(fig, out / f"bandwidth_{lv}.png", f"Stage 10: KDE bandwidth search{tail}")
            lo, hi = float(min(hp.min(), hd.min())), float(max(hp.max(), hd.max()))
            pad = 0.1 * (hi - lo)
            grid = np.linspace(lo - pad, hi + pad, 600)
            f_hp = kde.GaussianKDE1D().fit(hp, r.bandwidth["hp"]).log10_pdf(grid)
            f_hd = kde.GaussianKDE1D().fit(hd, r.bandwidth["hd"]).log10_pdf(grid)
            fig, axes = plots.new_figure(1, width=6)
            plots.plot_densities(axes[0], grid, f_hp, f_hd, hp, hd, r.bandwidth, title=f"{lv} level, {fit_pool}")
            plots.save_figure(fig, out / f"densities_{lv}.png", f"Stage 10: KDEs of the {fit_pool} scores{tail}")
        if r.protocol == "sound":
            lm = r.system
            lo, hi = float(fp.scores.min()), float(fp.scores.max())
            pad = 0.05 * (hi - lo)
            grid = np.linspace(lo - pad, hi + pad, 800)
            parts = lm.llr_parts(grid)
            fig, axes = plots.new_figure(1, width=7)
            mono = lm.monotonicity["model"]
            plots.plot_llr_curve(axes[0], grid, parts, (lm.lower_log10, lm.upper_log10), fp.scores, fp.llr, fp.labels,
                                 title=f"{lv} level, {settings.model} model: {mono['direction_changes']} direction "
                                       f"changes, largest drop {mono['largest_drop_log10']:.3g}")
            plots.save_figure(fig, out / f"llr_curve_{lv}.png",
                              f"Stage 10: LLR as a function of the score (fitted on calib){tail}")
        fig, axes = plots.new_figure(len(r.pools))
        for ax, s in zip(axes, r.pools):
            a, b = r.splits[s].by_hypothesis()
            plots.plot_llr_hist(ax, a, b, title=pool_label(s, r.protocol))
        plots.save_figure(fig, out / f"llr_hist_{lv}.png",
                          f"Stage 10: final log10 LRs ({settings.protocol} protocol, {lv} level){tail}")
    ev = evaluate(levels, settings.bootstrap_n, settings.bootstrap_seed)
    summary = {"protocol": settings.protocol, "settings": settings.to_dict(), "note": note,
               "pools": levels["frame"].pools, "labels": {p: pool_label(p, settings.protocol)
                                                          for p in levels["frame"].pools},
               "levels": ev, "system": _system_block(levels, settings, system), "skipped": skipped,
               "counts": {p: sets[p].counts() for p in levels["frame"].pools if p in sets}}
    if system is not None and "crossval" in system.validation:
        summary["crossval"] = system.validation["crossval"]
        summary["counts"]["test"] = summary["counts"]["calib"] = system.pools["calib"]
        for blocks in ev.values():
            blocks["test"]["role"] = summary["crossval"]["note"]
    if settings.protocol == "paper":
        summary["paper_notes"] = ("llr = the paper's KDE LR (KDEs re-fitted on each split's own scores); "
                                  "eer is the correctly interpolated EER, paper_eer the paper's code; "
                                  "paper_cllr_calibrated = Cllr after PAV fitted on the same split; elub = "
                                  "standard ELUB of that split's own LLRs (not applied), paper_elub = the code's "
                                  "hard-coded fallback")
    if system is not None and system_dir is not None:
        system.validation = {**system.validation, "levels": ev, "note": note, "protocol": "sound"}
        if note:
            system.conditions["data_note"] = note
        target = Path(system_dir) if Path(system_dir).is_absolute() else out / system_dir
        summary["system"]["sha256"] = system.save(target)
        summary["system"]["directory"] = str(system_dir)
    for lv, r in levels.items():
        r.metrics, r.system_summary = ev[lv], summary["system"]
    write_json(out / "summary.json", summary)
    return levels, summary


def load_stage10(directory: str | Path) -> dict[str, LevelLR]:
    """Read stage 10's outputs back (``summary.json`` and the LR CSVs)."""
    directory = Path(directory)
    summary = read_json(directory / "summary.json") if (directory / "summary.json").is_file() else None
    if summary is None:
        raise InputError(f"{directory}: stage 10 outputs not found (summary.json); run stage 10 first")
    if "system" not in summary or not isinstance(summary.get("levels"), dict):
        raise InputError(f"{directory / 'summary.json'}: written by an older version of stage 10; re-run stage 10")
    levels = {}
    protocol = summary["protocol"]
    sysb = summary["system"]
    for lv, blocks in summary["levels"].items():
        splits, bounds = {}, {}
        for s, blk in blocks.items():
            path = directory / lr_file(lv, s)
            cols = read_csv(path, required=("label", "score", "llr_calibrated", "llr"))
            first = "llr_kde" if "llr_kde" in cols else "llr_model"
            num = {c: numeric_column(cols, c, path) for c in ("score", first, "llr_calibrated", "llr")}
            splits[s] = SplitLR(num["score"], numeric_column(cols, "label", path, int).astype(np.int64),
                                num[first], num["llr_calibrated"], num["llr"],
                                np.asarray(cols["video_id"], str) if "video_id" in cols else None,
                                np.asarray(cols["image_path"], str) if "image_path" in cols else None,
                                numeric_column(cols, "n_frames", path, int) if "n_frames" in cols else None,
                                np.asarray(cols["person_id"], str) if "person_id" in cols else None)
            e = blk.get("elub")
            bounds[s] = ({"lower_log10": e["lower_log10"], "upper_log10": e["upper_log10"],
                          "fitted_on": blk.get("elub_fitted_on"), "applied": bool(blk.get("elub_applied"))}
                         if e else None)
        r = LevelLR(lv, protocol, splits, sysb["bandwidth"].get(lv) or {}, sysb["bandwidth_details"].get(lv) or {},
                    bounds, sysb.get("calibration", "none"), None, sysb.get("model", "kde"), summary.get("note", ""))
        r.metrics, r.system_summary = blocks, sysb
        levels[lv] = r
    return levels


# ----------------------------------------------------------------------------------------- stages 11-14
def _title(r: LevelLR) -> str:
    t = f"{r.protocol} protocol, {r.level} level"
    return f"{t} [{r.note}]" if r.note else t


def _block(r: LevelLR, s: str) -> dict:
    """Stage 10's summary block of pool ``s`` (figures with intervals) as the base of 11-14's blocks."""
    base = r.metrics.get(s) if r.metrics else None
    return dict(base) if base else split_metrics(r.splits[s], r.protocol, r.elub.get(s))


def _stage_summary(levels: dict[str, LevelLR], blocks: dict, **extra) -> dict:
    any_r = next(iter(levels.values()))
    return {"protocol": any_r.protocol, "note": any_r.note, "levels": blocks, "system": any_r.system_summary, **extra}


def stage11(levels: dict[str, LevelLR], out: Path) -> dict:
    """Tippett plots (standard form: both hypotheses as P(LLR >= x)); rates of misleading evidence.
    Under ``paper`` also the paper's form (Hp as P(LLR <= x))."""
    summary = {}
    for lv, r in levels.items():
        fig, axes = plots.new_figure(len(r.pools))
        summary[lv] = {}
        for ax, s in zip(axes, r.pools):
            hp, hd = r.splits[s].by_hypothesis()
            x, p_hp, p_hd = metrics.tippett(hp, hd)
            plots.plot_tippett(ax, x, p_hp, p_hd, title=f"{pool_label(s, r.protocol)} (n = {len(hp)}/{len(hd)})")
            mis = metrics.misleading_evidence(hp, hd)
            summary[lv][s] = {**_block(r, s), "misleading_hp": float(mis["hp"]), "misleading_hd": float(mis["hd"]),
                              "n_hp": int(len(hp)), "n_hd": int(len(hd))}
        plots.save_figure(fig, out / f"tippett_{lv}.png", f"Stage 11: Tippett plot, {_title(r)}")
        if r.protocol == "paper":
            fig, axes = plots.new_figure(len(r.pools))
            for ax, s in zip(axes, r.pools):
                hp, hd = r.splits[s].by_hypothesis()
                x, p_hp, p_hd = metrics.paper_tippett(hp, hd)
                plots.plot_tippett(ax, x, p_hp, p_hd, title=s, hp_form="<=")
            plots.save_figure(fig, out / f"tippett_paper_form_{lv}.png",
                              f"Stage 11: the paper's Tippett form (not standard), {lv} level")
    write_json(out / "summary.json", _stage_summary(
        levels, summary, definition="misleading_hp = P(LLR < 0 | Hp), misleading_hd = P(LLR > 0 | Hd)"))
    return summary


POOL_COLORS = {"train": "tab:gray", "val": "tab:green", "calib": "tab:orange", "test": "tab:purple"}


def stage12(levels: dict[str, LevelLR], out: Path) -> dict:
    """DET curves on probit axes, EER (and the paper's EER under ``paper``), threshold."""
    summary = {}
    for lv, r in levels.items():
        fig, axes = plots.new_figure(1, width=6, height=5.5)
        summary[lv] = {}
        for s in r.pools:
            hp, hd = r.splits[s].by_hypothesis()
            _, p_miss, p_fa = metrics.det_curve(hp, hd)
            e = metrics.eer(hp, hd)
            plots.plot_det(axes[0], p_miss, p_fa, label=pool_label(s, r.protocol), eer=float(e["eer"]),
                           color=POOL_COLORS.get(s))
            summary[lv][s] = {**_block(r, s), "eer": float(e["eer"]), "eer_rocch": _f(e.get("eer_rocch")),
                              "threshold_log10": _f(e.get("threshold")), "method": e.get("method")}
            if r.protocol == "paper":
                pe = metrics.paper_eer(hp, hd)
                summary[lv][s].update(paper_eer=float(pe["eer"]),
                                      paper_eer_extrapolated=bool(pe.get("extrapolated", False)),
                                      paper_eer_method=pe.get("method"))
        axes[0].set_title(_title(r))
        plots.save_figure(fig, out / f"det_{lv}.png", "Stage 12: DET curves")
    write_json(out / "summary.json", _stage_summary(levels, summary))
    return summary


def stage13(levels: dict[str, LevelLR], out: Path) -> dict:
    """ECE plots (LRs, PAV-calibrated LRs, neutral), Cllr, Cllr_min, Cllr_cal, AUC."""
    summary = {}
    for lv, r in levels.items():
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
                           title=f"{pool_label(s, r.protocol)} (n = {len(hp)}/{len(hd)})")
            m = split_metrics(sl, r.protocol, r.elub.get(s))
            summary[lv][s] = {**_block(r, s), **{k: m[k] for k in (
                "n_hp", "n_hd", "cllr", "cllr_min", "cllr_cal", "ece_prior_0.5", "auc")
                + (("paper_cllr_calibrated",) if r.protocol == "paper" else ())}}
        plots.save_figure(fig, out / f"ece_{lv}.png", f"Stage 13: empirical cross-entropy, {_title(r)}")
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


def stage14(levels: dict[str, LevelLR], out: Path) -> dict:
    """ELUB bounds, bounded LRs, NBE plot. Under ``sound`` the bounds are fitted on the calibrated
    cross-fitted calib LLRs (each video counted once) and applied to every pool; under ``paper``
    each split's own bounds are a diagnostic (not applied) and the paper's fallback (-12, 6.5) is
    reported beside them."""
    summary = {}
    for lv, r in levels.items():
        sound = r.protocol == "sound"
        fit_splits = ["calib"] if sound else list(r.pools)
        fig, axes = plots.new_figure(len(fit_splits) + (len(r.pools) if sound else 0))
        k = 0
        for s in fit_splits:
            sl = r.splits[s]
            hp, hd = sl.by_hypothesis(sl.llr_cal)
            w = elub.video_weights(sl.videos()) if sound else np.ones(len(sl.labels))
            b = r.elub[s]
            both = np.r_[hp, hd]
            both = both[np.isfinite(both)] if np.isfinite(both).any() else np.zeros(1)   # PAV can give +-inf
            lo_t = min(-0.5, b["lower_log10"] - 0.5, float(np.percentile(both, 1)))
            hi_t = max(0.5, b["upper_log10"] + 0.5, float(np.percentile(both, 99)))
            grid = np.linspace(max(lo_t, -9.5), min(hi_t, 9.5), 400)
            plots.plot_nbe(axes[k], grid, nbe_curve(hp, hd, grid, w[sl.labels == 0], w[sl.labels == 1]),
                           (b["lower_log10"], b["upper_log10"]),
                           title=f"fitted on {pool_label(s, r.protocol)}" + (", each video once" if sound else ""))
            k += 1
        if sound:
            for s in r.pools:
                sl = r.splits[s]
                b = r.elub[s]
                plots.plot_bounded(axes[k], sl.llr_cal, sl.llr, sl.labels, (b["lower_log10"], b["upper_log10"]),
                                   title=f"{pool_label(s, r.protocol)}: bounds from calib")
                k += 1
        plots.save_figure(fig, out / f"elub_{lv}.png", f"Stage 14: ELUB bounds, {_title(r)}")
        summary[lv] = {}
        for s in r.pools:
            sl, b = r.splits[s], r.elub[s]
            inside = bool(np.all((sl.llr >= b["lower_log10"] - 1e-12) & (sl.llr <= b["upper_log10"] + 1e-12)))
            summary[lv][s] = {**_block(r, s),
                              "elub": {"lower_log10": b["lower_log10"], "upper_log10": b["upper_log10"]},
                              "fitted_on": b["fitted_on"], "applied": b["applied"],
                              "n_clipped": int(np.sum(sl.llr != sl.llr_cal)),
                              "final_llr_inside_bounds": inside}
            if not sound:
                summary[lv][s]["paper_elub"] = dict(PAPER_ELUB_FALLBACK)
    write_json(out / "summary.json", _stage_summary(
        levels, summary, method="standard ELUB (Vergeer et al. 2016, as in lir); sound: each video counted once"))
    return summary


# ----------------------------------------------------------------------------------------- everything
STAGE_DIRS = {int(i): folder(i) for i in ("09", "10", "11", "12", "13", "14")}   # names from the stage table


def run_scores(sets: dict[str, ScoreSet], out: Path, settings: Settings, note: str = "") -> dict:
    """Stages 09-14 on score sets into ``out/<NN_name>/``, plus ``out/<pool>_lr.csv`` (frame level),
    ``out/system/`` (sound) and ``out/summary.json`` (stage 10's summary: the common shape).
    ``out`` must exist."""
    out = Path(out)
    dirs = {n: out / name for n, name in STAGE_DIRS.items()}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    stage09(sets, dirs[9], settings, note)
    levels, s10 = stage10(sets, dirs[10], settings, note=note, system_dir=(out / "system").resolve())
    if s10["system"].get("sha256"):
        s10["system"]["directory"] = "system"
    stage11(levels, dirs[11])
    stage12(levels, dirs[12])
    stage13(levels, dirs[13])
    stage14(levels, dirs[14])
    for s in levels["frame"].pools:
        write_csv(out / f"{s}_lr.csv", _lr_columns(levels["frame"].splits[s], "frame", settings.protocol))
        if "video" in levels:
            write_csv(out / f"{s}_video_lr.csv", _lr_columns(levels["video"].splits[s], "video", settings.protocol))
    write_json(out / "summary.json", s10)
    return s10
