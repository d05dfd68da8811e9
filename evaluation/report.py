"""The validation report: one self-contained HTML page per run (stage 16).

It reads what stages 00-14 left in ``<output_dir>/<NN_stage>/`` -- their ``*.json`` summaries, their
PNG figures and the runner's stamps -- and never recomputes a number. Missing stages or keys are
shown as "not run" / "n/a", never a crash: the report of a half-finished run says what is missing.

Sections, in this order: banners (demo, contaminated features, degenerate system, detector did not learn); persons,
videos and frames per pool and class; the validation matrix in the form of Meuwly, Ramos and
Haraksim (2017, Forensic Sci. Int. 276:142-153) -- performance characteristic, performance metric,
level, pool (test and the cross-fitted calib), analytical result with its 95 % person-cluster
interval, validation criterion (config ``report.criteria``), validation decision judged on the
pessimistic end of the interval; the saved LR system (loaded from stage 10's ``system/`` and its
SHA-256 verified); run status; data and split (with the leakage report); detector and training
curve; classifier metrics; the LR stages' figures; and, with ``report.compare``, a table of several
runs side by side. A degenerate system (zero-width bounds, every LR 1, a CV bandwidth on the edge
of its grid, a pool with fewer than 3 persons of a class) is flagged in a banner and never passes.
Numbers are formatted for reading (counts as integers, figures to 3 significant digits); raw JSON
only in collapsed sections.

Conventions: LLR = log10 LR with Hp = real in the numerator; Cllr in bits; EER and AUC as fractions.
Figures are embedded as base64 PNG, so the one file can be mailed or archived on its own.

This module holds the page (the opening, the section order, ``render``); the parts live in ``report_run``
(reading a run), ``report_matrix`` (the matrix and its judgement), ``report_sections`` (system, conditions,
status, comparison, robustness) and ``report_html`` (building blocks); their public names import from here.
"""
from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path

from common.config import REPO_ROOT, Config, ConfigError
from common.stages import folder
from evaluation import verdict as V
from evaluation.report_html import (CHECK_JS, CSS, ci_cell, esc, figure, figures_of, flatten, fmt, stage_block,
                                    summary_details, table)
from evaluation.report_matrix import (EXTERNAL, METRICS, METRICS_15B, MIN_PERSONS_PER_CLASS, POOL_ORDER,
                                      degenerate_reasons, external_pools, judge_matrix, lr_block, matrix_html)
from evaluation.report_run import (LEVELS, STAMP, Run, StageResult, classifier_metrics, find_values, load_run,
                                   lr_metrics, pick)
from evaluation.report_sections import (comparison_rows, counts_html, fusion_html, leakage_html, robustness_html,
                                        status_table, system_html)
from slr.settings import USER_SUPPLIED

__all__ = [   # the report's public names, importable from here whichever module holds them
    "CHECK_JS", "CSS", "DEMO_NOTE", "EXTERNAL", "LEVELS", "METRICS", "METRICS_15B", "MIN_PERSONS_PER_CLASS",
    "OWN_SCORES_TITLES", "POOL_ORDER", "STAMP", "Run", "StageResult", "classifier_metrics", "comparison_rows",
    "counts_html", "degenerate_reasons", "esc", "external_pools", "figure", "figures_of", "find_values",
    "flatten", "fmt", "judge_matrix", "leakage_html", "load_compare_runs", "load_run", "lr_block",
    "lr_metrics", "matrix_html", "pick", "render", "robustness_html", "stage_block", "status_table",
    "summary_details", "system_html", "table"]

DEMO_NOTE = ("This run uses the embedded demo: a few short videos made from one public-domain portrait, with "
             "self-blended fakes, and a small detector trained for a couple of epochs on a CPU. It demonstrates "
             "that the pipeline runs end to end and what the report contains. It is a demonstration, not "
             "evidence of detector quality, and none of its numbers may be quoted as such.")
OWN_SCORES_TITLES = {"09": "Score distributions", "10": "Likelihood ratios", "11": "Tippett plots",
                     "12": "DET curves and EER", "13": "Empirical cross-entropy and Cllr", "14": "ELUB bounds"}


def render(run: Run, cfg: Config, compare: list[Run] = (), own_scores: str = "") -> tuple[str, dict]:
    """The report's HTML and a JSON-able summary (verdict, matrix decisions, stage statuses, metrics).
    ``own_scores``: the folder of a lab's own score CSVs (``slr.run_scores``): the LR sections only,
    titled without stage numbers, the score recorded as user-supplied."""
    split = str(cfg.get("report.split"))
    by_level = {lv: lr_metrics(run, split, lv) for lv in LEVELS}
    by_level = {lv: m for lv, m in by_level.items() if lv == "frame" or any(v is not None for v in m.values())}
    degenerate = degenerate_reasons(run)
    decisions = judge_matrix(cfg.get("report.criteria") or [], run, bool(degenerate))
    clf = classifier_metrics(run, split)
    demo = bool(cfg.get("demo.enabled"))
    experiment = cfg.get("experiment") or run.output_dir.name
    note = run.summary("10").get("note") or ""
    sys_html, sys_summary = system_html(run)
    learned = run.summary("04").get("detector_learned") or {}
    verdict = V.verdict(decisions, degenerate, sys_summary.get("sha256"), demo=demo, note=note,
                        system_loaded=bool(sys_summary.get("loaded")), detector_learned=learned.get("learned"))
    h = _opening(run, cfg, experiment, verdict, demo, note, degenerate, own_scores)
    h += _lr_sections(run, cfg, decisions, sys_html, own_scores)
    if not own_scores:
        h += _pipeline_sections(run, split, demo, clf, compare)
    h.append(f"<p class='small'>Generated by {'python -m slr.run_scores' if own_scores else 'evaluation/16_report.py'}"
             " from the stages' own summaries and the saved LR system; no number here is recomputed.</p></body></html>")
    summary = {"experiment": experiment, "split": split, "demo": demo, "note": note, "verdict": verdict,
               "stages": {n: r.status for n, r in run.stages.items()},
               "lr_metrics": by_level, "classifier_metrics": clf, "validation_matrix": decisions,
               "degenerate": degenerate, "detector_learned": learned or None, "lr_system": sys_summary,
               "n_figures": sum(len(r.figures) for r in run.stages.values()),
               "compared_runs": [str(r.output_dir) for r in compare]}
    if own_scores:
        summary["score"] = {"name": USER_SUPPLIED, "scores_dir": str(own_scores)}
    return "\n".join(h), summary


def _opening(run: Run, cfg: Config, experiment, verdict: dict, demo: bool, note: str, degenerate: list,
             own_scores: str) -> list[str]:
    """Title, the verdict line (the first thing a reader sees), the run's identity and the banners."""
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cls = {"passed": "pass" if verdict["fit_for_casework"] else "banner", "failed": "fail"}.get(verdict["status"], "na")
    source = (f"scores {esc(own_scores)} (user-supplied)" if own_scores else f"config {esc(cfg.source)}")
    h = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Validation report: {esc(experiment)}"
         f"</title><style>{CSS}</style><script>{CHECK_JS}</script></head><body>",
         f"<h1>Validation report: {esc(experiment)}</h1>",
         f"<p class='verdict {cls}' id='verdict'>{esc(verdict['line'])}</p>",
         f"<p class='small'>Run folder {esc(run.output_dir)} · {source} · written {now} · "
         f"LLR = log10 LR, Hp = the image is real (numerator), Hd = it is fake; Cllr in bits.</p>"]
    if demo:
        h.append(f"<div class='banner' id='demo-note'><b>Demonstration only.</b> {esc(DEMO_NOTE)}</div>")
    if note:
        h.append(f"<div class='banner' id='data-note'><b>Data note.</b> {esc(note)}. No pool is data the detector "
                 f"never saw; every figure below is optimistic and none may be quoted as a validation result.</div>")
    if degenerate:
        h.append("<div class='banner fail' id='degenerate'><b>Degenerate LR system: no criterion can pass.</b><ul>" +
                 "".join(f"<li>{esc(r)}</li>" for r in degenerate) + "</ul></div>")
    learned = run.summary("04").get("detector_learned") or {}
    if learned.get("learned") is False:        # upstream of the LR system: its raw scores are at chance
        from training.learned import describe
        h.append(f"<div class='banner fail' id='detector-did-not-learn'><b>Detector did not learn.</b> "
                 f"{esc(describe(run.summary('04').get('detector_auc') or {}, learned))}. {esc(learned['rule'])}; an "
                 f"LR system on its scores can only be near LR = 1, whatever its own flags say.</div>")
    return h


def _lr_sections(run: Run, cfg: Config, decisions: list[dict], sys_html: str, own_scores: str) -> list[str]:
    """Counts, the validation matrix, the LR system, its figures per pool and the stages 08/09-14."""
    s10, split = run.summary("10"), str(cfg.get("report.split"))
    h = ["<h2>Validation data</h2><p>Persons, videos and frames per pool and class (the LR system's input). " +
         ("<i>train</i> and <i>val</i> are detector-training data, shown as diagnostics only. " if not own_scores
          else "") + "The LR system is fitted on <i>calib</i> (its figures are those of cross-fitted LLRs) and "
         "validated on <i>test</i>.</p>"]
    if s10.get("crossval"):
        h.append(f"<div class='banner' id='crossval-note'><b>Cross-validated.</b> {esc(s10['crossval']['note'])}</div>")
    h.append(counts_html(run))
    h.append("<h2>Validation matrix</h2><p>In the form of Meuwly, Ramos and Haraksim (2017). Each result has its "
             "95 % person-cluster bootstrap interval; the decision is taken on the interval's pessimistic end "
             "(its upper end for a maximum, lower end for a minimum). Criteria come from " +
             ("the schema's default " if own_scores else "the config ") +
             "(<code>report.criteria</code>); they are this run's choice, not a standard. A missing result is "
             "<i>not available</i>, never a pass.</p>")
    if own_scores:                      # no stage numbers where there were no stages
        decisions = [{**r, "graphical": re.sub(r" \(stage \d+\)", "", r["graphical"])} for r in decisions]
    h.append(matrix_html(decisions, split) if decisions else "<p>No criteria in report.criteria.</p>")
    h.append("<h2>The likelihood-ratio system</h2>")
    sysb = s10.get("system") or {}
    h.append(f"<p>Protocol <b>{esc(s10.get('protocol', cfg.get('slr.protocol')))}</b>; score model "
             f"{esc(sysb.get('model', 'n/a'))}; calibration {esc(sysb.get('calibration', 'n/a'))}.</p>" + sys_html)
    h.append(fusion_html(run, split))          # a fused run only
    rows = []
    for pool in (s10.get("pools") or [split]):
        for lv in LEVELS:
            blk = lr_block(run, pool, lv)
            if blk:
                rows.append([esc((s10.get("labels") or {}).get(pool, pool)), lv] +
                            [ci_cell(blk, k) for k in ("auc", "eer", "cllr", "cllr_min", "cllr_cal",
                                                        "misleading_hp", "misleading_hd")])
    h.append("<p>Final (bounded) LLRs; 95 % person-cluster intervals in brackets.</p><div id='lr-figures'>" +
             table(["pool", "level", "AUC", "EER", "Cllr", "Cllr_min", "Cllr_cal", "P(LLR<0|Hp)", "P(LLR>0|Hd)"],
                   rows) + "</div>")
    for sid in (tuple(OWN_SCORES_TITLES) if own_scores else ("08", "09", "10", "11", "12", "13", "14")):
        h.append(stage_block(run, sid, OWN_SCORES_TITLES[sid] if own_scores else None))
    return h


def _pipeline_sections(run: Run, split: str, demo: bool, clf: dict, compare: list[Run]) -> list[str]:
    """Run status, data and split, detector, classifier metrics, robustness and the comparison."""
    h = ["<h2>Run status</h2>" + status_table(run), "<h2>Data and split</h2>"]
    if demo:
        h.append(stage_block(run, "00"))
    h += [stage_block(run, "01"), stage_block(run, "02"), "<h3>Leakage report</h3>" + leakage_html(run)]
    h.append("<h2>Detector and training</h2>")
    for sid in ("03a", "03", "04", "04b"):
        if run.stages.get(folder(sid)) is not None and run.stages[folder(sid)].status != "not enabled":
            h.append(stage_block(run, sid))
    h.append("<h2>Classifier metrics</h2>")
    keys = sorted({k for lv in LEVELS for k in clf[lv]})
    if keys:
        h.append(f"<p>Split <b>{esc(split)}</b>; video level = mean of the video's frame probabilities.</p>" +
                 table(["level"] + keys, [[lv] + [clf[lv].get(k) for k in keys] for lv in LEVELS]))
    else:
        h.append('<p class="status-missing">No classifier metrics (stage 07 not run or no numbers found).</p>')
    h += [stage_block(run, sid) for sid in ("05", "06", "07")]
    h.append(robustness_html(run))
    if external_pools(run):      # stage 15b: the generalisation rows' data
        h.append(stage_block(run, "15b"))
    if compare:
        runs = [run] + list(compare)
        h.append("<h2>Comparison of runs</h2><p>Frame level, split <b>" + esc(split) + "</b>. Classifier AUC from "
                 "stage 07; the rest from the LR system's final LLRs (stages 12-14).</p><div id='comparison'>" +
                 table(["run", "detector", "classifier AUC", "LR AUC", "EER", "Cllr", "Cllr_min", "Cllr_cal",
                        "ELUB range (log10)"], comparison_rows(runs, split)) + "</div>")
    return h



def load_compare_runs(cfg: Config) -> list[Run]:
    """The runs named by ``report.compare`` (output folders); a missing folder is a clear error."""
    runs = []
    for i, d in enumerate(cfg.get("report.compare") or []):
        p = Path(str(d)).expanduser()
        p = p if p.is_absolute() else REPO_ROOT / p
        if not p.is_dir():
            raise ConfigError(f"{cfg.source}: report.compare[{i}] = '{d}' is not a run folder (an output_dir); "
                              f"run that config first or remove it from the list")
        runs.append(load_run(p))
    return runs
