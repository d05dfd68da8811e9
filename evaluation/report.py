"""The validation report: one self-contained HTML page per run (stage 15).

It reads what stages 00-14 left in ``<output_dir>/<NN_stage>/`` -- their ``*.json`` summaries, their
PNG figures and the runner's stamps -- and never recomputes a number. Missing stages or keys are
shown as "not run" / "n/a", never a crash: the report of a half-finished run says what is missing.

Sections: run status; data and split (with the leakage report); detector and training curve;
classifier metrics (frame and video level); the LR system; the validation matrix in the form of
Meuwly, Ramos and Haraksim (2017, Forensic Sci. Int. 276:142-153) -- performance characteristic,
performance metric, graphical representation, validation criterion (config ``report.criteria``),
analytical result, validation decision; and, with ``report.compare``, a table of several runs side
by side (AUC, EER, Cllr, Cllr_min, Cllr_cal, ELUB range).

Conventions: LLR = log10 LR with Hp = real in the numerator; Cllr in bits; EER and AUC as fractions.
Figures are embedded as base64 PNG, so the one file can be mailed or archived on its own.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from common.config import REPO_ROOT, Config, ConfigError
from common.stages import STAGES, Stage

log = logging.getLogger(__name__)

STAMP = ".stage_stamp.json"
LEVELS = ("frame", "video")

# metric -> (what it measures, graphical representation, direction: "max" = lower is better)
METRICS = {
    "cllr": ("accuracy", "ECE plot (stage 13)", "max"),
    "cllr_min": ("discriminating power", "ECE plot, PAV curve (stage 13); DET plot (stage 12)", "max"),
    "eer": ("discriminating power", "DET plot (stage 12)", "max"),
    "cllr_cal": ("calibration", "ECE plot (stage 13); Tippett plot (stage 11)", "max"),
    "auc": ("discriminating power", "DET plot (stage 12); ROC (stage 07)", "min"),
    "misleading_hp": ("accuracy", "Tippett plot (stage 11)", "max"),
    "misleading_hd": ("accuracy", "Tippett plot (stage 11)", "max"),
    "elub_range": ("calibration", "ELUB / NBE plot (stage 14)", "min"),
}
DEMO_NOTE = ("This run uses the embedded demo: a few short videos made from one public-domain portrait, with "
             "self-blended fakes, and a small detector trained for a couple of epochs on a CPU. It demonstrates "
             "that the pipeline runs end to end and what the report contains. It is a demonstration, not "
             "evidence of detector quality, and none of its numbers may be quoted as such.")


# ------------------------------------------------------------------------------------------ reading
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

    def summary(self, stage_name: str, file: str = "summary.json") -> dict:
        r = self.stages.get(stage_name)
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
        if st.name == "16_report":
            continue
        d = output_dir / st.name
        enabled = st.enabled_key is None or config is None or bool(config.get(st.enabled_key, False))
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


# ------------------------------------------------------------------------------------------ numbers
def _num(x: Any) -> float | None:
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
    s11, s12, s13, s14 = (run.summary(n) for n in ("11_tippett", "12_det_eer", "13_ece_cllr", "14_elub"))
    out = {}
    for key in ("cllr", "cllr_min", "cllr_cal", "auc"):
        out[key] = _num(pick(s13, key, split, level))
    out["eer"] = _num(pick(s12, "eer", split, level))
    for key in ("misleading_hp", "misleading_hd"):
        out[key] = _num(pick(s11, key, split, level))
    elub = pick(s14, "elub", split, level)
    lo = _num(elub.get("lower_log10")) if isinstance(elub, dict) else None
    hi = _num(elub.get("upper_log10")) if isinstance(elub, dict) else None
    out["elub_lower_log10"], out["elub_upper_log10"] = lo, hi
    out["elub_range"] = (hi - lo) if lo is not None and hi is not None else None
    return out


def classifier_metrics(run: Run, split: str = "test") -> dict:
    """Frame- and video-level classifier metrics from stage 07 (whatever numeric keys it wrote)."""
    s07 = run.summary("07_classifier_eval")
    out = {}
    for level in LEVELS:
        row = {}
        for key in ("auc", "eer", "accuracy", "average_precision", "ap", "n", "n_real", "n_fake"):
            v = _num(pick(s07, key, split, level))
            if v is not None:
                row[key] = v
        out[level] = row
    return out


def judge(criteria: Iterable[dict], metrics_by_level: dict, source: str = "report.criteria") -> list[dict]:
    """Validation decisions. A criterion is ``{characteristic, metric, max | min, level?}``; it passes
    when the analytical result is <= max (>= min). A missing result is "not available", not a pass."""
    rows = []
    for i, c in enumerate(criteria or []):
        if not isinstance(c, dict) or "metric" not in c or not ({"max", "min"} & set(c)):
            raise ConfigError(f"{source}[{i}]: each criterion needs 'metric' and 'max' or 'min', got {c!r}")
        metric = str(c["metric"])
        if metric not in METRICS:
            raise ConfigError(f"{source}[{i}]: unknown metric '{metric}'; known: {sorted(METRICS)}")
        what, graph, _ = METRICS[metric]
        for level in ([c["level"]] if c.get("level") else [lv for lv in LEVELS if lv in metrics_by_level]):
            value = (metrics_by_level.get(level) or {}).get(metric)
            if "max" in c:
                crit, ok = f"{metric} ≤ {c['max']}", (None if value is None else value <= float(c["max"]))
            else:
                crit, ok = f"{metric} ≥ {c['min']}", (None if value is None else value >= float(c["min"]))
            rows.append({"characteristic": c.get("characteristic", what), "metric": metric, "level": level,
                         "graphical": graph, "criterion": crit, "value": value,
                         "decision": "not available" if ok is None else ("pass" if ok else "fail")})
    return rows


# ------------------------------------------------------------------------------------------ HTML
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;
color:#1d2330;line-height:1.45;padding:0 16px}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #d6dbe4;padding-bottom:4px;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0 1em}th,td{border:1px solid #cfd5df;padding:4px 8px;text-align:left;
font-size:.92em;vertical-align:top}th{background:#eef1f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.banner{background:#fff4d6;border:1px solid #e0b84c;padding:10px 14px;border-radius:6px;margin:1em 0}
.pass{background:#dff3e3;color:#14532d;font-weight:600}.fail{background:#fbe0e0;color:#7f1d1d;font-weight:600}
.na{background:#f0f0f0;color:#555}.status-done{color:#14532d}.status-missing{color:#9a3412;font-weight:600}
figure{display:inline-block;margin:8px 12px 8px 0;vertical-align:top;max-width:100%}
figure img{max-width:100%;max-height:520px;border:1px solid #d6dbe4}figcaption{font-size:.85em;color:#555}
details{margin:.4em 0}summary{cursor:pointer;color:#334}.small{font-size:.85em;color:#555}
pre{background:#f6f8fa;padding:8px;overflow:auto;font-size:.82em;max-height:360px}
"""
# Marks, on load, how many embedded figures decoded (read by the headless-browser test).
CHECK_JS = ("window.addEventListener('load',function(){var im=document.images,ok=0;for(var i=0;i<im.length;i++)"
            "{if(im[i].complete&&im[i].naturalWidth>0)ok++;}document.body.setAttribute('data-figures-ok',ok);"
            "document.body.setAttribute('data-figures-total',im.length);});")


def esc(x: Any) -> str:
    return html.escape(str(x))


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        return f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"
    return esc(v)


def table(header: list, rows: list[list], cls: str = "", classes: list[list] | None = None) -> str:
    out = [f'<table class="{cls}"><tr>' + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"]
    for i, row in enumerate(rows):
        cells = []
        for j, v in enumerate(row):
            c = (classes[i][j] if classes else "") or ("num" if isinstance(v, (int, float)) and not isinstance(v, bool)
                                                      else "")
            cells.append(f'<td class="{c}">{v if isinstance(v, str) and v.startswith("<") else fmt(v)}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(out) + "</table>"


def figure(path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def flatten(data: Any, prefix: str = "", limit: int = 80) -> list[tuple[str, Any]]:
    """Scalar leaves of nested JSON as ``(dotted key, value)``; long lists summarised."""
    out: list[tuple[str, Any]] = []

    def walk(x, p):
        if len(out) >= limit:
            return
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{p}.{k}" if p else str(k))
        elif isinstance(x, list):
            if len(x) <= 4 and all(not isinstance(v, (dict, list)) for v in x):
                out.append((p, "[" + ", ".join(fmt(v) if isinstance(v, float) else str(v) for v in x) + "]"))
            else:
                out.append((p, f"list of {len(x)}"))
        else:
            out.append((p, x))

    walk(data, prefix)
    return out


def summary_details(res: StageResult) -> str:
    if not res.summaries:
        return ""
    parts = []
    for name, data in res.summaries.items():
        rows = [[esc(k), v if not isinstance(v, str) else esc(v)] for k, v in flatten(data)]
        parts.append(f"<details><summary>{esc(res.stage.name)}/{esc(name)}: all values</summary>"
                     f"{table(['key', 'value'], rows)}</details>")
    return "\n".join(parts)


def figures_of(res: StageResult | None) -> str:
    if res is None or not res.figures:
        return ""
    base = res.figures[0].parents[0]
    return "\n".join(figure(p, f"{res.stage.name}/{p.name}") for p in res.figures) if base else ""


def stage_block(run: Run, name: str, title: str, intro: str = "") -> str:
    res = run.stages.get(name)
    if res is None or res.status in ("not run", "not enabled"):
        status = res.status if res else "not run"
        return f'<h3>{esc(title)}</h3><p class="status-missing">Stage {esc(name)}: {esc(status)}.</p>'
    return (f"<h3>{esc(title)}</h3>{intro}{figures_of(res)}{summary_details(res)}")


def leakage_html(run: Run) -> str:
    s02 = run.stages.get("02_split")
    if not s02 or not s02.summaries:
        return '<p class="status-missing">No split summary (stage 02 not run): leakage unknown.</p>'
    found = []
    for name, data in s02.summaries.items():
        for path, value in find_values(data, "leakage") + find_values(data, "leakage_report") + \
                find_values(data, "leaky"):
            found.append((f"{name}: {'.'.join(map(str, path))}", value))
    if not found:
        return '<p class="status-missing">The split summary holds no leakage report.</p>'
    return "".join(f"<p><b>{esc(k)}</b></p><pre>{esc(json.dumps(v, indent=1)[:4000])}</pre>" for k, v in found)


def status_table(run: Run) -> str:
    rows, classes = [], []
    for name, res in run.stages.items():
        st = res.stamp or {}
        rows.append([esc(name), esc(res.status), esc(st.get("finished", "")),
                     st.get("seconds") if st.get("seconds") is not None else "", len(res.figures)])
        classes.append(["", "status-done" if res.status == "done" else "status-missing", "", "num", "num"])
    return table(["stage", "status", "finished", "seconds", "figures"], rows, classes=classes)


def matrix_html(rows: list[dict], split: str) -> str:
    body = [[esc(r["characteristic"]), esc(r["metric"]), esc(r["level"]), esc(r["graphical"]),
             esc(r["criterion"]), r["value"], esc(r["decision"])] for r in rows]
    classes = [["", "", "", "", "", "num", {"pass": "pass", "fail": "fail"}.get(r["decision"], "na")] for r in rows]
    return ('<div id="validation-matrix">' +
            table(["performance characteristic", "performance metric", "level", "graphical representation",
                   "validation criterion", f"analytical result ({split})", "validation decision"], body,
                  classes=classes) + "</div>")


def comparison_rows(runs: list[Run], split: str) -> list[list]:
    rows = []
    for r in runs:
        m = lr_metrics(r, split, "frame")
        c = classifier_metrics(r, split)["frame"]
        model = pick(r.summary("03_train"), "model", split, "frame") or pick(r.summary("03_train"), "name")
        model = model if isinstance(model, str) else (model.get("name") if isinstance(model, dict) else None)
        elub = (f"[{fmt(m['elub_lower_log10'], 2)}, {fmt(m['elub_upper_log10'], 2)}]"
                if m["elub_lower_log10"] is not None else "n/a")
        rows.append([esc(r.output_dir.name), esc(model or "n/a"), c.get("auc"), m["auc"], m["eer"], m["cllr"],
                     m["cllr_min"], m["cllr_cal"], elub])
    return rows


def render(run: Run, cfg: Config, compare: list[Run] = ()) -> tuple[str, dict]:
    """The report's HTML and a JSON-able summary (matrix decisions, stage statuses, metrics)."""
    split = str(cfg.get("report.split", "test"))
    criteria = cfg.get("report.criteria", []) or []
    by_level = {lv: lr_metrics(run, split, lv) for lv in LEVELS}
    by_level = {lv: m for lv, m in by_level.items() if lv == "frame" or any(v is not None for v in m.values())}
    decisions = judge(criteria, by_level)
    clf = classifier_metrics(run, split)
    demo = bool(cfg.get("demo.enabled", False))
    experiment = cfg.get("experiment", run.output_dir.name)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    h = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Validation report: {esc(experiment)}"
         f"</title><style>{CSS}</style><script>{CHECK_JS}</script></head><body>",
         f"<h1>Validation report: {esc(experiment)}</h1>",
         f"<p class='small'>Run folder {esc(run.output_dir)} · config {esc(cfg.source)} · written {now} · "
         f"LLR = log10 LR, Hp = the image is real (numerator), Hd = it is fake; Cllr in bits.</p>"]
    if demo:
        h.append(f"<div class='banner' id='demo-note'><b>Demonstration only.</b> {esc(DEMO_NOTE)}</div>")
    h.append("<h2>Run status</h2>" + status_table(run))

    h.append("<h2>Data and split</h2>")
    if demo:
        h.append(stage_block(run, "00_demo_videos", "Demo videos (stage 00)"))
    h.append(stage_block(run, "01_faces", "Face crops (stage 01)"))
    h.append(stage_block(run, "02_split", "Split (stage 02)"))
    h.append("<h3>Leakage report</h3>" + leakage_html(run))

    h.append("<h2>Detector and training</h2>")
    h.append(stage_block(run, "03_train", "Training curve (stage 03)"))
    h.append(stage_block(run, "04_features", "Feature dumps (stage 04)"))

    h.append("<h2>Classifier metrics</h2>")
    keys = sorted({k for lv in LEVELS for k in clf[lv]})
    if keys:
        h.append(f"<p>Split <b>{esc(split)}</b>; video level = mean of the video's frame probabilities.</p>" +
                 table(["level"] + keys, [[lv] + [clf[lv].get(k) for k in keys] for lv in LEVELS]))
    else:
        h.append('<p class="status-missing">No classifier metrics (stage 07 not run or no numbers found).</p>')
    for name, title in (("05_feature_check", "Feature check (stage 05)"), ("06_tsne", "t-SNE (stage 06)"),
                        ("07_classifier_eval", "Classifier evaluation (stage 07)")):
        h.append(stage_block(run, name, title))

    h.append("<h2>The likelihood-ratio system</h2>")
    s10 = run.summary("10_kde_lr")
    h.append(f"<p>Protocol <b>{esc(s10.get('protocol', cfg.get('slr.protocol', 'n/a')))}</b>; "
             f"calibration {esc(pick(s10, 'calibration') or 'n/a')}; bandwidths (score units) "
             f"{esc(json.dumps(s10.get('bandwidth')) if s10 else 'n/a')}.</p>")
    lr_rows = [[lv] + [by_level[lv].get(k) for k in ("auc", "eer", "cllr", "cllr_min", "cllr_cal", "misleading_hp",
                                                      "misleading_hd", "elub_lower_log10", "elub_upper_log10")]
               for lv in by_level]
    h.append(f"<p>Split <b>{esc(split)}</b>, final (bounded) LLRs.</p>" +
             table(["level", "AUC", "EER", "Cllr", "Cllr_min", "Cllr_cal", "P(LLR<0|Hp)", "P(LLR>0|Hd)",
                    "ELUB lower (log10)", "ELUB upper (log10)"], lr_rows))
    for name, title in (("08_scores", "Scores (stage 08)"), ("09_score_distributions", "Score distributions (09)"),
                        ("10_kde_lr", "KDE likelihood ratios (stage 10)"), ("11_tippett", "Tippett (stage 11)"),
                        ("12_det_eer", "DET and EER (stage 12)"), ("13_ece_cllr", "ECE and Cllr (stage 13)"),
                        ("14_elub", "ELUB bounds (stage 14)")):
        h.append(stage_block(run, name, title))

    h.append("<h2>Validation matrix</h2><p>In the form of Meuwly, Ramos and Haraksim (2017). Criteria come from "
             "the config (<code>report.criteria</code>); they are this run's choice, not a standard. A missing "
             "result is <i>not available</i>, never a pass.</p>")
    h.append(matrix_html(decisions, split) if decisions else "<p>No criteria in report.criteria.</p>")

    h.append(robustness_html(run))

    if compare:
        runs = [run] + list(compare)
        h.append("<h2>Comparison of runs</h2><p>Frame level, split <b>" + esc(split) + "</b>. Classifier AUC from "
                 "stage 07; the rest from the LR system's final LLRs (stages 12-14).</p><div id='comparison'>" +
                 table(["run", "detector", "classifier AUC", "LR AUC", "EER", "Cllr", "Cllr_min", "Cllr_cal",
                        "ELUB range (log10)"], comparison_rows(runs, split)) + "</div>")
    h.append("<p class='small'>Generated by evaluation/16_report.py from the stages' own summaries; "
             "no number here is recomputed.</p></body></html>")
    summary = {"experiment": experiment, "split": split, "demo": demo,
               "stages": {n: r.status for n, r in run.stages.items()},
               "lr_metrics": by_level, "classifier_metrics": clf, "validation_matrix": decisions,
               "n_figures": sum(len(r.figures) for r in run.stages.values()),
               "compared_runs": [str(r.output_dir) for r in compare]}
    return "\n".join(h), summary


def load_compare_runs(cfg: Config) -> list[Run]:
    """The runs named by ``report.compare`` (output folders); a missing folder is a clear error."""
    runs = []
    for i, d in enumerate(cfg.get("report.compare", []) or []):
        p = Path(str(d)).expanduser()
        p = p if p.is_absolute() else REPO_ROOT / p
        if not p.is_dir():
            raise ConfigError(f"{cfg.source}: report.compare[{i}] = '{d}' is not a run folder (an output_dir); "
                              f"run that config first or remove it from the list")
        runs.append(load_run(p))
    return runs


# ------------------------------------------------------------------------------------------ robustness
def _ci_text(row: dict, metric: str) -> str:
    v, ci = row.get(metric), (row.get("ci95") or {}).get(metric)
    if ci and len(ci) == 2 and ci[0] is not None and ci[1] is not None:
        return f"{fmt(v)} [{fmt(ci[0])}, {fmt(ci[1])}]"
    return fmt(v)


def _sentence(text: Any) -> str:
    text = str(text or "")
    return text[:1].upper() + text[1:]


def robustness_html(run: Run) -> str:
    """The robustness section (stage 15): per degradation and strength the LR system's figures with
    95 % person-cluster intervals, the validated ranges written into the system, the figures."""
    from common.stages import folder
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
    metrics = ("cllr", "cllr_min", "eer", "auc", "misleading_hp", "misleading_hd", "strong_misleading_hp",
               "strong_misleading_hd")
    rows = [[esc(r.get("setting")), esc(r.get("applied_to")), esc(r.get("level"))] + [_ci_text(r, m) for m in metrics]
            for r in s.get("table", [])]
    h.append("<div id='robustness-table'>" + table(
        ["setting", "applied to", "level", "Cllr (bits)", "Cllr_min (bits)", "EER", "AUC", "P(LLR<0|Hp)",
         "P(LLR>0|Hd)", "P(LLR≤−1|Hp)", "P(LLR≥1|Hd)"], rows) + "</div>")
    vd = s.get("validated_degradations") or {}
    if vd:
        vr = []
        for fam, v in vd.items():
            key = next((k for k in v if k.startswith(("min_", "max_"))), None)
            vr.append([esc(fam), esc(f"{key} = {v.get(key)}" if key else "n/a"), esc(v.get("status", "")),
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
