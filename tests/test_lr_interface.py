"""One interface for the sound and the paper LR systems (issue 20 items 1 and 2).

- both systems are fitted on pools and applied to a pool at a level, giving the same LLR container;
- the sound system of the stages is the one ``LRSystem.fit`` makes (one fit path);
- the paper system is the paper's code (KDEs re-fitted on each split with the train bandwidths);
- the protocol is tested in few places of ``slr/`` (the systems' hooks carry the differences).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from slr.interface import level_sets, system_class
from slr.io import ScoreSet
from slr.kde import paper_bandwidth, paper_grid_llr
from slr.lrdata import LevelLLR, PoolLLR
from slr.paper import PaperSystem
from slr.pipeline import fit_all
from slr.settings import Settings
from slr.system import LRSystem

REPO = Path(__file__).resolve().parents[1]


def _pools(seed: int = 3, n_videos: int = 24, frames: int = 4) -> dict[str, ScoreSet]:
    """Four person-disjoint pools of Gaussian scores (real around +1, fake around -1), 4 frames per video."""
    rng = np.random.default_rng(seed)
    out = {}
    for pool in ("train", "val", "calib", "test"):
        labels = np.repeat([0, 1], n_videos * frames)
        video = np.array([f"{pool}{lab}_{i // frames}" for i, lab in enumerate(labels)])
        person = np.array([f"{pool}_p{(i // frames) % (n_videos // 2)}" for i in range(len(labels))])
        scores = np.where(labels == 0, 1.0, -1.0) + rng.normal(size=len(labels))
        out[pool] = ScoreSet(scores, labels, video, source=f"{pool}.csv", person_ids=person)
    return out


def test_protocol_is_tested_in_at_most_six_places_of_slr():
    pattern = re.compile(r"protocol\s*[!=]=|==\s*\"(sound|paper)\"|if (not )?sound\b")
    hits = [f"{p.name}:{i}" for p in sorted((REPO / "slr").glob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert len(hits) <= 6, hits


@pytest.mark.parametrize("protocol", ["sound", "paper"])
def test_both_systems_fit_on_pools_and_apply_to_a_pool(protocol):
    settings = Settings(protocol=protocol, model="logistic", crossfit_folds=3, bootstrap_n=0)
    sets = _pools()
    levels, skipped, system = fit_all(sets, settings)
    assert isinstance(system, system_class(protocol)) and skipped == {}
    assert set(levels) == {"frame", "video"}
    for lv, r in levels.items():
        assert isinstance(r, LevelLLR) and r.protocol == protocol
        for pool in r.pools:
            sl = r.splits[pool]
            assert isinstance(sl, PoolLLR) and len(sl.llr) == len(sl.labels) == len(sl.person_ids)
            b = sl.bounds
            if b["applied"]:      # sound: the final LLR is the calibrated one clipped to the bounds
                np.testing.assert_array_equal(sl.llr, np.clip(sl.llr_calibrated, b["lower_log10"], b["upper_log10"]))
            else:                 # paper: no calibration, no bounds in the final LLR
                np.testing.assert_array_equal(sl.llr, sl.llr_model)
                np.testing.assert_array_equal(sl.llr, sl.llr_calibrated)
    assert [p for p in levels["frame"].pools] == (["train", "val", "calib", "test"] if protocol == "sound"
                                                  else ["train", "val", "test"])


def test_the_stages_sound_system_is_the_one_lrsystem_fit_makes():
    """One fit path: the system of the stages gives bit-identical LLRs to ``LRSystem.fit`` on calib."""
    settings = Settings(protocol="sound", crossfit_folds=3, bootstrap_n=0, video_level=False)
    sets = _pools(seed=5)
    levels, _, system = fit_all(sets, settings)
    direct = LRSystem.fit({"frame": sets["calib"]}, settings, {"name": settings.score})
    test = sets["test"].scores
    np.testing.assert_array_equal(levels["frame"].splits["test"].llr, direct.llr(test))
    np.testing.assert_array_equal(system.llr(test), direct.llr(test))
    # calib gets its cross-fitted LLRs, not the refitted model's
    np.testing.assert_array_equal(levels["frame"].splits["calib"].llr, direct.crossfit_llr()["cf_llr"])
    assert system.pools["test"] == sets["test"].counts()


def test_paper_system_refits_the_kdes_on_each_split_with_the_train_bandwidths():
    settings = Settings(protocol="paper", bootstrap_n=0, video_level=False)
    sets = {k: v for k, v in _pools(seed=9, n_videos=30).items() if k != "calib"}
    by_level, _ = level_sets(sets, settings, PaperSystem)
    system = PaperSystem.fit_pools(by_level, settings)
    tr = sets["train"]
    bw = {k: paper_bandwidth(x, seed=settings.paper_seed)[0] for k, x in (("hp", tr.hp), ("hd", tr.hd))}
    assert system.levels["frame"]["bandwidth"] == pytest.approx(bw, abs=0)
    for pool in ("val", "test"):
        s = sets[pool]
        sl = system.apply(s, pool, "frame")
        np.testing.assert_array_equal(sl.llr, paper_grid_llr(s.hp, s.hd, bw["hp"], bw["hd"], s.scores))
        assert sl.bounds["fitted_on"] == pool and not sl.bounds["applied"]
    extra = PaperSystem.extra_metrics(sl)
    assert extra["paper_elub"] == {"lower_log10": -12.0, "upper_log10": 6.5} and extra["paper_cllr_calibrated"] >= 0
