"""Sections of the validation report beyond the matrix: pool counts, the saved LR system with its
level-two details and accepted conditions, leakage, run status, the comparison of runs, robustness and
a fused run's members beside its fused system."""
from __future__ import annotations

import json
from typing import Any

from common.conditions import describe_conditions
from common.stages import folder
from evaluation.report_html import ci_cell, esc, figures_of, fmt, table
from evaluation.report_run import LEVELS, Run, classifier_metrics, find_values, lr_metrics, num, pick

def counts_html(run: Run) -> str:
    s10 = run.summary("10")
    counts = s10.get("counts")
    if not isinstance(counts, dict) or not counts:
        return '<p class="status-missing">No counts (stage 10 not run).</p>'
    labels = s10.get("labels") or {}
    rows = []
    for pool, c in counts.items():
        for cls, sfx, n in (("real (Hp)", "hp", "n_hp"), ("fake (Hd)", "hd", "n_hd")):
            rows.append([esc(labels.get(pool, pool)), cls, c.get(f"n_persons_{sfx}"), c.get(f"n_videos_{sfx}"),
                         c.get(n)])
    return ('<div id="pool-counts">' + table(["pool", "class", "persons", "videos", "frames"], rows) + "</div>")


def system_html(run: Run) -> tuple[str, dict]:
    """The saved LR system, loaded and verified (slr.system.LRSystem.load)."""
    d = run.output_dir / folder("10") / "system"
    if not d.is_dir() and (run.output_dir / "system").is_dir():     # a run_scores output folder
        d = run.output_dir / "system"
    s10 = run.summary("10")
    if not d.is_dir():
        why = ("the paper protocol fits no single system (its KDEs are re-fitted on each split)"
               if s10.get("protocol") == "paper" else "stage 10 not run")
        return f"<p>No saved LR system: {esc(why)}.</p>", {"loaded": False, "reason": why}
    from slr.system import LRSystem

    try:
        system = LRSystem.load(d)
    except Exception as exc:        # noqa: BLE001 - shown in the report, never a crash
        return (f"<div class='banner fail' id='system-error'><b>The saved LR system failed verification.</b> "
                f"{esc(exc)}</div>", {"loaded": False, "reason": str(exc)})
    rows = []
    for lv, lm in system.levels.items():
        desc = lm.model.describe()
        bw = lm.bandwidth()
        mono = lm.monotonicity.get("model", {})
        rows.append([lv, esc(desc["name"]), esc(lm.calibration), f"[{fmt(lm.lower_log10)}, {fmt(lm.upper_log10)}]",
                     esc(f"Hp {fmt(bw['hp'])}, Hd {fmt(bw['hd'])}") if bw else "n/a",
                     "higher = real" if lm.model.direction > 0 else "lower = real",
                     mono.get("direction_changes"), num(mono.get("largest_drop_log10")), int(lm.crossfit.get("k", 0)),
                     lm.counts.get("n_persons"), lm.counts.get("n_videos"), lm.counts.get("n_frames")])
    html_ = (f"<p>Loaded from <code>{esc(d)}</code>; SHA-256 <code>{esc(system.sha256)}</code> (every file verified "
             f"against its manifest). Score: <b>{esc(system.score_spec.get('name'))}</b>. Fitted on the calib pool "
             f"only; calibration and bounds on cross-fitted calib LLRs.</p>" +
             table(["level", "score model", "calibration", "bounds (log10)", "bandwidth (score units)", "direction",
                    "LLR direction changes", "largest LLR drop (log10)", "cross-fitting folds", "calib persons",
                    "calib videos", "calib frames"], rows) +
             _level2_html(system) +
             "<p>What casework (<code>evidence.py</code>) accepts, from the conditions of the calib data:</p>"
             "<ul id='accepted-conditions'>" + "".join(f"<li>{esc(t)}</li>" for t in describe_conditions(system.conditions))
             + "</ul>")
    return html_, {"loaded": True, "sha256": system.sha256, "levels": sorted(system.levels)}


def _level2_html(system) -> str:
    """Issue 21: the bounder, the logistic calibrator's separation handling, ``slr.model: auto``'s
    candidates and choice, and the case interval, per level."""
    st = system.settings
    parts = [f"<p id='system-level2'>Bounds: <b>{esc(st.bounds)}</b> ({'Invariance Verification, lir' if st.bounds == 'iv' else 'ELUB'}). "
             "Logistic fits on perfectly separated data add one misleading item per hypothesis (finite slope; "
             "docs/slr.md).</p>"]
    for lv, lm in system.levels.items():
        if lm.model_choice:
            c = lm.model_choice
            rows = [[esc(name), num(f.get("cllr")), num(f.get("cllr_min")), "chosen" if name == c["chosen"] else ""]
                    for name, f in c["candidates"].items()]
            parts.append(f"<p>{esc(lv)} level, slr.model auto: {esc(c['method'])}.</p>" +
                         table(["candidate", "cross-validated Cllr (bits)", "Cllr_min", ""], rows))
        if lm.case_band:
            parts.append(f"<p class='small'>{esc(lv)} level, case intervals: {esc(lm.case_band['method'])}.</p>")
    return "".join(parts)


def leakage_html(run: Run) -> str:
    s02 = run.stages.get(folder("02"))
    if not s02 or not s02.summaries:
        return '<p class="status-missing">No split summary (stage 02 not run): leakage unknown.</p>'
    found = []
    for name, data in s02.summaries.items():
        for path, value in find_values(data, "leakage") + find_values(data, "leakage_report") + \
                find_values(data, "leaky"):
            found.append((f"{name}: {'.'.join(map(str, path))}", value))
    if not found:
        return '<p class="status-missing">The split summary holds no leakage report.</p>'
    return "".join(f"<details><summary>{esc(k)}</summary><pre>{esc(json.dumps(v, indent=1)[:4000])}</pre></details>"
                   for k, v in found)


def status_table(run: Run) -> str:
    rows, classes = [], []
    for name, res in run.stages.items():
        st = res.stamp or {}
        rows.append([esc(name), esc(res.status), esc(st.get("finished", "")),
                     st.get("seconds") if st.get("seconds") is not None else "", len(res.figures)])
        classes.append(["", "status-done" if res.status == "done" else "status-missing", "", "num", "num"])
    return table(["stage", "status", "finished", "seconds", "figures"], rows, classes=classes)


def comparison_rows(runs: list[Run], split: str) -> list[list]:
    rows = []
    for r in runs:
        m = lr_metrics(r, split, "frame")
        c = classifier_metrics(r, split)["frame"]
        model = pick(r.summary("03"), "model", split, "frame") or pick(r.summary("03"), "name")
        model = model if isinstance(model, str) else (model.get("name") if isinstance(model, dict) else None)
        elub = (f"[{m['elub_lower_log10']:.2f}, {m['elub_upper_log10']:.2f}]"
                if m["elub_lower_log10"] is not None else "n/a")
        rows.append([esc(r.output_dir.name), esc(model or "n/a"), c.get("auc"), m["auc"], m["eer"], m["cllr"],
                     m["cllr_min"], m["cllr_cal"], elub])
    return rows

def _sentence(text: Any) -> str:
    text = str(text or "")
    return text[:1].upper() + text[1:]


def robustness_html(run: Run) -> str:
    """The robustness section (stage 15): per degradation and strength the LR system's figures with
    95 % person-cluster intervals, the validated ranges written into the system, the figures."""
    name = folder("15")
    res = run.stages.get(name)
    s = run.summary(name)
    h = ["<h2 id='robustness'>Robustness under degraded images</h2>"]
    if res is None or not s:
        status = res.status if res else "not run"
        return h[0] + f'<p class="status-missing">Stage {esc(name)}: {esc(status)}.</p>'
    h.append(f"<p>The saved LR system (nothing refitted) on the <b>{esc(s.get('pool', 'test'))}</b> pool's "
             f"{fmt(s.get('n_frames'))} frames of {fmt(s.get('n_persons'))} persons, each degraded at each strength. "
             f"{esc(_sentence(s.get('downscale_source', '')))}. Criteria from <code>{esc(s.get('criteria_key', ''))}</code>, "
             "judged on the pessimistic end of the 95 % person-cluster interval; a family's validated range "
             "runs from clean up to the last setting before the first failure. Strong misleading = an LR of 10 "
             "or more in the wrong direction.</p>")
    if s.get("degenerate"):
        h.append("<div class='banner'><b>Degenerate LR system.</b> Every clean test frame gets the same LLR, so no "
                 "degradation can change an LR and these figures say nothing about robustness.</div>")
    if s.get("in_sample"):
        h.append("<div class='banner'><b>Not out of fold.</b> The LR system was fitted on every person of calib and "
                 "test (slr.validation crossval), so these test frames are its own fitting persons, degraded: the "
                 "figures are optimistic.</div>")
    metrics = ("cllr", "cllr_min", "eer", "auc", "misleading_hp", "misleading_hd", "strong_misleading_hp",
               "strong_misleading_hd")
    rows = [[esc(r.get("setting")), esc(r.get("applied_to")), esc(r.get("level"))] + [ci_cell(r, m) for m in metrics]
            for r in s.get("table", [])]
    h.append("<div id='robustness-table'>" + table(
        ["setting", "applied to", "level", "Cllr (bits)", "Cllr_min (bits)", "EER", "AUC", "P(LLR<0|Hp)",
         "P(LLR>0|Hd)", "P(LLR≤−1|Hp)", "P(LLR≥1|Hd)"], rows) + "</div>")
    vd = s.get("validated_degradations") or {}
    if vd:
        vr = []
        for fam, v in vd.items():
            key = next((k for k in v if k.startswith(("min_", "max_"))), None)
            bound = "none validated" if key and v.get(key) is None else f"{key} = {v.get(key)}" if key else "n/a"
            vr.append([esc(fam), esc(bound), esc(v.get("status", "")),
                       esc(", ".join(str(t) for t in v.get("tested", []))),
                       esc(", ".join(str(t) for t in v.get("passed", [])) or "none")])
        h.append("<h3>Validated ranges (written into the LR system's conditions)</h3><div id='robustness-ranges'>" +
                 table(["degradation", "validated condition", "status", "tested", "passed"], vr) + "</div>")
    else:
        h.append("<p>No criteria: no validated ranges were derived.</p>")
    system = s.get("system") or {}
    h.append(f"<p class='small'>System with these conditions: {esc(system.get('dir', 'n/a'))}, SHA-256 "
             f"{esc(system.get('sha256', 'n/a'))} (derived from {esc(s.get('base_sha256', 'n/a'))}).</p>")
    h.append(figures_of(res))
    return "\n".join(h)


FUSION_METRICS = ("cllr", "cllr_min", "eer")


def fusion_html(run: Run, split: str = "test") -> str:
    """A fused run (``slr.score: fusion``): the fused LR system beside each member's own system (fitted the
    same way on calib, evaluated on ``split``; 95 % person-cluster intervals), the cross-validated choice
    and, in words, whether the fusion is used and why. Empty for other runs."""
    s10 = run.summary("10")
    choice, members = s10.get("fusion"), s10.get("fusion_members")
    if not isinstance(choice, dict) or not isinstance(members, dict):
        return ""
    rows = []
    for lv in LEVELS:
        for name, ev in members.items():
            blk = ((ev or {}).get(lv) or {}).get(split)
            if blk:
                rows.append([esc(name), "member alone", lv] + [ci_cell(blk, k) for k in FUSION_METRICS])
        blk = ((s10.get("levels") or {}).get(lv) or {}).get(split)
        if blk:
            rows.append(["<b>fused system</b>", "fusion" if choice.get("fusion_used") else
                         f"best member ({esc(choice.get('best_member'))})", lv] +
                        [ci_cell(blk, k) for k in FUSION_METRICS])
    cv = [[esc(n), "member", num(v)] for n, v in (choice.get("member_cllr") or {}).items()]
    cv += [["fusion of all members", f"C = {esc(c)}", num(v)] for c, v in (choice.get("fusion_cllr") or {}).items()]
    used = "Fusion used" if choice.get("fusion_used") else "Fusion not used"
    return ("<h2>Fusion of detectors</h2><div id='fusion'>"
            f"<p id='fusion-choice'><b>{used}.</b> Why: {esc(choice.get('reason'))}. Cross-validation: "
            f"{esc(choice.get('cv'))} on calib only; {esc(choice.get('calib_scores', ''))}.</p>"
            f"<p>Each member's own LR system, fitted on calib exactly as the fused one, and the fused system, on "
            f"<i>{esc(split)}</i>; 95 % person-cluster intervals in brackets.</p><div id='fusion-table'>" +
            table(["system", "role", "level", "Cllr", "Cllr_min", "EER"], rows) + "</div><div id='fusion-cv'>" +
            table(["candidate", "", "cross-validated Cllr on calib (bits)"], cv) + "</div></div>")
