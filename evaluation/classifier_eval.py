"""Stage 07: the detector as a classifier: ROC and precision-recall curves, AUC, AP, accuracy at 0.5
and EER, frame-level and video-level (mean fake probability per video).

Positive class = fake (label 1); the score is the dump's ``fake_probability``. All rates are
fractions. Plot functions draw on an Axes the caller owns.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.features import FeatureDump
from common.io import InputError, write_csv

from common import metrics as M


def evaluate(dump: FeatureDump, name: str = "") -> dict:
    """Frame- and video-level reports of one dump (see :func:`metrics.binary_report`)."""
    prob = np.asarray(dump.fake_probability, dtype=np.float64)
    if np.isnan(prob).any():
        raise InputError(f"{dump.source}: fake_probability has {int(np.isnan(prob).sum())} missing values "
                         f"(a feature file without probabilities cannot be evaluated as a classifier)")
    report = M.frame_and_video_report(dump.labels, prob, dump.video_ids)
    report["name"] = name
    return report


def write_predictions(dump: FeatureDump, frame_csv: Path, video_csv: Path) -> None:
    """Per-image CSV (image_path, video_id, label, fake_probability, predicted_fake at 0.5) and per-video CSV."""
    prob = np.asarray(dump.fake_probability, dtype=np.float64)
    write_csv(frame_csv, {"image_path": dump.image_paths.tolist(), "video_id": dump.video_ids.tolist(),
                          "label": dump.labels.tolist(), "fake_probability": prob.tolist(),
                          "predicted_fake": (prob >= 0.5).astype(int).tolist()})
    vids, vy, vs, counts = M.video_level(dump.labels, prob, dump.video_ids)
    write_csv(video_csv, {"video_id": vids.tolist(), "label": vy.tolist(), "mean_fake_probability": vs.tolist(),
                          "n_frames": counts.tolist(), "predicted_fake": (vs >= 0.5).astype(int).tolist()})


def plot_roc(ax, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> None:
    """``curves``: label -> (labels, scores). False-positive rate = real called fake."""
    for name, (y, s) in curves.items():
        if not M.two_classes(y):
            continue
        fpr, tpr, _ = M.roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {M.roc_auc(y, s):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="chance")
    ax.set(title=title, xlabel="false-positive rate (real called fake, fraction)",
           ylabel="true-positive rate (fake detected, fraction)", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=8)


def plot_pr(ax, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> None:
    for name, (y, s) in curves.items():
        if not (np.asarray(y) == 1).any():
            continue
        p, r, _ = M.precision_recall_curve(y, s)
        ax.step(np.r_[0.0, r], np.r_[p[0], p], where="pre", label=f"{name} (AP {M.average_precision(y, s):.3f})")
    ax.set(title=title, xlabel="recall (fraction of fakes found)", ylabel="precision (fraction of calls that are fake)",
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower left", fontsize=8)


def curves_of(dumps: dict[str, FeatureDump]) -> tuple[dict, dict]:
    """(frame curves, video curves): name -> (labels, scores)."""
    frame, video = {}, {}
    for name, d in dumps.items():
        prob = np.asarray(d.fake_probability, dtype=np.float64)
        frame[name] = (d.labels, prob)
        _, vy, vs, _ = M.video_level(d.labels, prob, d.video_ids)
        video[name] = (vy, vs)
    return frame, video
