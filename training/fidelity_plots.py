"""Figures of the DeepFidelity steps (plotting only; the numbers come from training/fidelity*.py)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from common.figures import save_figure  # noqa: E402


def _hist(ax, values, labels, bins=40) -> None:
    values, labels = np.asarray(values, float), np.asarray(labels)
    edges = np.histogram_bin_edges(values, bins=bins)
    for lab, name, colour in ((0, "real (Hp)", "tab:blue"), (1, "fake (Hd)", "tab:red")):
        v = values[labels == lab]
        if v.size:
            ax.hist(v, bins=edges, alpha=0.55, color=colour, label=f"{name}, n={v.size}", density=True)
    ax.set_ylabel("density (1 / unit of the x axis)")
    ax.legend()


def quality_figure(cache: dict, path: Path) -> Path:
    """Left: face quality per class on train; right: quality -> fidelity target map (train)."""
    train = cache["split"] == "train"
    q, lab, f = cache["quality"][train], cache["label"][train], cache["fidelity"][train]
    method = cache["info"].get("quality_method", "quality")
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    _hist(a, q, lab)
    a.set_xlabel(f"face quality ({method}; dimensionless, higher = better)")
    a.set_title("Face quality of the training frames")
    for c, name, colour in ((0, "real -> [0.6, 1.0]", "tab:blue"), (1, "fake -> [0, 0.4]", "tab:red")):
        b.scatter(q[lab == c], f[lab == c], s=4, color=colour, label=name)
    b.set_xlabel(f"face quality ({method})")
    b.set_ylabel("fidelity target (0-1, high = real)")
    b.set_title("Per-class min-max mapping (fitted on train)")
    b.legend()
    return save_figure(fig, path)


def score_figure(dumps: dict, scores: dict, path: Path) -> Path:
    """Fidelity-score histograms per split and class."""
    fig, axes = plt.subplots(1, len(scores), figsize=(5 * len(scores), 4), squeeze=False)
    for ax, (split, s) in zip(axes[0], scores.items()):
        _hist(ax, s, dumps[split].labels)
        ax.set_xlabel("fidelity score (SVR output; high = real)")
        ax.set_title(f"{split}: fidelity score by class")
    return save_figure(fig, path)
