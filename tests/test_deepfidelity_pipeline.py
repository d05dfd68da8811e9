"""DeepFidelity through the numbered scripts on a small real UADFV subset:
02 split -> 03a fidelity targets -> 03 train (ssaaformer, data mode fidelity) -> 04 dumps ->
04b SVR scores -> slr.run_scores judges the fidelity score as evidence."""
from __future__ import annotations

import re

import numpy as np
import pytest

from _lib_df_uadfv import run, small_uadfv
from common.io import read_csv, read_json


def tiny_sets(root, out) -> list[str]:
    """--set overrides of a tiny SSAAFormer run on the small UADFV copy ``root``, outputs in ``out``."""
    return [f"output_dir={out}", f"dataset.root={root}", "model.input_size=32",
            "model.ssaaformer={patch_size: 8, embed_dim: 32, depth: 2, num_heads: 2, symmetric_blocks: 1, local_window: 3}",
            "training.epochs=1", "training.num_workers=0", "training.tensorboard=false", "training.batch_size=16",
            "features.num_workers=0", "fidelity.quality_method=sharpness", "fidelity.svr.folds=3"]


def test_deepfidelity_scripts_end_to_end(tmp_path, uadfv_root):
    root = small_uadfv(uadfv_root, tmp_path / "data")
    out = tmp_path / "out"
    sets = tiny_sets(root, out)
    cfg = "--config configs/uadfv_deepfidelity.yaml"
    run(f"preprocessing/02_make_split.py {cfg}", *sets)
    stdout = run(f"training/03a_fidelity_targets.py {cfg}", *sets)
    assert "fidelity_targets.csv" in stdout
    cache = read_csv(out / "03a_fidelity_targets" / "fidelity_targets.csv")   # fidelity.cache_file
    fid, lab = np.array(cache["fidelity"], float), np.array(cache["label"], int)
    assert set(cache["split"]) == {"train", "val"}
    assert fid[lab == 1].max() <= 0.4 and fid[lab == 0].min() >= 0.6
    assert (out / "03a_fidelity_targets" / "quality.png").is_file()
    assert "(reused)" in run(f"training/03a_fidelity_targets.py {cfg}", *sets)     # cache hit the second time
    run(f"training/03_train.py {cfg}", *sets)
    log = read_csv(out / "03_train" / "log.csv")
    assert len(log[next(iter(log))]) == 1
    run(f"training/04_dump_features.py {cfg}", *sets)
    stdout = run(f"training/04b_fit_fidelity_svr.py {cfg}", *sets)
    summary = read_json(out / "04b_fidelity_svr" / "summary.json")
    assert summary["train_scores"] == "cross_fit" and summary["svr"]["n_train"] > 0
    for split in ("train", "val", "calib", "test"):            # every pool of the four-pool split
        s = read_csv(out / "04b_fidelity_svr" / "scores" / f"{split}.csv", required=("image_path", "video_id", "label", "score"))
        assert len(s["score"]) == summary["splits"][split]["n"] and np.isfinite(np.array(s["score"], float)).all()
        v = read_csv(out / "04b_fidelity_svr" / "scores_video" / f"{split}.csv")
        assert len(v["video_id"]) == len(set(s["video_id"]))
    # the fidelity score judged as evidence by the bring-your-own-scores path
    run(f"-m slr.run_scores --scores-dir {out / '04b_fidelity_svr' / 'scores'} --output-dir {out / 'fidelity_slr'}")
    lr = read_json(out / "fidelity_slr" / "summary.json")
    assert np.isfinite(lr["levels"]["frame"]["test"]["cllr"])


@pytest.mark.slow
def test_deepfidelity_config_runs_from_the_runner(tmp_path, uadfv_root):
    """03a and 04b are stages of the table: run_pipeline.py runs 02 -> 03a -> 03 -> 04 -> 04b in order."""
    root = small_uadfv(uadfv_root, tmp_path / "data")
    out = tmp_path / "out"
    sets = tiny_sets(root, out)
    stdout = run("run_pipeline.py --config configs/uadfv_deepfidelity.yaml --from 02 --to 04b", *sets)
    assert re.findall(r"^== stage (\S+): runs", stdout, flags=re.M) == [
        "02_split", "03a_fidelity_targets", "03_train", "04_features", "04b_fidelity_svr"]
    assert read_json(out / "04b_fidelity_svr" / "summary.json")["svr"]["n_train"] > 0
    assert "skipped, up to date" in run("run_pipeline.py --config configs/uadfv_deepfidelity.yaml --from 02 --to 04b",
                                        *sets)
