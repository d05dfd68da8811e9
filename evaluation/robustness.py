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

import hashlib
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from common import degrade as DG
from common.config import Config, ConfigError
from common.io import InputError, read_csv, sha256_file, write_csv, write_json
from common.splits import Sample
from common.stages import folder
from slr.bootstrap import clopper_pearson_upper_zero, level_metrics, strong_misleading_ci  # noqa: F401
from slr.metrics import STRONG_LLR, strong_misleading  # noqa: F401
from slr.saved import BASE_STAGE, STAGE, SYSTEM_SUBDIR, base_system_dir, casework_system_dir, robust_system_dir  # noqa: F401

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


# ------------------------------------------------------------------------------------------ frames
@dataclass
class PoolFrames:
    samples: list                # Sample, split order
    persons: np.ndarray          # (N,) str
    root: Path
    sources: dict | None         # image path -> (InputItem, frame index, box) or None
    source_note: str             # why sources are / are not used

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)

    @property
    def videos(self) -> np.ndarray:
        return np.array([s.video_id for s in self.samples]).astype(str)

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.samples]


def person_ids(split_file: Path, samples: Sequence[Sample]) -> np.ndarray:
    """Person of each sample from the split file (common.splits.person_of_video: ``meta.persons``, else
    the UADFV rule); a video without one is its own person."""
    from common.splits import person_of_video
    mapping = person_of_video(split_file)
    return np.array([str(mapping.get(s.video_id, s.video_id)) for s in samples])


def select_frames(samples: Sequence[Sample], max_frames: int | None, seed: int) -> list[Sample]:
    """All samples, or ``max_frames`` of them drawn without replacement (seeded), kept in split order."""
    samples = list(samples)
    if max_frames is None or max_frames >= len(samples):
        return samples
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(samples), size=max_frames, replace=False))
    return [samples[i] for i in keep]


def source_index(cfg: Config, samples: Sequence[Sample]) -> tuple[dict | None, str]:
    """Map each crop to its stage-01 source frame: (item, frame index, face box), or (None, reason)."""
    root = cfg.path("dataset.root")
    manifest = root / "manifest.csv"
    inp = cfg.path("preprocessing.input")
    if not manifest.is_file():
        return None, (f"no stage-01 manifest at {manifest} (a dataset of crops only): downscale degrades the "
                      f"aligned crop, not the source frame")
    if inp is None or not inp.is_dir():
        return None, (f"stage 01's source frames (preprocessing.input = {inp}) are not available: downscale "
                      f"degrades the aligned crop, not the source frame")
    from preprocessing.video import list_inputs
    cols = read_csv(manifest, required=("source", "frame_idx", "crop", "box_left", "box_top", "box_right",
                                        "box_bottom"))
    by_crop = {}
    for i, crop in enumerate(cols["crop"]):
        if crop:
            by_crop[crop] = i
    try:
        items = {it.path.relative_to(inp).as_posix(): it for it in list_inputs(inp)}
    except InputError as exc:
        return None, f"stage 01's source frames cannot be listed ({exc}): downscale degrades the crop"
    out = {}
    for s in samples:
        i = by_crop.get(s.path)
        src = cols["source"][i] if i is not None else None
        if i is None or src not in items:
            return None, (f"{manifest}: no source frame for '{s.path}' (the crops and the source folder "
                          f"{inp} do not match): downscale degrades the aligned crop")
        box = tuple(int(float(cols[k][i])) for k in ("box_left", "box_top", "box_right", "box_bottom"))
        out[s.path] = (items[src], int(cols["frame_idx"][i]), box)
    return out, f"downscale is applied to stage 01's source frames ({inp}) and the faces re-cropped"


def load_test_frames(cfg: Config, settings: Settings) -> PoolFrames:
    from training.data import split_samples
    split_file, root = cfg.path("split.file"), cfg.path("dataset.root")
    samples, _ = split_samples(cfg, "test", skip_missing=False)      # stage 04's checks: files, both classes
    samples = select_frames(samples, settings.max_frames, settings.seed)
    labels = {s.label for s in samples}
    if labels != {0, 1}:
        raise InputError(f"{split_file}: the test frames selected (robustness.max_frames = {settings.max_frames}) "
                         f"hold only label(s) {sorted(labels)}; both real and fake frames are needed")
    persons = person_ids(split_file, samples)
    sources, note = (source_index(cfg, samples) if "downscale" in settings.degradations
                     else (None, "no frame-level degradation configured"))
    return PoolFrames(samples, persons, root, sources, note)


def read_crop(path: Path) -> np.ndarray:
    """A stored crop as RGB uint8 at its own size (as training.data.read_image, before resizing)."""
    import cv2
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path}: cannot read the image (missing or not an image file)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _read_source_frames(item, indices: Sequence[int]) -> dict[int, np.ndarray]:
    from preprocessing.video import _frame_index, read_image, read_video_frames
    want = sorted(set(int(i) for i in indices))
    if item.kind == "video":
        frames = {i: f for i, f in read_video_frames(item.path, want)}
    elif item.kind == "image":
        frames = {0: read_image(item.path)}
    else:
        by_idx = {_frame_index(p, k): p for k, p in enumerate(item.frames)}
        frames = {i: read_image(by_idx[i]) for i in want if i in by_idx}
    missing = [i for i in want if frames.get(i) is None]
    if missing:
        raise InputError(f"{item.path}: frame {missing[0]} cannot be read any more (stage 01 read it); the source "
                         f"changed since stage 01: re-run stage 01 or remove the source folder to degrade crops")
    return frames


def degraded_crops(frames: PoolFrames, family: str, strength: Any, seed: int, cropper=None,
                   upscale: str = "linear") -> Iterator[np.ndarray]:
    """The degraded crop of every test frame, in order (uint8 RGB)."""
    on_frame = family == "downscale" and frames.sources is not None and not DG.is_identity(family, strength)
    if not on_frame:
        for s in frames.samples:
            crop = read_crop(frames.root / s.path)
            if family == "clean":
                yield crop
            else:
                yield DG.apply(family, crop, strength, DG.item_seed(seed, family, strength, s.path), upscale)
        return
    from preprocessing.faces import Detection
    samples = frames.samples
    k = 0
    while k < len(samples):      # consecutive frames of one source are read together
        item = frames.sources[samples[k].path][0]
        j = k
        while j < len(samples) and frames.sources[samples[j].path][0] is item:
            j += 1
        srcs = [frames.sources[s.path] for s in samples[k:j]]
        decoded = _read_source_frames(item, [fi for _, fi, _ in srcs])
        for s, (_, fi, box) in zip(samples[k:j], srcs):
            frame = DG.apply(family, decoded[fi], strength, DG.item_seed(seed, family, strength, s.path), upscale)
            yield cropper.align_face(frame, Detection(box, 0.0)).crop
        k = j


# ------------------------------------------------------------------------------------------ scoring
class Scorer:
    """Stage 04's detector pass (``training.dump.FrameScorer``), then the saved system's score function."""

    def __init__(self, cfg: Config, system):
        from training.dump import FrameScorer
        from training.identity import check_detector
        self.frames = FrameScorer(cfg, who="the robustness stage", remedy=": set robustness.enabled: false")
        check_detector(system.detector, self.frames.identity, "features.checkpoint")   # exit 2 on another detector
        self.system = system

    def score(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray(self.system.score(**self.frames.run(crops)), dtype=np.float64)

    def score_all(self, crops: Iterable[np.ndarray], total: int, desc: str, progress: bool = True) -> np.ndarray:
        from tqdm.auto import tqdm
        out, batch = [], []
        with tqdm(total=total, desc=desc, unit="frame", disable=not progress) as bar:
            for c in crops:
                batch.append(c)
                if len(batch) == self.frames.batch_size:
                    out.append(self.score(batch))
                    bar.update(len(batch))
                    batch = []
            if batch:
                out.append(self.score(batch))
                bar.update(len(batch))
        return np.concatenate(out) if out else np.zeros(0)


# ------------------------------------------------------------------------------------------ resume area
def run_identity(cfg: Config, settings: Settings, frames: PoolFrames, system_sha: str, checkpoint_sha: str) -> dict:
    """Everything the per-frame scores of a setting depend on, except the setting itself and the seed
    (which :func:`_resume_key` adds for noise; the frame subset enters through the frame list).
    No path under ``output_dir`` enters, so a moved or copied run folder keeps its resume area."""
    model = {k: v for k, v in (cfg.get("model", None) or {}).items() if k != "pretrained_path"}
    ident = {"degrade_version": DG.VERSION, "system_sha256": system_sha, "checkpoint_sha256": checkpoint_sha,
             "frames": hashlib.sha256("\n".join(frames.paths).encode()).hexdigest(), "upscale": settings.upscale,
             "sources": frames.sources is not None, "model": model,
             "features": {k: cfg.get(f"features.{k}", None) for k in ("full_map", "dtype", "batch_size")},
             "normalization": cfg.get("training.normalization")}
    if frames.sources is not None:     # re-cropping: the crop geometry and stage 01's record of the sources
        ident["crop"] = {k: cfg.get(f"preprocessing.{k}", None) for k in ("size", "margin", "align_points", "landmarks")}
        ident["manifest_sha256"] = sha256_file(frames.root / "manifest.csv")
    return ident


def _resume_key(identity: dict, family: str, strength: Any, seed: int) -> str:
    """The key of one setting's scores; the seed counts only where it is drawn from (noise)."""
    blob = json.dumps({"identity": identity, "family": family, "strength": strength,
                       "seed": seed if family == "noise" else None}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def load_resumed(resume: Path, label: str, key: str, n: int) -> np.ndarray | None:
    p = resume / f"{label}.json"
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if data.get("key") != key or len(data.get("scores", [])) != n:
        return None
    return np.asarray(data["scores"], dtype=np.float64)


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


def run(cfg: Config, out: Path, progress: bool = True) -> dict:
    """The whole stage, written into the work folder ``out`` (published as ``15_robustness/`` by
    common.cli.stage_output): measure every setting (reusing finished ones from the resume area),
    write the table, figures, validated ranges and the system with its conditions. Returns the summary."""
    from slr.system import LRSystem
    t0 = time.time()
    out = Path(out)
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

    results: list[SettingResult] = []
    n = len(frames.samples)
    for family, strength in settings.settings_list():
        label = setting_label(family, strength)
        applied = ("crop" if family != "downscale" or frames.sources is None else "frame")
        key = _resume_key(identity, family, strength, settings.seed)
        ts = time.time()
        scores = load_resumed(resume, label, key, n)
        resumed = scores is not None
        if resumed:
            log.info("15 %s: resumed from %s", label, resume)
        else:
            crops = degraded_crops(frames, family, strength, settings.seed, cropper, settings.upscale)
            scores = scorer.score_all(crops, n, f"15 {label}", progress)
            write_json(resume / f"{label}.json", {"key": key, "family": family, "strength": strength,
                                                  "image_paths": frames.paths, "scores": scores.tolist()})
        res = SettingResult(family, strength, label, "clean" if family == "clean" else applied, scores,
                            seconds=time.time() - ts, resumed=resumed)
        for level, (llr, labels, persons, videos) in level_data(system, frames, scores).items():
            res.llr[level] = llr
            res.rows[level] = level_metrics(llr, labels, persons, videos, settings.bootstrap_n, settings.seed)
        results.append(res)

    rows = table_rows(results)
    vrange = validated_range(rows, settings.criteria) if settings.criteria else {}
    conditions = conditions_from_range(vrange, rows) if vrange else {}
    meta = {"stage": folder(STAGE), "criteria": settings.criteria, "criteria_key": settings.criteria_key,
            "judged_on": "95 % person-cluster interval, pessimistic end (upper for max, lower for min); "
                         "point value when bootstrap_n is 0",
            "levels": sorted({r["level"] for r in rows}), "n_frames": n, "pool": "test",
            "base_sha256": system.sha256, "applied_to": {f: ("frame" if f == "downscale" and frames.sources
                                                             is not None else "crop") for f in settings.degradations}}
    robust = system.with_conditions({"validated_degradations": conditions, "robustness": meta})
    clean = results[0]
    summary = {
        "stage": folder(STAGE), "pool": "test", "n_frames": n, "n_persons": int(len(set(frames.persons))),
        "degradations": settings.degradations, "seed": settings.seed, "bootstrap_n": settings.bootstrap_n,
        "max_frames": settings.max_frames, "criteria": settings.criteria, "criteria_key": settings.criteria_key,
        "downscale_source": frames.source_note, "base_system": str(base_dir), "base_sha256": system.sha256,
        "clean_vs_stage08": compare_with_stage08(cfg, frames, clean.scores),
        "degenerate": bool(np.ptp(clean.llr["frame"]) == 0),    # every clean LLR the same: figures say nothing
        "in_sample": system.settings.validation == "crossval",  # slr/crossval.py: the system saw these persons
        "settings": [{"family": r.family, "strength": r.strength, "setting": r.label, "applied_to": r.applied_to,
                      "seconds": round(r.seconds, 3), "resumed": r.resumed,
                      "frames_per_second": (round(n / r.seconds, 2) if r.seconds > 0 and not r.resumed else None)}
                     for r in results],
        "table": rows, "validated_range": vrange, "validated_degradations": conditions,
    }
    if cropper is not None:
        summary["recrop_check"] = recrop_check(frames, cropper)

    sha = robust.save(out / SYSTEM_SUBDIR)
    summary["system"] = {"dir": str(final_dir / SYSTEM_SUBDIR), "sha256": sha}
    write_json(out / "casework_system.json", {"system_dir": str(final_dir / SYSTEM_SUBDIR), "sha256": sha,
                                              "base_system_dir": str(base_dir), "base_sha256": system.sha256,
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


def recrop_check(frames: PoolFrames, cropper, n: int = 4) -> dict:
    """Re-crop the first ``n`` clean source frames and compare with the stored crops: 0 means the
    frame path reproduces stage 01 exactly, so a downscale result reflects the degradation alone."""
    from preprocessing.faces import Detection
    diffs = []
    for s in frames.samples[:n]:
        item, fi, box = frames.sources[s.path]
        frame = _read_source_frames(item, [fi])[fi]
        crop = cropper.align_face(frame, Detection(box, 0.0)).crop
        diffs.append(int(np.abs(crop.astype(np.int16) - read_crop(frames.root / s.path).astype(np.int16)).max()))
    return {"frames": len(diffs), "max_abs_diff_grey_levels": max(diffs) if diffs else None}


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
