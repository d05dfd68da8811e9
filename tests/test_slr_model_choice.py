"""Issue 21 item 3: ``slr.model: auto`` picks the true family by person-grouped cross-validated Cllr
on calib, on synthetic data from each family (linear LLR, non-monotone LLR, stepped LLR)."""
from __future__ import annotations

import numpy as np
import pytest

from slr.model_choice import CANDIDATES, SilvermanKDEModel, choose_model
from slr.models import model_from_state
from slr.settings import Settings


def _persons(rng, n_persons, frames, draw):
    labels = np.tile(np.repeat([0, 1], frames), n_persons)
    persons = np.repeat([f"p{i}" for i in range(n_persons)], 2 * frames)
    videos = np.array([f"{p}_{lab}" for p, lab in zip(persons, labels)])
    return draw(rng, labels), labels, videos, persons


def _linear(rng, lab):        # equal-variance normals: the LLR is linear in the score (logistic)
    return np.where(lab == 0, 1.0, -1.0) + rng.normal(0, 1, lab.size)


def _non_monotone(rng, lab):  # fakes on both sides of the reals: only a density model can follow
    fake = rng.choice([-2.0, 2.0], lab.size) + rng.normal(0, 0.5, lab.size)
    return np.where(lab == 0, rng.normal(0, 0.5, lab.size), fake)


def _stepped(rng, lab):       # piecewise-constant densities: LLR plateaus +1.95, 0, -1.95 (isotonic)
    hp = rng.choice(3, lab.size, p=[0.9, 0.09, 0.01]) + rng.uniform(0, 1, lab.size)
    hd = rng.choice(3, lab.size, p=[0.01, 0.09, 0.9]) + rng.uniform(0, 1, lab.size)
    return np.where(lab == 0, hp, hd)


@pytest.mark.parametrize("draw, persons, family", [(_linear, 40, "logistic"), (_non_monotone, 40, "kde"),
                                                   (_stepped, 80, "isotonic")])
def test_auto_picks_the_true_family(draw, persons, family):
    x, y, v, p = _persons(np.random.default_rng(0), persons, 10, draw)
    choice = choose_model(x, y, v, p, Settings(bootstrap_n=0))
    assert choice["model"] == family, choice["candidates"]
    assert set(choice["candidates"]) == set(CANDIDATES)
    best = choice["candidates"][choice["chosen"]]["cllr"]
    assert all(best <= c["cllr"] for c in choice["candidates"].values())


def test_silverman_kde_restores_as_kde():
    x, y, v, _ = _persons(np.random.default_rng(1), 10, 10, _linear)
    m = SilvermanKDEModel().fit(x, y, v)
    hp = x[y == 0]
    sd, iqr = np.std(hp, ddof=1), np.subtract(*np.percentile(hp, [75, 25]))
    assert m.bandwidth["hp"] == pytest.approx(0.9 * min(sd, iqr / 1.34) * hp.size ** -0.2)
    again = model_from_state(*m.state())
    grid = np.linspace(-4, 4, 50)
    assert np.array_equal(again.llr(grid), m.llr(grid))


def test_auto_choice_is_saved_and_shown_in_the_report(tmp_path):
    import logging

    from evaluation.report import load_run, system_html
    from slr import pipeline
    from slr.io import ScoreSet
    from slr.system import LRSystem

    logging.disable(logging.WARNING)
    sets = {}
    for pool, seed in (("calib", 2), ("test", 3)):
        x, y, v, p = _persons(np.random.default_rng(seed), 20, 10, _non_monotone)
        sets[pool] = ScoreSet(x, y, np.char.add(f"{pool}_", v), None, f"<{pool}>",
                              person_ids=np.char.add(f"{pool}_", p))
    st = Settings(model="auto", bootstrap_n=0, case_interval_n=20, video_level=False)
    summary = pipeline.run_scores(sets, tmp_path, st)
    logging.disable(logging.NOTSET)
    choice = LRSystem.load(tmp_path / "system").level("frame").model_choice
    assert choice["model"] == "kde" and choice == summary["system"]["model_choice"]["frame"]
    html, info = system_html(load_run(tmp_path))
    assert info["loaded"] and "slr.model auto" in html and "chosen" in html
    assert "case intervals: person-cluster bootstrap" in html
