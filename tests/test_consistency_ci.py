"""Issue 21 item 5: person-cluster 95 % intervals of devPAV and the LLR-overestimation (slr.bootstrap.
consistency_ci) on the resamples of every other interval, their undefined resamples counted, and the
numbers as the report's validation matrix and the results grid's page show them."""
from __future__ import annotations

import html
import json
import math
import re

import numpy as np
import pytest

from common.io import write_csv
from results_grid import aggregate as A
from results_grid import config as CF
from results_grid import page as P
from results_grid import readback as R
from results_grid import tables as T
from slr import metrics as M
from slr.bootstrap import bootstrap_samples, consistency_ci, consistency_samples, pool_metrics
from slr.consistency import devpav, llr_overestimation


def _set(seed: int, n: int = 400, persons: int = 9):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    llr = np.round(rng.normal(0, 1, n) + (1 - 2 * labels) * 0.8, 2)      # ties on purpose
    return llr, labels, rng.integers(0, persons, n)


def _hand_loop(llr, labels, clusters, n, seed):
    """One resample at a time: draw the persons with replacement, repeat their items, call the point
    functions (slr.consistency) and slr.metrics.cllr; NaN where a class is missing or a metric undefined."""
    names, c = np.unique(np.asarray(clusters).astype(str), return_inverse=True)
    members = [np.flatnonzero(c == i) for i in range(len(names))]
    rng = np.random.default_rng(seed)
    out = {m: np.full(n, np.nan) for m in ("devpav", "llr_overestimation", "cllr")}
    for b in range(n):
        idx = np.concatenate([members[d] for d in rng.integers(0, len(names), size=len(names))])
        hp, hd = M.split_hypotheses(llr[idx], labels[idx])
        if hp.size and hd.size:
            out["devpav"][b], out["llr_overestimation"][b] = devpav(hp, hd), llr_overestimation(hp, hd)
            out["cllr"][b] = M.cllr(hp, hd)
    return out


def _order_stats(v):
    v = v[~np.isnan(v)]
    return [float(np.quantile(v, 0.025, method="lower")), float(np.quantile(v, 0.975, method="higher"))]


def test_intervals_equal_a_hand_made_person_bootstrap_loop():
    llr, labels, clusters = _set(3)
    n, seed = 300, 7                     # 300 > one chunk of 250 resamples
    fast = consistency_samples(llr, labels, clusters, n=n, seed=seed)
    slow = _hand_loop(llr, labels, clusters, n, seed)
    for m in ("devpav", "llr_overestimation"):
        assert not np.isnan(slow[m]).all()
        np.testing.assert_allclose(fast[m], slow[m], rtol=0, atol=1e-12, err_msg=m)
    # the same persons as every other interval: the vectorised Cllr resamples are the loop's
    np.testing.assert_allclose(bootstrap_samples(llr, labels, clusters, ("cllr",), n=n, seed=seed)["cllr"],
                               slow["cllr"], rtol=0, atol=1e-12)
    d = pool_metrics(llr, labels, clusters, None, bootstrap_n=n, seed=seed)
    for m in ("devpav", "llr_overestimation"):
        assert d["ci95"][m] == _order_stats(slow[m])
        assert d["ci95_usable"][m] == int(np.sum(~np.isnan(slow[m])))
        assert d["ci95"][m][0] <= d[m] <= d["ci95"][m][1]
    assert d["ci95_resamples"] == n and "ci95_usable" in d["ci95_method"]
    again = pool_metrics(llr, labels, clusters, None, bootstrap_n=n, seed=seed)
    assert again["ci95"] == d["ci95"]
    other = pool_metrics(llr, labels, clusters, None, bootstrap_n=n, seed=seed + 1)
    assert other["ci95"]["devpav"] != d["ci95"]["devpav"]


def test_large_resamples_use_the_kde_grid_within_1e_5():
    """Beyond BOOTSTRAP_KDE_EXACT_TERMS kernel terms the resamples' KDEs run on slr.kde's FFT grid: the
    overestimation then agrees with the exact hand loop to 1e-5 (log10), devPAV stays exact."""
    from slr.consistency import BOOTSTRAP_KDE_EXACT_TERMS
    llr, labels, clusters = _set(5, n=6000, persons=30)
    assert 100 * np.sum(labels == 0) > BOOTSTRAP_KDE_EXACT_TERMS
    fast = consistency_samples(llr, labels, clusters, n=4, seed=2)
    slow = _hand_loop(llr, labels, clusters, 4, 2)
    np.testing.assert_allclose(fast["devpav"], slow["devpav"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast["llr_overestimation"], slow["llr_overestimation"], rtol=0, atol=1e-5)
    assert not np.array_equal(fast["llr_overestimation"], slow["llr_overestimation"])   # the grid path ran


def test_undefined_resamples_are_counted_not_hidden():
    rng = np.random.default_rng(0)
    # four persons, each of one class only: about 2 (1/2)^4 of the resamples lack a class
    clusters = np.repeat(np.arange(4), 30)
    labels = np.repeat([0, 0, 1, 1], 30)
    llr = rng.normal(0, 1, 120) + (1 - 2 * labels) * 0.5
    n = 400
    slow = _hand_loop(llr, labels, clusters, n, 5)
    ci, usable = consistency_ci(llr, labels, clusters, n=n, seed=5)
    missing = int(np.isnan(slow["cllr"]).sum())
    assert 0 < missing < n and usable["devpav"] == n - missing == int(np.sum(~np.isnan(slow["devpav"])))
    assert ci["devpav"] == _order_stats(slow["devpav"])
    # perfectly separated persons: every PAV value infinite (devPAV undefined), no overlap
    sep = np.where(labels == 0, 5.0, -5.0) + rng.normal(0, 0.1, 120)
    d = pool_metrics(sep, labels, clusters, None, bootstrap_n=50, seed=1)
    assert math.isnan(d["devpav"]) and math.isnan(d["llr_overestimation"])
    assert d["ci95_usable"] == {"devpav": 0, "llr_overestimation": 0}
    assert d["ci95"]["devpav"] == [None, None] and d["ci95"]["cllr"][0] is not None
    assert pool_metrics(sep, labels, clusters, None, bootstrap_n=0)["ci95"]["devpav"] == [None, None]


# ------------------------------------------------------------------------------------------ real data
def _paper_score_dirs(paper_features, uadfv_root, out):
    """calib.csv / test.csv of the paper's fake_probability, persons from identities.json, alternate
    persons in calib and test."""
    z = np.load(paper_features)
    ident = json.loads((uadfv_root / "identities.json").read_text())
    videos = np.array([p.split("/")[2] for p in z["image_paths"]])
    persons = np.array([ident[v] for v in videos])
    uniq = sorted(set(persons.tolist()))
    pool_of = {p: ("calib", "test")[i % 2] for i, p in enumerate(uniq)}
    for pool in ("calib", "test"):
        sel = np.array([pool_of[p] == pool for p in persons])
        write_csv(out / f"{pool}.csv", {"person_id": persons[sel].tolist(), "video_id": videos[sel].tolist(),
                                        "label": z["labels"][sel].tolist(),
                                        "score": z["fake_probability"][sel].astype(float).tolist()})


def _matrix_rows(report: str) -> dict:
    """{(metric, level, pool): (analytical result, interval, judged on)} of the validation matrix's HTML."""
    table = report.split('<div id="validation-matrix">', 1)[1].split("</table>", 1)[0]
    out = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]:
        cells = [html.unescape(re.sub(r"<[^>]+>", "", td)).strip()
                 for td in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        out[(cells[1], cells[2], cells[3])] = (cells[4], cells[5], cells[7])
    return out


def test_real_run_interval_contains_point_and_report_shows_it(paper_features, uadfv_root, tmp_path):
    """The paper's scores nearly separate the classes (frame AUC 0.998-0.999, measured): many frame-level
    resamples, and the whole video level, are perfectly separated, where devPAV is undefined."""
    from evaluation.report_html import fmt
    from slr import run_scores
    _paper_score_dirs(paper_features, uadfv_root, tmp_path / "in")
    assert run_scores.main(["--scores-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"),
                            "--model", "logistic", "--bootstrap", "200", "--seed", "3"]) == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    rows = _matrix_rows((tmp_path / "out" / "report.html").read_text())
    for pool in ("calib", "test"):
        for m in ("devpav", "llr_overestimation"):
            blk = s["levels"]["frame"][pool]
            lo, hi = blk["ci95"][m]
            k = blk["ci95_usable"][m]
            assert blk["ci95_resamples"] == 200 and 100 <= k < 200, (pool, m, k)   # measured: 112-173
            assert lo <= blk[m] <= hi, (pool, m, lo, blk[m], hi)
            assert rows[(m, "frame", pool)] == (fmt(float(blk[m])), f"[{fmt(float(lo))}, {fmt(float(hi))}]",
                                                f"reported (interval over the {k} of 200 resamples where {m} "
                                                f"is defined)")
            vid = s["levels"]["video"][pool]          # every video separated: undefined, none usable
            assert vid["auc"] == 1.0 and vid[m] is None and vid["ci95"][m] == [None, None]
            assert vid["ci95_usable"][m] == 0 and rows[(m, "video", pool)][:2] == ("n/a", "n/a")
    keys = list(rows)
    assert keys.index(("devpav", "frame", "test")) == max(i for i, k in enumerate(keys) if k[0] == "cllr_cal") + 1
    # a criterion on devPAV is judged like every other: on the pessimistic (upper) end of its interval
    from evaluation import report as REP
    judged = [r for r in REP.judge_matrix([{"metric": "devpav", "max": 1.3}], REP.load_run(tmp_path / "out"))
              if r["decision"] != "reported"]
    for r in judged:
        blk = s["levels"][r["level"]][r["pool"]]
        hi = blk["ci95"]["devpav"][1]
        assert r["judged_value"] == hi and r["decision"] == ("not available" if hi is None else
                                                             "pass" if hi <= 1.3 else "fail")
    assert {(r["level"], r["pool"]) for r in judged} == {(lv, p) for lv in ("frame", "video") for p in ("test", "calib")}


# ------------------------------------------------------------------------------------------ results grid
def _cell(name, test):
    base = {"cllr": 0.4, "cllr_min": 0.2, "cllr_cal": 0.2, "eer": 0.1, "auc": 0.9, "misleading_hp": 0.1,
            "misleading_hd": 0.05, "n_hp": 10, "n_hd": 10, "n_persons": 6, "bounds_log10": [-1.0, 1.0],
            "monotonicity": {"direction_changes": 0, "largest_drop_log10": 0.0}}
    return {"cell": name, "detector": name, "seed": 0, "score": "logit", "model": "kde", "level": "frame",
            "protocol": "sound", "lr_csv": f"results/x/cells/{name}/test_lr.csv", "run_dir": "outputs/x",
            "test": {**base, **test}, "other_pools": {}}


def _write_run(run_dir, block):
    d = R.stage_folder(run_dir, "10")
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"levels": {"frame": {"test": block}}}))


def test_grid_reads_devpav_back_and_the_page_shows_it(tmp_path):
    llr, labels, clusters = _set(4)
    new = pool_metrics(llr, labels, clusters, None, bootstrap_n=100, seed=2)
    old = {k: v for k, v in new.items() if k not in ("ci95_usable", "ci95_resamples")}
    old["ci95"] = {k: v for k, v in new["ci95"].items() if k not in ("devpav", "llr_overestimation")}
    _write_run(tmp_path / "new", new)
    _write_run(tmp_path / "old", old)
    got_new, got_old = R.read_cell(tmp_path / "new", "frame")["test"], R.read_cell(tmp_path / "old", "frame")["test"]
    assert got_new["devpav"] == new["devpav"] and got_new["ci95"]["devpav"] == new["ci95"]["devpav"]
    assert got_old["devpav"] == new["devpav"] and "devpav" not in got_old["ci95"]
    part = dict(got_new, ci95_usable={"devpav": 97}, ci95_resamples=100)
    cells = [_cell("a", got_new), _cell("b", got_old), _cell("c", part), _cell("d", {})]
    res = {"name": "uadfv", "grid": {"name": "cpu", "config": "c.yaml", "detectors": list("abcd"), "seeds": [0],
                                     "scores": ["logit"], "models": ["kde"]},
           "cells": cells, "groups": A.summarise_groups(cells), "pools": {}, "seconds": 1.0, "device": "cpu",
           "paper": {"published": None, "paper_protocol": [], "sound_on_paper_features": [],
                     "sound_on_paper_features_groups": [], "contaminated": CF.CONTAMINATED},
           "docs": "docs/results.md", "results_json": "results/x/results.json"}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(res))
    page = P.render(json.loads(path.read_text()))
    table = page.split("### Every cell, frame level", 1)[1].split("\n\n")[1].splitlines()
    rows = [[c.strip() for c in ln.strip("|").replace("\\|", "/").split("|")] for ln in table]
    col = rows[0].index("devPAV (log10)")
    shown = {r[0]: r[col] for r in rows[2:]}
    assert sorted(shown) == list("abcd")
    lo, hi = new["ci95"]["devpav"]
    assert shown["a"] == f"{T.fmt(new['devpav'])} [{T.fmt(lo)}, {T.fmt(hi)}]"
    assert shown["b"] == f"{T.fmt(new['devpav'])} [n/a]"
    assert shown["c"] == f"{T.fmt(new['devpav'])} [{T.fmt(lo)}, {T.fmt(hi)}] (97/100)"
    assert shown["d"] == "n/a"
    assert float(shown["a"].split()[0]) == pytest.approx(new["devpav"], rel=5e-3)
