"""Robustness as a validation characteristic (stage 15): the saved LR system under degraded images.

The stage takes the ``test`` pool's frames (split file + ``dataset.root``), applies every configured
degradation (``robustness.degradations``: family -> strengths, see :mod:`common.degrade`) at every
strength, scores the result with the run's detector (stage 03's checkpoint, stage 04's transforms)
and the saved LR system (``10_kde_lr/system``; nothing is refitted), and measures, per setting and
at frame and video level: Cllr, Cllr_min, Cllr_cal, EER, AUC, both rates of misleading evidence and
the share of LRs of 10 or more in the wrong direction (``strong_misleading_hp`` = P(LLR <= -1 | real),
``strong_misleading_hd`` = P(LLR >= 1 | fake)), with 95 % person-cluster bootstrap intervals.

Where each family is applied: ``downscale`` degrades the *source frame* (stage 01's video or image,
found through ``<dataset.root>/manifest.csv`` and ``preprocessing.input``) and re-crops it with stage
01's cropper (landmarks predicted on the degraded frame inside stage 01's face box, same alignment);
when no source frames are available (a dataset of crops only, such as UADFV) it degrades the crop and
the summary says so. The other families degrade the aligned crop. The clean setting (identity
strength, ``None``) is the stored crop itself, so it reproduces stage 04's input exactly.

Validated range (:func:`validated_range`): per family, the strongest setting up to which every
setting, from clean on, meets the criteria (``robustness.criteria``, default ``report.criteria``) on
the interval's pessimistic end (upper end for ``max`` criteria, lower end for ``min``), at every
level the criterion applies to. It is written into the system's conditions and the system saved as
``15_robustness/system/`` (new SHA-256); :func:`slr.saved.casework_system_dir` says which system casework uses.
The conditions' format is documented in ``docs/robustness.md``.

Determinism and resume: noise draws are seeded per image (``robustness.seed``, family, strength,
image path); the bootstrap uses the same seed for every setting. Each finished setting's per-frame
scores are kept in ``15_robustness/.resume/<setting>.json`` with a key over everything that
determines them (system, checkpoint, frames, seed, code version); a re-run after an interruption
reuses them and only computes what is missing.
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from common import degrade as DG
from common.config import Config, ConfigError
from common.io import InputError, read_csv, sha256_file, write_csv, write_json
from common.stages import folder
from slr.bootstrap import clopper_pearson_upper_zero, level_metrics, strong_misleading_ci  # noqa: F401
from slr.metrics import STRONG_LLR, strong_misleading  # noqa: F401
from slr.saved import BASE_STAGE, STAGE, SYSTEM_SUBDIR, base_system_dir, casework_system_dir, robust_system_dir  # noqa: F401
from .robust_pool import (PoolFrames, Scorer, _resume_key, degraded_crops,  # noqa: F401
                          load_resumed, load_test_frames, person_ids, read_crop, recrop_check, run_identity,
                          select_frames, source_index)

log = logging.getLogger(__name__)

LEVELS = ("frame", "video")
# metrics measured per setting (all "lower is better" except auc)
METRICS = ("cllr", "cllr_min", "cllr_cal", "eer", "auc", "misleading_hp", "misleading_hd",
           "strong_misleading_hp", "strong_misleading_hd")
CONDITION_KEYS = {"jpeg": "min_quality", "downscale": "min_factor", "blur": "max_sigma", "noise": "max_sigma"}


# ------------------------------------------------------------------------------------------ settings
def parse_degradations(value: Any, source: str = "config") -> dict[str, list]:
    """``robustness.degradations`` checked: {family: [strength, ...]} in the configured order."""
    if value is None:
        return {f: list(v) for f, v in DG.DEFAULT_DEGRADATIONS.items()}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: robustness.degradations must be a mapping family -> list of strengths, e.g. "
                          f"{{jpeg: [90, 50], blur: [1]}}; got {value!r}")
    out = {}
    for fam, strengths in value.items():
        if fam not in DG.FAMILIES:
            raise ConfigError(f"{source}: robustness.degradations.{fam}: unknown degradation; known: "
                              f"{', '.join(DG.FAMILIES)}")
        if not isinstance(strengths, list):
            raise ConfigError(f"{source}: robustness.degradations.{fam} must be a list of strengths, got {strengths!r}")
        clean = []
        for i, s in enumerate(strengths):
            try:
                DG.check_strength(fam, s)
            except DG.DegradationError as exc:
                raise ConfigError(f"{source}: robustness.degradations.{fam}[{i}]: {exc}") from None
            if s is None or DG.is_identity(fam, s):
                raise ConfigError(f"{source}: robustness.degradations.{fam}[{i}] = {s!r} is the identity (no change); "
                                  f"the clean setting is always measured, list only real degradations")
            s = int(s) if fam == "jpeg" else float(s)
            if s in clean:
                raise ConfigError(f"{source}: robustness.degradations.{fam}: strength {s!r} is listed twice")
            clean.append(s)
        out[str(fam)] = clean
    return out


@dataclass
class Settings:
    degradations: dict
    seed: int
    max_frames: int | None
    criteria: list
    criteria_key: str
    bootstrap_n: int
    upscale: str

    @classmethod
    def from_config(cls, cfg: Config) -> "Settings":
        """The ``robustness`` section (defaults in common/schema.py), checked; ``bootstrap_n: null``
        means ``slr.bootstrap.n``."""
        src = cfg.source
        degr = parse_degradations(cfg.get("robustness.degradations"), src)
        seed = cfg.get("robustness.seed")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{src}: robustness.seed must be an integer, got {seed!r}")
        mf = cfg.get("robustness.max_frames")
        if mf is not None and (isinstance(mf, bool) or not isinstance(mf, int) or mf < 2):
            raise ConfigError(f"{src}: robustness.max_frames must be null (all test frames) or an integer >= 2, got {mf!r}")
        criteria = [dict(c) for c in cfg.get("robustness.criteria") or []]   # checked by the schema
        bn = cfg.get("robustness.bootstrap_n")
        if bn is None:
            bn = cfg.get("slr.bootstrap.n")
        if isinstance(bn, bool) or not isinstance(bn, int) or bn < 0:
            raise ConfigError(f"{src}: robustness.bootstrap_n must be an integer >= 0 (0 = no intervals), got {bn!r}")
        up = cfg.get("robustness.upscale")
        if up not in ("linear", "cubic"):
            raise ConfigError(f"{src}: robustness.upscale must be linear or cubic, got {up!r}")
        return cls(degr, int(seed), mf, criteria, "robustness.criteria", int(bn), str(up))

    def settings_list(self) -> list[tuple[str, Any]]:
        """(family, strength) of every setting: the clean one first, then each family mildest first."""
        out: list[tuple[str, Any]] = [("clean", None)]
        for fam, strengths in self.degradations.items():
            out += [(fam, s) for s in DG.severity_order(fam, strengths)]
        return out


def setting_label(family: str, strength: Any) -> str:
    return "clean" if family == "clean" else DG.strength_label(family, strength)


# ------------------------------------------------------------------------------------------ validated range
def _pessimistic(row: dict, metric: str, bound: str) -> tuple[float | None, str]:
    """The value a criterion is judged on: the interval's upper end for ``max``, lower for ``min``;
    the point value when there is no interval (said in the second element)."""
    ci = (row.get("ci95") or {}).get(metric)
    if ci is not None and len(ci) == 2 and ci[0] is not None and ci[1] is not None \
            and not any(isinstance(v, float) and math.isnan(v) for v in ci):
        return float(ci[1] if bound == "max" else ci[0]), "ci95"
    v = row.get(metric)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None, "missing"
    return float(v), "point"


def judge_setting(rows_by_level: dict[str, dict], criteria: Sequence[dict]) -> dict:
    """Whether one setting meets every applicable criterion. ``rows_by_level``: {level: metrics row}.
    A criterion without ``level`` applies to every level present; a missing value fails (never a pass).
    Criteria on metrics not measured per setting (e.g. ``elub_range``) are skipped and listed."""
    checks, skipped = [], []
    for c in criteria:
        metric = str(c["metric"])
        if metric not in METRICS:
            skipped.append(metric)
            continue
        bound = "max" if "max" in c else "min"
        limit = float(c[bound])
        for level in ([c["level"]] if c.get("level") else [lv for lv in LEVELS if lv in rows_by_level]):
            row = rows_by_level.get(level)
            value, basis = _pessimistic(row, metric, bound) if row is not None else (None, "missing")
            ok = value is not None and (value <= limit if bound == "max" else value >= limit)
            checks.append({"metric": metric, "level": level, "criterion": f"{metric} {'<=' if bound == 'max' else '>='} "
                           f"{limit:g}", "judged_value": value, "basis": basis, "pass": bool(ok)})
    return {"pass": bool(checks) and all(ch["pass"] for ch in checks), "checks": checks,
            "skipped_metrics": sorted(set(skipped))}


def validated_range(table: Sequence[dict], criteria: Sequence[dict]) -> dict:
    """Per family, the strongest validated setting.

    ``table``: rows ``{family, strength, level, <metrics>, ci95: {metric: [lo, hi]}}``, with the clean
    rows as ``family: "clean"`` (strength None). Settings of a family are walked from clean to the
    strongest (:func:`common.degrade.severity_order`); the validated range ends before the first
    setting that fails, so it is always contiguous from clean. Returns ``{family: {"strongest": s or
    None, "status", "clean_passes", "settings": [{strength, pass, checks}], "first_failure"}}``;
    ``strongest`` is None when clean or the mildest setting already fails (status says which).
    Pure: no I/O.
    """
    if not criteria:
        raise ValueError("validated_range needs at least one criterion")
    by_setting: dict[tuple, dict] = {}
    for r in table:
        key = (r["family"], None if r["family"] == "clean" else r["strength"])
        by_setting.setdefault(key, {})[r["level"]] = r
    clean = by_setting.get(("clean", None))
    clean_j = judge_setting(clean, criteria) if clean else {"pass": False, "checks": [], "skipped_metrics": []}
    families = [f for f in dict.fromkeys(r["family"] for r in table) if f != "clean"]
    out = {}
    for fam in families:
        strengths = DG.severity_order(fam, [k[1] for k in by_setting if k[0] == fam])
        settings, strongest, first_failure = [], None, None
        ok_so_far = clean_j["pass"]
        for s in strengths:
            j = judge_setting(by_setting[(fam, s)], criteria)
            settings.append({"strength": s, "pass": j["pass"], "checks": j["checks"]})
            if ok_so_far and j["pass"]:
                strongest = s
            elif ok_so_far:
                ok_so_far, first_failure = False, s
        if not clean_j["pass"]:
            status = "not validated: the clean system fails the criteria"
        elif strongest is None:
            status = "clean only: the mildest tested setting fails"
        elif strongest == strengths[-1]:
            status = "validated up to the strongest tested setting"
        else:
            status = f"validated up to {strongest!r}; {first_failure!r} fails"
        out[fam] = {"strongest": strongest, "status": status, "clean_passes": clean_j["pass"],
                    "tested": strengths, "settings": settings, "first_failure": first_failure}
    return out


def conditions_from_range(vrange: dict, table: Sequence[dict]) -> dict:
    """The ``validated_degradations`` condition written into the system (format: docs/robustness.md):
    ``{"jpeg": {"min_quality": 50, ...}, "downscale": {"min_factor": 0.5, ...}, "blur": {"max_sigma": 1, ...},
    "noise": {"max_sigma": 5, ...}}``, each with ``status``, ``tested`` and the family's raw ``table``."""
    out = {}
    for fam, v in vrange.items():
        rows = [r for r in table if r["family"] in ("clean", fam)]
        out[fam] = {CONDITION_KEYS[fam]: v["strongest"], "status": v["status"], "tested": list(v["tested"]),
                    "passed": [s["strength"] for s in v["settings"] if s["pass"]],
                    "table": [{k: r.get(k) for k in ("family", "strength", "level", *METRICS, "ci95",
                                                     "n_hp", "n_hd", "n_persons")} for r in rows]}
    return out


# ------------------------------------------------------------------------------------------ the stage
@dataclass
class SettingResult:
    family: str
    strength: Any
    label: str
    applied_to: str
    scores: np.ndarray
    llr: dict = field(default_factory=dict)       # level -> LLRs
    rows: dict = field(default_factory=dict)      # level -> metrics
    seconds: float = 0.0
    resumed: bool = False


def level_data(system, frames: PoolFrames, scores: np.ndarray) -> dict:
    """{level: (llr, labels, persons, videos)} for the system's levels (video: mean frame score)."""
    from common.videos import video_means
    out = {"frame": (np.asarray(system.llr(scores, level="frame"), float), frames.labels, frames.persons,
                     frames.videos)}
    if "video" in getattr(system, "levels", {}):
        vm = video_means(frames.videos, scores, frames.labels)
        person_of = dict(zip(frames.videos, frames.persons))
        out["video"] = (np.asarray(system.llr(vm.scores, level="video"), float), vm.labels,
                        np.array([person_of[v] for v in vm.video_ids]), vm.video_ids)
    return out


def table_rows(results: Sequence[SettingResult]) -> list[dict]:
    rows = []
    for r in results:
        for level, m in r.rows.items():
            rows.append({"family": r.family, "strength": r.strength, "setting": r.label, "applied_to": r.applied_to,
                         "level": level, **m})
    return rows


def csv_columns(rows: Sequence[dict]) -> dict:
    cols: dict[str, list] = {k: [] for k in ("family", "strength", "setting", "applied_to", "level", "n_hp", "n_hd",
                                             "n_persons", "n_videos")}
    for m in METRICS:
        cols[m], cols[f"{m}_lo"], cols[f"{m}_hi"] = [], [], []
    for r in rows:
        for k in ("family", "strength", "setting", "applied_to", "level", "n_hp", "n_hd", "n_persons", "n_videos"):
            cols[k].append("" if r.get(k) is None else r[k])
        for m in METRICS:
            ci = (r.get("ci95") or {}).get(m) or [math.nan, math.nan]
            cols[m].append(float(r[m]))
            cols[f"{m}_lo"].append(float(ci[0]))
            cols[f"{m}_hi"].append(float(ci[1]))
    return cols


def compare_with_stage08(cfg: Config, frames: PoolFrames, clean_scores: np.ndarray) -> dict:
    """Largest |difference| between this stage's clean scores and stage 08's test scores (same frames)."""
    p = cfg.path("slr.scores_dir") or cfg.stage_dir("08", create=False)
    p = Path(p) / "test.csv"
    if not p.is_file():
        return {"available": False, "file": str(p)}
    cols = read_csv(p, required=("image_path", "score"))
    ref = {ip: float(v) for ip, v in zip(cols["image_path"], cols["score"])}
    common = [(i, ref[s.path]) for i, s in enumerate(frames.samples) if s.path in ref]
    if not common:
        return {"available": False, "file": str(p)}
    idx = np.array([i for i, _ in common])
    diff = np.abs(clean_scores[idx] - np.array([v for _, v in common]))
    return {"available": True, "file": str(p), "n": int(len(idx)), "max_abs_diff": float(diff.max()),
            "identical": bool(np.all(diff == 0))}


def _measure_setting(family: str, strength: Any, ctx: dict, progress: bool) -> SettingResult:
    """Score one degradation setting (or reuse its resumed scores) and measure it at every level."""
    settings, frames, resume = ctx["settings"], ctx["frames"], ctx["resume"]
    n = len(frames.samples)
    label = setting_label(family, strength)
    applied = ("crop" if family != "downscale" or frames.sources is None else "frame")
    key = _resume_key(ctx["identity"], family, strength, settings.seed)
    ts = time.time()
    scores = load_resumed(resume, label, key, n)
    resumed = scores is not None
    if resumed:
        log.info("15 %s: resumed from %s", label, resume)
    else:
        crops = degraded_crops(frames, family, strength, settings.seed, ctx["cropper"], settings.upscale)
        scores = ctx["scorer"].score_all(crops, n, f"15 {label}", progress)
        write_json(resume / f"{label}.json", {"key": key, "family": family, "strength": strength,
                                              "image_paths": frames.paths, "scores": scores.tolist()})
    res = SettingResult(family, strength, label, "clean" if family == "clean" else applied, scores,
                        seconds=time.time() - ts, resumed=resumed)
    for level, (llr, labels, persons, videos) in level_data(ctx["system"], frames, scores).items():
        res.llr[level] = llr
        res.rows[level] = level_metrics(llr, labels, persons, videos, settings.bootstrap_n, settings.seed)
    return res


def _prepare(cfg: Config, out: Path) -> dict:
    """The stage's inputs: settings, the saved system, the test frames, the scorer, the resume area, the cropper."""
    from slr.system import LRSystem
    final_dir = cfg.stage_dir(STAGE, create=False)
    settings = Settings.from_config(cfg)
    base_dir = base_system_dir(cfg)
    if not (base_dir / "system.json").is_file():
        raise InputError(f"{base_dir}: no saved LR system (stage 10 writes it); run stage 10 first")
    system = LRSystem.load(base_dir)
    frames = load_test_frames(cfg, settings)
    scorer = Scorer(cfg, system)
    identity = run_identity(cfg, settings, frames, system.sha256, sha256_file(scorer.frames.checkpoint))
    resume = out / ".resume"
    if not resume.is_dir() and (final_dir / ".resume").is_dir():   # the last published run's settings
        shutil.copytree(final_dir / ".resume", resume)
    resume.mkdir(parents=True, exist_ok=True)
    cropper = None
    if frames.sources is not None and "downscale" in settings.degradations:
        from preprocessing.faces import FaceCropper
        cropper = FaceCropper.from_options(cfg.section("preprocessing"))
    return {"final_dir": final_dir, "settings": settings, "base_dir": base_dir, "system": system, "frames": frames,
            "scorer": scorer, "identity": identity, "resume": resume, "cropper": cropper}


def _summary(cfg: Config, ctx: dict, results: list, rows: list, vrange: dict, conditions: dict) -> dict:
    """summary.json's content (before the system, the figures and the time are added)."""
    settings, frames, system = ctx["settings"], ctx["frames"], ctx["system"]
    n = len(frames.samples)
    clean = results[0]
    summary = {
        "stage": folder(STAGE), "pool": "test", "n_frames": n, "n_persons": int(len(set(frames.persons))),
        "degradations": settings.degradations, "seed": settings.seed, "bootstrap_n": settings.bootstrap_n,
        "max_frames": settings.max_frames, "criteria": settings.criteria, "criteria_key": settings.criteria_key,
        "downscale_source": frames.source_note, "base_system": str(ctx["base_dir"]), "base_sha256": system.sha256,
        "clean_vs_stage08": compare_with_stage08(cfg, frames, clean.scores),
        "degenerate": bool(np.ptp(clean.llr["frame"]) == 0),    # every clean LLR the same: figures say nothing
        "in_sample": system.settings.validation == "crossval",  # slr/crossval.py: the system saw these persons
        "settings": [{"family": r.family, "strength": r.strength, "setting": r.label, "applied_to": r.applied_to,
                      "seconds": round(r.seconds, 3), "resumed": r.resumed,
                      "frames_per_second": (round(n / r.seconds, 2) if r.seconds > 0 and not r.resumed else None)}
                     for r in results],
        "table": rows, "validated_range": vrange, "validated_degradations": conditions,
    }
    if ctx["cropper"] is not None:
        summary["recrop_check"] = recrop_check(frames, ctx["cropper"])
    return summary


def _robust_system(ctx: dict, rows: list, conditions: dict):
    """The saved system with the validated degradations and this stage's record in its conditions."""
    settings, frames, system = ctx["settings"], ctx["frames"], ctx["system"]
    meta = {"stage": folder(STAGE), "criteria": settings.criteria, "criteria_key": settings.criteria_key,
            "judged_on": "95 % person-cluster interval, pessimistic end (upper for max, lower for min); "
                         "point value when bootstrap_n is 0",
            "levels": sorted({r["level"] for r in rows}), "n_frames": len(frames.samples), "pool": "test",
            "base_sha256": system.sha256, "applied_to": {f: ("frame" if f == "downscale" and frames.sources
                                                             is not None else "crop") for f in settings.degradations}}
    return system.with_conditions({"validated_degradations": conditions, "robustness": meta})


def run(cfg: Config, out: Path, progress: bool = True) -> dict:
    """The whole stage, written into the work folder ``out`` (published as ``15_robustness/`` by
    common.cli.stage_output): measure every setting (reusing finished ones from the resume area),
    write the table, figures, validated ranges and the system with its conditions. Returns the summary."""
    t0 = time.time()
    out = Path(out)
    ctx = _prepare(cfg, out)
    settings, frames, final_dir = ctx["settings"], ctx["frames"], ctx["final_dir"]
    results = [_measure_setting(family, strength, ctx, progress) for family, strength in settings.settings_list()]
    rows = table_rows(results)
    vrange = validated_range(rows, settings.criteria) if settings.criteria else {}
    conditions = conditions_from_range(vrange, rows) if vrange else {}
    robust = _robust_system(ctx, rows, conditions)
    summary = _summary(cfg, ctx, results, rows, vrange, conditions)
    sha = robust.save(out / SYSTEM_SUBDIR)
    summary["system"] = {"dir": str(final_dir / SYSTEM_SUBDIR), "sha256": sha}
    write_json(out / "casework_system.json", {"system_dir": str(final_dir / SYSTEM_SUBDIR), "sha256": sha,
                                              "base_system_dir": str(ctx["base_dir"]),
                                              "base_sha256": ctx["system"].sha256,
                                              "note": "casework loads this system (validated degradation ranges "
                                                      "in conditions.validated_degradations); "
                                                      "evaluation.robustness.casework_system_dir decides"})
    write_csv(out / "robustness.csv", csv_columns(rows))
    write_frame_llrs(out / "frame_llrs.csv", frames, results)
    from . import robustness_plots as P
    figs = [P.cllr_figure(rows, vrange, settings.criteria, out / "cllr_vs_strength.png"),
            P.tippett_figure(results, frames.labels, out / "tippett_strongest.png")]
    summary["figures"] = [f.name for f in figs if f is not None]
    summary["seconds"] = round(time.time() - t0, 2)
    write_json(out / "summary.json", summary)
    return summary


def write_frame_llrs(path: Path, frames: PoolFrames, results: Sequence[SettingResult]) -> None:
    cols: dict[str, list] = {"setting": [], "family": [], "strength": [], "image_path": [], "person_id": [],
                             "video_id": [], "label": [], "score": [], "llr": []}
    for r in results:
        for i, s in enumerate(frames.samples):
            cols["setting"].append(r.label)
            cols["family"].append(r.family)
            cols["strength"].append("" if r.strength is None else r.strength)
            cols["image_path"].append(s.path)
            cols["person_id"].append(frames.persons[i])
            cols["video_id"].append(s.video_id)
            cols["label"].append(s.label)
            cols["score"].append(float(r.scores[i]))
            cols["llr"].append(float(r.llr["frame"][i]))
    write_csv(path, cols)
