"""Four person-disjoint pools (issue 10): stage 02 with four ratios on UADFV, the paper protocol's
three-pool split unchanged (golden digests of the code before pools existed), stage 04's logit and
person_id columns against the detector itself, stage 08 on every pool with each score choice, and
the one score function (slr.scores.score_values) bit-identical to stage 08's CSV values."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sklearn.metrics.pairwise import cosine_similarity

from common.config import REPO_ROOT, Config
from common.features import read_feature_dump
from common.io import InputError, read_csv, read_json
from common.splits import POOLS, SPLITS, person_of_video, pools_in, read_split
from preprocessing.splits import leakage_path, leakage_report, make_split, person_of, write_split
from slr.scores import SCORE_NAMES, BadScoreRow, load_split_dumps, score_values, stage08

RATIOS4 = (0.45, 0.15, 0.25, 0.15)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


# ------------------------------------------------------------------------------------------ stage 02
def test_four_pool_person_split_on_uadfv(uadfv_root, tmp_path):
    split = make_split(uadfv_root, unit="person", ratios=RATIOS4, seed=1024, dataset_name="UADFV")
    meta = split["meta"]
    assert meta["pools"] == list(POOLS) and meta["leaky"] is False
    assert meta["ratios"] == pytest.approx(list(RATIOS4))
    # 49 persons by largest remainder: 22.05, 7.35, 12.25, 7.35 -> 22, 8, 12, 7
    counts = [meta["counts"][p]["persons"] for p in POOLS]
    assert counts == [22, 8, 12, 7] and sum(counts) == 49
    assert np.all(np.abs(np.array(counts) / 49 - RATIOS4) < 1 / 49)          # within one person of each ratio
    # every video of a person, real and fake, in one pool; every video somewhere
    where: dict[str, set] = {}
    n_videos = 0
    for ln, by_pool in split["UADFV"].items():
        assert set(by_pool) == set(POOLS)
        for pool, videos in by_pool.items():
            for vid in videos:
                where.setdefault(person_of(vid), set()).add(pool)
                n_videos += 1
    assert n_videos == 98 and len(where) == 49 and all(len(p) == 1 for p in where.values())
    for pool in POOLS:
        c = meta["counts"][pool]
        assert c["videos_real"] == c["videos_fake"] == c["persons"]
    # meta.persons: every video -> its person (UADFV rule)
    assert len(meta["persons"]) == 98
    assert meta["persons"]["0007_fake"] == "0007" and meta["persons"]["0007"] == "0007"
    # the leakage report covers all six pairs of the four pools, all empty
    report = leakage_report(split)
    assert sorted(report["pairs"]) == sorted(f"{a}/{b}" for i, a in enumerate(POOLS) for b in POOLS[i + 1:])
    assert len(report["pairs"]) == 6
    assert all(not v for pair in report["pairs"].values() for v in pair.values())
    assert meta["leakage"] == {"n_persons_shared": 0, "n_videos_shared": 0, "n_frames_shared": 0}
    path = write_split(tmp_path / "split.json", split)
    assert len(read_json(leakage_path(path))["pairs"]) == 6
    # reading it back: the four pools, all frames once
    assert pools_in(path) == POOLS
    frames = [s.path for p in POOLS for s in read_split(path, p)]
    assert len(frames) == len(set(frames)) == 1548 + 1551
    assert person_of_video(path) == meta["persons"]


def test_four_pool_split_is_deterministic_by_seed(uadfv_root, tmp_path):
    a = write_split(tmp_path / "a.json", make_split(uadfv_root, ratios=RATIOS4, seed=5)).read_bytes()
    b = write_split(tmp_path / "b.json", make_split(uadfv_root, ratios=RATIOS4, seed=5)).read_bytes()
    c = write_split(tmp_path / "c.json", make_split(uadfv_root, ratios=RATIOS4, seed=6)).read_bytes()
    assert a == b and a != c


def test_four_pool_video_unit_reports_leakage_over_all_pairs(uadfv_root):
    split = make_split(uadfv_root, unit="video", ratios=RATIOS4, seed=2)
    report = leakage_report(split)
    assert len(report["pairs"]) == 6 and report["n_persons_shared"] > 0 and split["meta"]["leaky"] is True
    # per label, 49 videos -> 22, 8, 12, 7
    assert [split["meta"]["counts"][p]["videos_real"] for p in POOLS] == [22, 8, 12, 7]


# golden digests of (body, meta without dataset_root) written by the code before pools existed
GOLDEN3 = [
    ("person", (0.7, 0.15, 0.15), 1024, "3da92bea661841344e8a2d07c4faddebc9f817df873a1433ec6dae1d2977790b",
     "da04d6bc8fae5a13fa113650c5b4345f58836acc4ce7b91e4342f1c288eedbb3"),
    ("person", (0.6, 0.2, 0.2), 7, "b97be4bc8ea715b6fc3f8a55285f79f390d8b014e2544d56bb0527e03427da80",
     "4f256facaa67f750d7189e08313b1375edb98ec5445caa8d66658fc183ae388a"),
    ("video", (0.7, 0.15, 0.15), 3, "5e85a3262bee53b2d0db36f3acf8dfc84ace9bd663adfcf1b4b303195be570a0",
     "203e2a51e674053320c8da5b49424b8d3caa3284205171322d7ee33742f61a44"),
    ("frame", (0.7, 0.15, 0.15), 1, "08d2aa2a683b615dd75290f11ebbb5497bc9a50b83078a344933e43e6518336a",
     "da167ab4cd78cd7bc9387ad495c9be38adada71c2a172466e1282884115ea2af"),
]


@pytest.mark.parametrize("unit,ratios,seed,body_sha,meta_sha", GOLDEN3)
def test_three_value_split_is_unchanged(uadfv_root, unit, ratios, seed, body_sha, meta_sha):
    split = make_split(uadfv_root, unit=unit, ratios=ratios, seed=seed, dataset_name="UADFV")
    body = {k: v for k, v in split.items() if k != "meta"}
    meta = {k: v for k, v in split["meta"].items() if k not in ("dataset_root", "pools", "persons")}
    assert _digest(body) == body_sha
    assert _digest(meta) == meta_sha
    assert split["meta"]["pools"] == list(SPLITS)


def test_split_file_readers(uadfv_root, tmp_path):
    three = write_split(tmp_path / "three.json", make_split(uadfv_root, ratios=(0.7, 0.15, 0.15), seed=1))
    assert pools_in(three) == SPLITS
    with pytest.raises(InputError, match=r"three\.json: the split file has no 'calib' pool.*four values"):
        read_split(three, "calib")
    with pytest.raises(ValueError, match="split must be one of"):
        read_split(three, "holdout")
    # a file from before pools existed (no meta.pools, no meta.persons): train/val/test, UADFV rule
    data = read_json(three)
    data["meta"] = {"unit": "person", "seed": 1}
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    assert pools_in(old) == SPLITS
    persons = person_of_video(old)
    assert len(persons) == 98 and persons["0012_fake"] == "0012" and persons["0012"] == "0012"
    data["meta"]["pools"] = ["train", "holdout"]
    old.write_text(json.dumps(data))
    with pytest.raises(InputError, match="meta.pools"):
        pools_in(old)


def test_stage_02_cli_four_pools_summary(uadfv_root, tmp_path):
    out = tmp_path / "split.json"
    cmd = [sys.executable, str(REPO_ROOT / "preprocessing/02_make_split.py"), "--config", "configs/uadfv.yaml",
           "--dataset-root", str(uadfv_root), "--output", str(out), "--set", f"output_dir={tmp_path / 'o'}"]
    r = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "calib" in r.stdout
    s = read_json(tmp_path / "o/02_split/summary.json")
    assert s["pools"] == list(POOLS)
    per = s["per_pool"]
    # configs/uadfv.yaml splits UADFV's 31 identities (split.person_map, issue 18), not its 49 source videos
    assert [per[p]["real"]["persons"] for p in POOLS] == [14, 5, 8, 4]
    assert sum(per[p]["all"]["frames"] for p in POOLS) == 3099
    assert sum(per[p]["real"]["frames"] for p in POOLS) == 1548
    assert sum(per[p]["real"]["videos"] for p in POOLS) == 49
    assert all(per[p]["real"]["videos"] == per[p]["fake"]["videos"] >= per[p]["real"]["persons"] for p in POOLS)
    bad = subprocess.run(cmd + ["--set", "split.ratios=[0.5,0.2,0.1,0.1,0.1]"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "split.ratios" in bad.stderr


# ------------------------------------------------------------------------------------------ score_values
def test_score_values_is_batch_independent_and_matches_sklearn():
    rng = np.random.default_rng(0)
    for d in (7, 512, 2048):
        x = rng.normal(size=(53, d)).astype(np.float32)
        c = rng.normal(size=d) + 0.5
        full = score_values("cosine_centroid", features=x, centroid=c)
        assert full.dtype == np.float64 and full.shape == (53,)
        np.testing.assert_allclose(full, cosine_similarity(x.astype(np.float64), c[None])[:, 0], rtol=0, atol=1e-12)
        for b in (1, 4, 7, 53):
            parts = np.concatenate([score_values("cosine_centroid", features=x[i:i + b], centroid=c)
                                    for i in range(0, 53, b)])
            assert np.array_equal(parts, full), (d, b)
        # float16 features: the same as their float64 values
        h = x.astype(np.float16)
        assert np.array_equal(score_values("cosine_centroid", features=h, centroid=c),
                              score_values("cosine_centroid", features=h.astype(np.float64), centroid=c))
    z = np.array([-3.5, 0.0, 2.25], np.float32)
    assert np.array_equal(score_values("logit", logit=z), z.astype(np.float64))
    p = np.array([0.0, 0.25, 1.0], np.float32)
    assert np.array_equal(score_values("fake_probability", fake_probability=p), p.astype(np.float64))


def test_score_values_bad_input():
    with pytest.raises(BadScoreRow, match="feature row 1 is all zero") as e:
        score_values("cosine_centroid", features=np.array([[1.0, 2.0], [0.0, 0.0]]), centroid=np.ones(2))
    assert e.value.row == 1
    with pytest.raises(InputError, match="zero vector"):
        score_values("cosine_centroid", features=np.ones((2, 2)), centroid=np.zeros(2))
    with pytest.raises(InputError, match="3 values per item, the centroid has 2"):
        score_values("cosine_centroid", features=np.ones((2, 3)), centroid=np.ones(2))
    with pytest.raises(BadScoreRow, match="row 2: logit is nan"):
        score_values("logit", logit=[0.1, 0.2, np.nan])
    with pytest.raises(BadScoreRow, match=r"row 0: fake_probability is 1.5.*\[0, 1\]"):
        score_values("fake_probability", fake_probability=[1.5])
    with pytest.raises(InputError, match="needs the detector's logit"):
        score_values("logit", features=np.ones((1, 2)))
    with pytest.raises(InputError, match="slr.score must be one of"):
        score_values("euclid", features=np.ones((1, 2)), centroid=np.ones(2))


# ------------------------------------------------------------------------------------------ stage 04 + 08
def _small_four_pool_split(uadfv_root: Path, path: Path, persons_per_pool: int = 2, frames: int = 3) -> Path:
    """The four-pool UADFV split cut down to a few persons and frames per pool (meta kept)."""
    full = make_split(uadfv_root, unit="person", ratios=RATIOS4, seed=1024, dataset_name="UADFV")
    small = {"meta": full["meta"], "UADFV": {}}
    for ln, by_pool in full["UADFV"].items():
        small["UADFV"][ln] = {}
        for pool, videos in by_pool.items():
            keep = sorted({person_of(v) for v in videos})[:persons_per_pool]
            small["UADFV"][ln][pool] = {v: {**e, "frames": e["frames"][:frames]} for v, e in videos.items()
                                        if person_of(v) in keep}
    path.write_text(json.dumps(small))
    return path


@pytest.fixture(scope="module")
def dumped(uadfv_root, tmp_path_factory):
    """Stage 04 (a seeded, untrained MesoNet4 at 64 px) over the four pools of a small split."""
    from training import dump as DUMP
    from training.detectors import build_detector

    tmp = tmp_path_factory.mktemp("pools04")
    split = _small_four_pool_split(uadfv_root, tmp / "split.json")
    torch.manual_seed(0)
    det = build_detector("meso4", input_size=64)
    torch.save({"model": det.state_dict()}, tmp / "weights.pt")
    cfg = Config({"seed": 1024, "output_dir": str(tmp / "out"), "device": "cpu",
                  "dataset": {"name": "UADFV", "root": str(uadfv_root)}, "split": {"file": str(split)},
                  "model": {"name": "meso4", "pretrained_path": None, "input_size": 64},
                  "training": {"batch_size": 4, "num_workers": 0, "cache_images": False},
                  "features": {"checkpoint": str(tmp / "weights.pt"), "splits": None, "dtype": "float32",
                               "batch_size": 5, "num_workers": 0}}, "test-config")
    summary = DUMP.dump_features(cfg, progress=False)
    return cfg, det, split, summary, tmp


def test_stage_04_dumps_every_pool_with_logit_and_person(dumped, uadfv_root):
    from training import data as D
    from training.dump import fake_logit

    cfg, det, split, summary, tmp = dumped
    assert summary["pools"] == list(POOLS) and set(summary["splits"]) == set(POOLS)
    persons = person_of_video(split)
    det.eval()
    for pool in POOLS:
        dump = read_feature_dump(tmp / "out" / "04_features" / pool)
        cols = read_csv(tmp / "out" / "04_features" / pool / "meta.csv")
        assert {"logit", "person_id"} <= set(cols)
        assert summary["splits"][pool]["n_persons"] == 2 and len(dump) == 2 * 2 * 3
        # person_id = the split meta's person of each row's video
        assert list(dump.person_ids) == [persons[v] for v in dump.video_ids]
        # logit = z_fake - z_real of the detector's own logits on those frames
        samples, _ = D.split_samples(cfg, pool, need_both_classes=False)
        ds = D.build_eval_dataset(cfg, samples, uadfv_root, D.input_spec(cfg, det))
        with torch.no_grad():
            out = det(torch.stack([ds[i]["image"] for i in range(len(ds))]))
        z = out["logits"].double().numpy()
        np.testing.assert_allclose(dump.logit, z[:, 1] - z[:, 0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(dump.logit, fake_logit(out).double().numpy(), rtol=1e-5, atol=1e-5)
        # property of the two-class softmax: sigmoid(logit) == fake probability
        np.testing.assert_allclose(1 / (1 + np.exp(-dump.logit)), dump.fake_probability, rtol=0, atol=1e-5)
    # one-logit heads: the logit itself
    one = {"logits": torch.tensor([[0.5], [-2.0]])}
    assert fake_logit(one).tolist() == [0.5, -2.0]


def test_stage_04_refuses_a_pool_the_split_file_lacks(dumped, uadfv_root, tmp_path):
    from common.config import ConfigError
    from training import dump as DUMP

    cfg, _, split, _, tmp = dumped
    three = write_split(tmp_path / "three.json", make_split(uadfv_root, ratios=(0.7, 0.15, 0.15), seed=1))
    bad = Config({**cfg.data, "split": {"file": str(three)},
                  "features": {**cfg.data["features"], "splits": ["calib"]}}, "test-config")
    with pytest.raises(ConfigError, match=r"features.splits names \['calib'\].*split.ratios"):
        DUMP.dump_features(bad, progress=False)


@pytest.mark.parametrize("score", SCORE_NAMES)
def test_stage_08_scores_every_pool_bit_identical_to_score_values(dumped, score, tmp_path):
    _, _, split, _, tmp = dumped
    dumps = load_split_dumps(tmp / "out" / "04_features", POOLS)
    summary = stage08(dumps, tmp_path, batch_size=3, score=score)
    assert summary["pools"] == list(POOLS) and summary["score_name"] == score
    assert (tmp_path / "centroid.npy").is_file() == (score == "cosine_centroid")
    persons = person_of_video(split)
    for pool in POOLS:
        cols = read_csv(tmp_path / f"{pool}.csv")
        assert list(cols) == ["image_path", "person_id", "video_id", "label", "score"]
        dump = dumps[pool]
        csv_scores = np.array([float(v) for v in cols["score"]])
        if score == "cosine_centroid":
            centroid = np.load(tmp_path / "centroid.npy")
            ref = score_values(score, features=np.asarray(dump.features), centroid=centroid)
            one = np.array([score_values(score, features=np.asarray(dump.features[i:i + 1]), centroid=centroid)[0]
                            for i in range(len(dump))])        # casework scores one face at a time
            assert np.array_equal(one, csv_scores)
        else:
            ref = score_values(score, logit=dump.logit, fake_probability=dump.fake_probability)
        assert np.array_equal(ref, csv_scores)                   # bit-identical through the CSV
        assert cols["person_id"] == [persons[v] for v in cols["video_id"]]
        assert summary["splits"][pool]["n_persons"] == 2
    # the centroid: mean of the real train features (float64)
    if score == "cosine_centroid":
        tr = dumps["train"]
        np.testing.assert_allclose(np.load(tmp_path / "centroid.npy"),
                                   np.asarray(tr.features, np.float64)[tr.labels == 0].mean(0), rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------ real data
def _paper_config(tmp_path, paper_features, split_file, **slr) -> Path:
    cfg = {"seed": 1024, "output_dir": str(tmp_path / "out"),
           "slr": {"features_dir": None, "features_file": str(paper_features), "split_file": str(split_file),
                   "batch_size": 256, "scores_dir": "${output_dir}/08_scores", **slr}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_paper_features_with_a_four_pool_split_give_four_pools(uadfv_root, paper_features, tmp_path):
    split_file = write_split(tmp_path / "split.json", make_split(uadfv_root, ratios=RATIOS4, seed=1024))
    persons = person_of_video(split_file)
    run = lambda cfg: subprocess.run([sys.executable, str(REPO_ROOT / "slr/08_similarity_scores.py"), "--config",
                                      str(cfg)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    r = run(_paper_config(tmp_path, paper_features, split_file))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out" / "08_scores"
    d = np.load(paper_features)
    index = {p: i for i, p in enumerate(d["image_paths"].astype(str))}
    centroid = np.load(out / "centroid.npy")
    train_rows = [index[p] for p in read_csv(out / "train.csv")["image_path"]]
    real_train = [i for i in train_rows if d["labels"][i] == 0]
    np.testing.assert_allclose(centroid, d["features"][real_train].astype(np.float64).mean(0), rtol=0, atol=1e-12)
    owner, n = {}, 0
    for pool in POOLS:
        cols = read_csv(out / f"{pool}.csv")
        rows = np.array([index[p] for p in cols["image_path"]])
        n += len(rows)
        assert cols["person_id"] == [persons[v] for v in cols["video_id"]]
        for p in set(cols["person_id"]):
            assert owner.setdefault(p, pool) == pool                  # persons disjoint across pools
        assert [int(v) for v in cols["label"]] == d["labels"][rows].tolist()
        ref = score_values("cosine_centroid", features=d["features"][rows], centroid=centroid)
        assert np.array_equal(ref, np.array([float(v) for v in cols["score"]]))
    assert n == 2438 and len(owner) == 49
    summary = read_json(out / "summary.json")
    assert [summary["splits"][p]["n_persons"] for p in POOLS] == [22, 8, 12, 7]
    # fake_probability: the file's own values, bit-identical
    r = run(_paper_config(tmp_path, paper_features, split_file, score="fake_probability"))
    assert r.returncode == 0, r.stderr
    cols = read_csv(out / "calib.csv")
    rows = [index[p] for p in cols["image_path"]]
    assert np.array_equal(np.array([float(v) for v in cols["score"]]), d["fake_probability"][rows].astype(np.float64))
    # the paper's file has no logit: exit 2, one line naming the file and the fix
    r = run(_paper_config(tmp_path, paper_features, split_file, score="logit"))
    assert r.returncode == 2 and "paper_srm_features.npz" in r.stderr and "no 'logit' column" in r.stderr
    assert "slr.score" in r.stderr
    r = run(_paper_config(tmp_path, paper_features, split_file, score="euclid"))
    assert r.returncode == 2 and "slr.score" in r.stderr and "euclid" in r.stderr and "logit" in r.stderr
