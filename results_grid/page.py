"""docs/results.md, generated from results.json and nothing else (never edit the page by hand).

``render(results)`` is a pure function of the aggregate: the same results.json gives a byte-identical
page (no clock, no file system reads, sorted keys). Regenerate with

    python -m results_grid.page --results results/uadfv/results.json [--out docs/results.md]

Numbers: figures to 3 significant digits, counts as integers, intervals as [lo, hi] (person-cluster
bootstrap, 95 %), means over seeds with their range [min, max]. Cllr in bits, LLR = log10 LR with
Hp = real in the numerator, EER and rates as fractions.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from common.config import REPO_ROOT
from results_grid.tables import (LEVELS, _frame_cells, cell_table, fmt, fmt_ci, fmt_seconds, group_table, pools_table,
                                 published_table, robustness_finding, robustness_table)


def _overlap(a, b) -> bool | None:
    if not a or not b:
        return None
    return not (a[1] < b[0] or b[1] < a[0])


def _spread_text(results: dict, fc: list, level: str) -> str:
    """The seed spread, degenerate cells, means by score and by LR model, and the ELUB bounds."""
    s = ""
    groups = [g for g in results.get("groups", []) if g["level"] == level and g["test"]["cllr"].get("n", 0) > 1]
    if groups:
        g = max(groups, key=lambda g: (g["test"]["cllr"]["max"] - g["test"]["cllr"]["min"], g["detector"],
                                       g["score"], g["model"]))
        s += (f" Over seeds the widest Cllr range is {fmt(g['test']['cllr']['min'])}-{fmt(g['test']['cllr']['max'])}"
              f" bits ({g['detector']}, {g['score']}, {g['model']}; {g['test']['cllr']['n']} seeds).")
    flagged = sum(1 for e in fc if e["test"].get("flags"))
    if flagged:
        s += f" {flagged} of {len(fc)} cells are degenerate (see the flags column) and cannot pass validation."
    for field, label in (("score", "score"), ("model", "LR model")):
        vals = sorted({e[field] for e in fc})
        if len(vals) > 1:
            means = []
            for v in vals:
                xs = [e["test"]["cllr"] for e in fc if e[field] == v]
                means.append(f"{v} {fmt(sum(xs) / len(xs))} bits ({len(xs)} cells)")
            s += f" Mean test Cllr by {label}: " + ", ".join(means) + "."
    bs = [e["test"]["bounds_log10"] for e in fc if e["test"].get("bounds_log10")]
    if bs:
        s += (f" The systems' ELUB bounds lie within [{fmt(min(b[0] for b in bs))}, {fmt(max(b[1] for b in bs))}] "
              f"(log10)")
        pub = [f.get("bounds_log10") for f in ((results.get("paper", {}).get("published") or {}).get("figures")
                                               or {}).values() if f and f.get("bounds_log10")]
        s += (f", against the paper's published [{fmt(pub[0][0])}, {fmt(pub[0][1])}]." if pub and level == "frame"
              else ".")
    return s


def _paper_text(results: dict, level: str, best: dict) -> str:
    """The paper's (contaminated) features: its own protocol, and the sound protocol on them."""
    s = ""
    pp = _frame_cells(results.get("paper", {}).get("paper_protocol", []), level)
    if pp:
        s += (f" The `paper` protocol on the paper's features (frame-level split, contaminated) gives a test Cllr "
              f"of {', '.join(fmt(e['test']['cllr']) for e in pp)} bits.")
    sp = _frame_cells(results.get("paper", {}).get("sound_on_paper_features", []), level)
    if sp:
        m = sum(e["test"]["cllr"] for e in sp) / len(sp)
        s += (f" On the paper's (contaminated) features the sound protocol gives a mean test Cllr of {fmt(m)} "
              f"bits over {len(sp)} run(s), against {fmt(best['test']['cllr'])} for the best honest cell.")
    return s


def _level_finding(results: dict, cells: list, level: str) -> str | None:
    """One level's paragraph: best and worst cell, cells at 1 bit or more, spread, paper features."""
    fc = sorted(_frame_cells(cells, level), key=lambda e: (e["test"]["cllr"], e["cell"]))
    if not fc:
        return None
    best, worst = fc[0], fc[-1]
    bci, wci = (best["test"].get("ci95") or {}).get("cllr"), (worst["test"].get("ci95") or {}).get("cllr")
    s = (f"At {level} level, over {len(fc)} cells, the lowest test Cllr is {fmt(best['test']['cllr'])} bits"
         f"{fmt_ci(bci)} (`{best['cell']}`, AUC {fmt(best['test'].get('auc'))}) and the highest "
         f"{fmt(worst['test']['cllr'])} bits{fmt_ci(wci)} (`{worst['cell']}`, AUC {fmt(worst['test'].get('auc'))})")
    ov = _overlap(bci, wci)
    if len(fc) > 1 and ov is not None:
        s += "; their 95 % intervals " + ("overlap" if ov else "do not overlap")
    s += "."
    above = sum(1 for e in fc if e["test"]["cllr"] >= 1.0)
    s += (f" {above} of {len(fc)} cells have a test Cllr of 1 bit or more, i.e. they do no better than always "
          f"reporting LR = 1." if above else
          " Every cell has a test Cllr below 1 bit (better than always reporting LR = 1).")
    return s + _spread_text(results, fc, level) + _paper_text(results, level, best)


def findings(results: dict) -> list[str]:
    """Sentences derived from the numbers only (shortcut controls apart)."""
    from results_grid.detectors import learned_finding
    every = results.get("cells", [])
    cells = [e for e in every if not e.get("control")]
    out = [s for s in (_level_finding(results, cells, level) for level in LEVELS) if s]
    learned = learned_finding(every)
    if learned:
        out.append(learned)
    for e in sorted(_frame_cells([e for e in every if e.get("control")]), key=lambda e: e["cell"]):
        out.append(f"Shortcut control `{e['cell']}` (not a deepfake detector): test Cllr {fmt(e['test']['cllr'])} bits"
                   f"{fmt_ci((e['test'].get('ci95') or {}).get('cllr'))}, AUC {fmt(e['test'].get('auc'))}.")
    robust = robustness_finding(results)
    if robust:
        out.append(robust)
    if not out:
        out.append("No finished cells: nothing to report yet.")
    return out


# ------------------------------------------------------------------------------------------ page
def _header(results: dict) -> list[str]:
    """Title, provenance, grid, device and time, protocol and conventions."""
    g = results.get("grid", {})
    rdir = str(Path(results.get("results_json", "results/uadfv/results.json")).parent.as_posix())
    L = [f"# Results: identity-disjoint score-based LRs on {results.get('name', 'uadfv').upper()}", "",
         "<!-- generated by `python -m results_grid.page` from results.json; do not edit by hand -->", "",
         f"Generated from `{results.get('results_json', 'results/uadfv/results.json')}` (grid `{g.get('name')}`, "
         f"config `{g.get('config')}`). Command: `python run_experiments.py --config {g.get('config')}`"
         f"{' --grid ' + g['name'] if g.get('name') not in (None, 'cpu') else ''}.", "",
         f"- Detectors: {', '.join(g.get('detectors', []))}; seeds: {', '.join(str(s) for s in g.get('seeds', []))}; "
         f"scores: {', '.join(g.get('scores', []))}; LR models: {', '.join(g.get('models', []))}.",
         f"- Device: {results.get('device')}; grid time: {fmt_seconds(results.get('seconds'))} "
         f"({results.get('seconds_note', '')})"
         + (f"; detector training: {fmt_seconds(results['training_seconds'])} ({results.get('training_seconds_note', '')})"
            if results.get("training_seconds") is not None else "") + ".",
         "- Protocol: sound, four person-disjoint pools (train: detector and centroid; val: model selection; "
         "calib: the whole LR system; test: these figures). Test persons were never seen by the detector or "
         "the LR system." + (f" Persons are identities (`split.person_map` = `{g['person_map']}`): a person "
                             "seen in several videos sits in one pool." if g.get("person_map") else ""),
         "- Conventions: LLR = log10 LR, Hp = real (numerator); Cllr in bits; intervals are person-cluster "
         "bootstrap 95 % intervals; devPAV (log10, 0 = perfectly calibrated) is NFI's calibration characteristic, "
         "its interval over the resamples where it is defined ((k/n) when k of n were; [n/a]: a run older than "
         "its interval); ELUB bounds are the system's (fitted on calib); monotonicity = direction "
         "changes of the LLR over the calib score range / largest drop in log10.",
         f"- Each cell's test LRs: `{rdir}/cells/<cell>/test_lr.csv` (frame) and `test_video_lr.csv` "
         "(video), columns person_id, video_id, score, label, llr; its run folder is `run_dir` in results.json.", ""]
    return L


def _paper_section(paper: dict) -> list[str]:
    """The paper's published figures, its protocol on its features, and the sound protocol on them."""
    L = ["## Beside it: the paper", "", "### The paper's published figures", ""]
    L += published_table(paper.get("published"))
    L += ["### The `paper` protocol on the paper's features (reproduces the paper's method)", "",
          "The paper's code as it is (frame-level split: every person in every split; KDEs re-fitted on each "
          "split's own scores; no bounds applied). " + str(paper.get("contaminated", "")) + ".", ""]
    for level in LEVELS:
        L += [f"#### {level} level", ""] + cell_table(paper.get("paper_protocol", []), level, extra_paper=True)
    L += ["### The sound protocol on the paper's features (contaminated)", "",
          "Four person-disjoint pools as above, but the " + str(paper.get("contaminated", "")) + ".", ""]
    for level in LEVELS:
        L += [f"#### {level} level: mean [min, max] over seeds", ""]
        L += group_table(paper.get("sound_on_paper_features_groups", []), level)
        L += [f"#### {level} level, every run", ""] + cell_table(paper.get("sound_on_paper_features", []), level)
    return L


def render(results: dict, docs_path: str | Path | None = None) -> str:
    """The whole page as text (a pure function of ``results``; ``docs_path`` only sets relative links)."""
    docs = Path(docs_path or results.get("docs") or "docs/results.md")
    docs_dir = (docs if docs.is_absolute() else REPO_ROOT / docs).parent

    def link(rel):
        return Path(os.path.relpath(REPO_ROOT / rel, docs_dir)).as_posix()

    L = _header(results)
    if results.get("missing_cells"):
        L += [f"**Unfinished cells** (no figures): {', '.join(results['missing_cells'])}.", ""]
    if results.get("upstream_reused"):
        L += ["**Upstream reused** (`run_experiments.py --reuse-upstream`: the LR stages re-ran on the split, detector "
              "and feature dump already there, whose run records were out of date): "
              + "; ".join(f"{k} ({v})" for k, v in results["upstream_reused"].items()) + ".", ""]
    L += ["## Findings", ""] + ["\n\n".join(findings(results)), ""]
    figs = results.get("figures") or {}
    if figs.get("tippett_best_worst"):
        L += [f"![Tippett plots of the best and the worst cell]({link(figs['tippett_best_worst'])})", "",
              "Tippett plots (standard form, both P(LLR >= x)) of the test LRs of the cell with the lowest and the "
              "highest frame-level test Cllr.", ""]
    from results_grid.detectors import detector_table, fusion_table
    L += ["## Detectors: identity, raw AUC per pool, did it learn", ""] + detector_table(results.get("cells", []))
    L += fusion_table(results.get("cells", []))
    for level in LEVELS:
        L += [f"## Honest results, {level} level: mean [min, max] over seeds", ""]
        L += group_table(results.get("groups", []), level)
        L += [f"### Every cell, {level} level, with person-cluster 95 % intervals", ""]
        L += cell_table(results.get("cells", []), level)
    L += ["## Robustness (stage 15) of the best cell: one column per degradation family", ""]
    L += robustness_table(results)
    L += ["## Persons, videos and frames per pool", ""] + pools_table(results.get("pools", {}))
    L += _paper_section(results.get("paper", {}))
    return "\n".join(L).rstrip() + "\n"


# ------------------------------------------------------------------------------------------ figure
def _read_lr(path):
    from common.io import numeric_column, read_csv
    cols = read_csv(REPO_ROOT / path, required=("label", "llr"))
    return numeric_column(cols, "llr", path), numeric_column(cols, "label", path, int)


def tippett_figure(best: dict, worst: dict, path: Path) -> Path:
    """Two Tippett panels (standard form) for the best and the worst cell, from their test LR CSVs."""
    from slr import plots

    fig, axes = plots.new_figure(2, width=5.5, height=4.2)
    for ax, (tag, e) in zip(axes, (("best", best), ("worst", worst))):
        llr, lab = _read_lr(e["lr_csv"])
        hp, hd = llr[lab == 0], llr[lab == 1]
        plots.plot_tippett(ax, hp, hd, title=f"{tag}: {e['cell']}\ntest Cllr {fmt(e['test']['cllr'])} bits, "
                                             f"n = {len(hp)}/{len(hd)}")
    return plots.save_figure(fig, path, "Test-set Tippett plots, frame level (lowest and highest Cllr)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Regenerate docs/results.md from results.json")
    p.add_argument("--results", default="results/uadfv/results.json")
    p.add_argument("--out", default=None, help="default: the 'docs' path recorded in results.json")
    args = p.parse_args(argv)
    path = Path(args.results)
    path = path if path.is_absolute() else REPO_ROOT / path
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: {path}: cannot read results ({exc}); run python run_experiments.py first", file=sys.stderr)
        return 2
    out = Path(args.out or results.get("docs") or "docs/results.md")
    out = out if out.is_absolute() else REPO_ROOT / out
    from common.io import atomic_path
    with atomic_path(out) as tmp:
        tmp.write_text(render(results), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
