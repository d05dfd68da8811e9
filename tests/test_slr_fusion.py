"""Issue 21 item 4: logistic-regression fusion of detectors, with penalty and members chosen by
source-grouped cross-validation on calib."""
from __future__ import annotations

import numpy as np

from slr import metrics as M
from slr.fusion import LogisticFusion, choose_fusion


def _cllr(llr, y):
    return M.cllr(*M.split_hypotheses(llr, y))


def _items(rng, n_persons, frames=10):
    y = np.tile(np.repeat([0, 1], frames), n_persons)
    persons = np.repeat([f"p{rng.integers(1 << 30)}_{i}" for i in range(n_persons)], 2 * frames)
    return y, persons, np.where(y == 0, 1.0, -1.0)


def test_fusion_of_two_independent_noisy_scores_beats_each_alone():
    rng = np.random.default_rng(0)
    sets = []
    for n in (60, 60):                               # calib, test
        y, persons, sign = _items(rng, n)
        s = np.column_stack([sign + rng.normal(0, 1.5, y.size), sign + rng.normal(0, 1.5, y.size)])
        sets.append((s, y, persons))
    (sc, yc, pc), (st, yt, _) = sets
    system, choice = choose_fusion(sc, yc, ["a", "b"], pc)
    assert choice["fusion_used"], choice["reason"]
    fused = _cllr(system.llr(st), yt)
    for m in (0, 1):
        alone = _cllr(LogisticFusion((m,)).fit(sc, yc).llr(st), yt)
        assert fused < alone - 0.05
    assert all(v > 0 for v in choice["system"]["weights_log10_per_std"])


def test_fusion_under_source_shift_is_no_worse_than_the_best_member():
    """Detector a is strong on source A, reversed on B and useless on the test source C; b is moderate
    everywhere. Source-grouped CV sees that a's weight does not carry over and keeps b alone."""
    rng = np.random.default_rng(1)

    def source(name, a_gain, n=40):
        y, persons, sign = _items(rng, n)
        s = np.column_stack([a_gain * sign + rng.normal(0, 1, y.size), 0.8 * sign + rng.normal(0, 1, y.size)])
        return s, y, persons, np.full(y.size, name)

    calib = [source("A", 2.0), source("B", -1.0)]
    sc, yc, pc, src = (np.concatenate(z) for z in zip(*calib))
    st, yt, _, _ = source("C", 0.0)
    system, choice = choose_fusion(sc, yc, ["a", "b"], pc, sources=src)
    assert choice["cv"].startswith("leave-one-source-out over 2")
    chosen = _cllr(system.llr(st), yt)
    members = [_cllr(LogisticFusion((m,)).fit(sc, yc).llr(st), yt) for m in (0, 1)]
    assert chosen <= min(members) + 1e-9
    assert not choice["fusion_used"] and choice["best_member"] == "b"
    plain = _cllr(LogisticFusion((0, 1)).fit(sc, yc).llr(st), yt)     # what an unchecked fusion gives
    assert plain > chosen


def test_run_scores_fuses_score_columns(tmp_path):
    import json

    from common.io import write_csv
    from slr.run_scores import main

    rng = np.random.default_rng(2)
    src = tmp_path / "scores"
    for pool, n in (("calib", 40), ("test", 30)):
        y, persons, sign = _items(rng, n)
        write_csv(src / f"{pool}.csv", {"person_id": persons, "video_id": [f"{p}_{v}" for p, v in zip(persons, y)],
                                        "label": y.tolist(),
                                        "score_a": (sign + rng.normal(0, 1.5, y.size)).tolist(),
                                        "score_b": (sign + rng.normal(0, 1.5, y.size)).tolist()})
    out = tmp_path / "out"
    assert main(["--scores-dir", str(src), "--output-dir", str(out), "--fusion", "logistic", "--model", "logistic",
                 "--bootstrap", "0", "--case-interval", "0", "--no-video-level"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fusion"]["fusion_used"] and summary["fusion"]["system"]["members"] == ["a", "b"]
    assert summary["levels"]["frame"]["test"]["cllr"] < 0.75
    assert main(["--scores-dir", str(src), "--output-dir", str(tmp_path / "o2"), "--model", "logistic"]) == 2
