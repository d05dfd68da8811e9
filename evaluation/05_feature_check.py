"""Stage 05: check the feature dumps: shapes, dtypes, counts per split and label, NaN/inf values.

Reads the dumps of stage 04 (``evaluation.features_dir``/<split> for ``evaluation.splits``, or
``evaluation.inputs``); writes ``<output_dir>/05_feature_check/``: ``table.txt``, ``checks.csv``,
``counts.png`` and ``summary.json``. Fails (exit code 2, after writing its outputs) when a dump holds
NaN/inf, unless ``evaluation.fail_on_nonfinite`` is false.
"""
from __future__ import annotations

import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from common.cli import FailedAfterOutputs, run_stage
from common.figures import save_figure
from common.io import atomic_path, write_csv, write_json
from common.stages import folder, stage_dir
from evaluation.feature_check import TABLE_COLUMNS, check_dump, plot_counts, table
from evaluation.inputs import load_dumps

STAGE = folder("05")


def main(cfg, args, out):
    results = {name: check_dump(d, progress=True) for name, d in load_dumps(cfg).items()}
    text = table(results)
    print(text)
    with atomic_path(out / "table.txt") as tmp:
        tmp.write_text(text + "\n")
    write_csv(out / "checks.csv", {c: [(r["shape"] if c == "shape" else r[c]) if c != "split" else name
                                       for name, r in results.items()] for c in TABLE_COLUMNS})
    fig, ax = plt.subplots(figsize=(6, 4))
    plot_counts(ax, results)
    save_figure(fig, out / "counts.png")
    write_json(out / "summary.json", {"stage": STAGE, "splits": results,
                                      "ok": all(r["ok"] for r in results.values())})
    print(f"{STAGE}: table.txt, checks.csv, counts.png, summary.json written")
    bad = [n for n, r in results.items() if not r["ok"]]
    if bad and cfg.get("evaluation.fail_on_nonfinite", True):
        raise FailedAfterOutputs(f"feature dump(s) {bad} failed the checks (NaN/inf values, probabilities outside "
                                 f"[0, 1] or a video with both labels); see {stage_dir(cfg, '05') / 'summary.json'}")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="05"))
