"""Issue 21 item 2: the 95 % interval on a case LLR (person-cluster bootstrap of the whole system fit):
coverage of the true LLR of a known generator, narrowing with more calib persons, storage in the saved
system and its cost per case."""
from __future__ import annotations

import logging
import math
import time

import matplotlib
import numpy as np
from threadpoolctl import threadpool_limits

from slr import plots
from slr.case_interval import case_interval_band, interval_at, spans_categories
from slr.io import ScoreSet
from slr.settings import Settings
from slr.system import LRSystem, fit_level_model

SD_ITEM, SD_PERSON, FRAMES = 0.8, 0.4, 10
TRUE_SLOPE = 2.0 / ((SD_ITEM ** 2 + SD_PERSON ** 2) * math.log(10))   # log10 N(x; 1, v) / N(x; -1, v) = slope x
AT = np.array([-0.6, 0.0, 0.6])


def _calib(rng, n_persons: int) -> ScoreSet:
    """Per person one real and one fake video of 10 frames; a person effect shared by both videos."""
    pe = np.repeat(rng.normal(0, SD_PERSON, n_persons), 2 * FRAMES)
    labels = np.tile(np.repeat([0, 1], FRAMES), n_persons)
    x = np.where(labels == 0, 1.0, -1.0) + pe + rng.normal(0, SD_ITEM, labels.size)
    persons = np.repeat([f"p{i}" for i in range(n_persons)], 2 * FRAMES)
    videos = np.array([f"{p}_{lab}" for p, lab in zip(persons, labels)])
    return ScoreSet(x, labels, videos, None, "<generator>", person_ids=persons)


def _intervals(n_persons: int, reps: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) at AT for ``reps`` independent calib sets (logistic model: the true family)."""
    logging.disable(logging.WARNING)
    rng = np.random.default_rng(seed)
    st = Settings(model="logistic", calibration="none", bootstrap_n=0, case_interval_n=0)
    los, his = [], []
    with threadpool_limits(limits=1, user_api="blas"):       # L-BFGS-B spins in idle BLAS threads otherwise
        for r in range(reps):
            lm = fit_level_model(_calib(rng, n_persons), st)
            lo, hi = interval_at(case_interval_band(lm, n, r), AT)
            los.append(lo)
            his.append(hi)
    logging.disable(logging.NOTSET)
    return np.array(los), np.array(his)


def test_case_interval_covers_the_true_llr():
    lo, hi = _intervals(40, 60, 100, seed=5)
    true = TRUE_SLOPE * AT
    cover = np.mean((lo <= true) & (true <= hi))
    assert 0.90 <= cover <= 0.99


def test_case_interval_narrows_as_calib_persons_grow():
    widths = {p: float(np.mean(np.subtract(*_intervals(p, 4, 100, seed=7)[::-1]))) for p in (15, 60)}
    assert widths[60] < 0.7 * widths[15]
    assert widths[60] > 0


def test_saved_system_gives_the_interval_at_no_cost(tmp_path):
    calib = _calib(np.random.default_rng(3), 30)
    st = Settings(model="kde", calibration="none", bootstrap_n=0, case_interval_n=50, case_interval_seed=4,
                  video_level=False)
    system = LRSystem.fit({"frame": calib}, st, "logit")
    system.save(tmp_path / "system")
    loaded = LRSystem.load(tmp_path / "system")
    lm, again = system.level("frame"), loaded.level("frame")
    x = np.array([-1.5, 0.2, 1.1])
    assert np.array_equal(np.array(again.interval(x)), np.array(lm.interval(x)))
    band = again.case_band
    assert band["n"] == 50 and band["seed"] == 4 and band["scores"].size == 401
    assert np.all(band["lower"] <= band["upper"])
    point = again.llr(x)
    lo, hi = again.interval(x)
    assert np.all((lo <= point + 1e-12) & (point <= hi + 1e-12))
    t0 = time.perf_counter()
    for s in np.linspace(-2, 2, 100):
        again.llr([s])
        again.interval([s])
    assert (time.perf_counter() - t0) / 100 < 0.010


def test_llr_curve_figure_draws_the_band():
    matplotlib.use("Agg")
    lm = fit_level_model(_calib(np.random.default_rng(8), 20),
                         Settings(model="logistic", bootstrap_n=0, case_interval_n=30, video_level=False))
    grid = np.linspace(-3, 3, 200)
    fig, axes = plots.new_figure(1, width=7)
    c = lm.calib
    plots.plot_llr_curve(axes[0], grid, lm.llr_parts(grid), (lm.lower_log10, lm.upper_log10), c["scores"],
                         c["cf_llr"], c["labels"], band=lm.interval(grid))
    poly = axes[0].collections[0]
    ys = poly.get_paths()[0].vertices[:, 1]
    lo, hi = lm.interval(grid)
    np.testing.assert_allclose(ys.min(), lo.min())
    np.testing.assert_allclose(ys.max(), hi.max())
    assert "95 % case interval" in poly.get_label()


def test_spans_categories():
    def words(v):
        return "none" if abs(v) < 1 else ("hp" if v > 0 else "hd")
    assert not spans_categories(0.2, 0.8, words)
    assert spans_categories(0.2, 1.2, words)
    assert spans_categories(-1.5, -0.5, words)
    assert spans_categories(-math.inf, 0.0, words)


def test_statement_gives_the_interval_and_says_when_it_spans_categories():
    from casework.statement import interval_sentence, verbal
    from common.schema import defaults

    scale = defaults("evidence")["verbal_scale"]
    hyps = {"hp": "the image is real", "hd": "the image is fake"}
    one = interval_sentence(1.2, 1.8, scale, hyps)
    assert "[+1.20, +1.80]" in one and "spans" not in one
    two = interval_sentence(0.5, 2.4, scale, hyps)
    assert "spans more than one verbal category" in two
    assert verbal(0.5, scale, hyps) in two and verbal(2.4, scale, hyps) in two
