"""Stage 07: the detector as a classifier: ROC and precision-recall curves, AUC, AP, accuracy at
0.5 and EER, frame-level and video-level (mean fake probability per video).

Reads the dumps of stage 04 (see ``evaluation.splits`` / ``evaluation.inputs``); writes
``<output_dir>/07_classifier_eval/``: ``roc.png``, ``pr.png`` (frame and video level, one curve
per split), ``predictions_<split>.csv`` (per image), ``videos_<split>.csv`` (per video),
``metrics.csv`` and ``summary.json``.
"""
from __future__ import annotations

import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from common.cli import run_stage
from common.stages import folder
from common.figures import save_figure
from common.io import write_csv, write_json
from evaluation.classifier_eval import curves_of, evaluate, plot_pr, plot_roc, write_predictions
from evaluation.inputs import load_dumps

STAGE = folder("07")


def main(cfg, args, out):
    dumps = load_dumps(cfg)
    reports = {}
    for name, dump in dumps.items():
        reports[name] = evaluate(dump, name)
        write_predictions(dump, out / f"predictions_{name}.csv", out / f"videos_{name}.csv")
    frame, video = curves_of(dumps)
    for kind, plot in (("roc", plot_roc), ("pr", plot_pr)):
        fig, axes = plt.subplots(1, 2, figsize=(11, 5))
        word = "ROC" if kind == "roc" else "Precision-recall"
        plot(axes[0], frame, f"{word}, frame level")
        plot(axes[1], video, f"{word}, video level (mean probability per video)")
        save_figure(fig, out / f"{kind}.png")
    rows = [(name, level, r[level]) for name, r in reports.items() for level in ("frame", "video")]
    cols = ("n", "n_real", "n_fake", "auc", "ap", "acc", "eer", "eer_threshold")
    write_csv(out / "metrics.csv", {"split": [r[0] for r in rows], "level": [r[1] for r in rows],
                                    **{c: [r[2][c] for r in rows] for c in cols}})
    write_json(out / "summary.json", {"stage": STAGE, "positive_class": "fake (label 1)",
                                      "video_score": "mean fake_probability over the video's frames",
                                      "splits": reports})
    for name, level, r in rows:
        print(f"07 {name:>6} {level:>5}: n={r['n']:5d}  AUC {r['auc']:.4f}  AP {r['ap']:.4f}  "
              f"acc@0.5 {r['acc']:.4f}  EER {r['eer']:.4f}")
    print(f"{STAGE}: roc.png, pr.png, predictions_<split>.csv, videos_<split>.csv, metrics.csv, "
          f"summary.json written")


if __name__ == "__main__":
    sys.exit(run_stage(main, __doc__, stage="07"))
