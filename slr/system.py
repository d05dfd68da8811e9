"""One fitted, saved LR system (lr_validation.md section 4; issue 10 item 7).

``LRSystem`` holds everything needed to turn an item into a bounded log10 LR: the score function
(``score_spec`` and the centroid of the cosine score), per level (``frame``, optionally ``video``)
the score model fitted on calib, the calibration and the ELUB bounds (both fitted on the
cross-fitted calib LLRs), the calib data (scores, labels, groups, cross-fitted LLRs), pools and
counts, the conditions of the calib data and the validation summary.

Fitting (sound protocol v2): for each level, the calib persons are dealt into
``settings.crossfit_folds`` person-grouped folds (:func:`slr.models.group_folds`); the score model
is fitted on k-1 folds and gives the LLRs of the held-out fold (cross-fitted LLRs); the calibrator
(none | pav | logistic) is fitted on those; the ELUB bounds are fitted on the calibrated
cross-fitted LLRs with each video counted once (weights 1 / frames of the video); finally the score
model is refitted on all of calib. ``llr(x)`` = clip(calibrator(model(x)), bounds).

Storage (``save(dir)``): ``system.json`` (readable: every parameter, the settings, the validation
summary, the conditions) plus one ``.npy`` per array (no pickle: ``allow_pickle=False`` both ways)
and ``SHA256SUMS`` listing the SHA-256 of every file; the system's ``sha256`` is the SHA-256 of
that manifest. ``load(dir)`` verifies every file and refuses a missing, changed or unlisted one.
A loaded system gives bit-identical LLRs (floats are stored as ``repr`` in JSON and as float64 in
``.npy``).
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from common.io import InputError, atomic_dir, jsonable, sha256_file

from . import case_interval, model_choice
from . import models as models_mod
from .calibration import calibrator_from_state, make_calibrator
from .elub import BOUNDERS, video_weights
from .interface import SystemInterface
from .io import ScoreSet, check_disjoint, check_scores, read_score_dir
from .lrdata import LevelLLR, PoolLLR, pools_of
from .settings import Settings

FORMAT = "deepfake-slr-lr-system/1"
MANIFEST = "SHA256SUMS"
LEVELS = ("frame", "video")
SOUND_REQUIRED = ("calib", "test")
SOUND_OPTIONAL = ("train", "val")
DIAGNOSTIC = "detector-training data, diagnostic only"
NO_CALIB = ("the sound protocol fits the LR system on a 'calib' pool of persons that the detector never saw, and "
            "there is none: make one with split.ratios of 4 values [train, val, calib, test] (e.g. "
            "[0.45, 0.15, 0.25, 0.15]) and re-run stages 02-08 (stage 08 then writes calib.csv), give "
            "run_scores a DIR/calib.csv, or use slr.protocol=paper")
BOUNDS_FITTED_ON = "calib (cross-fitted, each video counted once)"


@dataclass
class LevelModel:
    """The fitted system of one level."""
    level: str
    model: models_mod.ScoreModel
    calibration: str
    calibrator: Any
    lower_log10: float
    upper_log10: float
    calib: dict = field(default_factory=dict)        # arrays: scores, labels, video_ids, person_ids, cf_* LLRs
    crossfit: dict = field(default_factory=dict)     # k, seed, folds description
    monotonicity: dict = field(default_factory=dict)  # {"model": {...}, "final": {...}}
    counts: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)      # wall seconds per fitting step (not saved)
    cpu_timings: dict = field(default_factory=dict)  # CPU seconds of the process per fitting step (not saved)
    model_choice: dict | None = None                 # slr.model auto: candidates' CV Cllr and the choice
    case_band: dict | None = None                    # slr.case_interval: 95 % band of the LLR on a score grid

    def llr_parts(self, scores: Any) -> dict[str, np.ndarray]:
        """``{"model": score-model LLR, "calibrated": after calibration, "llr": after the bounds}``."""
        x = np.asarray(scores, dtype=np.float64)
        m = self.model.llr(x)
        c = np.asarray(self.calibrator.transform(m), dtype=np.float64)
        return {"model": m, "calibrated": c, "llr": np.clip(c, self.lower_log10, self.upper_log10)}

    def llr(self, scores: Any, bounded: bool = True) -> np.ndarray:
        p = self.llr_parts(scores)
        return p["llr"] if bounded else p["calibrated"]

    def bandwidth(self) -> dict | None:
        return dict(self.model.bandwidth) if isinstance(self.model, models_mod.KDEModel) else None

    def interval(self, scores: Any) -> tuple[np.ndarray, np.ndarray] | None:
        """95 % interval (log10) of the LLRs at ``scores`` from the stored band; None without one."""
        return case_interval.interval_at(self.case_band, scores) if self.case_band else None

    def describe(self) -> dict:
        return {"model": self.model.describe(), "calibration": self.calibration,
                "bounds_log10": [self.lower_log10, self.upper_log10], "crossfit": self.crossfit,
                "monotonicity": self.monotonicity, "counts": self.counts, "model_choice": self.model_choice,
                "case_interval": case_interval.band_state(self.case_band)[0]}


def _check_calib(s: ScoreSet, level: str, settings: Settings) -> None:
    src = s.source or f"calib scores ({level} level)"
    check_scores(s.scores, s.labels, src)
    persons = s.persons()
    uniq = np.unique(persons)
    if len(uniq) < 2:
        raise InputError(f"{src}: rows 2-{len(s) + 1}: every item belongs to person '{uniq[0]}'; the calib pool needs "
                         f"at least 2 persons (better 10 or more) for person-grouped cross-fitting: give calib more "
                         f"persons (split.ratios, 4 values: train, val, calib, test)")
    videos = s.videos()
    for lab, name in ((0, "real (label 0, Hp)"), (1, "fake (label 1, Hd)")):
        nv = len(np.unique(videos[s.labels == lab]))
        if nv < 2:
            row = int(np.argmax(s.labels == lab)) + 2
            raise InputError(f"{src}: row {row}: the calib pool has {nv} {name} video; fitting needs at least 2 "
                             f"videos per class (better 10 or more): give calib more persons (split.ratios)")


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _lap(timings: dict, cpu: dict, key: str, t0: tuple[float, float]) -> None:
    """Record the wall and CPU seconds since ``t0`` under ``key``."""
    now = _clock()
    timings[key], cpu[key] = now[0] - t0[0], now[1] - t0[1]


@case_interval.single_blas
def _crossfit_llrs(make_model, x, y, videos, fold, k: int, where: str, desc: str) -> np.ndarray:
    """Each calib score's model LLR from the model fitted on the other folds (>= 2 videos per class)."""
    cf_model = np.empty(len(x))
    for i in tqdm(range(k), desc=desc, unit="fold", leave=False, disable=None):
        tr, te = fold != i, fold == i
        for lab, name in ((0, "real"), (1, "fake")):
            if len(np.unique(videos[tr & (y == lab)])) < 2:
                raise InputError(f"{where} fold {i + 1} of {k} leaves fewer than 2 {name} videos to "
                                 f"fit on; give calib more persons or lower slr.crossfit_folds")
        cf_model[te] = make_model().fit(x[tr], y[tr], videos[tr]).llr(x[te])
    return cf_model


def fit_level_model(calib: ScoreSet, settings: Settings, level: str = "frame") -> LevelModel:
    """Fit one level's system on ``calib`` (module docstring). InputError on unusable data."""
    _check_calib(calib, level, settings)
    src = calib.source or "calib scores"
    x, y = np.asarray(calib.scores, np.float64), np.asarray(calib.labels, np.int64)
    videos, persons = calib.videos(), calib.persons()
    fold, k = models_mod.group_folds(persons, settings.crossfit_folds, settings.seed, y)
    timings, cpu = {}, {}
    t0 = _clock()
    try:
        make_model, choice = model_choice.model_factory(settings, x, y, videos, persons)
        _lap(timings, cpu, "model_choice_s", t0)
        t0 = _clock()
        cf_model = _crossfit_llrs(make_model, x, y, videos, fold, k, f"{src}: cross-fitting",
                                  f"cross-fitting ({level}, {settings.model})")
        _lap(timings, cpu, "crossfit_s", t0)
        t0 = _clock()
        final = make_model().fit(x, y, videos)
        _lap(timings, cpu, "final_fit_s", t0)
        t0 = _clock()
        cal = make_calibrator(settings.calibration)
        cal.fit(cf_model, y)
        cf_cal = np.asarray(cal.transform(cf_model), np.float64)
        weights = video_weights(videos)
        bounder = BOUNDERS.get(settings.bounds)().fit(cf_cal, y, weights)
        _lap(timings, cpu, "calibration_elub_s", t0)
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{src}: {level} level, model {settings.model}: {exc}") from exc
    lo, hi = float(bounder.lower_log10), float(bounder.upper_log10)
    cf = np.clip(cf_cal, lo, hi)
    lm = LevelModel(level, final, settings.calibration, cal, lo, hi, model_choice=choice)
    lm.calib = {"scores": x.copy(), "labels": y.copy(), "video_ids": videos.astype(str),
                "person_ids": persons.astype(str), "cf_llr_model": cf_model, "cf_llr_calibrated": cf_cal,
                "cf_llr": cf, "cf_fold": fold.astype(np.int64)}
    lm.crossfit = {"k": int(k), "seed": int(settings.seed), "grouped_by": "person",
                   "elub": f"{settings.bounds} bounds fitted on the calibrated cross-fitted calib LLRs, each video "
                           f"counted once (frame weights 1 / frames of the video)",
                   "calibration": f"{settings.calibration}, fitted on the cross-fitted calib LLRs"}
    lo_s, hi_s = float(x.min()), float(x.max())
    t0 = _clock()
    lm.monotonicity = {"model": models_mod.monotonicity(final.llr, lo_s, hi_s, final.direction),
                       "final": models_mod.monotonicity(lambda s: lm.llr(s, bounded=False), lo_s, hi_s,
                                                        final.direction)}
    _lap(timings, cpu, "monotonicity_s", t0)
    lm.counts = calib.counts()
    if settings.case_interval_n > 0:
        t0 = _clock()
        lm.case_band = case_interval.case_interval_band(lm, settings.case_interval_n, settings.case_interval_seed,
                                                        settings.bounds)
        _lap(timings, cpu, "case_interval_s", t0)
    lm.timings, lm.cpu_timings = timings, cpu     # not saved (would change the SHA-256 between identical fits)
    return lm


def calib_conditions(s: ScoreSet) -> dict:
    """Conditions of the calib data that the scores themselves tell (frames per video, score range);
    stage 10 adds these to the LR system's ``conditions`` (casework compares items with them)."""
    _, counts = np.unique(s.videos(), return_counts=True)
    return {"frames_per_video": {"min": int(counts.min()), "median": float(np.median(counts)),
                                 "max": int(counts.max())},
            "score_range": [float(np.min(s.scores)), float(np.max(s.scores))],
            "n_persons": int(len(np.unique(s.persons()))), "n_videos": int(len(counts)), "n_frames": int(len(s))}


class LRSystem(SystemInterface):
    """The fitted LR system of the sound protocol (module docstring; the interface: slr.interface).
    Attributes: ``levels`` ({level: LevelModel}), ``score_spec``, ``centroid``, ``conditions``, ``pools``,
    ``validation``, ``settings``, ``sha256``, ``skipped`` ({level: why it was not fitted})."""
    protocol = "sound"
    saves = True

    def __init__(self, levels: dict[str, LevelModel], score_spec: dict, centroid: np.ndarray | None = None,
                 conditions: dict | None = None, pools: dict | None = None, validation: dict | None = None,
                 settings: Settings | None = None):
        self.levels = levels
        self.score_spec = dict(score_spec or {})
        self.centroid = None if centroid is None else np.asarray(centroid, dtype=np.float64)
        self.conditions = dict(conditions or {})
        self.pools = dict(pools or {})
        self.validation = dict(validation or {})
        self.settings = settings or Settings()
        self.detector: dict = {}          # the detector pass behind the scores (training/identity.py)
        self.sha256: str | None = None
        self.skipped: dict[str, str] = {}

    # ------------------------------------------------------------------ fitting and use
    @classmethod
    def fit(cls, calib: dict[str, ScoreSet], settings: Settings | dict, score_spec: dict | str,
            centroid: np.ndarray | None = None, conditions: dict | None = None, optional: tuple = ()) -> "LRSystem":
        """Fit every level in ``calib`` ({"frame": ScoreSet, "video": ScoreSet?}) on calib only. A level
        in ``optional`` that cannot be fitted is left out (``system.skipped`` says why)."""
        if isinstance(settings, dict):
            settings = Settings.from_dict(settings)
        if isinstance(score_spec, str):
            score_spec = {"name": score_spec}
        if "frame" not in calib:
            raise InputError("LRSystem.fit: no frame-level calib scores; the calib pool is needed "
                             "(split.ratios with 4 values: train, val, calib, test)")
        levels, skipped = {}, {}
        for lv, s in calib.items():
            try:
                levels[lv] = fit_level_model(s, settings, lv)
            except InputError as exc:
                if lv not in optional:
                    raise
                skipped[lv] = f"the calib {lv}s cannot be fitted: {exc}"
        pools = {"calib": calib["frame"].counts()}
        system = cls(levels, score_spec, centroid, conditions, pools, {}, settings)
        system.skipped = skipped
        return system

    @classmethod
    def fit_pools(cls, level_sets: dict[str, dict[str, ScoreSet]], settings: Settings, score_spec: dict | None = None,
                  centroid: np.ndarray | None = None, conditions: dict | None = None) -> "LRSystem":
        """Fit on the calib pool of every level (``LRSystem.fit``: the fit the saved system records); the
        system's ``pools`` count every pool and its conditions add those the calib scores tell."""
        sets = level_sets["frame"]
        check_disjoint(sets)
        system = cls.fit({lv: ls["calib"] for lv, ls in level_sets.items()}, settings,
                         dict(score_spec or {"name": settings.score}), centroid,
                         {"calib": calib_conditions(sets["calib"]), **(conditions or {})}, optional=("video",))
        system.pools = {p: sets[p].counts() for p in pools_of(sets)}
        return system

    def level(self, level: str) -> LevelModel:
        if level not in self.levels:
            raise InputError(f"the LR system has no '{level}' level (it has {sorted(self.levels)})")
        return self.levels[level]

    def llr(self, scores: Any, level: str = "frame", bounded: bool = True) -> np.ndarray:
        """Final log10 LR (bounded by the ELUB bounds unless ``bounded=False``) of ``scores``."""
        return self.level(level).llr(scores, bounded)

    def llr_parts(self, scores: Any, level: str = "frame") -> dict[str, np.ndarray]:
        return self.level(level).llr_parts(scores)

    def bounds_log10(self, level: str = "frame") -> tuple[float, float]:
        lm = self.level(level)
        return lm.lower_log10, lm.upper_log10

    def bandwidth(self, level: str = "frame") -> dict | None:
        return self.level(level).bandwidth()

    def calib_scores(self, level: str = "frame") -> tuple[np.ndarray, np.ndarray]:
        """(Hp, Hd) calib scores of ``level``."""
        c = self.level(level).calib
        return c["scores"][c["labels"] == 0], c["scores"][c["labels"] == 1]

    def crossfit_llr(self, level: str = "frame") -> dict[str, np.ndarray]:
        """The calib items with their cross-fitted LLRs (``cf_llr`` final, ``cf_llr_model``, ...)."""
        return dict(self.level(level).calib)

    def score(self, features=None, logit=None, fake_probability=None) -> np.ndarray:
        """Scores of new items under ``score_spec`` (slr.scores.score_values, as stage 08)."""
        from .scores import score_values   # noqa: PLC0415 (stage 08's function; one definition)

        return score_values(self.score_spec.get("name", "cosine_centroid"), features=features,
                            centroid=self.centroid, logit=logit, fake_probability=fake_probability)

    def with_conditions(self, extra: dict) -> "LRSystem":
        new = copy.copy(self)
        new.conditions = {**self.conditions, **dict(extra)}
        new.sha256 = None
        return new

    def describe(self) -> dict:
        """The readable part of system.json (no arrays)."""
        return {"format": FORMAT, "score": self.score_spec, "settings": self.settings.to_dict(),
                "levels": {lv: lm.describe() for lv, lm in self.levels.items()},
                "bounds_log10": {lv: [lm.lower_log10, lm.upper_log10] for lv, lm in self.levels.items()},
                "bandwidth": {lv: lm.bandwidth() for lv, lm in self.levels.items()},
                "pools": self.pools, "conditions": self.conditions, "detector": self.detector, "sha256": self.sha256}

    # ------------------------------------------------------------------ the protocol's hooks (slr.interface)
    @classmethod
    def read_pools(cls, directory: str | Path, context: str = "") -> dict[str, ScoreSet]:
        d = Path(directory)
        if d.is_dir() and not (d / "calib.csv").is_file():
            raise InputError(f"{d / 'calib.csv'}: score file not found{context}; {NO_CALIB}")
        return read_score_dir(d, SOUND_REQUIRED, SOUND_OPTIONAL, disjoint=True)

    @classmethod
    def check(cls, sets: dict[str, ScoreSet], what: str) -> None:
        if "calib" not in sets:
            raise InputError(f"{what}: no calib pool: {NO_CALIB}")
        if "test" not in sets:
            raise InputError(f"{what}: no test pool; the sound protocol needs calib and test scores")
        super().check(sets, what)

    @classmethod
    def pool_label(cls, pool: str) -> str:
        """train/val are marked as detector-training data, calib as cross-fitted."""
        return {"train": f"train ({DIAGNOSTIC})", "val": f"val ({DIAGNOSTIC})",
                "calib": "calib (cross-fitted)"}.get(pool, pool)

    @classmethod
    def pool_role(cls, pool: str) -> str:
        return {"train": DIAGNOSTIC, "val": DIAGNOSTIC, "calib": "cross-fitted LLRs (fitting data)",
                "test": "validation"}.get(pool, "other")

    @classmethod
    def elub_fits(cls, r: LevelLLR) -> list[tuple[str, np.ndarray, str]]:
        """The bounds are fitted on calib, each video counted once."""
        return [("calib", video_weights(r.splits["calib"].videos()),
                 f"fitted on {cls.pool_label('calib')}, each video once")]

    def apply(self, s: ScoreSet, pool: str, level: str) -> PoolLLR:
        """LLRs of ``s``; the calib pool (the fitting data) gets its cross-fitted LLRs."""
        lm = self.level(level)
        if pool == "calib":
            c = lm.calib
            parts = {"model": c["cf_llr_model"], "calibrated": c["cf_llr_calibrated"], "llr": c["cf_llr"]}
        else:
            parts = lm.llr_parts(s.scores)
        return PoolLLR.of(s, parts["model"], parts["calibrated"], parts["llr"],
                          {"lower_log10": lm.lower_log10, "upper_log10": lm.upper_log10,
                           "fitted_on": BOUNDS_FITTED_ON, "applied": True})

    def level_info(self, level: str) -> dict:
        lm = self.level(level)
        details = lm.model.details if hasattr(lm.model, "details") else {"model": lm.model.describe()}
        return {"bandwidth": lm.bandwidth() or {}, "bandwidth_details": details,
                "calibration": self.settings.calibration, "model": self.settings.model}

    def llr_curve(self, level: str) -> LevelModel:
        return self.level(level)

    def summary_block(self, levels: dict[str, LevelLLR]) -> dict:
        st = self.settings
        blk = {"protocol": self.protocol, "model": st.model, "calibration": st.calibration, "score": st.score,
               "bounds": st.bounds,
               "bounds_log10": {}, "bandwidth": {}, "bandwidth_details": {}, "monotonicity": {}, "sha256": None}
        for lv, r in levels.items():
            lm = self.level(lv)
            blk["bandwidth"][lv] = dict(r.bandwidth) if r.bandwidth else None
            blk["bandwidth_details"][lv] = r.bandwidth_details
            blk["bounds_log10"][lv] = [lm.lower_log10, lm.upper_log10]
            blk["monotonicity"][lv] = lm.monotonicity
            blk.setdefault("crossfit", {})[lv] = lm.crossfit
            blk.setdefault("direction", {})[lv] = lm.model.direction
            blk.setdefault("model_details", {})[lv] = lm.model.describe()
            blk.setdefault("model_choice", {})[lv] = lm.model_choice
            blk.setdefault("case_interval", {})[lv] = case_interval.band_state(lm.case_band)[0]
        blk["conditions"] = self.conditions
        return blk

    # ------------------------------------------------------------------ storage
    def save(self, directory: str | Path) -> str:
        """Write the system to ``directory`` (replaced atomically); returns its SHA-256."""
        directory = Path(directory)
        with atomic_dir(directory) as tmp:
            arrays: dict[str, np.ndarray] = {}
            levels = {}
            for lv, lm in self.levels.items():
                mmeta, marr = lm.model.state()
                cmeta, carr = lm.calibrator.state()
                bmeta, barr = case_interval.band_state(lm.case_band)
                for part, d in (("model", marr), ("calibrator", carr), ("calib", lm.calib), ("case_band", barr)):
                    for name, a in d.items():
                        arrays[f"{lv}.{part}.{name}"] = np.asarray(a)
                levels[lv] = {"model": mmeta, "calibrator": cmeta, "lower_log10": lm.lower_log10,
                              "upper_log10": lm.upper_log10, "crossfit": lm.crossfit,
                              "monotonicity": lm.monotonicity, "counts": lm.counts,
                              "model_choice": lm.model_choice, "case_interval": bmeta,
                              "arrays": sorted(k for k in arrays if k.startswith(f"{lv}."))}
            if self.centroid is not None:
                arrays["centroid"] = self.centroid
            files = {}
            for name, a in arrays.items():
                if a.dtype == object:
                    raise ValueError(f"LRSystem.save: array {name} has dtype object (not storable without pickle)")
                fname = f"{name}.npy"
                np.save(tmp / fname, a, allow_pickle=False)
                files[name] = fname
            doc = {"format": FORMAT, "score_spec": self.score_spec, "settings": self.settings.to_dict(),
                   "levels": levels, "centroid": files.get("centroid"), "arrays": files,
                   "pools": self.pools, "conditions": self.conditions, "validation": self.validation,
                   "detector": self.detector,
                   "note": "LLR = log10 LR, Hp = real (label 0) in the numerator; final LLR = "
                           "clip(calibrator(model(score)), lower_log10, upper_log10)"}
            (tmp / "system.json").write_text(json.dumps(jsonable(doc), indent=2) + "\n")
            lines = [f"{sha256_file(tmp / f)}  {f}" for f in sorted(["system.json", *files.values()])]
            manifest = "\n".join(lines) + "\n"
            (tmp / MANIFEST).write_text(manifest)
            sha = hashlib.sha256(manifest.encode()).hexdigest()
        self.sha256 = sha
        return sha

    @classmethod
    def load(cls, directory: str | Path) -> "LRSystem":
        """Read a saved system, verifying every file against SHA256SUMS (InputError naming the file)."""
        directory = Path(directory)
        man = directory / MANIFEST
        if not man.is_file():
            raise InputError(f"{man}: LR system manifest not found; {directory} is not a saved LR system "
                             f"(stage 10 writes one into its output folder, system/)")
        text = man.read_text()
        listed = {}
        for i, line in enumerate(text.splitlines(), start=1):
            parts = line.split("  ", 1)
            if len(parts) != 2 or len(parts[0]) != 64:
                raise InputError(f"{man}: line {i} is not '<sha256>  <file>'; the manifest was altered: "
                                 f"re-run stage 10")
            listed[parts[1]] = parts[0]
        for name, digest in listed.items():
            p = directory / name
            if not p.is_file():
                raise InputError(f"{p}: file of the LR system is missing; restore it or re-run stage 10")
            if sha256_file(p) != digest:
                raise InputError(f"{p}: SHA-256 differs from {MANIFEST}: the LR system was changed after it was "
                                 f"saved; restore the original or re-run stage 10")
        extra = sorted(p.name for p in directory.iterdir() if p.is_file() and p.name != MANIFEST
                       and p.name not in listed)
        if extra:
            raise InputError(f"{directory / extra[0]}: file not listed in {MANIFEST}; an LR system folder holds "
                             f"only its own files: remove it")
        if "system.json" not in listed:
            raise InputError(f"{man}: system.json is not listed; re-run stage 10")
        doc = json.loads((directory / "system.json").read_text())
        if doc.get("format") != FORMAT:
            raise InputError(f"{directory / 'system.json'}: format {doc.get('format')!r}, expected {FORMAT!r}")
        arrays = {k: np.load(directory / f, allow_pickle=False) for k, f in doc["arrays"].items()}
        settings = Settings.from_dict(doc["settings"])
        levels = {}
        for lv, d in doc["levels"].items():
            def part(p, lv=lv):
                pre = f"{lv}.{p}."
                return {k[len(pre):]: v for k, v in arrays.items() if k.startswith(pre)}
            model = models_mod.model_from_state(d["model"], part("model"))
            cal = calibrator_from_state(d["calibrator"], part("calibrator"))
            lm = LevelModel(lv, model, d["calibrator"]["name"], cal, float(d["lower_log10"]), float(d["upper_log10"]),
                            part("calib"), d["crossfit"], d["monotonicity"], d["counts"],
                            model_choice=d.get("model_choice"),
                            case_band=case_interval.band_from_state(d.get("case_interval"), part("case_band")))
            levels[lv] = lm
        sys_ = cls(levels, doc["score_spec"], arrays.get("centroid"), doc.get("conditions"), doc.get("pools"),
                   doc.get("validation"), settings)
        sys_.detector = dict(doc.get("detector") or {})
        sys_.sha256 = hashlib.sha256(text.encode()).hexdigest()
        return sys_


def system_files(directory: str | Path) -> list[str]:
    """Names of the files of a saved system (from its manifest)."""
    man = Path(directory) / MANIFEST
    return [ln.split("  ", 1)[1] for ln in man.read_text().splitlines() if "  " in ln] + [MANIFEST]


__all__ = ["LRSystem", "LevelModel", "fit_level_model", "system_files", "FORMAT"]
