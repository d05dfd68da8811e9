"""Classifier metrics (stage 07's math) against scikit-learn on the paper's real predictions."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn import metrics as SK

from common.features import read_feature_dump
from common.io import InputError
from common import metrics as M


@pytest.fixture(scope="module")
def paper(paper_features):
    d = read_feature_dump(paper_features)
    return d.labels, d.fake_probability.astype(np.float64), d.video_ids


def sklearn_eer(y, s) -> float:
    fpr, tpr, _ = SK.roc_curve(y, s)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0, xtol=1e-12)


def test_frame_metrics_match_sklearn_on_paper_predictions(paper):
    y, s, _ = paper
    assert len(y) == 2438
    assert M.roc_auc(y, s) == pytest.approx(SK.roc_auc_score(y, s), abs=1e-12)
    assert M.average_precision(y, s) == pytest.approx(SK.average_precision_score(y, s), abs=1e-12)
    assert M.accuracy(y, s) == pytest.approx(SK.accuracy_score(y, (s >= 0.5).astype(int)), abs=0)
    assert M.eer(y, s)[0] == pytest.approx(sklearn_eer(y, s), abs=1e-9)
    fpr, tpr, thr = M.roc_curve(y, s)
    f2, t2, th2 = SK.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2), np.testing.assert_allclose(tpr, t2)
    np.testing.assert_allclose(thr[1:], th2[1:])
    p, r, _ = M.precision_recall_curve(y, s)
    p2, r2, _ = SK.precision_recall_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(p, p2[:-1][::-1]), np.testing.assert_allclose(r, r2[:-1][::-1])


def test_video_level_is_the_mean_probability_per_video(paper):
    y, s, vids = paper
    uniq, vy, vs, counts = M.video_level(y, s, vids)
    assert counts.sum() == len(y) and len(uniq) == len(set(vids.tolist()))
    k = 5
    rows = vids == uniq[k]
    assert vs[k] == pytest.approx(s[rows].mean()) and vy[k] == y[rows][0] and counts[k] == rows.sum()
    rep = M.frame_and_video_report(y, s, vids)
    assert rep["video"]["auc"] == pytest.approx(SK.roc_auc_score(vy, vs), abs=1e-12)
    assert rep["video"]["eer"] == pytest.approx(sklearn_eer(vy, vs), abs=1e-9)
    assert rep["video"]["n"] == len(uniq)


def test_metrics_on_random_ties_match_sklearn():
    rng = np.random.default_rng(3)
    for _ in range(50):
        y = rng.integers(0, 2, 200)
        s = np.round(rng.random(200) + 0.3 * y, 1)           # many ties
        assert M.roc_auc(y, s) == pytest.approx(SK.roc_auc_score(y, s), abs=1e-12)
        assert M.average_precision(y, s) == pytest.approx(SK.average_precision_score(y, s), abs=1e-12)
        assert M.eer(y, s)[0] == pytest.approx(sklearn_eer(y, s), abs=1e-9)


def test_known_values_and_bad_input():
    y = np.array([0, 0, 1, 1])
    assert M.roc_auc(y, [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert M.eer(y, [0.1, 0.2, 0.8, 0.9]) == (0.0, 0.8)      # perfect separation
    rep = M.binary_report([1, 1], [0.2, 0.9])                # one class: AUC/EER undefined, accuracy defined
    assert np.isnan(rep.auc) and np.isnan(rep.eer) and rep.acc == 0.5
    with pytest.raises(InputError, match="both real"):
        M.roc_auc([1, 1], [0.2, 0.3])
    with pytest.raises(InputError, match="row 1 is nan"):
        M.roc_auc([0, 1], [0.2, np.nan])
    with pytest.raises(InputError, match="video 'v' has frames labelled both"):
        M.video_level([0, 1], [0.1, 0.2], ["v", "v"])
