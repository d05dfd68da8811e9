"""results.json: every cell's figures, the seed groups, the timing and the content hash."""
from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

import numpy as np

from common.io import read_csv, read_json, write_csv, write_json
from results_grid.cells import Cell, Grid, _rel, stage_folder
from results_grid.config import CONTAMINATED, LEVELS, METRICS, Experiments
from results_grid.readback import copy_lr_csv, pool_counts, read_cell, read_robustness, read_summaries

REUSED_FILE = "upstream_reused.json"   # in work_dir: cells run with --reuse-upstream over a stale upstream, and why


# ------------------------------------------------------------------------------------------ aggregate
def training_seconds(run_dirs) -> float | None:
    """Sum of the epoch times in each distinct ``03_train/log.csv`` (cells share their upstream's): the
    training cost whenever it ran, which a resumed training does not repeat."""
    logs = set()
    for d in run_dirs:
        try:
            p = stage_folder(d, "03") / "log.csv"
        except KeyError:
            continue
        if p.is_file():
            logs.add(p.resolve())
    total = 0.0
    for p in sorted(logs):
        cols = read_csv(p)
        total += sum(float(v) for v in cols.get("seconds", []))
    return round(total, 1) if logs else None


def _cell_entry(cell: Cell, level: str, rec: dict, lr_csv: Path | None, run_dir: Path, control: bool = False) -> dict:
    from results_grid.detectors import detector_record
    det = detector_record(run_dir)
    learned = (det or {}).get("learned") or {}
    cv = (read_summaries(run_dir).get("10") or {}).get("crossval")      # slr.validation: crossval
    validation = (f"crossval: {cv.get('folds')} person-grouped folds over {' + '.join(cv.get('pools') or [])}, "
                  f"every person validated out of fold" if isinstance(cv, dict) else "four pools")
    return {"cell": cell.name, "detector": cell.detector, "seed": cell.seed, "score": cell.score,
            "model": cell.model, "level": level,
            "protocol": "paper" if cell.group == "paper_protocol" else "sound",
            "lr_csv": _rel(lr_csv) if lr_csv else None, "run_dir": _rel(run_dir),
            "test": rec["test"], "other_pools": rec["other_pools"],
            "detector_identity": (det or {}).get("identity"), "detector_auc": (det or {}).get("auc"),
            "detector_learned": learned or None, "detector_flag": learned.get("flag"), "control": control,
            "validation": validation, **({"fusion": fusion_record(run_dir)} if cell.group == "fusion" else {})}


def fusion_record(run_dir: Path) -> dict | None:
    """A fused cell's members, their detector identities and the fusion's choice (stage 08's summary)."""
    p = stage_folder(run_dir, "08") / "summary.json"
    if not p.is_file():
        return None
    s = read_json(p)
    det, ch = s.get("detector") or {}, s.get("fusion") or {}
    return {"members": [m["name"] for m in det.get("members", [])],
            "identities": {m["name"]: m.get("identity") for m in det.get("members", [])},
            "score": (det.get("fusion") or {}).get("score"), "split_sha256": (det.get("fusion") or {}).get("split_sha256"),
            **{k: ch.get(k) for k in ("fusion_used", "reason", "member_cllr", "fusion_cllr", "best_C", "best_member", "cv")}}


def _stats(values: list[float]) -> dict:
    v = [float(x) for x in values if x is not None and np.isfinite(x)]
    if not v:
        return {"mean": None, "min": None, "max": None, "n": 0}
    return {"mean": float(np.mean(v)), "min": float(min(v)), "max": float(max(v)), "n": len(v)}


def summarise_groups(entries: list[dict]) -> list[dict]:
    """Mean and range over seeds per detector x score x model x level x protocol."""
    groups: dict[tuple, list[dict]] = {}
    for e in entries:
        groups.setdefault((e["detector"], e["score"], e["model"], e["level"], e["protocol"]), []).append(e)
    out = []
    for (d, s, m, lv, pr), es in groups.items():
        stats = {k: _stats([e["test"].get(k) for e in es]) for k in METRICS}
        lo = _stats([(e["test"].get("bounds_log10") or [None, None])[0] for e in es])
        hi = _stats([(e["test"].get("bounds_log10") or [None, None])[1] for e in es])
        mono = _stats([(e["test"].get("monotonicity") or {}).get("direction_changes") for e in es])
        out.append({"detector": d, "score": s, "model": m, "level": lv, "protocol": pr,
                    "seeds": sorted(e["seed"] for e in es), "test": stats,
                    "bounds_lower_log10": lo, "bounds_upper_log10": hi, "direction_changes": mono})
    return out


def upstream_reused(ex: Experiments, cells: list[Cell]) -> dict:
    """The cells that ``--reuse-upstream`` ran over an out-of-date upstream, with the reason."""
    path = ex.work_dir / REUSED_FILE
    reused = read_json(path) if path.is_file() else {}
    return {c.name: reused[c.name] for c in cells if c.name in reused}


def grid_record(ex: Experiments) -> dict:
    """What the grid was: detectors, seeds, scores, models, overrides, controls, its config."""
    return {"name": ex.grid, "detectors": [d.name for d in ex.detectors], "seeds": ex.seeds,
            "scores": ex.scores, "models": ex.models, "levels": list(LEVELS),
            "overrides": {k: ex.common_set[k] for k in sorted(ex.common_set)},
            "person_map": f"<dataset root>/{ex.person_map.name}" if ex.person_map else None,
            "controls": [d.name for d in ex.detectors if d.control],
            "by_model": ex.by_model, "by_score": ex.by_score,
            "detector_overrides": {d.name: {"config": d.config, **{k: d.set[k] for k in sorted(d.set)}}
                                   for d in ex.detectors},
            "config": _rel(Path(ex.source))}


def aggregate(ex: Experiments, cells: list[Cell], grid: Grid, timing: dict, wall: float) -> dict:
    entries, paper_entries, sound_paper = [], [], []
    pools = {}
    missing = []
    for cell in cells:
        cdir = grid.cell_dir(cell)
        dest = ex.results_dir / "cells" / cell.name
        for level in LEVELS:
            rec = read_cell(cdir, level)
            if rec is None:
                if level == "frame":
                    missing.append(cell.name)
                continue
            lr = copy_lr_csv(cdir, level, dest / ("test_lr.csv" if level == "frame" else "test_video_lr.csv"))
            det = grid.detectors.get(cell.detector)          # a fused cell has none: its members
            e = _cell_entry(cell, level, rec, lr, cdir, bool(det and det.control))
            robust = read_robustness(cdir, level)
            if robust is not None:           # stage 15's table beside the cell's LR CSVs, for rechecking
                csv = write_csv(dest / "robustness.csv", read_csv(stage_folder(cdir, "15") / "robustness.csv"))
                e["robustness"] = {**robust, "csv": _rel(csv)}
            {"grid": entries, "fusion": entries, "paper_protocol": paper_entries,
             "paper_sound": sound_paper}[cell.group].append(e)
        key = f"{cell.detector}/{'paper_split' if cell.group == 'paper_protocol' else f'seed{cell.seed}'}"
        if key not in pools and cell.group != "fusion":      # a fused cell's pools are its members'
            pools[key] = pool_counts(cdir)
    published = ex.published
    results = {
        "name": ex.name,
        "grid": grid_record(ex),
        "cells": entries,
        "groups": summarise_groups(entries),
        "pools": pools,
        "paper": {
            "published": published,
            "paper_protocol": paper_entries,
            "paper_protocol_groups": summarise_groups(paper_entries),
            "sound_on_paper_features": sound_paper,
            "sound_on_paper_features_groups": summarise_groups(sound_paper),
            "features": _rel(ex.dataset_root / ex.paper["features_file"])
            if ex.paper["enabled"] else None,
            "contaminated": CONTAMINATED,
        },
        "missing_cells": missing,
        "upstream_reused": upstream_reused(ex, cells),
        "seconds": round(float(sum(timing.get(c.name, 0.0) for c in cells)), 1),
        "seconds_note": "sum over cells of the time each took when it last ran (upstream stages counted in the "
                        "first cell of their detector x seed)",
        "training_seconds": training_seconds(grid.cell_dir(c) for c in cells),
        "training_seconds_note": "sum of the epoch times in every training log (stage 03 log.csv) of the grid, whenever each "
                                 "epoch ran (a resumed training counts its earlier epochs here, not in seconds)",
        "device": device_text(),
    }
    return results


def figure_cells(results: dict) -> tuple[dict | None, dict | None]:
    """Best and worst grid cell by test Cllr at frame level (ties broken by name)."""
    frame = [e for e in results["cells"] if e["level"] == "frame" and e["test"].get("cllr") is not None
             and np.isfinite(e["test"]["cllr"]) and not e.get("control")]
    if not frame:
        return None, None
    frame.sort(key=lambda e: (e["test"]["cllr"], e["cell"]))
    return frame[0], frame[-1]


def write_outputs(ex: Experiments, results: dict) -> tuple[Path, Path]:
    """results.json, the best/worst Tippett figure, and the generated docs page."""
    from results_grid.page import render, tippett_figure
    ex.results_dir.mkdir(parents=True, exist_ok=True)
    best, worst = figure_cells(results)
    figs = {}
    if best is not None:
        fig = ex.results_dir / "tippett_best_worst.png"
        tippett_figure(best, worst, fig)
        figs["tippett_best_worst"] = _rel(fig)
    results["figures"] = figs
    results["docs"] = _rel(ex.docs)
    results["results_json"] = _rel(ex.results_dir / "results.json")
    rj = write_json(ex.results_dir / "results.json", results)
    from common.io import atomic_path
    ex.docs.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(ex.docs) as tmp:
        tmp.write_text(render(results), encoding="utf-8")
    return rj, ex.docs


def content_hash(results: dict) -> str:
    """Hash of the figures of every cell (timings and device excluded): equal for equal results."""
    keep = {"cells": results["cells"], "paper": results["paper"], "groups": results["groups"]}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()


# ------------------------------------------------------------------------------------------ running
def device_text() -> str:
    try:
        import torch
        if torch.cuda.is_available():
            return f"cuda: {torch.cuda.get_device_name(0)} (torch {torch.__version__})"
        return f"cpu: {os.cpu_count()} cores, {platform.processor() or platform.machine()} (torch {torch.__version__})"
    except Exception:
        return f"cpu: {os.cpu_count()} cores"
