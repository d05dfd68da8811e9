"""The case folder's files: ``evidence.json``, ``evidence.html`` (summary, conditions, technical
annex, chain of custody, the system's validation figures), ``evidence.pdf`` (the one-page summary),
``face_N.png`` (aligned crops) and ``overview.png`` (the first frame with numbered face boxes).

Everything but the time is deterministic: the same input and run give byte-identical files apart
from ``created_utc`` (JSON, HTML, PDF text); the PDF carries no creation date of its own.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from common.io import atomic_dir, write_json

from .statement import NOT_FOR_REPORTING

esc = html.escape
CSS = """body{font-family:system-ui,Helvetica,Arial,sans-serif;max-width:1100px;margin:20px auto;padding:0 14px;color:#1d2330}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #cfd5df;padding:3px 8px;text-align:left;font-size:.9em}
th{background:#eef1f6;font-weight:normal}.row{display:flex;align-items:flex-start;flex-wrap:wrap;gap:16px}
.headline{font-size:1.15em;background:#eef6ff;border-left:4px solid #2b6cb0;padding:8px 12px}
.value{font-size:1.6em;font-weight:bold}.warning{background:#fde8e8;border:2px solid #c53030;padding:8px 12px;font-weight:bold}
.note{background:#fff4d6;border:1px solid #e0b84c;padding:8px 12px}.small{font-size:.8em;color:#555}
.annex{background:#f6f6f6;border:1px dashed #999;padding:6px 12px}.nfr{color:#a00;font-weight:bold;font-size:.8em}
.outside{color:#a00;font-weight:bold}.inside{color:#276749}.face{border-top:2px solid #d6dbe4;margin-top:12px}
.notvalid{font-size:1.6em;font-weight:bold;color:#fff;background:#c53030;padding:4px 12px;display:inline-block}
.passed{background:#e6f4ea;border-left:4px solid #276749;padding:8px 12px}.skipped{color:#555;font-weight:bold}"""


def _img_tag(path: Path, alt: str, width: int | None = None) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    w = f' width="{width}"' if width else ""
    return f'<img alt="{esc(alt)}"{w} src="data:image/png;base64,{data}">'


def _png(path: Path, rgb: np.ndarray) -> None:
    import cv2
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"PNG encoding failed for {path}")
    path.write_bytes(buf.tobytes())


def overview_image(frame: np.ndarray, boxes: list, path: Path) -> None:
    """The frame with each face's box and number (1, 2, ...) drawn on it."""
    import cv2
    img = np.ascontiguousarray(frame.copy())
    thick = max(2, int(round(max(img.shape[:2]) / 300)))
    for n, b in boxes:
        cv2.rectangle(img, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), (255, 40, 40), thick)
        scale = max(0.6, (b[3] - b[1]) / 120)
        org = (int(b[0]) + 2, max(int(scale * 24), int(b[1]) - 4))
        cv2.putText(img, str(n), org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 0), thick + 1, cv2.LINE_AA)
    _png(path, img)


def _fmtv(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and float(v).is_integer() and abs(v) < 1e9):
        return f"{int(v)}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return esc(str(v))


def _conditions_table(cond: dict) -> str:
    rows = []
    for status in ("outside", "inside", "not_checked"):
        for e in cond.get(status, []):
            rng = "n/a" if not e.get("range") else f"[{_fmtv(e['range'][0])}, {_fmtv(e['range'][1])}]"
            cls = {"outside": "outside", "inside": "inside"}.get(status, "")
            rows.append(f"<tr><td>{esc(e['name'])}</td><td>{_fmtv(e.get('value'))}</td><td>{rng}</td>"
                        f"<td class='{cls}'>{status.replace('_', ' ')}</td><td>{esc(e.get('reason', ''))}</td></tr>")
    return ("<table class='conditions'><tr><th>condition</th><th>questioned item</th><th>validated range</th>"
            "<th>status</th><th>why</th></tr>" + "".join(rows) + "</table>")


def _annex_table(a: dict) -> str:
    rows = []
    for k, v in a.items():
        if isinstance(v, dict) and "label" in v:
            val = v["value"]
            if isinstance(val, list):
                val = "; ".join(f"frame {p['frame']}: score {p['score']:.6g}" +
                                (f", log10 LR {p['log10_lr_unbounded']:+.3f}" if p.get("log10_lr_unbounded") is not None else "")
                                for p in val)
                rows.append(f"<tr><th>{esc(k)}</th><td>{esc(val)}</td><td class='nfr'>{esc(v['label'])}</td></tr>")
            else:
                rows.append(f"<tr><th>{esc(k)}</th><td>{_fmtv(val)}</td><td class='nfr'>{esc(v['label'])}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _validation_table(validation: dict, level: str) -> str:
    lv = ((validation or {}).get("levels") or {}).get(level) or {}
    if not lv:
        return "<p class='small'>The LR system holds no validation figures for this level.</p>"
    metrics = ("cllr", "cllr_min", "cllr_cal", "eer", "auc", "misleading_hp", "misleading_hd")
    head = "".join(f"<th>{m}</th>" for m in metrics)
    rows = []
    for pool in ("test", "calib"):
        p = lv.get(pool)
        if not isinstance(p, dict):
            continue
        ci = p.get("ci95") or {}
        cells = []
        for m in metrics:
            v = p.get(m)
            c = ci.get(m)
            txt = "n/a" if v is None else f"{float(v):.3g}"
            if c and None not in c:
                txt += f" [{float(c[0]):.3g}, {float(c[1]):.3g}]"
            cells.append(f"<td>{txt}</td>")
        counts = f"{p.get('n_hp', '?')} Hp / {p.get('n_hd', '?')} Hd, {p.get('n_persons', '?')} persons"
        rows.append(f"<tr><th>{pool}{' (cross-fitted)' if pool == 'calib' else ''}</th><td>{esc(counts)}</td>"
                    + "".join(cells) + "</tr>")
    return (f"<table><tr><th>pool</th><th>n</th>{head}</tr>{''.join(rows)}</table>"
            "<p class='small'>95 % person-cluster bootstrap intervals in brackets.</p>")


def _status_html(v: dict) -> str:
    """The LR system's validation status at the top of the summary: NOT VALIDATED as loud as an LR."""
    if not v:
        return ""
    if v.get("status") == "passed":
        return f"<p class='passed' id='validation-status'>{esc(v['text'])}.</p>"
    from evaluation.verdict import describe
    return (f"<p class='notvalid' id='validation-status'>NOT VALIDATED</p><p class='warning'>{esc(describe(v, True))}"
            f" (LR system SHA-256 {esc(v.get('sha256') or 'unknown')}; each criterion and reason: "
            f"<a href='#validation'>Validation of the LR system used</a>)."
            + (f" Every LR below is given only because {esc(v['allowed_by'])} is set." if v.get("allowed_by") else "")
            + "</p>")


def _verdict_html(v: dict) -> str:
    """The verdict and each criterion that did not pass (the report's judgement of report.criteria)."""
    if not v:
        return ""
    rows = "".join(f"<tr><td>{esc(f['criterion'])}</td><td>{esc(f['level'])}</td><td>{esc(f['pool'])}</td>"
                   f"<td>{_fmtv(f.get('judged_value'))}</td><td>{esc(f.get('basis') or '')}</td>"
                   f"<td class='outside'>{esc(f['decision'])}</td></tr>" for f in v.get("failed", []))
    table = ("<table id='failed-criteria'><tr><th>criterion</th><th>level</th><th>pool</th><th>judged value</th>"
             "<th>judged on</th><th>decision</th></tr>" + rows + "</table>") if rows else ""
    return f"<p id='validation-verdict'><b>Status: {esc(v.get('status', 'n/a'))}.</b> {esc(v.get('text', ''))}.</p>{table}"


def _face_html(r: dict, files: dict) -> str:
    """One face: crop, NOT VALIDATED / warnings, the value, the headline, conditions (or why not assessed)."""
    n = r["face"]
    crop = (f"{_img_tag(files['crops'][n], f'face {n}', 192)}<br><span class='small'>aligned crop (as stage 01), "
            f"box {esc(', '.join(str(int(v)) for v in r['box']))} in frame {r['frames'][0]}</span>")
    if not r.get("assessed", True):
        return (f"<div class='face'><h2>Face {n}</h2><div class='row'><div>{crop}</div><div>"
                f"<p class='value skipped' id='not-assessed-{n}'>not assessed</p>"
                f"<p class='headline'>{esc(r['statement'])}</p></div></div></div>")
    notvalid = (f"<p class='notvalid'>NOT VALIDATED</p><p class='warning'>{esc(r['validation_warning'])}</p>"
                if r.get("validation_warning") else "")
    warn = f"<p class='warning'>{esc(r['warning'])}</p>" if r.get("warning") else ""
    if r.get("log10_lr_bounded") is not None:
        value = (f"<p class='value' id='bounded-lr-{n}'>LR = {esc(r['lr_bounded_text'])} "
                 f"(log10 LR = {r['log10_lr_bounded']:+.2f})</p>")
        if r.get("log10_lr_interval95"):
            lo, hi = r["log10_lr_interval95"]
            value += f"<p class='small' id='lr-interval-{n}'>95 % interval of log10 LR: [{lo:+.2f}, {hi:+.2f}]</p>"
    else:
        value = "<p class='value'>no LR is given</p>"
    notes = "".join(f"<li>{esc(t)}</li>" for t in r.get("notes", []))
    status = (f"<p class='small'>LR system validation: {esc(r['system_validation'])}.</p>"
              if r.get("system_validation") else "")
    return (f"<div class='face'><h2>Face {n}</h2><div class='row'><div>{crop}</div><div>{notvalid}{warn}{value}"
            f"<p class='headline'>{esc(r['statement'])}</p>{status}"
            f"<p class='small'>{esc(r['level_text'])}; ELUB bounds of log10 LR "
            f"[{r['bounds_log10'][0]:+.2f}, {r['bounds_log10'][1]:+.2f}].</p>"
            + (f"<ul>{notes}</ul>" if notes else "") + "</div></div>"
            f"<h3>Conditions of the questioned item against the validated (calib) conditions</h3>"
            f"{_conditions_table(r['conditions'])}</div>")


def render_html(record: dict, files: dict, demo_note: str | None, validation: dict) -> str:
    inp, sysd = record["input"], record["system"]
    props = record["propositions"]
    blocks = []
    if files.get("overview"):
        blocks.append(f"<p>{_img_tag(files['overview'], 'overview with numbered faces', 360)}<br>"
                      f"<span class='small'>Faces found, numbered as in the results below.</span></p>")
    for r in record["results"]:
        blocks.append(_face_html(r, files))
    annex = "".join(f"<h3>Face {r['face']}</h3>{_annex_table(r['annex'])}" for r in record["results"] if "annex" in r)
    levels = sorted({r["level"] for r in record["results"] if r.get("level")}) or ["frame"]
    validation_html = (_verdict_html(record.get("validation") or {}) +
                       "".join(f"<h3>{lv} level</h3>{_validation_table(validation, lv)}" for lv in levels))
    custody = [("input file", inp["path"]), ("input SHA-256", inp["sha256"]), ("input size (bytes)", inp["size_bytes"]),
               ("input kind", inp["kind"]), ("frames read / expected", f"{inp['frames_read']} / {inp['frames_expected']}"),
               ("LR system SHA-256", sysd["lr_system_sha256"]), ("checkpoint SHA-256", sysd["checkpoint_sha256"]),
               ("config SHA-256 (resolved)", sysd["config_sha256"]), ("code version", sysd["code_version"]),
               ("created (UTC)", record["created_utc"]), ("command line", record["command_line"]),
               ("case folder", record["case_id"])]
    custody_html = "".join(f"<tr><th>{esc(k)}</th><td><code>{esc(str(v))}</code></td></tr>" for k, v in custody)
    notes = "".join(f"<li>{esc(t)}</li>" for t in record.get("notes", []))
    demo = f"<p class='note'><b>Demonstration run.</b> {esc(demo_note)}</p>" if demo_note else ""
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Evidence: {esc(Path(inp['path']).name)}</title><style>{CSS}</style></head><body>
<h1>Questioned {esc(inp['kind'])}: {esc(Path(inp['path']).name)}</h1>{demo}
<div id="summary"><p><b>Propositions.</b> Hp: {esc(props['hp'])}. Hd: {esc(props['hd'])}.
Relevant population: {esc(props['population'])}.</p>
<p><b>{esc(record['statement'])}</b></p>{_status_html(record.get('validation') or {})}{f'<ul>{notes}</ul>' if notes else ''}
{''.join(blocks)}
<p class="small">Verbal scale: {esc(record['verbal_scale_source'])}. The LR is the bounded value of the validated LR
system (ELUB bounds); it compares the probability of the detector's score under Hp with that under Hd.</p></div>
<h2>Technical annex ({NOT_FOR_REPORTING})</h2><div class="annex" id="annex">
<p class="nfr">Every value in this section is {NOT_FOR_REPORTING}: it documents how the reported value was obtained.</p>
{annex}</div>
<h2>Validation of the LR system used</h2><div id="validation">{validation_html}</div>
<h2>Chain of custody</h2><table id="custody">{custody_html}</table>
<p class="small">Generated by evidence.py; the PDF beside this file holds the one-page summary.</p>
</body></html>"""


class _Page:
    """A matplotlib page written top down: ``y`` is the cursor (figure fraction), each line moves it down."""

    def __init__(self, fig):
        self.fig, self.y = fig, 0.965

    @staticmethod
    def fits(size, weight, span):   # characters per line that fit ``span`` of the page width (glyph ~0.62 em)
        return int(span * 8.27 * 72 / ((0.66 if weight == "bold" else 0.6) * size))

    def text(self, s, size=9, weight="normal", color="black", width=105, gap=0.004):
        """Full-width wrapped text."""
        import textwrap
        for line in textwrap.wrap(str(s), width=min(width, self.fits(size, weight, 0.88))) or [""]:
            self.fig.text(0.06, self.y, line, fontsize=size, weight=weight, color=color, va="top",
                          family="DejaVu Sans")
            self.y -= size / 72 / 11.69 * 1.35
        self.y -= gap

    def right(self, s, size=9, weight="normal", color="black", width=80):
        """Wrapped text right of a face thumbnail."""
        import textwrap
        for line in textwrap.wrap(str(s), width=min(width, self.fits(size, weight, 0.73))) or [""]:
            self.fig.text(0.21, self.y, line, fontsize=size, weight=weight, color=color, va="top")
            self.y -= size / 72 / 11.69 * 1.35
        self.y -= 0.003


def _pdf_header(page: _Page, record: dict, demo_note: str | None) -> None:
    """Title, propositions, the statement, the validation status and the notes."""
    text = page.text
    inp = record["input"]
    text(f"Evidence summary: {Path(inp['path']).name}", 15, "bold", width=60)
    if demo_note:
        text("Demonstration run: " + demo_note, 7.5, color="#8a5a00", width=130)
    p = record["propositions"]
    text(f"Hp: {p['hp']}.   Hd: {p['hd']}.", 9.5)
    text(f"Relevant population: {p['population']}", 9.5)
    text(record["statement"], 10, "bold")
    v = record.get("validation") or {}
    if v.get("status") == "passed":
        text(v["text"], 8.5, color="#276749", width=125)
    elif v:
        text("NOT VALIDATED", 14, "bold", "#b00000")
        text(v["text"] + (f". Every LR below is given only because {v['allowed_by']} is set." if v.get("allowed_by")
                          else ""), 7.5, color="#b00000", width=130)
    for t in record.get("notes", []):
        text("Note: " + t, 8, color="#8a5a00", width=125)


def _pdf_face(page: _Page, r: dict, crop_file) -> None:
    """One face: its thumbnail and, right of it, the LR, statement, notes and conditions."""
    import matplotlib.image as mpimg
    page.y -= 0.005
    top = page.y
    ax = page.fig.add_axes([0.06, top - 0.12, 0.12, 0.12])
    ax.imshow(mpimg.imread(str(crop_file)))
    ax.set_axis_off()
    ax.set_title(f"face {r['face']}", fontsize=8)
    keep = page.y
    right = page.right
    if not r.get("assessed", True):
        right("not assessed", 14, "bold", "#555555")
        right(r["statement"], 9)
        page.y = min(page.y, keep - 0.13)
        return
    if r.get("validation_warning"):
        right("NOT VALIDATED", 14, "bold", "#b00000")
        right(r["validation_warning"], 8.5, "bold", "#b00000")
    if r.get("warning"):
        right(r["warning"], 8.5, "bold", "#b00000")
    if r.get("log10_lr_bounded") is not None:
        right(f"LR = {r['lr_bounded_text']}   (log10 LR = {r['log10_lr_bounded']:+.2f})", 14, "bold")
    else:
        right("no LR is given", 14, "bold", "#b00000")
    right(r["statement"], 9)
    for t in r.get("notes", []):
        right("Note: " + t, 7.5, color="#8a5a00", width=100)
    right(f"LR system validation: {r.get('system_validation') or 'n/a'}. {r['level_text']}. Conditions: {len(r['conditions']['inside'])} inside, "
          f"{len(r['conditions']['outside'])} outside, {len(r['conditions']['not_checked'])} not checked"
          + (": outside " + ", ".join(e['name'] for e in r['conditions']['outside']) if r['conditions']['outside'] else ""),
          8)
    page.y = min(page.y, keep - 0.13)


def _pdf_custody(page: _Page, record: dict) -> None:
    """The verbal scale's source, the chain of custody and where the annex is."""
    text, inp, s = page.text, record["input"], record["system"]
    text(f"Verbal scale: {record['verbal_scale_source']}", 7.5, width=130)
    text("Chain of custody", 10, "bold")
    for k, v in (("input SHA-256", inp["sha256"]), ("input size (bytes)", inp["size_bytes"]),
                 ("frames read / expected", f"{inp['frames_read']} / {inp['frames_expected']}"),
                 ("LR system SHA-256", s["lr_system_sha256"]), ("checkpoint SHA-256", s["checkpoint_sha256"]),
                 ("config SHA-256", s["config_sha256"]), ("code version", s["code_version"]),
                 ("created (UTC)", record["created_utc"]), ("case", record["case_id"])):
        text(f"{k}: {v}", 7.5, width=130, gap=0.0)
    text(f"Technical annex (unbounded LLR, score, percentiles, detector probability; {NOT_FOR_REPORTING}) "
         f"and the system's validation figures: evidence.html.", 7.5, width=130)


def render_pdf(record: dict, files: dict, path: Path, demo_note: str | None) -> None:
    """The one-page summary (A4 portrait) with matplotlib; no creation date in the file."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    fig = plt.figure(figsize=(8.27, 11.69))
    page = _Page(fig)
    _pdf_header(page, record, demo_note)
    for r in record["results"][:4]:
        _pdf_face(page, r, files["crops"][r["face"]])
    if len(record["results"]) > 4:
        page.text(f"... and {len(record['results']) - 4} more face(s), in full in evidence.html:", 9)
        for r in record["results"][4:]:
            lr = f"LR = {r['lr_bounded_text']}: " if r.get("lr_bounded_text") else ""
            page.text(f"face {r['face']}: {lr}{r['statement']}", 7.5, width=130, gap=0.0)
    page.y -= 0.01
    _pdf_custody(page, record)
    with PdfPages(path, metadata={"CreationDate": None, "Creator": "evidence.py", "Producer": None}) as pdf:
        pdf.savefig(fig)
    plt.close(fig)


def write_case(folder: Path, record: dict, crops: dict, overview: tuple | None, demo_note: str | None,
               validation: dict) -> Path:
    """Write the case folder atomically (replacing an earlier run of the same input)."""
    with atomic_dir(folder) as tmp:
        files: dict = {"crops": {}}
        for n, crop in crops.items():
            p = tmp / f"face_{n}.png"
            _png(p, crop)
            files["crops"][n] = p
        if overview is not None:
            frame, boxes = overview
            overview_image(frame, boxes, tmp / "overview.png")
            files["overview"] = tmp / "overview.png"
        (tmp / "evidence.html").write_text(render_html(record, files, demo_note, validation), encoding="utf-8")
        render_pdf(record, files, tmp / "evidence.pdf", demo_note)
        write_json(tmp / "evidence.json", record)
    return folder


def read_record(folder: Path) -> dict:
    return json.loads((Path(folder) / "evidence.json").read_text())
