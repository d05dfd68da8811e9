"""Figures of the robustness stage (15): Cllr against strength per degradation, Tippett at the
strongest setting against clean. Base-10 LLRs, Cllr in bits."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from common import degrade as DG
from common.figures import save_figure

CLEAN_X = {"jpeg": 100.0, "downscale": 1.0, "blur": 0.0, "noise": 0.0}   # where the clean point is drawn
LEVEL_STYLE = {"frame": {"color": "#1f5fa8", "ls": "-", "marker": "o"},
               "video": {"color": "#c2571a", "ls": "--", "marker": "s"}}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def cllr_figure(rows: Sequence[dict], vrange: dict, criteria: Sequence[dict], path: Path) -> Path | None:
    """One panel per family: Cllr (point and 95 % person-cluster band) at each strength, per level;
    the clean value as a horizontal line, a ``cllr`` max criterion as a red line, the validated
    range's end as a green vertical line. The x axis runs from mild to strong (JPEG quality and
    downscale factor are drawn decreasing)."""
    families = [f for f in dict.fromkeys(r["family"] for r in rows) if f != "clean"]
    if not families:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(families), figsize=(4.4 * len(families), 4.6), squeeze=False)
    cllr_max = [float(c["max"]) for c in criteria if c.get("metric") == "cllr" and "max" in c]
    for ax, fam in zip(axes[0], families):
        x0 = CLEAN_X[fam]
        for level, st in LEVEL_STYLE.items():
            fr = [r for r in rows if r["family"] == fam and r["level"] == level]
            clean = [r for r in rows if r["family"] == "clean" and r["level"] == level]
            if not fr:
                continue
            fr = clean[:1] + sorted(fr, key=lambda r: DG.DIRECTION[fam] * float(r["strength"]))
            x = np.array([x0 if r["family"] == "clean" else float(r["strength"]) for r in fr])
            y = np.array([r["cllr"] for r in fr], dtype=float)
            ci = np.array([[math.nan if v is None else v for v in ((r.get("ci95") or {}).get("cllr") or [None, None])]
                           for r in fr], dtype=float)
            ax.plot(x, y, color=st["color"], ls=st["ls"], marker=st["marker"], label=f"{level} level")
            if np.isfinite(ci).any():
                ax.fill_between(x, ci[:, 0], ci[:, 1], color=st["color"], alpha=0.15,
                                label=f"{level}: 95 % person interval")
            if clean:
                ax.axhline(clean[0]["cllr"], color=st["color"], ls=":", lw=1.2, label=f"{level}: clean value")
        for m in cllr_max:
            ax.axhline(m, color="#b91c1c", ls="-.", lw=1, label=f"criterion Cllr ≤ {m:g}")
        v = (vrange or {}).get(fam) or {}
        if v.get("strongest") is not None:
            ax.axvline(float(v["strongest"]), color="#15803d", lw=1.2, label="end of validated range")
        ticks = sorted({x0, *(float(r["strength"]) for r in rows if r["family"] == fam)})
        ax.set_xticks(ticks)
        ax.set_xticklabels(["clean" if t == x0 else f"{t:g}" for t in ticks])
        if DG.DIRECTION[fam] < 0:
            ax.invert_xaxis()
        ax.set_xlabel(f"{DG.UNITS[fam]} (stronger →)")
        ax.set_ylabel("Cllr (bits)")
        if not v:
            title = "no criteria"
        elif v.get("strongest") is not None:
            title = f"validated down to {v['strongest']:g}" if DG.DIRECTION[fam] < 0 else \
                f"validated up to {v['strongest']:g}"
        else:
            title = "clean only" if v.get("clean_passes") else "not validated (clean fails)"
        ax.set_title(f"{fam}: {title}", fontsize=9)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:               # a line only some panels have (end of validated range)
        for hnd, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(hnd)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8, frameon=False)
    fig.suptitle("Cllr of the saved LR system under degradation (test pool; nothing refitted)")
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    return save_figure(fig, path, tight=False)


def tippett_figure(results: Sequence, labels: np.ndarray, path: Path) -> Path | None:
    """One panel per family: frame-level Tippett curves P(LLR >= x | H) of the clean setting (solid)
    and the family's strongest tested setting (dashed)."""
    clean = next((r for r in results if r.family == "clean"), None)
    families = [f for f in dict.fromkeys(r.family for r in results) if f != "clean"]
    if clean is None or not families:
        return None
    from slr import plots
    labels = np.asarray(labels)
    fig, axes = plots.new_figure(len(families), width=4.4, height=3.8)
    for ax, fam in zip(axes, families):
        strongest = [r for r in results if r.family == fam][-1]      # settings are mildest first
        span = plots.tippett_span(clean.llr["frame"], strongest.llr["frame"])
        for r, ls, tag in ((clean, "-", "clean"), (strongest, "--", strongest.label)):
            llr = np.asarray(r.llr["frame"], float)
            if (labels == 0).any() and (labels == 1).any():    # P(LLR >= x | H), the stage-11 drawing
                plots.plot_tippett(ax, llr[labels == 0], llr[labels == 1], f"{fam}: clean vs {strongest.label}",
                                   span=span, ls=ls, tag=tag)
        both = np.r_[clean.llr["frame"], strongest.llr["frame"]]
        if both.size and np.ptp(both) == 0:
            ax.text(0.5, 0.5, f"every LLR = {both[0]:g}\n(degenerate system)", transform=ax.transAxes,
                    ha="center", va="center", fontsize=9, color="#7f1d1d")
        ax.set_xlabel("log10 LR (frame level)")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    fig.suptitle("Tippett plots: clean test frames against the strongest degradation")
    return save_figure(fig, path)
