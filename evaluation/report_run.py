"""Reading a run for the validation report: what stages 00-14 left under ``<output_dir>/``.

``load_run`` collects each stage's ``*.json`` summaries, top-level PNG figures and runner stamp into a
:class:`Run`; ``pick`` / ``lr_metrics`` / ``classifier_metrics`` find a figure in those summaries
defensively (``None`` when absent, never a crash). Nothing here writes HTML.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config import Config
from common.pipeline import is_enabled
from common.stages import BY_ID, STAGES, Stage, folder

log = logging.getLogger(__name__)

STAMP = ".stage_stamp.json"
LEVELS = ("frame", "video")

@dataclass
class StageResult:
    stage: Stage
    status: str                                  # "done" | "outputs present" | "not run" | "not enabled"
    summaries: dict = field(default_factory=dict)  # file name -> parsed JSON
    figures: list = field(default_factory=list)   # PNG paths
    stamp: dict | None = None


@dataclass
class Run:
    output_dir: Path
    stages: dict                                 # stage name -> StageResult
    config: Config | None = None

    def summary(self, stage: str, file: str = "summary.json") -> dict:
        """A stage's JSON summary, by stage id (``"10"``) or folder name."""
        r = self.stages.get(folder(stage) if stage in BY_ID else stage)
        return (r.summaries.get(file) or {}) if r else {}


def _read_json_quietly(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("report: cannot read %s (%s); shown as missing", path, exc)
        return None


def load_run(output_dir: str | Path, config: Config | None = None) -> Run:
    """Everything stages 00-14 left under ``output_dir`` (stage 15's own folder is not read)."""
    output_dir = Path(output_dir)
    stages = {}
    for st in STAGES:
        if st.id == "16":
            continue
        d = output_dir / st.name
        enabled = config is None or is_enabled(st, config)
        if not d.is_dir():
            stages[st.name] = StageResult(st, "not run" if enabled else "not enabled")
            continue
        summaries = {}
        for p in sorted(d.rglob("*.json")):
            if any(part.startswith(".") for part in p.relative_to(d).parts):
                continue
            data = _read_json_quietly(p)
            if data is not None:
                summaries[p.relative_to(d).as_posix()] = data
        figures = sorted(p for p in d.glob("*.png") if not p.name.startswith("."))  # top level: stage figures, not data
        stamp = _read_json_quietly(d / STAMP) if (d / STAMP).is_file() else None
        status = "done" if stamp else ("outputs present" if (summaries or figures) else "not run")
        stages[st.name] = StageResult(st, status, summaries, figures, stamp)
    return Run(output_dir, stages, config)


def num(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str) and x in ("inf", "-inf"):
        return float(x)
    return None


def find_values(data: Any, key: str, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every ``(path, value)`` in nested ``data`` whose last key equals ``key``."""
    out = []
    if isinstance(data, dict):
        for k, v in data.items():
            if k == key:
                out.append((path + (k,), v))
            out.extend(find_values(v, key, path + (k,)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            if isinstance(v, (dict, list)):
                out.extend(find_values(v, key, path + (str(i),)))
    return out


def pick(data: Any, key: str, split: str = "test", level: str = "frame") -> Any:
    """The value of ``key`` for ``split`` at ``level`` in a stage summary, found defensively.

    Paths mentioning the other level or another split are excluded; among the rest the one with the
    split and level named is preferred, then the shortest. ``None`` when nothing fits.
    """
    others = {"train", "val", "test"} - {split}
    other_levels = set(LEVELS) - {level} | ({"video_level"} if level == "frame" else set())
    best, best_rank = None, None
    for path, value in find_values(data, key):
        parts = {str(p).lower() for p in path}
        if parts & others or parts & other_levels:
            continue
        rank = (split not in parts, level not in parts and level != "frame", len(path))
        if best_rank is None or rank < best_rank:
            best, best_rank = value, rank
    return best


def lr_metrics(run: Run, split: str = "test", level: str = "frame") -> dict:
    """AUC, EER, Cllr, Cllr_min, Cllr_cal, ELUB bounds and rates of misleading evidence of one run."""
    s11, s12, s13, s14 = (run.summary(n) for n in ("11", "12", "13", "14"))
    out = {}
    for key in ("cllr", "cllr_min", "cllr_cal", "auc"):
        out[key] = num(pick(s13, key, split, level))
    out["eer"] = num(pick(s12, "eer", split, level))
    for key in ("misleading_hp", "misleading_hd"):
        out[key] = num(pick(s11, key, split, level))
    elub = pick(s14, "elub", split, level)
    lo = num(elub.get("lower_log10")) if isinstance(elub, dict) else None
    hi = num(elub.get("upper_log10")) if isinstance(elub, dict) else None
    out["elub_lower_log10"], out["elub_upper_log10"] = lo, hi
    out["elub_range"] = (hi - lo) if lo is not None and hi is not None else None
    return out


def classifier_metrics(run: Run, split: str = "test") -> dict:
    """Frame- and video-level classifier metrics from stage 07 (whatever numeric keys it wrote)."""
    s07 = run.summary("07")
    out = {}
    for level in LEVELS:
        row = {}
        for key in ("auc", "eer", "accuracy", "average_precision", "ap", "n", "n_real", "n_fake"):
            v = num(pick(s07, key, split, level))
            if v is not None:
                row[key] = v
        out[level] = row
    return out
