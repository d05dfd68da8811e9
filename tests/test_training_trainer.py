"""Stage 03 trainer and stage 04 dumps on a small person-disjoint UADFV subset (MesoNet4 at 64 px, CPU)."""
from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from common.config import Config, ConfigError, REPO_ROOT, config_from_dict
from common.features import read_feature_dump
from common.io import InputError
from common.splits import read_split
from preprocessing.splits import make_split
from training import data as D
from training import dump as DUMP
from training import trainer as T
from training.detectors import build_detector


def small_split(uadfv_root: Path, out: Path, n_train: int = 6, n_val: int = 4, frames: int = 4) -> Path:
    """A person-disjoint split (UADFV persons) cut down to a few persons and frames; the test split
    lists only images that do not exist, so any read of it by the trainer would fail."""
    full = make_split(uadfv_root, unit="person", ratios=(0.7, 0.15, 0.15), seed=1024)
    keep = {"train": n_train, "val": n_val}
    small: dict = {"meta": full["meta"]}
    for ds, by_label in full.items():
        if ds == "meta":
            continue
        small[ds] = {}
        for label, by_split in by_label.items():
            small[ds][label] = {}
            for split, videos in by_split.items():
                persons = sorted({v.split("_")[0] for v in videos})
                chosen = {}
                for vid, entry in videos.items():
                    if split == "test":
                        chosen[vid] = {**entry, "frames": [f.replace(".png", "_missing.png") for f in entry["frames"]]}
                    elif vid.split("_")[0] in persons[:keep[split] // 2]:
                        chosen[vid] = {**entry, "frames": entry["frames"][:: max(1, len(entry["frames"]) // frames)][:frames]}
                small[ds][label][split] = chosen
    path = out / "split.json"
    path.write_text(json.dumps(small))
    return path


def make_cfg(root: Path, split: Path, out: Path, model: dict | None = None, **training) -> Config:
    t = {"epochs": 2, "batch_size": 8, "num_workers": 0, "optimizer": {"name": "adam", "lr": 1e-3},
         "select_metric": "val_auc", "cache_images": True, "tensorboard": False, **training}
    return config_from_dict({"seed": 1024, "output_dir": str(out), "device": "cpu",
                   "dataset": {"name": "UADFV", "root": str(root)}, "split": {"file": str(split)},
                   "model": {"name": "meso4", "pretrained_path": None, "input_size": 64, **(model or {})}, "training": t,
                   "features": {"splits": ["train", "val"], "dtype": "float32", "batch_size": 16, "num_workers": 0}},
                  "test-config")


@pytest.fixture(scope="module")
def split_file(uadfv_root, tmp_path_factory):
    return small_split(uadfv_root, tmp_path_factory.mktemp("split"))


def state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def test_training_lowers_loss_logs_and_never_reads_test(uadfv_root, split_file, tmp_path):
    # dropout off (MesoNet's two 0.5 dropouts make a 3-batch epoch's loss too noisy to compare)
    cfg = make_cfg(uadfv_root, split_file, tmp_path, model={"dropout": 0.0}, epochs=5,
                   scheduler={"name": "step", "step_size": 2, "gamma": 0.5})
    summary = T.train(cfg, progress=False)
    hist = summary["history"]
    # 24 training frames, 3 batches an epoch: the mean training loss falls from the first epoch to the
    # last (measured: 0.81 -> 0.49 with seed 1024, 0.79 -> 0.38 with seed 5)
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] - 0.1, [h["train_loss"] for h in hist]
    # the schedule steps once per epoch: lr 1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4
    np.testing.assert_allclose([h["lr"] for h in hist], [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4])
    out = tmp_path / "03_train"
    for name in ("last.pt", "best.pt", "log.csv", "training_curves.png", "summary.json"):
        assert (out / name).is_file(), name
    rows = T.read_log(out / "log.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    # the test split only lists missing files: training succeeded, so it never looked at it
    assert all("_missing" in s.path for s in read_split(split_file, "test"))


def test_best_checkpoint_is_the_best_val_epoch(uadfv_root, split_file, tmp_path):
    cfg = make_cfg(uadfv_root, split_file, tmp_path, epochs=4, select_metric="val_loss")
    T.train(cfg, progress=False)
    rows = T.read_log(tmp_path / "03_train" / "log.csv")
    losses = [r["val_loss"] for r in rows]
    best_epoch = int(np.argmin(losses)) + 1                 # strict improvement: first minimum wins
    best = torch.load(tmp_path / "03_train" / "best.pt", weights_only=True)
    assert best["epoch"] == best_epoch and best["metric"] == "val_loss"
    # the weights in best.pt reproduce that epoch's logged validation loss
    det = build_detector("meso4", input_size=64)
    det.load_state_dict(best["model"])
    samples, _ = D.split_samples(cfg, "val")
    ds = D.build_eval_dataset(cfg, samples, uadfv_root, D.input_spec(cfg, det))
    pred = T.predict(det, DataLoader(ds, batch_size=16), torch.device("cpu"), progress=False)
    assert abs(float(np.mean(pred["loss"])) - losses[best_epoch - 1]) < 1e-5
    assert abs(best["value"] - losses[best_epoch - 1]) < 1e-9


def test_resume_after_interrupted_epoch_matches_uninterrupted_run(uadfv_root, split_file, tmp_path):
    ref_dir, cut_dir = tmp_path / "ref", tmp_path / "cut"
    T.train(make_cfg(uadfv_root, split_file, ref_dir, epochs=3), progress=False)

    T.seed_everything(1024)                                 # as train() does before building it
    det = build_detector("meso4", input_size=64)
    calls = {"n": 0}
    original = det.training_step

    def failing_step(batch):   # dies in the middle of epoch 2 (3 batches per epoch)
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated interruption")
        return original(batch)

    det.training_step = failing_step
    cfg = make_cfg(uadfv_root, split_file, cut_dir, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        T.train(cfg, detector=det, progress=False)
    assert state(cut_dir / "03_train" / "last.pt")["epoch"] == 1
    summary = T.train(cfg, progress=False)                  # resumes from last.pt (epoch 1)
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]
    a, b = state(ref_dir / "03_train" / "last.pt"), state(cut_dir / "03_train" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for ha, hb in zip(a["history"], b["history"]):
        assert ha["train_loss"] == hb["train_loss"] and ha["val_auc"] == hb["val_auc"]
    # a changed optimiser is not silently resumed
    with pytest.raises(ConfigError, match="resume=false"):
        T.train(make_cfg(uadfv_root, split_file, cut_dir, epochs=4, optimizer={"name": "sgd", "lr": 0.01}),
                progress=False)


def test_dump_matches_contract_and_feeds_stage_08(uadfv_root, split_file, tmp_path):
    cfg = make_cfg(uadfv_root, split_file, tmp_path, epochs=1)
    T.train(cfg, progress=False)
    summary = DUMP.dump_features(cfg, progress=False)
    det = build_detector("meso4", input_size=64)
    det.load_state_dict(torch.load(tmp_path / "03_train" / "best.pt", weights_only=True)["model"])
    det.eval()
    for split in ("train", "val"):
        dump = read_feature_dump(tmp_path / "04_features" / split)
        samples, _ = D.split_samples(cfg, split, need_both_classes=False)
        assert len(dump) == len(samples) == summary["splits"][split]["n"]
        assert dump.features.shape == (len(samples), 16 * 2 * 2) and dump.features.dtype == np.float32
        assert list(dump.image_paths) == [s.path for s in samples]
        assert list(dump.labels) == [s.label for s in samples]
        assert list(dump.video_ids) == [s.video_id for s in samples]
        # the dumped rows are the detector's own outputs on those frames
        ds = D.build_eval_dataset(cfg, samples[:3], uadfv_root, D.input_spec(cfg, det))
        with torch.no_grad():
            out = det(torch.stack([ds[i]["image"] for i in range(3)]))
        np.testing.assert_allclose(dump.features[:3], out["feature"].numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dump.fake_probability[:3], out["prob"].numpy(), rtol=1e-4, atol=1e-6)
    # stage 08 reads the dumps unchanged (test dump from the val one: the small split's test is missing)
    from slr.scores import stage08
    from slr.scores import load_split_dumps
    import shutil
    shutil.copytree(tmp_path / "04_features" / "val", tmp_path / "04_features" / "test")
    (tmp_path / "08").mkdir()
    s08 = stage08(load_split_dumps(tmp_path / "04_features", ("train", "val", "test")), tmp_path / "08", batch_size=8)
    assert s08["splits"]["val"]["n_hp"] == int((read_feature_dump(tmp_path / "04_features" / "val").labels == 0).sum())
    # float16 full maps: (16, 2, 2) flattened, the same values as the pooled feature for MesoNet
    cfg16 = make_cfg(uadfv_root, split_file, tmp_path, epochs=1)
    cfg16.data["features"].update({"dtype": "float16", "full_map": True, "splits": ["val"]})
    DUMP.dump_features(cfg16, progress=False)
    d16 = read_feature_dump(tmp_path / "04_features" / "val")
    assert d16.features.dtype == np.float16 and d16.features.shape[1] == 64
    np.testing.assert_allclose(d16.features[:3].astype(np.float32), dump.features[:3], rtol=2e-3, atol=2e-3)


def test_weight_file_for_another_architecture_is_refused(uadfv_root, split_file, tmp_path):
    wrong = tmp_path / "inception.pt"
    torch.save({"model": build_detector("meso_inception4", input_size=64).state_dict()}, wrong)
    cfg = make_cfg(uadfv_root, split_file, tmp_path)
    cfg.data["features"]["checkpoint"] = str(wrong)
    with pytest.raises(InputError, match=r"features.checkpoint: .*inception.pt' does not fit .*another architecture"):
        DUMP.dump_features(cfg, progress=False)
    missing = make_cfg(uadfv_root, split_file, tmp_path / "none")
    with pytest.raises(InputError, match="run stage 03 first"):
        DUMP.dump_features(missing, progress=False)


def test_stage_scripts_run_from_the_command_line(uadfv_root, split_file, tmp_path):
    """03 and 04 through their CLI with --set overrides; errors exit with code 2 and a message."""
    import subprocess
    cfg = tmp_path / "cfg.yaml"
    data = make_cfg(uadfv_root, split_file, tmp_path / "out", epochs=1).data
    import yaml
    cfg.write_text(yaml.safe_dump(data))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    run = lambda script, *a: subprocess.run([sys.executable, str(REPO_ROOT / script), "--config", str(cfg), *a],
                                            capture_output=True, text=True, env=env, timeout=300)
    r = run("training/03_train.py", "--set", "training.max_steps_per_epoch=1")
    assert r.returncode == 0, r.stderr
    assert "03_train: best val_auc" in r.stdout
    r = run("training/04_dump_features.py")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "04_features" / "val" / "features.npy").is_file()
    r = run("training/03_train.py", "--set", "training.select_metric=val_f1")
    assert r.returncode == 2 and "'training.select_metric' must be one of" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, cfg_data: dict, result_dir: str) -> None:
    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    det = build_detector("meso4", input_size=64)
    summary = T.train(config_from_dict(cfg_data, "ddp-test"), detector=det, progress=False)
    torch.save({"model": det.state_dict(), "n_train": summary["n_train"],
                "loss": summary["history"][-1]["train_loss"]}, Path(result_dir) / f"rank{rank}.pt")


def test_ddp_gloo_two_processes_stay_in_sync(uadfv_root, split_file, tmp_path):
    """torchrun's path on CPU: two gloo processes, gradients all-reduced, identical weights after training."""
    import torch.multiprocessing as mp
    cfg = make_cfg(uadfv_root, split_file, tmp_path, epochs=1)
    mp.spawn(_ddp_worker, args=(2, _free_port(), cfg.data, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    # trainable weights are identical (BatchNorm running statistics are per process, as in DDP)
    assert all(torch.equal(r0["model"][k], r1["model"][k]) for k in r0["model"] if "running" not in k
               and "num_batches" not in k)
    assert r0["loss"] == r1["loss"]                          # logged loss averaged over both processes
    assert (tmp_path / "03_train" / "best.pt").is_file()     # written by rank 0
