"""The cross-validated protocol (slr.validation = crossval, issue 18 item 5) on the synthetic
generator: it equals a hand-made loop over person folds (LRSystem.fit on the other folds, applied
to the held-out fold), its folds are person-disjoint, every item gets exactly one out-of-fold LLR,
the saved system is the one fitted on all persons, and run_scores offers the same protocol."""
from __future__ import annotations

import json

import numpy as np
import pytest

from common.io import InputError
from slr import crossval as CV
from slr.bootstrap import pool_metrics
from slr.io import ScoreSet, video_level, write_scores
from slr.models import group_folds
from slr.pipeline import stage10
from slr.run_scores import main as run_scores_main
from slr.settings import Settings
from slr.system import LRSystem

from slr_helpers import GRID, generate


def _settings(**kw) -> Settings:
    base = dict(model="kde", grid=GRID, n_folds=3, crossfit_folds=3, bootstrap_n=0, validation="crossval",
                crossval_folds=4, crossval_seed=7)
    return Settings(**{**base, **kw})


@pytest.fixture(scope="module")
def pools():
    rng = np.random.default_rng(3)
    return {"calib": generate(rng, 14, frames=6, prefix="c"), "test": generate(rng, 10, frames=6, prefix="t")}


def _hand_made(pools, settings):
    """The protocol written out: pool calib + test, person folds, fit on k-1 folds, apply to the rest."""
    data = ScoreSet(np.r_[pools["calib"].scores, pools["test"].scores],
                    np.r_[pools["calib"].labels, pools["test"].labels],
                    np.r_[pools["calib"].video_ids, pools["test"].video_ids],
                    person_ids=np.r_[pools["calib"].person_ids, pools["test"].person_ids])
    fold, k = group_folds(data.person_ids, settings.crossval_folds, settings.crossval_seed, data.labels)
    vdata = video_level(data)
    vfold = np.array([fold[np.flatnonzero(data.video_ids == v)[0]] for v in vdata.video_ids])
    llr = {"frame": np.full(len(data), np.nan), "video": np.full(len(vdata), np.nan)}
    for i in range(k):
        fit_on = {"frame": CV.subset(data, fold != i), "video": CV.subset(vdata, vfold != i)}
        system = LRSystem.fit(fit_on, settings, {"name": "logit"})
        llr["frame"][fold == i] = system.llr(data.scores[fold == i], "frame")
        llr["video"][vfold == i] = system.llr(vdata.scores[vfold == i], "video")
    return data, fold, k, llr


def test_crossval_equals_a_hand_made_loop_over_person_folds(pools):
    settings = _settings()
    levels, skipped, system = CV.fit_all(pools, settings, {"name": "logit"})
    data, fold, k, llr = _hand_made(pools, settings)
    assert k == 4 and not skipped
    np.testing.assert_array_equal(levels["frame"].splits["test"].llr, llr["frame"])
    np.testing.assert_array_equal(levels["video"].splits["test"].llr, llr["video"])
    # the saved system is the one fitted on all persons (calib block = its cross-fitted LLRs)
    full = LRSystem.fit({"frame": data, "video": video_level(data)}, settings, {"name": "logit"})
    grid = np.linspace(-3, 3, 25)
    np.testing.assert_array_equal(system.llr(grid, "frame"), full.llr(grid, "frame"))
    np.testing.assert_array_equal(levels["frame"].splits["calib"].llr, full.levels["frame"].calib["cf_llr"])
    assert system.validation["crossval"]["counts"]["n_persons"] == 24
    # the out-of-fold LLRs differ from the final system's own (it saw every person)
    assert not np.allclose(levels["frame"].splits["test"].llr, system.llr(data.scores, "frame"))


def test_folds_are_person_disjoint_and_every_item_gets_one_out_of_fold_llr(pools):
    settings = _settings(crossval_folds=5)
    data = CV.lr_data(pools)
    fold_of, k = CV.person_folds(data, 5, 7)
    vdata = video_level(data)
    oof, skipped = CV.out_of_fold({"frame": data, "video": vdata}, fold_of, k, settings, {"name": "logit"})
    assert not skipped and k == 5
    for lv, s in (("frame", data), ("video", vdata)):
        f = oof[lv]["fold"]
        assert np.isfinite(oof[lv]["llr"]).all() and len(oof[lv]["llr"]) == len(s)
        for i in range(k):          # no person on both sides of any fold
            assert not set(s.persons()[f == i]) & set(s.persons()[f != i])
        held = [b["held_out"]["n_frames"] for b in oof[lv]["folds"]]
        fitted = [b["fitted_on"]["n_frames"] for b in oof[lv]["folds"]]
        assert sum(held) == len(s) and all(h + t == len(s) for h, t in zip(held, fitted))
        assert sorted(set(f)) == list(range(k))


def test_crossval_summary_has_person_intervals_and_saved_system_says_so(pools, tmp_path):
    settings = _settings(bootstrap_n=200)
    levels, summary = stage10(pools, tmp_path, settings, score_spec={"name": "logit"}, system_dir=tmp_path / "sys")
    t = summary["levels"]["frame"]["test"]
    assert t["n_persons"] == 24 and t["n_hp"] + t["n_hd"] == 24 * 12
    ref = pool_metrics(levels["frame"].splits["test"].llr, levels["frame"].splits["test"].labels,
                       levels["frame"].splits["test"].persons(), None, 200, settings.bootstrap_seed)
    for m in ("cllr", "cllr_min", "eer", "misleading_hp", "misleading_hd"):
        assert t[m] == ref[m] and t["ci95"][m] == ref["ci95"][m]
        assert t["ci95"][m][0] <= t[m] <= t["ci95"][m][1]
    assert summary["crossval"]["folds"] == 4 and "every one of the 24 persons" in summary["crossval"]["note"]
    saved = LRSystem.load(tmp_path / "sys")
    assert saved.settings.validation == "crossval" and saved.settings.crossval_folds == 4
    assert saved.validation["crossval"]["counts"]["n_persons"] == 24
    assert json.loads((tmp_path / "summary.json").read_text())["levels"]["frame"]["test"]["role"].startswith(
        "cross-validated")


def test_four_pools_system_json_has_no_crossval_keys(pools, tmp_path):
    settings = _settings(validation="four_pools")
    stage10(pools, tmp_path, settings, score_spec={"name": "logit"}, system_dir=tmp_path / "sys")
    doc = json.loads((tmp_path / "sys" / "system.json").read_text())
    assert "crossval" not in doc["settings"] and "crossval" not in doc["validation"]


def test_run_scores_crossval_with_calib_only(pools, tmp_path):
    d = tmp_path / "scores"
    d.mkdir()
    data = CV.lr_data(pools)
    write_scores(d / "calib.csv", data)
    rc = run_scores_main(["--scores-dir", str(d), "--output-dir", str(tmp_path / "out"), "--validation", "crossval",
                          "--crossval-folds", "4", "--seed", "7", "--bootstrap", "50", "--model", "logistic"])
    assert rc == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["crossval"]["folds"] == 4 and s["levels"]["frame"]["test"]["n_persons"] == 24
    same = Settings(model="logistic", seed=7, crossfit_folds=5, validation="crossval", crossval_folds=4,
                    crossval_seed=7)     # run_scores' settings for these arguments
    levels, _, _ = CV.fit_all({"calib": data}, same, {"name": "logit"})
    rows = np.genfromtxt(tmp_path / "out" / "test_lr.csv", delimiter=",", names=True, dtype=None, encoding=None)
    np.testing.assert_allclose(rows["llr"], levels["frame"].splits["test"].llr, rtol=0, atol=1e-12)


def test_too_few_persons_per_fold_is_an_input_error_naming_the_key():
    rng = np.random.default_rng(0)
    small = {"calib": generate(rng, 3, frames=4)}
    with pytest.raises(InputError, match="slr.crossval.folds"):
        CV.fit_all(small, _settings(crossval_folds=3), {"name": "logit"})


def test_two_ratios_give_a_split_of_calib_and_test_only(tmp_path):
    from preprocessing.splits import make_split

    for lab in ("real", "fake"):
        for i in range(8):
            d = tmp_path / lab / "frames" / (f"{i:04d}" + ("_fake" if lab == "fake" else ""))
            d.mkdir(parents=True)
            for j in range(2):
                (d / f"{j:03d}.png").write_bytes(b"")
    split = make_split(tmp_path, unit="person", ratios=[0.5, 0.5], seed=1)
    assert split["meta"]["pools"] == ["calib", "test"] and split["meta"]["counts"]["calib"]["persons"] == 4
    body = split[tmp_path.name]
    persons = {p: {v[:4] for lab in body.values() for v in lab[p]} for p in ("calib", "test")}
    assert len(persons["calib"] | persons["test"]) == 8 and not persons["calib"] & persons["test"]
