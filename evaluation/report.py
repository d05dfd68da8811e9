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
from common.pipeline import is_enabled
from common.stages import BY_ID, STAGES, Stage, folder

log = logging.getLogger(__name__)

STAMP = ".stage_stamp.json"
LEVELS = ("frame", "video")

# metric -> (what it measures, graphical representation, direction: "max" = lower is better)
METRICS = {   # metric -> (characteristic, graphical representation, criterion side); keys = schema.CRITERION_METRICS
    "cllr": ("accuracy", "ECE plot (stage 13)", "max"),
    "cllr_min": ("discriminating power", "ECE plot, PAV curve (stage 13); DET plot (stage 12)", "max"),
    "eer": ("discriminating power", "DET plot (stage 12)", "max"),
    "cllr_cal": ("calibration", "ECE plot (stage 13); Tippett plot (stage 11)", "max"),
    "auc": ("discriminating power", "DET plot (stage 12); ROC (stage 07)", "min"),
    "misleading_hp": ("accuracy", "Tippett plot (stage 11)", "max"),
    "misleading_hd": ("accuracy", "Tippett plot (stage 11)", "max"),
    "elub_range": ("calibration", "ELUB / NBE plot (stage 14)", "min"),
    "direction_changes": ("monotonicity", "LLR curve (stage 10)", "max"),
    "largest_drop_log10": ("monotonicity", "LLR curve (stage 10)", "max"),
}
POOL_ORDER = ("test", "calib")      # the matrix judges these pools (calib: cross-fitted LLRs)
MIN_PERSONS_PER_CLASS = 3
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

    def summary(self, stage: str, file: str = "summary.json") -> dict:
        """A stage's JSON summary, by stage id (``"10"``) or folder name."""
        r = self.stages.get(folder(stage) if stage in BY_ID else stage)
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
        if st.id == "16":
            continue
        d = output_dir / st.name
        enabled = config is None or is_enabled(st, config)
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
    s11, s12, s13, s14 = (run.summary(n) for n in ("11", "12", "13", "14"))
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
    s07 = run.summary("07")
    out = {}
    for level in LEVELS:
        row = {}
        for key in ("auc", "eer", "accuracy", "average_precision", "ap", "n", "n_real", "n_fake"):
            v = _num(pick(s07, key, split, level))
            if v is not None:
                row[key] = v
        out[level] = row
    return out


# ------------------------------------------------------------------------------------------ LR validation
EXTERNAL = "external: "   # pool prefix of stage 15b's external sets (generalisation rows)


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
            out["elub_range"] = _num(e.get("upper_log10")) - _num(e.get("lower_log10"))
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
                           f"({fmt(_num(det.get('cv_best')))}) is on the edge of its grid: widen "
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
                if (level == "video" and not blk and not c.get("level")) or (pool in ext and metric not in blk):
                    continue
                value = _num(blk.get(metric))
                ci = (blk.get("ci95") or {}).get(metric)
                lo, hi = (_num(ci[0]), _num(ci[1])) if isinstance(ci, list) and len(ci) == 2 else (None, None)
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
                             "basis": ("pessimistic end of the 95 % interval" if lo is not None else
                                       "point value (no interval)"), "decision": decision})
    judged = {str(c.get("metric")) for c in (criteria or []) if isinstance(c, dict)}
    if not judged & {"direction_changes", "largest_drop_log10"}:       # monotonicity: always reported
        for level in LEVELS:
            blk = lr_block(run, "calib", level)
            if "direction_changes" not in blk:
                continue
            for metric in ("direction_changes", "largest_drop_log10"):
                rows.append({"characteristic": "monotonicity", "metric": metric, "level": level,
                             "pool": "calib score range", "graphical": METRICS[metric][1],
                             "criterion": "none (add one to report.criteria)", "value": _num(blk.get(metric)),
                             "interval": None, "judged_value": None, "basis": "reported",
                             "decision": "reported"})
    return rows


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
                     mono.get("direction_changes"), _num(mono.get("largest_drop_log10")), int(lm.crossfit.get("k", 0)),
                     lm.counts.get("n_persons"), lm.counts.get("n_videos"), lm.counts.get("n_frames")])
    html_ = (f"<p>Loaded from <code>{esc(d)}</code>; SHA-256 <code>{esc(system.sha256)}</code> (every file verified "
             f"against its manifest). Score: <b>{esc(system.score_spec.get('name'))}</b>. Fitted on the calib pool "
             f"only; calibration and bounds on cross-fitted calib LLRs.</p>" +
             table(["level", "score model", "calibration", "bounds (log10)", "bandwidth (score units)", "direction",
                    "LLR direction changes", "largest LLR drop (log10)", "cross-fitting folds", "calib persons",
                    "calib videos", "calib frames"], rows) +
             "<details><summary>LR system: conditions of the calib data</summary><pre>" +
             esc(json.dumps(system.conditions, indent=1)[:4000]) + "</pre></details>")
    return html_, {"loaded": True, "sha256": system.sha256, "levels": sorted(system.levels)}


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
    """For reading: integers as integers, other numbers to ``digits`` significant digits."""
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return f"{v:d}"
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v == 0:
            return "0"
        txt = f"{v:.{digits}g}"
        if "e" in txt:
            m, e = txt.split("e")
            return f"{m}×10^{int(e)}"
        return txt
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


def stage_block(run: Run, stage: str, title: str | None = None, intro: str = "") -> str:
    """A stage's section: its figures and summaries; ``stage`` an id of the stage table (its title from there)."""
    name = folder(stage) if stage in BY_ID else stage
    title = title or (BY_ID[stage].title if stage in BY_ID else name)
    res = run.stages.get(name)
    if res is None or res.status in ("not run", "not enabled"):
        status = res.status if res else "not run"
        return f'<h3>{esc(title)}</h3><p class="status-missing">Stage {esc(name)}: {esc(status)}.</p>'
    return (f"<h3>{esc(title)}</h3>{intro}{figures_of(res)}{summary_details(res)}")


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


def render(run: Run, cfg: Config, compare: list[Run] = ()) -> tuple[str, dict]:
    """The report's HTML and a JSON-able summary (matrix decisions, stage statuses, metrics)."""
    split = str(cfg.get("report.split"))
    criteria = cfg.get("report.criteria") or []
    by_level = {lv: lr_metrics(run, split, lv) for lv in LEVELS}
    by_level = {lv: m for lv, m in by_level.items() if lv == "frame" or any(v is not None for v in m.values())}
    degenerate = degenerate_reasons(run)
    decisions = judge_matrix(criteria, run, bool(degenerate))
    clf = classifier_metrics(run, split)
    demo = bool(cfg.get("demo.enabled"))
    experiment = cfg.get("experiment") or run.output_dir.name
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    s10 = run.summary("10")
    note = s10.get("note") or ""

    h = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Validation report: {esc(experiment)}"
         f"</title><style>{CSS}</style><script>{CHECK_JS}</script></head><body>",
         f"<h1>Validation report: {esc(experiment)}</h1>",
         f"<p class='small'>Run folder {esc(run.output_dir)} · config {esc(cfg.source)} · written {now} · "
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

    h.append("<h2>Validation data</h2><p>Persons, videos and frames per pool and class (stage 10's input). "
             "<i>train</i> and <i>val</i> are detector-training data, shown as diagnostics only; the LR system is "
             "fitted on <i>calib</i> (its figures are those of cross-fitted LLRs) and validated on <i>test</i>.</p>")
    if s10.get("crossval"):
        h.append(f"<div class='banner' id='crossval-note'><b>Cross-validated.</b> {esc(s10['crossval']['note'])}</div>")
    h.append(counts_html(run))
    h.append("<h2>Validation matrix</h2><p>In the form of Meuwly, Ramos and Haraksim (2017). Each result has its "
             "95 % person-cluster bootstrap interval; the decision is taken on the interval's pessimistic end "
             "(its upper end for a maximum, lower end for a minimum). Criteria come from the config "
             "(<code>report.criteria</code>); they are this run's choice, not a standard. A missing result is "
             "<i>not available</i>, never a pass.</p>")
    h.append(matrix_html(decisions, split) if decisions else "<p>No criteria in report.criteria.</p>")

    h.append("<h2>The likelihood-ratio system</h2>")
    sys_html, sys_summary = system_html(run)
    sysb = s10.get("system") or {}
    h.append(f"<p>Protocol <b>{esc(s10.get('protocol', cfg.get('slr.protocol')))}</b>; score model "
             f"{esc(sysb.get('model', 'n/a'))}; calibration {esc(sysb.get('calibration', 'n/a'))}.</p>" + sys_html)
    rows = []
    for pool in (s10.get("pools") or [split]):
        for lv in LEVELS:
            blk = lr_block(run, pool, lv)
            if not blk:
                continue
            rows.append([esc((s10.get("labels") or {}).get(pool, pool)), lv] +
                        [_ci_cell(blk, k) for k in ("auc", "eer", "cllr", "cllr_min", "cllr_cal", "misleading_hp",
                                                    "misleading_hd")])
    h.append("<p>Final (bounded) LLRs; 95 % person-cluster intervals in brackets.</p><div id='lr-figures'>" +
             table(["pool", "level", "AUC", "EER", "Cllr", "Cllr_min", "Cllr_cal", "P(LLR<0|Hp)", "P(LLR>0|Hd)"],
                   rows) + "</div>")
    for sid in ("08", "09", "10", "11", "12", "13", "14"):
        h.append(stage_block(run, sid))

    h.append("<h2>Run status</h2>" + status_table(run))
    h.append("<h2>Data and split</h2>")
    if demo:
        h.append(stage_block(run, "00"))
    h.append(stage_block(run, "01"))
    h.append(stage_block(run, "02"))
    h.append("<h3>Leakage report</h3>" + leakage_html(run))

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
    for sid in ("05", "06", "07"):
        h.append(stage_block(run, sid))

    h.append(robustness_html(run))
    if external_pools(run):      # stage 15b: the generalisation rows' data
        h.append(stage_block(run, "15b"))

    if compare:
        runs = [run] + list(compare)
        h.append("<h2>Comparison of runs</h2><p>Frame level, split <b>" + esc(split) + "</b>. Classifier AUC from "
                 "stage 07; the rest from the LR system's final LLRs (stages 12-14).</p><div id='comparison'>" +
                 table(["run", "detector", "classifier AUC", "LR AUC", "EER", "Cllr", "Cllr_min", "Cllr_cal",
                        "ELUB range (log10)"], comparison_rows(runs, split)) + "</div>")
    h.append("<p class='small'>Generated by evaluation/16_report.py from the stages' own summaries and the saved "
             "LR system; no number here is recomputed.</p></body></html>")
    summary = {"experiment": experiment, "split": split, "demo": demo, "note": note,
               "stages": {n: r.status for n, r in run.stages.items()},
               "lr_metrics": by_level, "classifier_metrics": clf, "validation_matrix": decisions,
               "degenerate": degenerate, "detector_learned": learned or None, "lr_system": sys_summary,
               "n_figures": sum(len(r.figures) for r in run.stages.values()),
               "compared_runs": [str(r.output_dir) for r in compare]}
    return "\n".join(h), summary


def _ci_cell(blk: dict, key: str) -> str:
    v = _num(blk.get(key))
    ci = (blk.get("ci95") or {}).get(key)
    if isinstance(ci, list) and len(ci) == 2 and ci[0] is not None:
        return f"{fmt(v)} [{fmt(_num(ci[0]))}, {fmt(_num(ci[1]))}]"
    return fmt(v)


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


# ------------------------------------------------------------------------------------------ robustness
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
    rows = [[esc(r.get("setting")), esc(r.get("applied_to")), esc(r.get("level"))] + [_ci_cell(r, m) for m in metrics]
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
