"""SLR stages 08-14 on generated data: streaming centroid and cosine scores against numpy/sklearn,
bounded memory for 131,072-d features, the protocols on Gaussian scores against the theoretical
Cllr and EER, and the bring-your-own-scores command with its output contract."""
from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score
from sklearn.metrics.pairwise import cosine_similarity

from common.config import REPO_ROOT
from common.features import FeatureDumpWriter, read_feature_dump
from common.io import InputError, read_csv, write_csv
from slr import run_scores
from slr.io import ScoreSet, read_score_dir, video_level
from slr.scores import compute_scores, divide_feature_file

from slr_helpers import lir_cllr, person_split_json  # tests/ is on sys.path under pytest


def _dump(path, feats, labels, vids=None, batch=50):
    n = len(feats)
    vids = vids if vids is not None else [f"v{i // 10}" for i in range(n)]
    with FeatureDumpWriter(path, n) as w:
        for s in range(0, n, batch):
            sl = slice(s, s + batch)
            w.write(feats[sl], [f"x/{i}.png" for i in range(s, min(n, s + batch))], vids[sl], labels[sl],
                    np.zeros(len(labels[sl])))
    return read_feature_dump(path)


def test_centroid_and_cosine_scores_match_numpy_and_sklearn(tmp_path):
    rng = np.random.default_rng(0)
    dumps, raw = {}, {}
    for k, split in enumerate(("train", "val", "test")):
        labels = rng.integers(0, 2, 230)
        x = (rng.normal(size=(230, 3, 7, 5)) + labels[:, None, None, None] * 0.3).astype(np.float32)
        raw[split] = (x.reshape(230, -1).astype(np.float64), labels)
        dumps[split] = _dump(tmp_path / split, x, labels)
    centroid, sets = compute_scores(dumps, batch_size=7)   # batches that do not divide N
    xt, lt = raw["train"]
    np.testing.assert_allclose(centroid, xt[lt == 0].mean(axis=0), rtol=0, atol=1e-12)
    for split, (x, labels) in raw.items():
        ref = cosine_similarity(x, centroid[None, :])[:, 0]
        np.testing.assert_allclose(sets[split].scores, ref, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(sets[split].labels, labels)


def test_scores_of_131072_d_features_stay_within_a_batch_of_memory(tmp_path):
    """64 rows of 2048x8x8 float32 (32 MiB on disk, 64 MiB as float64): peak Python-side memory
    with batches of 4 rows must stay far below one full copy."""
    rng = np.random.default_rng(1)
    n, d = 64, 2048 * 8 * 8
    labels = np.tile([0, 1], n // 2)
    with FeatureDumpWriter(tmp_path / "train", n) as w:
        for s in range(0, n, 8):
            w.write(rng.normal(size=(8, d)).astype(np.float32) + 0.1, [f"p{i}" for i in range(s, s + 8)],
                    [f"v{i}" for i in range(s, s + 8)], labels[s:s + 8], np.zeros(8))
    dump = read_feature_dump(tmp_path / "train")
    tracemalloc.start()
    centroid, sets = compute_scores({"train": dump}, batch_size=4)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    full64 = n * d * 8
    assert peak < full64 / 4, f"peak {peak / 2**20:.1f} MiB for a {full64 / 2**20:.0f} MiB feature matrix"
    x = np.load(tmp_path / "train" / "features.npy").astype(np.float64)
    ref = cosine_similarity(x, x[labels == 0].mean(0)[None])[:, 0]
    np.testing.assert_allclose(sets["train"].scores, ref, atol=1e-10)


def test_divide_feature_file_by_split_and_label_disagreement(tmp_path, paper_features):
    groups = person_split_json(paper_features, tmp_path / "split.json", seed=3)
    dumps = divide_feature_file(paper_features, tmp_path / "split.json", ("train", "val", "test"))
    assert sum(len(d) for d in dumps.values()) == 2438
    for split, d in dumps.items():
        persons = {v.replace("_fake", "") for v in d.video_ids}
        assert persons == {str(p) for p in groups[split]}
    # a split file that calls a real frame fake is an error naming both files
    data = json.loads((tmp_path / "split.json").read_text())
    real = data["UADFV"]["UADFV_Real"]["train"]
    vid = next(iter(real))
    data["UADFV"]["UADFV_Fake"]["train"][vid] = {"label": "UADFV_Fake", "frames": real.pop(vid)["frames"]}
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"bad\.json.*disagree|disagree"):
        divide_feature_file(paper_features, tmp_path / "bad.json", ("train", "val", "test"))


def test_video_level_is_mean_frame_score_and_rejects_mixed_labels():
    s = ScoreSet(np.array([1.0, 3.0, 5.0, 2.0, 4.0]), np.array([0, 0, 1, 0, 1]),
                 np.array(["a", "a", "b", "c", "b"]), None, "mem.csv")
    v = video_level(s)
    assert list(v.video_ids) == ["a", "b", "c"]
    np.testing.assert_allclose(v.scores, [2.0, 4.5, 2.0])
    assert list(v.labels) == [0, 1, 0] and list(v.n_frames) == [2, 2, 1]
    s.labels[1] = 1
    with pytest.raises(InputError, match="video 'a'.*both real and fake"):
        video_level(s)


# ------------------------------------------------------------------------------- protocols, Gaussian case
def _gaussian_csvs(directory, n_train, n_eval, seed=0, shift=1.0, with_video=False, calib=False):
    """Hp scores N(+1, 1), Hd N(-1, 1): the exact LLR is 2 x / ln 10 (lr_reference.md).
    ``calib``: also a calib pool (written last, so the other pools keep their numbers)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("val", n_eval), ("test", n_eval)) + ((("calib", n_train),) if calib else ()):
        labels = np.repeat([0, 1], n)
        scores = np.where(labels == 0, shift, -shift) + rng.normal(size=2 * n)
        cols = {"score": scores.tolist(), "label": labels.tolist()}
        if with_video:
            cols["video_id"] = [f"{split}{lab}_{i // 8}" for i, lab in enumerate(labels)]
        write_csv(directory / f"{split}.csv", cols)


def test_sound_protocol_gaussian_case_near_theory(tmp_path):
    """Large Gaussian samples: the KDE LLRs of the sound protocol (fitted on calib) give Cllr near
    0.514 bits (the value of the exact LLRs) and EER near Phi(-1) = 0.1587 on test."""
    from slr.metrics import cllr
    from slr.pipeline import Settings, evaluate, fit_level

    _gaussian_csvs(tmp_path / "s", n_train=3000, n_eval=4000, seed=7)
    (tmp_path / "s" / "train.csv").rename(tmp_path / "s" / "calib.csv")   # the same 6000 draws, now calib
    sets = read_score_dir(tmp_path / "s", ("calib", "test"))
    settings = Settings(protocol="sound", grid=np.geomspace(0.05, 0.8, 7), grid_scale="absolute", n_folds=5, seed=3,
                        video_level=False)
    r = fit_level(sets, settings)
    test = r.splits["test"]
    exact = 2 * test.scores / np.log(10)
    exact_cllr = cllr(exact[test.labels == 0], exact[test.labels == 1])
    m = evaluate({"frame": r})["frame"]["test"]
    assert abs(exact_cllr - 0.514) < 0.02
    assert abs(m["cllr"] - exact_cllr) < 0.02
    assert abs(m["eer"] - norm.cdf(-1)) < 0.015
    assert m["cllr_min"] <= m["cllr"] and m["cllr_cal"] >= 0
    # KDE LLRs follow the exact LLR in the bulk of the data
    bulk = np.abs(test.scores) < 2
    assert np.median(np.abs(test.llr_kde[bulk] - exact[bulk])) < 0.05


# ------------------------------------------------------------------------------- bring your own scores
def _run_scores(*args):
    return subprocess.run([sys.executable, "-m", "slr.run_scores", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("protocol", ["sound", "paper"])
def test_run_scores_command_writes_the_contract(tmp_path, protocol):
    _gaussian_csvs(tmp_path / "in", n_train=300, n_eval=150, seed=11, with_video=True, calib=protocol == "sound")
    out = tmp_path / "out"
    argv = ["--scores-dir", tmp_path / "in", "--output-dir", out, "--protocol", protocol, "--bootstrap", "50"]
    if protocol == "sound":    # exactly the documented command, as a process
        p = _run_scores(*argv)
        assert p.returncode == 0, p.stderr
        assert "outputs written to" in p.stdout
    else:
        assert run_scores.main([str(a) for a in argv]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == protocol
    bw = summary["system"]["bandwidth"]["frame"]
    assert set(bw) == {"hp", "hd"} and all(v > 0 for v in bw.values())
    pools = ("train", "val", "calib", "test") if protocol == "sound" else ("train", "val", "test")
    assert tuple(summary["levels"]["frame"]) == pools
    for name in ("09_score_distributions/violin_frame.png", "10_kde_lr/bandwidth_frame.png",
                 "11_tippett/tippett_frame.png", "12_det_eer/det_frame.png", "13_ece_cllr/ece_frame.png",
                 "14_elub/elub_frame.png", "13_ece_cllr/ece_video.png"):
        assert (out / name).stat().st_size > 1000, name
    for split in pools:
        m = summary["levels"]["frame"][split]
        cols = read_csv(out / f"{split}_lr.csv", required=("person_id", "video_id", "score", "label", "llr"))
        llr = np.array(cols["llr"], float)
        y = np.array(cols["label"], int)
        assert m["n_hp"] == int((y == 0).sum()) and m["n_hd"] == int((y == 1).sum())
        # the summary is computed on the llr column: cross-check with lir and sklearn
        ref = lir_cllr(llr, y)
        assert m["cllr"] == pytest.approx(ref, abs=1e-6)
        assert m["auc"] == pytest.approx(roc_auc_score(1 - y, llr), abs=1e-9)
        assert m["ece_prior_0.5"] == pytest.approx(m["cllr"], abs=1e-9)
        assert 0 <= m["cllr_min"] <= m["cllr"] + 1e-12 and m["cllr_cal"] >= -1e-12
        assert 0 <= m["eer"] <= 0.5
        e = m["elub"]
        assert e is not None and e["lower_log10"] <= 0 <= e["upper_log10"]
        lo, hi = m["ci95"]["cllr"]
        assert lo <= m["cllr"] <= hi and m["n_persons"] == len(set(cols["person_id"]))
        if protocol == "sound":   # bounds fitted on calib are applied: the final LLRs lie inside them
            assert llr.min() >= e["lower_log10"] - 1e-12 and llr.max() <= e["upper_log10"] + 1e-12
            assert [e["lower_log10"], e["upper_log10"]] == summary["system"]["bounds_log10"]["frame"]
        else:
            assert "paper_eer" in m and m["paper_elub"] == {"lower_log10": -12.0, "upper_log10": 6.5}
    assert summary["levels"]["video"]["test"]["n_hp"] == 150 // 8 + 1
    if protocol == "sound":
        from slr.system import LRSystem

        system = LRSystem.load(out / "system")
        assert system.sha256 == summary["system"]["sha256"]
        test = read_csv(out / "test_lr.csv")
        np.testing.assert_array_equal(system.llr(np.array(test["score"], float)), np.array(test["llr"], float))
