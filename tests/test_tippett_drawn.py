"""Issue 19 item 1: every Tippett plot draws what it claims. The drawn lines are read back from the
matplotlib Axes and compared with a direct count of the LLRs, at points between the LLR values
and at the values themselves (left and right limits), with ties and with items sitting on the ELUB
bounds: stage 11 (through run_scores), the results page's figure and stage 15's figure."""
from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from common.io import numeric_column, read_csv, write_csv  # noqa: E402
from evaluation import robustness_plots  # noqa: E402
from results_grid import page  # noqa: E402
from slr import plots, run_scores  # noqa: E402
from slr_helpers import write_person_scores  # noqa: E402

BOUNDS = (-0.58, 0.92)
# ties inside, several items on each bound (as ELUB clipping leaves them), hp and hd sharing values
HP = np.array([-0.58, -0.58, -0.2, 0.3, 0.3, 0.92, 0.92, 0.92])
HD = np.array([-0.58, -0.58, -0.58, -0.2, 0.1, 0.92])


@pytest.fixture
def kept_figures(monkeypatch):
    """Figures the code saves stay open (plt.close records them) so their Axes can be read."""
    kept = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    yield kept
    monkeypatch.undo()
    plt.close("all")


def drawn_line(ax, prefix: str, tag: str = ""):
    """(x, y) vertices of the one line whose legend label starts with ``prefix`` (and ends with ``tag``)."""
    lines = [ln for ln in ax.get_lines() if ln.get_label().startswith(prefix) and ln.get_label().endswith(tag)]
    assert len(lines) == 1, [ln.get_label() for ln in ax.get_lines()]
    assert lines[0].get_drawstyle() == "default"          # the vertices are the drawn path
    xy = lines[0].get_xydata()
    return xy[:, 0], xy[:, 1]


def limits(xs, ys, q: float) -> tuple[float, float]:
    """The drawn line's height just left and just right of ``q`` (its horizontal segments)."""
    seg = [(xs[i], xs[i + 1], ys[i], ys[i + 1]) for i in range(len(xs) - 1) if xs[i + 1] > xs[i]]
    assert all(a == b for _, _, a, b in seg), "a Tippett line is a staircase: no sloped segment"
    left = [y for a, b, y, _ in seg if a < q <= b]
    right = [y for a, b, y, _ in seg if a <= q < b]
    assert len(left) == 1 and len(right) == 1, (q, left, right)
    return left[0], right[0]


def check_curve(xs, ys, llr, rel: str):
    """Drawn curve against the direct count: P(LLR >= x) is left-continuous (its value at an LLR is
    the left limit), P(LLR <= x) right-continuous; both run from beyond the lowest to beyond the
    highest LLR, so the first and the last step are drawn."""
    llr = np.asarray(llr, float)
    v = np.unique(llr)
    assert xs[0] < v[0] and xs[-1] > v[-1]
    between = np.r_[v[0] - 0.01, (v[:-1] + v[1:]) / 2, v[-1] + 0.01]
    for q in between:
        want = np.mean(llr >= q) if rel == ">=" else np.mean(llr <= q)
        assert limits(xs, ys, q) == (pytest.approx(want), pytest.approx(want)), q
    for q in v:
        left, right = limits(xs, ys, q)
        if rel == ">=":
            assert left == pytest.approx(np.mean(llr >= q)) and right == pytest.approx(np.mean(llr > q)), q
        else:
            assert left == pytest.approx(np.mean(llr < q)) and right == pytest.approx(np.mean(llr <= q)), q
    assert (ys[0], ys[-1]) == ((1.0, 0.0) if rel == ">=" else (0.0, 1.0))


def test_standard_and_paper_forms_against_a_direct_count():
    fig, axes = plt.subplots(1, 2)
    plots.plot_tippett(axes[0], HP, HD)
    plots.plot_tippett(axes[1], HP, HD, form="paper")
    check_curve(*drawn_line(axes[0], "Hp"), HP, ">=")
    check_curve(*drawn_line(axes[0], "Hd"), HD, ">=")
    check_curve(*drawn_line(axes[1], "Hp"), HP, "<=")
    check_curve(*drawn_line(axes[1], "Hd"), HD, ">=")
    # the values the issue quotes: just left of 0 the truth is P(LLR >= 0-) = 5/8 (Hp) and 2/6 (Hd),
    # not 1.0 as the post-steps drew it
    assert limits(*drawn_line(axes[0], "Hp"), -0.01)[0] == pytest.approx(5 / 8)
    assert limits(*drawn_line(axes[0], "Hd"), -0.01)[0] == pytest.approx(2 / 6)
    plt.close(fig)


def test_every_llr_equal_still_draws_both_steps():
    fig, ax = plt.subplots()
    plots.plot_tippett(ax, np.zeros(3), np.zeros(4))
    for name, llr in (("Hp", np.zeros(3)), ("Hd", np.zeros(4))):
        check_curve(*drawn_line(ax, name), llr, ">=")
    plt.close(fig)


def _scores(directory, seed=0):
    """Well separated scores: the ELUB bounds clip many test items, so the test LLRs tie on them."""
    write_person_scores(directory, {"calib": 12, "test": 8}, sep=2.0, seed=seed)


def test_stage11_figures_of_run_scores_match_the_lr_csv(tmp_path, kept_figures):
    _scores(tmp_path / "in")
    assert run_scores.main(["--scores-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"),
                            "--model", "logistic", "--bootstrap", "0", "--no-video-level"]) == 0
    fig = next(f for f in kept_figures if f is not None and f._suptitle is not None
               and "Tippett" in f._suptitle.get_text())
    ax_by_title = {ax.get_title().split(" (")[0]: ax for ax in fig.axes}
    cols = read_csv(tmp_path / "out" / "test_lr.csv", required=("label", "llr"))
    llr, lab = numeric_column(cols, "llr", "test_lr.csv"), numeric_column(cols, "label", "test_lr.csv", int)
    on_bounds = np.isclose(llr, llr.min()) | np.isclose(llr, llr.max())
    assert on_bounds.sum() >= 4 and len(np.unique(llr)) < len(llr)          # ties and items on the bounds
    ax = next(a for t, a in ax_by_title.items() if t.startswith("test"))
    check_curve(*drawn_line(ax, "Hp"), llr[lab == 0], ">=")
    check_curve(*drawn_line(ax, "Hd"), llr[lab == 1], ">=")


def test_results_page_figure_matches_its_csvs(tmp_path, kept_figures):
    rng = np.random.default_rng(3)
    cells = {}
    for tag in ("best", "worst"):
        llr = np.clip(np.round(rng.normal(0, 1, 40), 1), *BOUNDS)
        path = tmp_path / f"{tag}.csv"
        write_csv(path, {"label": [0] * 20 + [1] * 20, "llr": list(llr)})
        cells[tag] = ({"lr_csv": str(path), "cell": tag, "test": {"cllr": 0.5}}, llr)
    page.tippett_figure(cells["best"][0], cells["worst"][0], tmp_path / "t.png")
    fig = kept_figures[-1]
    for ax, tag in zip(fig.axes, ("best", "worst")):
        llr = cells[tag][1]
        check_curve(*drawn_line(ax, "Hp"), llr[:20], ">=")
        check_curve(*drawn_line(ax, "Hd"), llr[20:], ">=")


def test_robustness_figure_draws_the_same_curves(tmp_path, kept_figures):
    labels = np.array([0] * 8 + [1] * 6)
    clean = SimpleNamespace(family="clean", label="clean", llr={"frame": np.r_[HP, HD]})
    strong = SimpleNamespace(family="jpeg", label="jpeg q30", llr={"frame": np.r_[HP - 0.3, np.clip(HD + 0.5, *BOUNDS)]})
    robustness_plots.tippett_figure([clean, strong], labels, tmp_path / "t.png")
    ax = kept_figures[-1].axes[0]
    for r, tag in ((clean, "clean"), (strong, "jpeg q30")):
        check_curve(*drawn_line(ax, "Hp", tag), r.llr["frame"][:8], ">=")
        check_curve(*drawn_line(ax, "Hd", tag), r.llr["frame"][8:], ">=")
