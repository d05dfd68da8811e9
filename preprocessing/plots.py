"""Figures for stages 01 and 02 (kept apart from the logic)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common.figures import save_figure, set_wrapped_title  # noqa: E402


def plot_split_counts(meta: dict, path: str | Path) -> Path:
    """Bar chart of real and fake frames per split, annotated with persons and videos."""
    counts = meta["counts"]
    splits = list(counts)
    real = [counts[s]["frames_real"] for s in splits]
    fake = [counts[s]["frames_fake"] for s in splits]
    fig, ax = plt.subplots(figsize=(6, 4))
    x = range(len(splits))
    ax.bar([i - 0.2 for i in x], real, width=0.4, label="real (label 0)", color="tab:blue")
    ax.bar([i + 0.2 for i in x], fake, width=0.4, label="fake (label 1)", color="tab:red")
    for i, s in enumerate(splits):
        c = counts[s]
        ax.annotate(f"{c['persons']} persons\n{c['videos_real']}+{c['videos_fake']} videos",
                    (i, max(real[i], fake[i])), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x), splits)
    ax.set_xlabel("pool")
    ax.set_ylabel("frames (count)")
    leak = meta.get("leakage", {})
    set_wrapped_title(ax, f"{meta.get('dataset', '')} split by {meta['unit']} (seed {meta['seed']})"
                      + (f" - LEAKY: {leak.get('n_persons_shared', 0)} persons shared" if meta.get("leaky") else ""))
    ax.legend()
    ax.margins(y=0.2)
    return save_figure(fig, path)


def plot_crop_status(summary: dict, rows: list[dict], path: str | Path) -> Path:
    """Stage 01: frames per status (real / fake) and the detector score histogram of found faces."""
    counts = summary["status_counts"]
    statuses = list(counts["all"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    x = range(len(statuses))
    ax1.bar([i - 0.2 for i in x], [counts["real"][s] for s in statuses], width=0.4, label="real (label 0)",
            color="tab:blue")
    ax1.bar([i + 0.2 for i in x], [counts["fake"][s] for s in statuses], width=0.4, label="fake (label 1)",
            color="tab:red")
    ax1.set_xticks(list(x), statuses)
    ax1.set_xlabel("frame status")
    ax1.set_ylabel("sampled frames (count)")
    set_wrapped_title(ax1, f"{summary['frames_sampled']} sampled frames, {summary['crops_written']} crops")
    ax1.legend()
    for lab, color in (("0", "tab:blue"), ("1", "tab:red")):
        scores = [float(r["score"]) for r in rows if r["score"] != "" and str(r["label"]) == lab]
        if scores:
            ax2.hist(scores, bins=30, alpha=0.6, color=color, label=f"{'real' if lab == '0' else 'fake'} (n={len(scores)})")
    ax2.set_xlabel("detector score of the largest face\n(HOG margin or CNN confidence, unitless)")
    ax2.set_ylabel("frames (count)")
    ax2.set_title("Face detection scores")
    if ax2.has_data():
        ax2.legend()
    return save_figure(fig, path)
