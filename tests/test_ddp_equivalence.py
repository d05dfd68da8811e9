"""Distributed training proven without a GPU (issue 18 item 9): ``torchrun --nproc_per_node 2`` with
the gloo backend on CPU trains a small detector for a few steps and ends with the weights one process
reaches with the same global batch. Each step's global batch is sharded by EpochSampler (rank r takes
every 2nd index of the epoch's order, so the two half-batches are the single process's batch), DDP
averages the two half-batch mean gradients (= the global mean), and only rank 0 writes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from common.config import REPO_ROOT

from test_training_trainer import make_cfg, small_split

SCRIPT = Path(__file__).with_name("_ddp_tiny_train.py")


def _run(cmd: list, cfg_data: dict, out: Path) -> list[dict]:
    out.mkdir(parents=True)
    cfg_path = out / "config.json"
    cfg_path.write_text(json.dumps({**cfg_data, "output_dir": str(out)}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "tests"),
                                                         os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd + [str(SCRIPT), str(cfg_path)], cwd=REPO_ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]


def test_torchrun_two_gloo_processes_match_one_process(uadfv_root, tmp_path):
    split = small_split(uadfv_root, tmp_path)                       # 24 train frames, 16 val frames
    cfg = make_cfg(uadfv_root, split, tmp_path, epochs=2, batch_size=8).data   # 3 steps an epoch, 6 in all
    single = _run([sys.executable], cfg, tmp_path / "one")
    ddp = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"], cfg,
               tmp_path / "two")
    assert single == [{"rank": 0, "world_size": 1, "steps": 6}]
    assert sorted(r["rank"] for r in ddp) == [0, 1] and all(r["world_size"] == 2 and r["steps"] == 6 for r in ddp)
    one = torch.load(tmp_path / "one" / "03_train" / "last.pt", weights_only=False)
    two = torch.load(tmp_path / "two" / "03_train" / "last.pt", weights_only=False)
    init = torch.load(tmp_path / "one" / "init.pt", weights_only=True)
    assert one["model"].keys() == two["model"].keys()
    for k in one["model"]:
        assert torch.allclose(one["model"][k], two["model"][k], rtol=1e-5, atol=1e-6), k
    # the weights moved: six Adam steps of lr 1e-3 change them by far more than the two runs differ
    moved = max(float((one["model"][k] - init[k]).abs().max()) for k in init)
    apart = max(float((one["model"][k] - two["model"][k]).abs().max()) for k in init)
    assert moved > 4e-3 and apart < moved / 1000, (moved, apart)
    # the same training losses per epoch (averaged over both processes under DDP)
    for a, b in zip(one["history"], two["history"]):
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-5 and abs(a["val_auc"] - b["val_auc"]) < 1e-9
    # only rank 0 wrote: the same files as the single process, one summary saying world_size 2
    files = sorted(p.name for p in (tmp_path / "two" / "03_train").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "one" / "03_train").iterdir())
    assert json.loads((tmp_path / "two" / "03_train" / "summary.json").read_text())["world_size"] == 2
