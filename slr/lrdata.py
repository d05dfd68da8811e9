"""Protocol-neutral LLR data: one pool's LLRs at one level (``PoolLLR``) and a level's pools with
the fitted system's descriptors (``LevelLLR``), used from stage 10 to the report, whichever LR system
(slr.system.LRSystem, slr.paper.PaperSystem) made them.

Every pool carries its items (labels, person and video ids, image paths, frames per video item), its
score, and three LLRs: ``llr_model`` (the score model), ``llr_calibrated`` (after calibration) and
``llr`` (final: after the bounds where the system applies them), plus the ``bounds`` reported for it
(``lower_log10``, ``upper_log10``, ``fitted_on``, ``applied``). Stage 10 writes them as
``<pool>_lr.csv`` / ``<pool>_video_lr.csv``; :func:`read_levels` reads them back for stages 11-14.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.io import InputError, numeric_column, read_csv, read_json
from common.splits import POOLS

from .io import ScoreSet


def pools_of(sets: dict) -> list[str]:
    """The pools of ``sets`` in the order train, val, calib, test."""
    return [p for p in POOLS if p in sets] + [p for p in sets if p not in POOLS]


@dataclass
class PoolLLR:
    """One pool's items and their LLRs at one level (module docstring)."""
    scores: np.ndarray
    labels: np.ndarray
    llr_model: np.ndarray
    llr_calibrated: np.ndarray
    llr: np.ndarray
    video_ids: np.ndarray | None = None
    image_paths: np.ndarray | None = None
    n_frames: np.ndarray | None = None
    person_ids: np.ndarray | None = None
    bounds: dict | None = None

    @classmethod
    def of(cls, s: ScoreSet, model, calibrated, llr, bounds: dict | None) -> "PoolLLR":
        """The LLRs of score set ``s`` with its items' ids."""
        return cls(s.scores, s.labels, model, calibrated, llr, s.video_ids, s.image_paths, s.n_frames,
                   s.person_ids, bounds)

    @property
    def llr_kde(self) -> np.ndarray:      # the score model's LLR under its older name
        return self.llr_model

    @property
    def llr_cal(self) -> np.ndarray:
        return self.llr_calibrated

    def by_hypothesis(self, llr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(values of the Hp = real items, values of the Hd = fake items)."""
        x = self.llr if llr is None else llr
        return x[self.labels == 0], x[self.labels == 1]

    def videos(self) -> np.ndarray:
        return ScoreSet(self.scores, self.labels, self.video_ids).videos()

    def persons(self) -> np.ndarray:
        return ScoreSet(self.scores, self.labels, self.video_ids, person_ids=self.person_ids).persons()

    def columns(self, level: str, model_column: str = "llr_model") -> dict:
        """The columns of ``<pool>_lr.csv`` (frame) or ``<pool>_video_lr.csv`` (video)."""
        n = len(self.scores)
        cols = {}
        if level == "frame":
            cols["image_path"] = list(self.image_paths) if self.image_paths is not None else [""] * n
        cols["person_id"] = list(self.persons())
        cols["video_id"] = list(self.video_ids) if self.video_ids is not None else [""] * n
        if level == "video":
            cols["n_frames"] = [int(v) for v in self.n_frames]
        cols.update(label=[int(v) for v in self.labels], score=[float(v) for v in self.scores])
        cols[model_column] = [float(v) for v in self.llr_model]
        cols.update(llr_calibrated=[float(v) for v in self.llr_calibrated], llr=[float(v) for v in self.llr])
        with np.errstate(over="ignore"):
            cols["lr"] = [float(v) for v in np.power(10.0, self.llr)]
        return cols


@dataclass
class LevelLLR:
    """The pools' LLRs of one level (``frame`` or ``video``) and what the system says about that level.
    ``fitted``: the system's fitted level (e.g. slr.system.LevelModel) when made in this process."""
    level: str
    protocol: str
    splits: dict[str, PoolLLR]
    bandwidth: dict[str, float]
    bandwidth_details: dict
    calibration: str = "none"
    fitted: object | None = None
    model: str = "kde"
    note: str = ""                        # data note shown in every title (e.g. contaminated features)
    metrics: dict = field(default_factory=dict)         # per pool: stage 10's summary block (with ci95)
    system_summary: dict = field(default_factory=dict)  # stage 10's "system" block

    @property
    def pools(self) -> list[str]:
        return pools_of(self.splits)

    @property
    def elub(self) -> dict[str, dict | None]:
        """Per pool: the bounds applied or diagnosed (docs/slr.md)."""
        return {p: sl.bounds for p, sl in self.splits.items()}


def lr_file(level: str, pool: str) -> str:
    return f"{pool}_lr.csv" if level == "frame" else f"{pool}_video_lr.csv"


def _read_pool(path: Path, bounds: dict | None) -> PoolLLR:
    cols = read_csv(path, required=("label", "score", "llr_calibrated", "llr"))
    first = "llr_kde" if "llr_kde" in cols else "llr_model"
    num = {c: numeric_column(cols, c, path) for c in ("score", first, "llr_calibrated", "llr")}
    text = {c: np.asarray(cols[c], str) if c in cols else None for c in ("video_id", "image_path", "person_id")}
    return PoolLLR(num["score"], numeric_column(cols, "label", path, int).astype(np.int64), num[first],
                   num["llr_calibrated"], num["llr"], text["video_id"], text["image_path"],
                   numeric_column(cols, "n_frames", path, int) if "n_frames" in cols else None,
                   text["person_id"], bounds)


def read_levels(directory: str | Path) -> dict[str, LevelLLR]:
    """Read stage 10's outputs back (``summary.json`` and the LR CSVs)."""
    directory = Path(directory)
    if not (directory / "summary.json").is_file():
        raise InputError(f"{directory}: stage 10 outputs not found (summary.json); run stage 10 first")
    summary = read_json(directory / "summary.json")
    if "system" not in summary or not isinstance(summary.get("levels"), dict):
        raise InputError(f"{directory / 'summary.json'}: written by an older version of stage 10; re-run stage 10")
    levels = {}
    sysb = summary["system"]
    for lv, blocks in summary["levels"].items():
        splits = {}
        for s, blk in blocks.items():
            e = blk.get("elub")
            bounds = ({"lower_log10": e["lower_log10"], "upper_log10": e["upper_log10"],
                       "fitted_on": blk.get("elub_fitted_on"), "applied": bool(blk.get("elub_applied"))}
                      if e else None)
            splits[s] = _read_pool(directory / lr_file(lv, s), bounds)
        r = LevelLLR(lv, summary["protocol"], splits, sysb["bandwidth"].get(lv) or {},
                     sysb["bandwidth_details"].get(lv) or {}, sysb.get("calibration", "none"), None,
                     sysb.get("model", "kde"), summary.get("note", ""))
        r.metrics, r.system_summary = blocks, sysb
        levels[lv] = r
    return levels
