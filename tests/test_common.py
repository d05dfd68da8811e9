"""The shared plumbing: config overrides and references, atomic writes, feature-dump and split contracts."""
from __future__ import annotations

import json

import numpy as np
import pytest

from common.config import REPO_ROOT, ConfigError, load_config
from common.features import FeatureDumpWriter, read_feature_dump
from common.io import InputError, atomic_path, read_csv, write_csv
from common.splits import read_split
from common.stages import STAGES


def write_yaml(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_overrides_and_references(tmp_path):
    p = write_yaml(tmp_path, "output_dir: out/a\nseed: 1\nslr:\n  scores_dir: ${output_dir}/08\n  paper_seed: ${seed}\n")
    cfg = load_config(p, ["output_dir=/x/y", "slr.protocol=paper", "seed=7"])
    assert cfg.get("slr.scores_dir") == "/x/y/08"          # references resolve after overrides
    assert cfg.get("slr.paper_seed") == 7 and isinstance(cfg.get("slr.paper_seed"), int)  # bare reference keeps its type
    assert cfg.get("slr.protocol") == "paper"
    assert cfg.path("slr.scores_dir").as_posix() == "/x/y/08"
    assert cfg.path("output_dir") == cfg.output_dir
    assert cfg.get("slr.features_dir") == "/x/y/04_features"   # a schema default through ${stage:04}


def test_relative_paths_resolve_against_repo_root(tmp_path):
    cfg = load_config(write_yaml(tmp_path, "output_dir: outputs/t\nseed: 0\n"))
    assert cfg.output_dir == REPO_ROOT / "outputs" / "t"


def test_missing_key_and_bad_type_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"c\.yaml: config key 'seed' must be an integer, got 'abc'"):
        load_config(write_yaml(tmp_path, "seed: abc\n"))
    cfg = load_config(write_yaml(tmp_path, "seed: 3\n"))
    with pytest.raises(ConfigError, match=r"'model\.base' is missing"):   # declared without default, not set
        cfg.get("model.base")
    with pytest.raises(ConfigError, match=r"not declared in common/schema\.py; did you mean 'slr\.protocol'"):
        cfg.get("slr.protocl", "sound")
    with pytest.raises(ConfigError, match="circular"):
        load_config(write_yaml(tmp_path, "experiment: ${dataset.name}\ndataset: {name: '${experiment}'}\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_fingerprint_changes_only_with_its_keys(tmp_path):
    p = write_yaml(tmp_path, "seed: 1\nslr: {protocol: sound}\ntraining: {epochs: 2}\n")
    a = load_config(p).fingerprint(["slr"])
    assert load_config(p, ["training.epochs=3"]).fingerprint(["slr"]) == a
    assert load_config(p, ["slr.protocol=paper"]).fingerprint(["slr"]) != a


def test_shipped_configs_load():
    for name in ("demo", "uadfv", "uadfv_sbi", "uadfv_lib", "uadfv_deepfidelity"):
        cfg = load_config(REPO_ROOT / "configs" / f"{name}.yaml")
        assert cfg.get("slr.protocol") in ("sound", "paper")
        assert "${" not in json.dumps(cfg.data)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_csv_round_trip_and_errors(tmp_path):
    p = write_csv(tmp_path / "s.csv", {"score": [0.1, 1 / 3], "label": [0, 1]})
    cols = read_csv(p, required=["score", "label"])
    assert float(cols["score"][1]) == 1 / 3               # full precision survives the round trip
    with pytest.raises(InputError, match=r"missing column\(s\) \['video_id'\]"):
        read_csv(p, required=["video_id"])


def test_feature_dump_streaming_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(10, 6)).astype(np.float32)
    with FeatureDumpWriter(tmp_path / "train", n_rows=10) as w:
        for i in range(0, 10, 4):
            b = slice(i, i + 4)
            w.write(feats[b], [f"real/frames/v{j}/000.png" for j in range(i, min(i + 4, 10))],
                    [f"v{j}" for j in range(i, min(i + 4, 10))], [j % 2 for j in range(i, min(i + 4, 10))],
                    np.full(len(feats[b]), 0.25))
    dump = read_feature_dump(tmp_path / "train")
    np.testing.assert_array_equal(dump.features, feats)
    assert dump.labels.tolist() == [j % 2 for j in range(10)]
    assert dump.video_ids[3] == "v3" and dump.fake_probability[0] == np.float32(0.25)


def test_feature_dump_failure_leaves_no_dump(tmp_path):
    with pytest.raises(ValueError):
        with FeatureDumpWriter(tmp_path / "val", n_rows=5) as w:
            w.write(np.zeros((2, 3)), ["a/b/0.png"] * 2, ["b"] * 2, [0, 1], [0.1, 0.2])
            w.write(np.zeros((2, 4)), ["a/b/0.png"] * 2, ["b"] * 2, [0, 1], [0.1, 0.2])  # size changes
    assert list(tmp_path.iterdir()) == []


def test_paper_npz_reads_through_the_same_interface(paper_features):
    dump = read_feature_dump(paper_features)
    assert dump.features.shape == (2438, 512) and len(dump) == 2438
    # video id is the frame's folder: fake videos carry the _fake suffix, real ones do not
    fake = dump.labels == 1
    assert all(v.endswith("_fake") for v in dump.video_ids[fake])
    assert not any(v.endswith("_fake") for v in dump.video_ids[~fake])


def test_read_split(tmp_path):
    split = {"UADFV": {"UADFV_Real": {"train": {"0001": {"label": "UADFV_Real", "frames": ["real/frames/0001/000.png"]}}},
                       "UADFV_Fake": {"train": {"0001_fake": {"label": "UADFV_Fake",
                                                              "frames": ["fake/frames/0001_fake/000.png"]}}}},
             "meta": {"unit": "person"}}
    p = tmp_path / "split.json"
    p.write_text(json.dumps(split))
    samples = read_split(p, "train")
    assert [(s.label, s.video_id) for s in samples] == [(0, "0001"), (1, "0001_fake")]
    assert read_split(p, "test") == []


def test_stage_table_is_consistent():
    ids = [s.id for s in STAGES]
    assert len(set(ids)) == len(ids) and all(isinstance(i, str) for i in ids)
    assert {"03a", "04b", "16"} <= set(ids) and STAGES[-1].folder == "16_report"
    seen = set()
    for s in STAGES:
        assert s.folder.startswith(f"{s.id}_")
        assert all(i in seen or i not in ids for i in s.inputs)   # inputs come earlier in the table
        seen.add(s.id)
        assert (REPO_ROOT / s.script).is_file() and s.title
