"""The validation matrix (Meuwly, Ramos and Haraksim 2017) and its judgement: the figures of each pool
and level (``lr_block``), why a system is degenerate, each criterion's decision on the pessimistic end
of its 95 % interval, the reported-only rows (calibration, monotonicity) and the matrix's HTML table."""
from __future__ import annotations

from typing import Iterable

from evaluation.report_html import esc, fmt, table
from evaluation.report_run import LEVELS, Run, lr_metrics, num


# metric -> (characteristic, graphical representation, criterion side: "max" = lower is better);
# keys = schema.CRITERION_METRICS
METRICS = {
    "cllr": ("accuracy", "ECE plot (stage 13)", "max"),
    "cllr_min": ("discriminating power", "ECE plot, PAV curve (stage 13); DET plot (stage 12)", "max"),
    "eer": ("discriminating power", "DET plot (stage 12)", "max"),
    "cllr_cal": ("calibration", "ECE plot (stage 13); Tippett plot (stage 11)", "max"),
    "auc": ("discriminating power", "DET plot (stage 12); ROC (stage 07)", "min"),
    "misleading_hp": ("accuracy", "Tippett plot (stage 11)", "max"),
    "misleading_hd": ("accuracy", "Tippett plot (stage 11)", "max"),
    "elub_range": ("calibration", "ELUB / NBE plot (stage 14)", "min"),
    "devpav": ("calibration", "PAV curve of the ECE plot (stage 13)", "max"),
    "llr_overestimation": ("calibration", "none (lir's LLR-overestimation curve)", "max"),
    "direction_changes": ("monotonicity", "LLR curve (stage 10)", "max"),
    "largest_drop_log10": ("monotonicity", "LLR curve (stage 10)", "max"),
}
POOL_ORDER = ("test", "calib")      # the matrix judges these pools (calib: cross-fitted LLRs)
MIN_PERSONS_PER_CLASS = 3

EXTERNAL = "external: "   # pool prefix of stage 15b's external sets (generalisation rows)
METRICS_15B = ("cllr", "cllr_min", "cllr_cal", "eer", "auc", "misleading_hp", "misleading_hd")   # 15b's figures


def external_pools(run: Run) -> dict[str, dict]:
    """``{"external: <name>": set block}`` of stage 15b (issue 18 item 8); empty without it."""
    sets = run.summary("15b").get("sets")
    return {EXTERNAL + str(k): v for k, v in sets.items() if isinstance(v, dict)} if isinstance(sets, dict) else {}


def lr_block(run: Run, pool: str, level: str) -> dict:
    """The figures of one pool at one level: stage 10's summary block (``levels.<level>.<pool>``,
    with ``ci95``) when present, else the values the stages 11-14 summaries hold (no intervals);
    an external set's block from stage 15b (``pool`` = ``"external: <name>"``)."""
    if pool.startswith(EXTERNAL):
        blk = (external_pools(run).get(pool) or {}).get("levels", {}).get(level)
        return dict(blk) if isinstance(blk, dict) else {}
    s10 = run.summary("10")
    blk = ((s10.get("levels") or {}).get(level) or {}).get(pool) if isinstance(s10.get("levels"), dict) else None
    if isinstance(blk, dict) and "cllr" in blk:
        out = dict(blk)
        e = blk.get("elub")
        if isinstance(e, dict):
            out["elub_range"] = num(e.get("upper_log10")) - num(e.get("lower_log10"))
        mono = (((s10.get("system") or {}).get("monotonicity") or {}).get(level) or {}).get("model")
        if isinstance(mono, dict):
            out.update(direction_changes=mono.get("direction_changes"),
                       largest_drop_log10=mono.get("largest_drop_log10"))
        return out
    if pool == "calib":
        return {}
    return {k: v for k, v in lr_metrics(run, pool, level).items() if v is not None}


def degenerate_reasons(run: Run) -> list[str]:
    """Why the LR system is degenerate (empty list when it is not): zero-width bounds, every LR 1,
    a CV bandwidth on the edge of its grid, a pool with fewer than 3 persons of a class."""
    s10 = run.summary("10")
    sysb = s10.get("system") or {}
    out = []
    for lv, b in (sysb.get("bounds_log10") or {}).items():
        if isinstance(b, list) and len(b) == 2 and b[0] is not None and b[1] is not None and b[1] - b[0] <= 0:
            out.append(f"{lv} level: the ELUB bounds have zero width ([{fmt(float(b[0]))}, {fmt(float(b[1]))}]): "
                       f"every LR is 1")
    for lv, d in (sysb.get("bandwidth_details") or {}).items():
        for key, det in (d or {}).items():
            if isinstance(det, dict) and det.get("at_grid_edge"):
                out.append(f"{lv} level: the CV bandwidth of {'Hp (real)' if key == 'hp' else 'Hd (fake)'} "
                           f"({fmt(num(det.get('cv_best')))}) is on the edge of its grid: widen "
                           f"slr.bandwidth.grid_min/grid_max")
    for lv, pools in (s10.get("levels") or {}).items():
        if not isinstance(pools, dict):
            continue
        for pool, blk in pools.items():
            if not isinstance(blk, dict):
                continue
            rng = blk.get("llr_range")
            if isinstance(rng, list) and len(rng) == 2 and rng[0] == 0 and rng[1] == 0:
                out.append(f"{lv} level, {pool}: every LR is 1 (log10 LR = 0)")
            for cls, key in (("real", "n_persons_hp"), ("fake", "n_persons_hd")):
                n = blk.get(key)
                if isinstance(n, int) and n < MIN_PERSONS_PER_CLASS:
                    out.append(f"{lv} level, {pool}: {n} person(s) with {cls} items (fewer than "
                               f"{MIN_PERSONS_PER_CLASS})")
    return out


def block_interval(blk: dict, metric: str) -> tuple[float | None, float | None]:
    """(lo, hi) of ``blk["ci95"][metric]``; (None, None) when the summary has no (usable) interval."""
    ci = (blk.get("ci95") or {}).get(metric)
    lo, hi = (num(ci[0]), num(ci[1])) if isinstance(ci, list) and len(ci) == 2 else (None, None)
    return (lo, hi) if lo is not None and hi is not None else (None, None)


def usable_note(blk: dict, metric: str) -> str:
    """'' or, where some resamples left ``metric`` undefined (devPAV, overestimation: ``ci95_usable``),
    how many of the ``ci95_resamples`` the interval rests on."""
    k, n = (blk.get("ci95_usable") or {}).get(metric), blk.get("ci95_resamples")
    if isinstance(k, int) and isinstance(n, int) and k < n:
        return f" (interval over the {k} of {n} resamples where {metric} is defined)"
    return ""


def judge_matrix(criteria: Iterable[dict], run: Run, degenerate: bool = False) -> list[dict]:
    """Validation decisions per criterion, pool (test, calib) and level, on the pessimistic end of
    the 95 % interval (upper end for a ``max`` criterion, lower end for ``min``); the point value
    when there is no interval (said in ``basis``). A degenerate system never passes."""
    rows = []
    for c in criteria or []:                  # checked when the config was loaded (common/schema.py)
        metric = str(c["metric"])
        what, graph, _ = METRICS[metric]
        ext = external_pools(run)
        for pool in POOL_ORDER + tuple(ext):
            for level in ([c["level"]] if c.get("level") else list(LEVELS)):
                blk = lr_block(run, pool, level)
                if (level == "video" and not blk and not c.get("level")) or (pool in ext and metric not in METRICS_15B):
                    continue
                value = num(blk.get(metric))
                lo, hi = block_interval(blk, metric)
                if "max" in c:
                    crit, end = f"{metric} ≤ {c['max']}", hi if hi is not None else value
                    ok = None if end is None else end <= float(c["max"])
                else:
                    crit, end = f"{metric} ≥ {c['min']}", lo if lo is not None else value
                    ok = None if end is None else end >= float(c["min"])
                decision = "not available" if ok is None else ("pass" if ok else "fail")
                if degenerate and decision == "pass":
                    decision = "not passed (degenerate system)"
                e = ext.get(pool)
                rows.append({"characteristic": f"generalisation ({what})" if e else c.get("characteristic", what),
                             "metric": metric, "level": level, "graphical": graph,
                             "pool": f"{pool} ({e['n_accepted']} of {e['n_items']} frames accepted by the conditions "
                                     f"check)" if e else pool, "criterion": crit, "value": value,
                             "interval": [lo, hi] if lo is not None else None, "judged_value": end,
                             "basis": ("pessimistic end of the 95 % interval" + usable_note(blk, metric)
                                       if lo is not None else "point value (no interval)"), "decision": decision})
    judged = {str(c.get("metric")) for c in (criteria or []) if isinstance(c, dict)}
    rows = _with_calibration_rows(rows, run, judged)
    if not judged & {"direction_changes", "largest_drop_log10"}:       # monotonicity: always reported
        for level in LEVELS:
            blk = lr_block(run, "calib", level)
            if "direction_changes" not in blk:
                continue
            for metric in ("direction_changes", "largest_drop_log10"):
                rows.append({"characteristic": "monotonicity", "metric": metric, "level": level,
                             "pool": "calib score range", "graphical": METRICS[metric][1],
                             "criterion": "none (add one to report.criteria)", "value": num(blk.get(metric)),
                             "interval": None, "judged_value": None, "basis": "reported",
                             "decision": "reported"})
    return rows


def _with_calibration_rows(rows: list[dict], run: Run, judged: set) -> list[dict]:
    """devPAV and the LLR-overestimation (lir's calibration characteristics), reported with their person
    intervals beside the Cllr_cal rows (after the last one) for every pool and level, unless a criterion
    judges them; a summary without their interval (older runs) shows the point value and "n/a"."""
    extra = []
    for metric in ("devpav", "llr_overestimation"):
        if metric in judged:
            continue
        for pool in POOL_ORDER:
            for level in LEVELS:
                blk = lr_block(run, pool, level)
                if metric not in blk:
                    continue
                lo, hi = block_interval(blk, metric)
                extra.append({"characteristic": "calibration", "metric": metric, "level": level, "pool": pool,
                              "graphical": METRICS[metric][1], "criterion": "none (add one to report.criteria)",
                              "value": num(blk.get(metric)), "interval": [lo, hi] if lo is not None else None,
                              "judged_value": None, "decision": "reported",
                              "basis": ("reported" + usable_note(blk, metric) if lo is not None else
                                        "reported (point value; no interval in this run's summary)")})
    at = max((i + 1 for i, r in enumerate(rows) if r["metric"] == "cllr_cal"), default=len(rows))
    return rows[:at] + extra + rows[at:]


def matrix_html(rows: list[dict], split: str = "test") -> str:
    def interval(r):
        iv = r.get("interval")
        return f"[{fmt(iv[0])}, {fmt(iv[1])}]" if iv else "n/a"
    body = [[esc(r["characteristic"]), esc(r["metric"]), esc(r["level"]), esc(r.get("pool", split)), r["value"],
             interval(r), esc(r["criterion"]), esc(r.get("basis", "")), esc(r["graphical"]), esc(r["decision"])]
            for r in rows]
    classes = [["", "", "", "", "num", "num", "", "small", "small",
                {"pass": "pass", "fail": "fail"}.get(r["decision"], "fail" if "degenerate" in r["decision"] else "na")]
               for r in rows]
    return ('<div id="validation-matrix">' +
            table(["performance characteristic", "performance metric", "level", "pool", "analytical result",
                   "95 % interval (persons)", "validation criterion", "judged on", "graphical representation",
                   "validation decision"], body, classes=classes) + "</div>")
