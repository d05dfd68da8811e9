"""docs/results.md's number formats and tables (cells, seed groups, pools, published, robustness)."""
from __future__ import annotations

import json
import math


METRIC_COLS = (("auc", "AUC"), ("eer", "EER"), ("cllr", "Cllr"), ("cllr_min", "Cllr_min"), ("cllr_cal", "Cllr_cal"),
               ("misleading_hp", "P(LLR<0 \\| Hp)"), ("misleading_hd", "P(LLR>0 \\| Hd)"))
LEVELS = ("frame", "video")


def fmt(x, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if abs(x) < 1e-12:          # float noise around zero (e.g. a bound of -8.7e-18)
        return "0"
    return f"{x:.{digits}g}"


def fmt_seconds(s) -> str:
    return "n/a" if s is None else f"{round(float(s))} s ({float(s) / 60:.0f} min)"


def fmt_ci(ci) -> str:
    if not ci:
        return ""
    return f" [{fmt(ci[0])}, {fmt(ci[1])}]"


def fmt_devpav(t: dict) -> str:
    """devPAV (log10) with its person interval; "n/a" for an interval the cell's summary predates (or no
    resample left defined), "(k/n)" when only k of the n resamples gave a defined devPAV."""
    if t.get("devpav") is None:
        return "n/a"
    ci = (t.get("ci95") or {}).get("devpav")
    if not ci:
        return fmt(t["devpav"]) + " [n/a]"
    k, n = (t.get("ci95_usable") or {}).get("devpav"), t.get("ci95_resamples")
    part = isinstance(k, int) and isinstance(n, int) and k < n
    return fmt(t["devpav"]) + fmt_ci(ci) + (f" ({k}/{n})" if part else "")


def fmt_bounds(b) -> str:
    if not b:
        return "n/a"
    return f"[{fmt(b[0])}, {fmt(b[1])}]"


def fmt_stat(s: dict) -> str:
    if not s or s.get("mean") is None:
        return "n/a"
    if s.get("n", 0) <= 1:
        return fmt(s["mean"])
    return f"{fmt(s['mean'])} [{fmt(s['min'])}, {fmt(s['max'])}]"


def _mono(m) -> str:
    if not isinstance(m, dict):
        return "n/a"
    dc = m.get("direction_changes")
    drop = m.get("largest_drop_log10")
    return f"{fmt(dc)} / {fmt(drop)}"


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _sorted_entries(entries):
    return sorted(entries, key=lambda e: (e["detector"], e["score"], e["model"], e["seed"], e["level"]))


def cell_table(entries: list[dict], level: str, extra_paper: bool = False) -> list[str]:
    """One row per cell: each figure with its person-cluster 95 % interval (devPAV too), ELUB bounds,
    monotonicity."""
    rows = [e for e in _sorted_entries(entries) if e["level"] == level]
    if not rows:
        return [f"_No {level}-level results._", ""]
    head = ["detector", "score", "model", "seed"] + [h for _, h in METRIC_COLS] + ["devPAV (log10)"] + \
           ["ELUB bounds (log10)", "direction changes / largest drop (log10)", "test n_hp / n_hd / persons", "flags"]
    if extra_paper:
        head += ["paper's EER code", "paper's \"calibrated Cllr\""]
    out = [_row(head), _row(["---"] * len(head))]
    for e in rows:
        t = e["test"]
        ci = t.get("ci95") or {}
        vals = [e["detector"], e["score"], e["model"], e["seed"]]
        vals += [fmt(t.get(k)) + fmt_ci(ci.get(k)) for k, _ in METRIC_COLS] + [fmt_devpav(t)]
        vals += [fmt_bounds(t.get("bounds_log10")), _mono(t.get("monotonicity")),
                 f"{fmt(t.get('n_hp'))} / {fmt(t.get('n_hd'))} / {fmt(t.get('n_persons'))}",
                 "; ".join((["degenerate: " + "; ".join(t["flags"])] if t.get("flags") else [])
                           + ([e["detector_flag"]] if e.get("detector_flag") else []))]
        if extra_paper:
            vals += [fmt(t.get("paper_eer")), fmt(t.get("paper_cllr_calibrated"))]
        out.append(_row(vals))
    return out + [""]


def group_table(groups: list[dict], level: str) -> list[str]:
    """One row per detector x score x model: the mean over seeds and its range [min, max]."""
    rows = sorted((g for g in groups if g["level"] == level), key=lambda g: (g["detector"], g["score"], g["model"]))
    if not rows:
        return [f"_No {level}-level results._", ""]
    head = ["detector", "score", "model", "seeds"] + [h for _, h in METRIC_COLS] + \
           ["ELUB lower (log10)", "ELUB upper (log10)", "direction changes"]
    out = [_row(head), _row(["---"] * len(head))]
    for g in rows:
        vals = [g["detector"], g["score"], g["model"], ", ".join(str(s) for s in g["seeds"])]
        vals += [fmt_stat(g["test"].get(k)) for k, _ in METRIC_COLS]
        vals += [fmt_stat(g["bounds_lower_log10"]), fmt_stat(g["bounds_upper_log10"]),
                 fmt_stat(g["direction_changes"])]
        out.append(_row(vals))
    return out + [""]


def pools_table(pools: dict) -> list[str]:
    """Persons, videos and frames per pool; runs with the same split (same seed) share one row group."""
    if not pools:
        return ["_No split files found._", ""]
    same: dict[str, list[str]] = {}
    for run in sorted(pools):
        same.setdefault(json.dumps(pools[run]), []).append(run)
    head = ["runs (detector / split)", "pool", "persons", "videos real / fake", "frames real / fake"]
    out = [_row(head), _row(["---"] * len(head))]
    for key, runs in sorted(same.items(), key=lambda kv: kv[1][0]):
        label = ", ".join(runs)
        for pool, c in json.loads(key).items():
            out.append(_row([label, pool, fmt(c.get("persons")),
                             f"{fmt(c.get('videos_real'))} / {fmt(c.get('videos_fake'))}",
                             f"{fmt(c.get('frames_real'))} / {fmt(c.get('frames_fake'))}"]))
    return out + ["", "Frames are those of the split; every frame of every pool is dumped and scored unless "
                  "`features.frames_per_video` says otherwise (the cells' test n_hp / n_hd are the scored ones).", ""]


def published_table(published) -> list[str]:
    if not published:
        return ["The paper's published figures are not stored in this repository "
                "(`../shared/docs/paper_method.md` leaves them out on purpose); set `experiments.published` "
                "in the results config to show them here in this format.", ""]
    figures = published.get("figures") or {}
    out = []
    if published.get("source"):
        out += [f"Source: {published['source']}", ""]
    head = ["level", "split"] + [h for _, h in METRIC_COLS] + ["ELUB bounds (log10)", "note"]
    out += [_row(head), _row(["---"] * len(head))]
    for key in sorted(figures):
        f = figures[key] or {}
        out.append(_row([f.get("level", "frame"), f.get("split", key)] + [fmt(f.get(k)) for k, _ in METRIC_COLS]
                        + [fmt_bounds(f.get("bounds_log10")), f.get("note", "")]))
    return out + [""]


FAMILY_LABELS = {"jpeg": "JPEG quality", "downscale": "downscale factor", "blur": "blur sigma (px)",
                 "noise": "noise sigma (grey levels)"}


def robustness_cell(results: dict) -> dict | None:
    """The grid cell with the lowest frame-level test Cllr among those that ran stage 15."""
    fc = [e for e in _frame_cells(results.get("cells", [])) if e.get("robustness")]
    return min(fc, key=lambda e: (e["test"]["cllr"], e["cell"])) if fc else None


def _fig(r: dict | None, key: str) -> str:
    return "n/a" if not r else fmt(r.get(key)) + fmt_ci((r.get("ci95") or {}).get(key))


def robustness_table(results: dict) -> list[str]:
    """One column per degradation family for the best cell with a robustness run (stage 15): Cllr at
    every strength, the figures at the strongest setting with their intervals, and the validated range."""
    best = robustness_cell(results)
    if best is None:
        return ["_No cell of the grid ran stage 15 (robustness); enable `robustness.enabled` in the grid's "
                "`set`, `by_model` or `by_score` to add this table._", ""]
    overall = sorted(_frame_cells(results.get("cells", [])), key=lambda e: (e["test"]["cllr"], e["cell"]))[0]
    r0 = best["robustness"]
    fams = list(r0["families"])
    out = [f"Cell `{best['cell']}` (frame-level test Cllr {fmt(best['test']['cllr'])} bits"
           + ("; the best cell overall" if overall["cell"] == best["cell"] else
              f"; the best cell overall, `{overall['cell']}`, did not run stage 15") + "). "
           f"Its saved LR system scores {fmt(r0.get('n_frames'))} degraded test frames of {fmt(r0.get('n_persons'))} "
           "persons at each setting, the clean column included (a subset of the test pool, `robustness.max_frames`, "
           "so its clean figures differ from the cell's full test figures); nothing is refitted. Intervals: "
           "person-cluster bootstrap 95 %. The validated "
           "range is the strongest setting at which every criterion still holds on the pessimistic end of its "
           f"interval (table: `{r0.get('csv')}`).", ""]
    head = ["level", "figure", "clean"] + [FAMILY_LABELS.get(f, f) for f in fams]
    out += [_row(head), _row(["---"] * len(head))]
    by_level = {e["level"]: e["robustness"] for e in results["cells"]
                if e["cell"] == best["cell"] and e.get("robustness")}
    for level in LEVELS:
        r = by_level.get(level)
        if r is None:
            continue
        strongest = {f: (r["families"][f]["settings"] or [None])[-1] for f in fams}
        out.append(_row([level, "Cllr (bits) by strength", _fig(r["clean"], "cllr")]
                        + ["; ".join(f"{fmt(s['strength'])}: {fmt(s['cllr'])}" for s in r["families"][f]["settings"])
                           for f in fams]))
        for key, label in (("cllr", "Cllr at the strongest setting"), ("auc", "AUC at the strongest setting"),
                           ("misleading_hp", "P(LLR<0 \\| Hp) at the strongest"),
                           ("misleading_hd", "P(LLR>0 \\| Hd) at the strongest")):
            out.append(_row([level, label, _fig(r["clean"], key)]
                            + [(f"{fmt(strongest[f]['strength'])}: " if strongest[f] else "") + _fig(strongest[f], key)
                               for f in fams]))
    fam_info = r0["families"]
    out.append(_row(["both", "validated range (strongest passing setting)", ""]
                    + [fmt(fam_info[f]["validated_strongest"]) if fam_info[f].get("validated_strongest") is not None
                       else str(fam_info[f].get("status") or "not validated") for f in fams]))
    return out + [""]


def robustness_finding(results: dict) -> str | None:
    best = robustness_cell(results)
    if best is None:
        return None
    r = best["robustness"]
    parts = []
    for fam, info in r["families"].items():
        if info["settings"]:
            s = info["settings"][-1]
            parts.append(f"{FAMILY_LABELS.get(fam, fam)} {fmt(s['strength'])}: {fmt(s['cllr'])}")
    passed = [f for f, i in r["families"].items() if i.get("validated_strongest") is not None]
    return (f"Under degraded images (stage 15, `{best['cell']}`, frame level) the test Cllr moves from "
            f"{fmt((r.get('clean') or {}).get('cllr'))} bits on clean frames to " + ", ".join(parts)
            + " at the strongest setting of each family; "
            + (f"a validated range exists for {', '.join(passed)}." if passed else
               "no family has a validated range (" + str(next(iter(r["families"].values())).get("status")) + ")."))


# ------------------------------------------------------------------------------------------ findings
def _frame_cells(entries, level="frame"):
    return [e for e in entries if e["level"] == level and e["test"].get("cllr") is not None
            and math.isfinite(e["test"]["cllr"])]
