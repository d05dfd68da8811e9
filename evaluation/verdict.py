"""The validation verdict: one line a reader sees first (the report's opening line, stage 16's and the
runner's last console line). It is drawn from the validation matrix (evaluation.report.judge_matrix):
every row judged against a criterion counts (one criterion x pool x level); "pass" is the only
passing decision, so a failed, unavailable or degenerate row is a criterion not met.

A system is fit for casework only when every judged criterion passes and nothing else forbids it:
a degenerate system, demonstration data, features of a detector that saw every person (a data note),
or no saved LR system to load.
"""
from __future__ import annotations

import json
from pathlib import Path

PASSED, FAILED, NOT_JUDGED = "passed", "failed", "not judged"


def verdict(decisions: list[dict], degenerate: list[str] = (), demo: bool = False, note: str = "",
            system_loaded: bool = True) -> dict:
    """``{status, n_criteria, n_not_met, n_fail, n_not_available, fit_for_casework, reasons, line}``."""
    judged = [r for r in decisions if r.get("decision") != "reported"]
    not_met = [r for r in judged if r.get("decision") != "pass"]
    n_fail = sum(r.get("decision") == "fail" for r in judged)
    n_na = sum(r.get("decision") == "not available" for r in judged)
    status = NOT_JUDGED if not judged else (FAILED if not_met or degenerate else PASSED)
    reasons = (["no validation criteria (report.criteria)"] if not judged else
               [f"{len(not_met)} of {len(judged)} criteria not met"] if not_met else [])
    reasons += [why for why, flag in (("degenerate LR system", bool(degenerate)), ("demonstration data", demo),
                                      ("features of a detector that saw every person", bool(note)),
                                      ("no saved LR system", not system_loaded)) if flag]
    fit = status == PASSED and not reasons
    if status == NOT_JUDGED:
        head = "VALIDATION NOT JUDGED: no criteria in report.criteria"
    elif status == PASSED:
        head = f"VALIDATION PASSED: all {len(judged)} criteria met"
    else:
        n_degen = len(not_met) - n_fail - n_na
        parts = [f"{n} {what}" for n, what in ((n_fail, "fail"), (n_na, "not available"),
                                                (n_degen, "not passed, degenerate system")) if n]
        head = (f"VALIDATION FAILED: {len(not_met)} of {len(judged)} criteria not met ({', '.join(parts)})"
                if not_met else "VALIDATION FAILED: degenerate LR system")
    others = reasons if status == PASSED else reasons[1:]          # the first reason is what ``head`` says
    tail = ("the LR system is fit for casework within its validated conditions" if fit else
            "the LR system is NOT fit for casework" + (f" ({'; '.join(others)})" if others else ""))
    line = f"{head}; {tail}."
    return {"status": status, "n_criteria": len(judged), "n_not_met": len(not_met), "n_fail": n_fail,
            "n_not_available": n_na, "fit_for_casework": fit, "reasons": reasons, "line": line}


def report_verdict(report_dir: str | Path) -> tuple[str, Path] | None:
    """(verdict line, path of report.html) of a written stage-16 report, or None when there is none."""
    report_dir = Path(report_dir)
    try:
        line = json.loads((report_dir / "summary.json").read_text())["verdict"]["line"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    html = report_dir / "report.html"
    return (line, html) if html.is_file() else None
