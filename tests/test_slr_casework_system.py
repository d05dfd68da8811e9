"""Issue 21 item 6: ``slr.casework_system: calib+test`` saves, beside the validated calib-only system,
one refitted on calib and test together, whose record points at the validated system."""
from __future__ import annotations

import json
import logging

import numpy as np

from slr import pipeline
from slr.io import ScoreSet
from slr.settings import Settings
from slr.system import LRSystem


def _pool(rng, prefix, n_persons, frames=5):
    labels = np.tile(np.repeat([0, 1], frames), n_persons)
    persons = np.repeat([f"{prefix}{i}" for i in range(n_persons)], 2 * frames)
    videos = np.array([f"{p}_{lab}" for p, lab in zip(persons, labels)])
    x = np.where(labels == 0, 1.0, -1.0) + rng.normal(0, 1, labels.size)
    return ScoreSet(x, labels, videos, None, f"<{prefix}>", person_ids=persons)


def test_calib_plus_test_system_is_saved_and_names_the_validated_one(tmp_path):
    logging.disable(logging.WARNING)
    rng = np.random.default_rng(0)
    sets = {"calib": _pool(rng, "c", 12), "test": _pool(rng, "t", 10)}
    st = Settings(model="logistic", bootstrap_n=0, case_interval_n=0, casework_system="calib+test")
    summary = pipeline.run_scores(sets, tmp_path, st)
    logging.disable(logging.NOTSET)
    validated = LRSystem.load(tmp_path / "system")
    casework = LRSystem.load(tmp_path / "system_casework")
    block = summary["system"]["casework"]
    assert block["sha256"] == casework.sha256 and block["validated_system_sha256"] == validated.sha256
    assert casework.validation["validated_system_sha256"] == validated.sha256
    assert "calib-only system" in casework.validation["note"]
    n_both = len(sets["calib"]) + len(sets["test"])
    assert len(casework.level("frame").calib["scores"]) == n_both
    assert len(validated.level("frame").calib["scores"]) == len(sets["calib"])
    x = np.linspace(-2, 2, 5)
    assert not np.allclose(casework.llr(x), validated.llr(x))
    assert json.loads((tmp_path / "summary.json").read_text())["system"]["casework"]["fitted_on"] == "calib+test"


def test_default_saves_only_the_validated_system(tmp_path):
    logging.disable(logging.WARNING)
    rng = np.random.default_rng(1)
    sets = {"calib": _pool(rng, "c", 8), "test": _pool(rng, "t", 8)}
    summary = pipeline.run_scores(sets, tmp_path, Settings(model="logistic", bootstrap_n=0, case_interval_n=0,
                                                           video_level=False))
    logging.disable(logging.NOTSET)
    assert "casework" not in summary["system"] and not (tmp_path / "system_casework").exists()
