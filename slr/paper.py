"""The paper protocol (``slr.protocol: paper``): the paper's code as it really is, every quirk in this file.

- Pools: train, val, test (three split ratios); a calib pool, if any, is not used.
- Fit: per level and hypothesis, the paper's bandwidth rule on the train scores (10-fold CV with
  ``slr.paper_seed``, then floor / skew / peak inflation, :func:`slr.kde.paper_bandwidth`).
- Apply: the KDEs are re-fitted on the evaluated split's own scores with the train bandwidths, on the
  paper's 1,000-point grid with floor and renormalisation (:func:`slr.kde.paper_grid_llr`); no
  calibration and no bounds in the final LLR (model = calibrated = final LLR).
- Reported beside the correct figures: the paper's EER interpolation (``paper_eer``), its "calibrated
  Cllr" (PAV fitted on the evaluated split: ``paper_cllr_calibrated``), its Tippett form (Hp as
  P(LLR <= x)) and its hard-coded "ELUB" fallback bounds (``paper_elub``); each split's standard ELUB
  of its own LLRs is a diagnostic, not applied.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from common.io import InputError
from common.splits import SPLITS

from . import calibration, elub, kde, metrics, plots
from .interface import SystemInterface
from .io import ScoreSet, check_scores
from .lrdata import LevelLLR, PoolLLR

PAPER_ELUB_FALLBACK = {"lower_log10": -12.0, "upper_log10": 6.5}   # hard-coded in the paper's code
MIN_VIDEOS_TRAIN = 10   # per hypothesis: 10-fold CV of the bandwidth needs at least 10 videos (paper)
NOTES = ("llr = the paper's KDE LR (KDEs re-fitted on each split's own scores); "
         "eer is the correctly interpolated EER, paper_eer the paper's code; "
         "paper_cllr_calibrated = Cllr after PAV fitted on the same split; elub = "
         "standard ELUB of that split's own LLRs (not applied), paper_elub = the code's "
         "hard-coded fallback")


class PaperSystem(SystemInterface):
    """The paper's LR system: train bandwidths per level, KDEs re-fitted on each evaluated split."""
    protocol = "paper"
    model_column = "llr_kde"
    fit_pool = "train"
    ece_keys = ("paper_cllr_calibrated",)

    def __init__(self, levels: dict[str, dict], settings, sources: dict[str, str]):
        self.levels = levels             # {level: {"bandwidth": {hp, hd}, "details": {hp, hd}}}
        self.settings = settings
        self.sources = sources           # {level: source of the train scores} (error messages)
        self.skipped: dict[str, str] = {}

    # ------------------------------------------------------------------ pools
    @classmethod
    def evaluated_pools(cls, sets: dict) -> list[str]:
        return list(SPLITS)

    @classmethod
    def check(cls, sets: dict[str, ScoreSet], what: str) -> None:
        missing = [s for s in SPLITS if s not in sets]
        if missing:
            raise InputError(f"{what}: no scores for split(s) {missing}; train, val and test are all needed")
        for s in SPLITS:
            check_scores(sets[s].scores, sets[s].labels, sets[s].source or f"{what} [{s}]")
        tr = sets["train"]
        for name, x in (("real (Hp)", tr.hp), ("fake (Hd)", tr.hd)):
            if np.ptp(x) == 0:
                raise InputError(f"{tr.source}: all {len(x)} {name} training scores are equal ({x[0]}); "
                                 f"a density cannot be fitted to them")

    @classmethod
    def min_videos(cls, pool: str) -> int:
        return MIN_VIDEOS_TRAIN if pool == "train" else super().min_videos(pool)

    # ------------------------------------------------------------------ fit and apply
    @classmethod
    def fit_pools(cls, level_sets: dict[str, dict[str, ScoreSet]], settings, score_spec=None, centroid=None,
                  conditions=None) -> "PaperSystem":
        """Bandwidths of every level from its train scores (score_spec, centroid, conditions: unused)."""
        system = cls({}, settings, {})
        for lv, sets in level_sets.items():
            cls.check(sets, lv)
            tr = sets["train"]
            system.sources[lv] = tr.source or "train scores"
            bw, details = {}, {}
            with system._errors(lv):
                for key, x in (("hp", tr.hp), ("hd", tr.hd)):
                    value, det = kde.paper_bandwidth(x, seed=settings.paper_seed)
                    bw[key] = float(value)
                    det = dict(det)
                    details[key] = {"method": "paper rule: 10-fold CV (random_state %d) then floor/skew/peak "
                                    "inflation" % settings.paper_seed, "cv_best": det.pop("cv_best", None),
                                    "bandwidth": det.pop("cv_grid", []), "score": det.pop("cv_loglik", []), **det}
            system.levels[lv] = {"bandwidth": bw, "details": details}
        return system

    @contextmanager
    def _errors(self, level: str):
        """Data the KDE code cannot fit (ValueError) as an InputError naming the train scores."""
        try:
            yield
        except InputError:
            raise
        except ValueError as exc:
            raise InputError(f"{self.sources[level]}: {level} level, {self.protocol} protocol: {exc}") from exc

    def apply(self, s: ScoreSet, pool: str, level: str) -> PoolLLR:
        """The KDEs re-fitted on ``s``'s own scores with the train bandwidths (the paper's code)."""
        bw = self.levels[level]["bandwidth"]
        with self._errors(level):
            llr = np.asarray(kde.paper_grid_llr(s.hp, s.hd, bw["hp"], bw["hd"], s.scores), float)
            lo, hi = elub.elub_bounds(llr[s.labels == 0], llr[s.labels == 1])
        return PoolLLR.of(s, llr, llr, llr, {"lower_log10": float(lo), "upper_log10": float(hi), "fitted_on": pool,
                                             "applied": False})

    def level_info(self, level: str) -> dict:
        lv = self.levels[level]
        return {"bandwidth": lv["bandwidth"], "bandwidth_details": lv["details"], "calibration": "none",
                "model": "kde"}

    # ------------------------------------------------------------------ summaries
    def summary_block(self, levels: dict[str, LevelLLR]) -> dict:
        blk = {"protocol": self.protocol, "model": "kde (paper: re-fitted on each split's own scores)",
               "calibration": "none", "score": self.settings.score, "bounds_log10": {}, "bandwidth": {},
               "bandwidth_details": {}, "monotonicity": {}, "sha256": None}
        for lv, r in levels.items():
            blk["bandwidth"][lv] = dict(r.bandwidth) if r.bandwidth else None
            blk["bandwidth_details"][lv] = r.bandwidth_details
            blk["bounds_log10"][lv] = None
            blk["monotonicity"][lv] = {}
            for s in r.pools:
                x = r.splits[s]
                hp, hd = x.by_hypothesis(x.scores)
                blk["monotonicity"][lv][s] = _monotonicity(hp, hd, r.bandwidth)
        blk["bounds_note"] = ("paper protocol: no bounds in the final LLR; each split's own standard ELUB bounds "
                              "are diagnostics (levels.<level>.<split>.elub), paper_elub the code's fallback")
        return blk

    def summary_extra(self) -> dict:
        return {"paper_notes": NOTES}

    @classmethod
    def extra_metrics(cls, sl: PoolLLR) -> dict:
        hp, hd = metrics.split_hypotheses(sl.llr, sl.labels)
        pe = metrics.paper_eer(hp, hd)
        pav = calibration.make_calibrator("pav").fit(sl.llr, sl.labels)
        phs, phd = metrics.split_hypotheses(np.asarray(pav.transform(sl.llr), float), sl.labels)
        return {"paper_eer": float(pe["eer"]), "paper_eer_extrapolated": bool(pe.get("extrapolated", False)),
                "paper_cllr_calibrated": float(metrics.cllr(phs, phd)), "paper_elub": dict(PAPER_ELUB_FALLBACK)}

    @classmethod
    def extra_eer(cls, hp: np.ndarray, hd: np.ndarray) -> dict:
        pe = metrics.paper_eer(hp, hd)
        return {"paper_eer": float(pe["eer"]), "paper_eer_extrapolated": bool(pe.get("extrapolated", False)),
                "paper_eer_method": pe.get("method")}

    @classmethod
    def extra_figures(cls, stage: str, r: LevelLLR, out) -> None:
        if stage != "11":
            return
        fig, axes = plots.new_figure(len(r.pools))
        for ax, s in zip(axes, r.pools):
            hp, hd = r.splits[s].by_hypothesis()
            plots.plot_tippett(ax, hp, hd, title=s, form="paper")
        plots.save_figure(fig, out / f"tippett_paper_form_{r.level}.png",
                          f"The paper's Tippett form (not standard), {r.level} level")

    @classmethod
    def elub_fits(cls, r: LevelLLR) -> list[tuple[str, np.ndarray, str]]:
        return [(s, np.ones(len(r.splits[s].labels)), f"fitted on {cls.pool_label(s)}") for s in r.pools]

    @classmethod
    def extra_elub(cls) -> dict:
        return {"paper_elub": dict(PAPER_ELUB_FALLBACK)}


def _monotonicity(hp, hd, bw) -> dict:
    from .models import monotonicity   # noqa: PLC0415

    lo, hi = float(min(hp.min(), hd.min())), float(max(hp.max(), hd.max()))
    return monotonicity(lambda s: kde.paper_grid_llr(hp, hd, bw["hp"], bw["hd"], s), lo, hi,
                        1.0 if metrics.auc(hp, hd) >= 0.5 else -1.0)
