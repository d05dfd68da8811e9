"""The validation verdict of a saved LR system: passed, failed (which criteria) or degenerate.

One judgement, the report's (:func:`evaluation.report.judge_matrix` on the pessimistic end of each
95 % interval, :func:`evaluation.report.degenerate_reasons`), applied to what the saved system
records: its validation block (stage 10's ``levels``: figures and intervals per level and pool), its
bounds, bandwidth searches and monotonicity. So casework states the verdict the report shows for
the same system and criteria, and no criterion is judged in a second place.

:func:`verdict` turns the matrix rows into the verdict; :func:`judge_system` does it for a loaded
``slr.system.LRSystem``; :func:`describe` gives the verdict in one sentence.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from common.stages import folder, get

PASSED, FAILED, DEGENERATE, NOT_VALIDATED = "passed", "failed", "degenerate", "not validated"


def system_summary(system) -> dict:
    """Stage 10's summary as far as the saved system holds it (what the judgement reads)."""
    levels = (system.validation or {}).get("levels") or {}
    block = {"bounds_log10": {lv: [lm.lower_log10, lm.upper_log10] for lv, lm in system.levels.items()},
             "bandwidth_details": {lv: dict(getattr(lm.model, "details", None) or {})
                                   for lv, lm in system.levels.items()},
             "monotonicity": {lv: lm.monotonicity for lv, lm in system.levels.items()}}
    return {"levels": levels, "system": block}


def verdict(rows: Iterable[dict], degenerate: Sequence[str], sha256: str | None = None) -> dict:
    """The verdict of judged matrix rows (``judge_matrix``) and degenerate reasons.

    ``status``: degenerate (any reason), else passed (every judged criterion passes), else failed (a
    fail or a result not available); not validated when nothing was judged (no criteria or figures).
    ``failed``: each criterion that did not pass, with the value it was judged on and the basis.
    """
    judged = [r for r in rows if r.get("decision") != "reported"]
    bad = [r for r in judged if r.get("decision") != "pass"]
    if degenerate:
        status = DEGENERATE
    elif not judged:
        status = NOT_VALIDATED
    else:
        status = FAILED if bad else PASSED
    failed = [{"metric": r["metric"], "level": r["level"], "pool": r["pool"], "criterion": r["criterion"],
               "judged_value": r.get("judged_value"), "basis": r.get("basis"), "decision": r["decision"]}
              for r in bad]
    return {"status": status, "sha256": sha256, "n_criteria": len(judged), "n_failed": len(bad),
            "failed": failed, "degenerate": list(degenerate)}


def judge_system(system, criteria: Sequence[dict]) -> dict:
    """The verdict of a loaded LR system under ``criteria`` (config ``report.criteria``)."""
    from .report import Run, StageResult, degenerate_reasons, judge_matrix

    run = Run(Path("."), {folder("10"): StageResult(get("10"), "done", {"summary.json": system_summary(system)})})
    reasons = degenerate_reasons(run)
    return verdict(judge_matrix(criteria, run, bool(reasons)), reasons, system.sha256)


def failed_text(item: dict) -> str:
    """One criterion that did not pass, for reading: ``cllr ≤ 0.5 (frame, test): 1.09``."""
    v = item.get("judged_value")
    value = "not available" if v is None else f"{float(v):.3g}"
    point = " (point value, no interval)" if str(item.get("basis") or "").startswith("point") else ""
    return f"{item['criterion']} ({item['level']}, {item['pool']}): {value}{point}"


def describe(v: dict, short: bool = False, reasons: bool = True) -> str:
    """The verdict in one sentence (``short``: without the degenerate reasons and the list of criteria;
    ``reasons=False``: without the degenerate reasons)."""
    sha = (v.get("sha256") or "unknown")
    who = f"LR system SHA-256 {sha[:12]}..." if short else f"LR system SHA-256 {sha}"
    status = v["status"]
    if status == PASSED:
        return f"{who}: validation passed ({v['n_criteria']} criteria, pessimistic ends of the 95 % intervals)"
    if status == NOT_VALIDATED:
        return f"{who}: NOT VALIDATED (no validation criterion could be judged: no criteria or no figures)"
    degenerate = "a degenerate system" + ("" if short or not reasons else f" ({'; '.join(v['degenerate'])})")
    head = (f"{who}: NOT VALIDATED, {degenerate if status == DEGENERATE else 'validation failed'}; "
            f"{v['n_failed']} of {v['n_criteria']} criteria not passed (judged on the pessimistic ends of the "
            f"95 % intervals)")
    if short or not v["failed"]:
        return head
    return head + ": " + "; ".join(failed_text(f) for f in v["failed"])
