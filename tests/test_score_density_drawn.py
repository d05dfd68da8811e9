"""Stage 08's score figure (also the fused run's): what ``slr.plots.plot_score_density`` draws is read back
from the Axes and compared with the scores it claims to show."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from scipy.stats import gaussian_kde  # noqa: E402

from slr import plots  # noqa: E402


def test_bars_and_lines_are_the_class_densities_of_the_scores():
    rng = np.random.default_rng(3)
    hp, hd = rng.normal(1.0, 0.5, 300), rng.normal(-1.0, 0.7, 200)
    fig, (ax,) = plots.new_figure(1)
    plots.plot_score_density(ax, hp, hd, title="calib", xlabel="score: fused log10 LR")
    bins = np.linspace(min(hp.min(), hd.min()), max(hp.max(), hd.max()), 41)
    bars = [p for p in ax.patches]
    assert len(bars) == 80                                   # 40 bins per hypothesis, Hp drawn first
    for k, x in enumerate((hp, hd)):
        want, _ = np.histogram(x, bins=bins, density=True)
        got = np.array([b.get_height() for b in bars[40 * k: 40 * (k + 1)]])
        np.testing.assert_allclose(got, want, rtol=1e-12)
        line = ax.lines[k]
        xs, ys = line.get_xdata(), line.get_ydata()
        assert xs[0] < bins[0] and xs[-1] > bins[-1]           # the density runs past the data on both sides
        np.testing.assert_allclose(ys, gaussian_kde(x)(xs), rtol=1e-12)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == 2 and "300" in labels[0] and "200" in labels[1]
    assert ax.get_xlabel() == "score: fused log10 LR" and "density" in ax.get_ylabel()
