"""LIB through the numbered scripts on a small real UADFV subset: 02 split -> 03 train (the shared
trainer calls LIBDetector.training_step: CE heads, GIL, LIL, mixup) -> 04 dumps of G -> 08 scores."""
from __future__ import annotations

import numpy as np

from common.features import read_feature_dump
from common.io import read_csv
from _lib_df_uadfv import run, small_uadfv


def test_lib_scripts_end_to_end(tmp_path, uadfv_root):
    root = small_uadfv(uadfv_root, tmp_path / "data")
    out = tmp_path / "out"
    sets = [f"output_dir={out}", f"dataset.root={root}", "model.input_size=32",
            "model.lib.model=small_cnn", "model.lib.bottleneck=[32, 16]", "model.lib.num_LIBs=3",
            "training.epochs=2", "training.num_workers=0", "training.tensorboard=false", "training.batch_size=16",
            "features.num_workers=0"]
    cfg = "--config configs/uadfv_lib.yaml"
    run(f"preprocessing/02_make_split.py {cfg}", *sets)
    run(f"training/03_train.py {cfg}", *sets)
    log = read_csv(out / "03_train" / "log.csv")
    assert len(log[next(iter(log))]) == 2
    run(f"training/04_dump_features.py {cfg}", *sets)
    for split in ("train", "val", "test"):
        dump = read_feature_dump(out / "04_features" / split)
        assert dump.features.shape[1] == 16                       # the feature dumped is G
        assert np.isfinite(np.asarray(dump.features)).all() and ((dump.fake_probability >= 0) & (dump.fake_probability <= 1)).all()
    run(f"slr/08_similarity_scores.py {cfg}", *sets)
    s = read_csv(out / "08_scores" / "test.csv", required=("score", "label"))
    assert len(s["score"]) == len(read_feature_dump(out / "04_features" / "test"))
