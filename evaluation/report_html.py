"""HTML building blocks of the validation report: the style sheet, escaping and number formatting,
tables, embedded PNG figures, and a stage's block (its figures and collapsed summaries)."""
from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from common.stages import BY_ID, folder
from evaluation.report_run import Run, StageResult, num

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
.verdict{font-size:1.15em;padding:8px 12px;border-radius:6px;border:1px solid #cfd5df}
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
                out.append((p, "[" + ", ".join(fmt(v) if isinstance(v, float) or v is None else str(v) for v in x) + "]"))
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



def ci_cell(blk: dict, key: str) -> str:
    """A figure with its 95 % interval in brackets when the block holds one."""
    v = num(blk.get(key))
    ci = (blk.get("ci95") or {}).get(key)
    if isinstance(ci, list) and len(ci) == 2 and ci[0] is not None:
        return f"{fmt(v)} [{fmt(num(ci[0]))}, {fmt(num(ci[1]))}]"
    return fmt(v)
