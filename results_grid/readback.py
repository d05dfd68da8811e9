"""A cell's figures, read back from its run folder (the summaries of stages 10-15), never recomputed."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.io import InputError, read_csv, read_json, write_csv
from results_grid.cells import _get, _rel, stage_folder
from results_grid.config import COUNTS, LR_COLUMNS, METRICS, POOLS_ORDER


def read_summaries(run_dir: Path) -> dict[str, dict]:
    """``{stage prefix: summary.json}`` of stages 10-14 that exist in ``run_dir``."""
    out = {}
    for prefix in ("10", "11", "12", "13", "14"):
        try:
            p = stage_folder(run_dir, prefix) / "summary.json"
        except KeyError:
            continue
        if p.is_file():
            out[prefix] = read_json(p)
    return out


def level_figure(summaries: dict[str, dict], level: str, pool: str, key: str):
    """A figure of ``levels.<level>.<pool>.<key>`` from the first stage summary (10-14) that has it."""
    for prefix in ("10", "13", "12", "11", "14"):
        v = _get(summaries.get(prefix), "levels", level, pool, key)
        if v is not None:
            return v
    return None


def system_bounds(summaries: dict, level: str):
    for prefix in ("10", "14", "13", "12", "11"):
        v = _get(summaries.get(prefix), "system", "bounds_log10", level)
        if v is not None:
            return [float(v[0]), float(v[1])]
    # older summaries: levels.<level>.<pool>.elub {lower_log10, upper_log10}
    for prefix in ("14", "13", "10"):
        e = _get(summaries.get(prefix), "levels", level, "test", "elub")
        if isinstance(e, dict) and "lower_log10" in e:
            return [float(e["lower_log10"]), float(e["upper_log10"])]
    return None


def monotonicity(run_dir: Path, summaries: dict, level: str) -> dict | None:
    """Direction changes of the LLR over the calib score range and the largest drop (log10), from the
    run's summary when it reports them, else measured here on the saved LR system."""
    keep = ("direction_changes", "largest_drop_log10", "monotone")
    for prefix in ("10", "13", "14"):
        v = _get(summaries.get(prefix), "system", "monotonicity", level)
        if isinstance(v, dict):
            parts = {k: v[k] for k in ("model", "final") if isinstance(v.get(k), dict)} or {"model": v}
            top = parts.get("model") or parts.get("final")
            out = {k: top[k] for k in keep if k in top}
            out.update({f"{name}": {k: d[k] for k in keep if k in d} for name, d in sorted(parts.items())})
            out["source"] = f"{prefix} summary: system.monotonicity.{level} (top level = the score model's)"
            return out
    try:
        from slr.system import LRSystem
        system = LRSystem.load(stage_folder(run_dir, "10") / "system")
        hp, hd = system.calib_scores(level)
    except Exception:            # no saved system (older stage 10) or no such level
        return None
    x = np.concatenate([np.asarray(hp, float), np.asarray(hd, float)])
    grid = np.linspace(float(x.min()), float(x.max()), 1000)
    y = np.asarray(system.llr(grid, level=level, bounded=False), float)
    d = np.diff(y)
    sign = np.sign(d[np.abs(d) > 1e-12])
    changes = int(np.sum(sign[1:] != sign[:-1])) if len(sign) > 1 else 0
    # "more real" direction: Hp (real) scores higher or lower? a drop is against the overall trend
    trend = 1.0 if y[-1] >= y[0] else -1.0
    run = np.maximum.accumulate(trend * y) - trend * y
    return {"direction_changes": changes, "largest_drop_log10": float(run.max()), "source": "measured on system"}


def read_cell(run_dir: Path, level: str) -> dict | None:
    """The test figures (and calib, train, val where present) of one level of a finished run folder."""
    summaries = read_summaries(run_dir)
    if not summaries or level_figure(summaries, level, "test", "cllr") is None:
        return None
    pools = {}
    for pool in POOLS_ORDER:
        if level_figure(summaries, level, pool, "cllr") is None:
            continue
        rec = {}
        for k in METRICS + COUNTS:
            v = level_figure(summaries, level, pool, k)
            rec[k] = None if v is None else (int(v) if k in COUNTS else float(v))
        ci = level_figure(summaries, level, pool, "ci95")
        rec["ci95"] = {k: [float(ci[k][0]), float(ci[k][1])] for k in sorted(ci)      # [None, None]: no interval
                       if isinstance(ci.get(k), (list, tuple)) and len(ci[k]) == 2 and None not in ci[k]
                       } if isinstance(ci, dict) else {}
        for extra in ("paper_eer", "paper_cllr_calibrated", "devpav", "llr_overestimation"):
            v = level_figure(summaries, level, pool, extra)
            if v is not None:
                rec[extra] = float(v)
        for extra in ("ci95_usable", "ci95_resamples"):    # devPAV / overestimation: resamples behind the interval
            v = level_figure(summaries, level, pool, extra)
            if v is not None:
                rec[extra] = v
        pools[pool] = rec
    test = pools.pop("test")
    test["bounds_log10"] = system_bounds(summaries, level)
    test["monotonicity"] = monotonicity(run_dir, summaries, level)
    test["flags"] = degenerate_flags(test, level_figure(summaries, level, "test", "llr_range"),
                                     {p: pools[p] for p in pools if p == "calib"})
    return {"test": test, "other_pools": pools}


ROBUST_METRICS = ("cllr", "cllr_min", "eer", "auc", "misleading_hp", "misleading_hd")


def read_robustness(run_dir: Path, level: str) -> dict | None:
    """Stage 15's figures of one level (None when the cell did not run it): the clean row and, per
    degradation family, every strength's figures with their person intervals, and the validated range."""
    try:
        p = stage_folder(run_dir, "15") / "summary.json"
    except KeyError:
        return None
    if not p.is_file():
        return None
    s = read_json(p)

    def row(r):
        ci = r.get("ci95") or {}
        return {"strength": r.get("strength"), "applied_to": r.get("applied_to"),
                **{k: r.get(k) for k in ROBUST_METRICS},
                "ci95": {k: list(ci[k]) for k in ROBUST_METRICS if isinstance(ci.get(k), (list, tuple))}}

    rows = [r for r in s.get("table", []) if r.get("level") == level]
    clean = next((row(r) for r in rows if r.get("family") == "clean"), None)
    families = {}
    for fam, strengths in (s.get("degradations") or {}).items():
        vr = (s.get("validated_range") or {}).get(fam) or {}
        families[fam] = {"settings": [row(r) for r in rows if r.get("family") == fam],
                         "validated_strongest": vr.get("strongest"), "status": vr.get("status"),
                         "tested": list(strengths)}
    return {"n_frames": s.get("n_frames"), "n_persons": s.get("n_persons"), "degenerate": s.get("degenerate"),
            "criteria": s.get("criteria"), "clean": clean, "families": families,
            "summary": _rel(p)}


def degenerate_flags(test: dict, llr_range, calib: dict) -> list[str]:
    """Reasons a cell's system is degenerate (issue 10: such a system never passes validation)."""
    flags = []
    b = test.get("bounds_log10")
    if b and abs(b[1] - b[0]) < 1e-9:
        flags.append("zero-width ELUB bounds")
    if isinstance(llr_range, (list, tuple)) and len(llr_range) == 2 and abs(llr_range[1] - llr_range[0]) < 1e-12:
        flags.append("every test LR equal")
    for pool, rec in (("test", test), *calib.items()):
        n = rec.get("n_persons")
        if n is not None and n < 3:
            flags.append(f"{pool} pool with {n} persons")
    return flags


def pool_counts(run_dir: Path) -> dict:
    """Persons, videos and frames (real/fake) per pool of the run's split file (its ``meta.counts``
    when stage 02 wrote them, else counted from the file)."""
    from common.splits import label_of
    try:
        split = read_json(stage_folder(run_dir, "02") / "split.json")
    except (KeyError, OSError, ValueError, InputError):
        return {}
    if not isinstance(split, dict):
        return {}
    meta = split.get("meta", {}) if isinstance(split.get("meta"), dict) else {}
    keys = ("persons", "videos_real", "videos_fake", "frames_real", "frames_fake")
    mc = meta.get("counts")
    if isinstance(mc, dict) and mc and all(isinstance(v, dict) and all(k in v for k in keys) for v in mc.values()):
        return {p: {k: int(mc[p][k]) for k in keys} for p in sorted(mc, key=_pool_rank)}
    persons = meta.get("persons") or {}
    counts: dict[str, dict] = {}
    for dataset, by_label in split.items():
        if dataset == "meta" or not isinstance(by_label, dict):
            continue
        for label_name, by_pool in by_label.items():
            for pool, videos in (by_pool or {}).items():
                c = counts.setdefault(pool, {"persons": set(), "videos_real": 0, "videos_fake": 0,
                                             "frames_real": 0, "frames_fake": 0})
                kind = "fake" if label_of(label_name) == 1 else "real"
                for vid, info in videos.items():
                    c[f"videos_{kind}"] += 1
                    c[f"frames_{kind}"] += len(info.get("frames", [])) if isinstance(info, dict) else 0
                    c["persons"].add(persons.get(vid, vid))
    return {p: {k: (len(c[k]) if k == "persons" else int(c[k])) for k in keys}
            for p, c in sorted(counts.items(), key=lambda kv: _pool_rank(kv[0]))}


def _pool_rank(pool: str) -> tuple:
    return (POOLS_ORDER.index(pool) if pool in POOLS_ORDER else len(POOLS_ORDER), pool)


def copy_lr_csv(run_dir: Path, level: str, dest: Path) -> Path | None:
    """The run's test LR CSV of ``level`` reduced to ``person_id, video_id, score, label, llr``."""
    src = stage_folder(run_dir, "10") / ("test_lr.csv" if level == "frame" else "test_video_lr.csv")
    if not src.is_file():
        return None
    cols = read_csv(src, required=("score", "label", "llr"))
    n = len(cols["score"])
    out = {}
    for c in LR_COLUMNS:
        if c in cols:
            out[c] = cols[c]
        elif c == "person_id" and "video_id" in cols:      # a CSV without persons: each video is one
            out[c] = list(cols["video_id"])
        else:
            out[c] = [""] * n
    if level == "video" and "n_frames" in cols:
        out["n_frames"] = cols["n_frames"]
    return write_csv(dest, out)


