"""Run by tests/test_ddp_equivalence.py, alone or under ``torchrun --nproc_per_node 2``: stage 03's
trainer on a tiny detector without BatchNorm or dropout (per-process batch statistics and dropout
masks would differ from one process's by design), from one fixed initialisation.
Usage: python tests/_ddp_tiny_train.py CONFIG_JSON"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.nn as nn

from common.config import config_from_dict
from training import trainer as T
from training.detectors.base import Detector


class TinyDetector(Detector):
    name = "tiny"
    input_size = 32
    feature_dim = 8
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                  nn.Linear(16, 8), nn.ReLU())
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> dict:
        feature = self.body(x)
        return self.outputs(self.head(feature), feature)


if __name__ == "__main__":
    torch.set_num_threads(1)
    cfg = config_from_dict(json.loads(Path(sys.argv[1]).read_text()), "ddp-test")
    torch.manual_seed(0)
    det = TinyDetector()
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save(det.state_dict(), Path(cfg.get("output_dir")) / "init.pt")
    summary = T.train(cfg, detector=det, progress=False)
    print(json.dumps({"rank": int(os.environ.get("RANK", "0")), "world_size": summary["world_size"],
                      "steps": summary["steps"]}))
