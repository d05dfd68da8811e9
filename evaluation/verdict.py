"""The validation verdict of an LR system: one judgement, read by the report, the runner and casework.

It is drawn from the validation matrix (:func:`evaluation.report.judge_matrix`, each criterion judged
on the pessimistic end of its 95 % interval) and the degenerate reasons
(:func:`evaluation.report.degenerate_reasons`); nothing is judged here a second time. Every row
judged against a criterion counts (one criterion x pool x level); "pass" is the only passing decision,
so a failed, unavailable or degenerate row is a criterion not met.

- :func:`verdict`: the matrix rows -> status (passed / failed / degenerate / not validated), the
  criteria not met, whether the system is fit for casework, and the one line a reader sees first
  (the report's opening line, stage 16's and the runner's last console line).
- :func:`judge_system`: the same for a loaded ``slr.system.LRSystem`` (what casework states).
- :func:`describe`: the verdict in one sentence with the system's identity (casework's outputs).

A system is fit for casework only when every judged criterion passes and nothing else forbids it: a
degenerate system, demonstration data, features of a detector that saw every person (a data note), a
detector that did not learn (stage 04's flag), or no saved LR system to load.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

from common.stages import folder, get

PASSED, FAILED, DEGENERATE, NOT_VALIDATED = "passed", "failed", "degenerate", "not validated"


def _head(judged: list, not_met: list, n_fail: int, n_na: int, status: str) -> str:
    if status == NOT_VALIDATED:
        return "VALIDATION NOT JUDGED: no criteria in report.criteria"
    if status == PASSED:
        return f"VALIDATION PASSED: all {len(judged)} criteria met"
    if not not_met:
        return "VALIDATION FAILED: degenerate LR system"
    n_degen = len(not_met) - n_fail - n_na
    parts = [f"{n} {what}" for n, what in ((n_fail, "fail"), (n_na, "not available"),
                                            (n_degen, "not passed, degenerate system")) if n]
    return f"VALIDATION FAILED: {len(not_met)} of {len(judged)} criteria not met ({', '.join(parts)})"


def verdict(rows: Iterable[dict], degenerate: Sequence[str] = (), sha256: str | None = None, demo: bool = False,
            note: str = "", system_loaded: bool = True, detector_learned: bool | None = None) -> dict:
    """The verdict of judged matrix rows (``judge_matrix``) and degenerate reasons.

    ``status``: degenerate (any reason), else passed (every judged criterion passes), else failed (a
    fail or a result not available); not validated when nothing was judged (no criteria or figures).
    ``failed``: each criterion not met, with the value it was judged on and the basis.
    ``fit_for_casework`` and ``line``: as the module docstring says (``demo``, ``note``,
    ``system_loaded`` and ``detector_learned`` False (stage 04's flag) forbid casework use without
    changing the status)."""
    judged = [r for r in rows if r.get("decision") != "reported"]
    not_met = [r for r in judged if r.get("decision") != "pass"]
    n_fail = sum(r.get("decision") == "fail" for r in judged)
    n_na = sum(r.get("decision") == "not available" for r in judged)
    status = (DEGENERATE if degenerate else NOT_VALIDATED if not judged else FAILED if not_met else PASSED)
    reasons = (["no validation criteria (report.criteria)"] if not judged else
               [f"{len(not_met)} of {len(judged)} criteria not met"] if not_met else [])
    reasons += [why for why, flag in (("degenerate LR system", bool(degenerate)), ("demonstration data", demo),
                                      ("features of a detector that saw every person", bool(note)),
                                      ("no saved LR system", not system_loaded),
                                      ("detector did not learn", detector_learned is False)) if flag]
    fit = status == PASSED and not reasons
    others = reasons if status == PASSED else reasons[1:]          # the first reason is what the head says
    tail = ("the LR system is fit for casework within its validated conditions" if fit else
            "the LR system is NOT fit for casework" + (f" ({'; '.join(others)})" if others else ""))
    failed = [{"metric": r["metric"], "level": r["level"], "pool": r["pool"], "criterion": r["criterion"],
               "judged_value": r.get("judged_value"), "basis": r.get("basis"), "decision": r["decision"]}
              for r in not_met]
    return {"status": status, "sha256": sha256, "n_criteria": len(judged), "n_failed": len(not_met),
            "n_fail": n_fail, "n_not_available": n_na, "failed": failed, "degenerate": list(degenerate),
            "fit_for_casework": fit, "reasons": reasons,
            "line": f"{_head(judged, not_met, n_fail, n_na, status)}; {tail}."}


def system_summary(system) -> dict:
    """Stage 10's summary as far as the saved system holds it (what the judgement reads)."""
    levels = (system.validation or {}).get("levels") or {}
    block = {"bounds_log10": {lv: [lm.lower_log10, lm.upper_log10] for lv, lm in system.levels.items()},
             "bandwidth_details": {lv: dict(getattr(lm.model, "details", None) or {})
                                   for lv, lm in system.levels.items()},
             "monotonicity": {lv: lm.monotonicity for lv, lm in system.levels.items()}}
    return {"levels": levels, "system": block}


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


def report_verdict(report_dir: str | Path) -> tuple[str, Path] | None:
    """(verdict line, path of report.html) of a written stage-16 report, or None when there is none."""
    report_dir = Path(report_dir)
    try:
        line = json.loads((report_dir / "summary.json").read_text())["verdict"]["line"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    html = report_dir / "report.html"
    return (line, html) if html.is_file() else None
