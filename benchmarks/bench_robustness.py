"""Speed of the robustness stage (15) on CPU (not a test): frames per second of each degradation
alone and of degrade + score (stage 04's transforms, the detector's forward pass, the score
function and the LR system's LLR), per family at one strength each.

Inputs are 256x256 crops cut from the public-domain portrait that ships with matplotlib (the demo's
source), the detector is ``--detector`` with random weights saved to a temporary checkpoint (speed
does not depend on the weights), the LR system is fitted on synthetic scores. Downscale is measured
on the crop here; on a run with source videos the stage also decodes the frame and re-crops it
(stage 01's landmark + alignment cost, see bench_preprocessing.py).

    python benchmarks/bench_robustness.py                         # meso4, 96 frames, 1 thread
    python benchmarks/bench_robustness.py --detector resnet34 --frames 64 --threads 2
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common import degrade as DG  # noqa: E402
from common import schema  # noqa: E402
from common.config import load_config  # noqa: E402

SETTINGS = (("clean", None), ("jpeg", 30), ("downscale", 0.5), ("blur", 1.0), ("noise", 5.0))


def portrait_crops(n: int, size: int = 256) -> list[np.ndarray]:
    import cv2
    import matplotlib.cbook
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        img = cv2.cvtColor(cv2.imdecode(np.frombuffer(fh.read(), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    rng = np.random.default_rng(0)
    h, w = img.shape[:2]
    side = min(h, w) * 3 // 4
    out = []
    for _ in range(n):
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        out.append(cv2.resize(img[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA))
    return out


def synthetic_system(dim: int):
    from slr.io import ScoreSet
    from slr.settings import Settings
    from slr.system import LRSystem
    rng = np.random.default_rng(1)
    labels = np.tile([0, 1], 100)
    persons = np.repeat(np.arange(20), 10).astype(str)
    videos = np.array([f"{p}_{lab}" for p, lab in zip(persons, labels)])
    scores = np.clip(rng.normal(0.5, 0.2, 200) + np.where(labels == 0, 0.2, -0.2), -1, 1)
    s = ScoreSet(scores, labels, videos, None, "synthetic", person_ids=persons)
    return LRSystem.fit({"frame": s}, Settings(model="logistic", crossfit_folds=2, bootstrap_n=0),
                        "cosine_centroid", centroid=rng.normal(size=dim))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detector", default="meso4")
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--batch-size", type=int, default=schema.BY_NAME["features.batch_size"].default)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from evaluation.robustness import Scorer
    from training.trainer import build_detector
    crops = portrait_crops(args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        ck = Path(tmp) / "random.pt"
        cfg = load_config("configs/demo.yaml", [f"output_dir={tmp}", f"model.name={args.detector}", "device=cpu",
                                                f"features.checkpoint={ck}", f"features.batch_size={args.batch_size}"])
        det = build_detector(cfg)
        torch.save(det.state_dict(), ck)
        dim = int(det.feature_dim)
        scorer = Scorer(cfg, synthetic_system(dim))
        scorer.score(crops[: min(4, len(crops))])                      # warm-up, not counted
        print(f"robustness stage speed, CPU, {args.threads} torch thread(s), detector {args.detector} "
              f"(input {scorer.frames.spec.size} px), {len(crops)} crops of 256 px, batch {args.batch_size}")
        print(f"{'setting':<16}{'degrade alone':>16}{'degrade + score':>18}   (frames/s)")
        for family, strength in SETTINGS:
            t0 = time.perf_counter()
            deg = [c if family == "clean" else DG.apply(family, c, strength, seed=i) for i, c in enumerate(crops)]
            t_deg = time.perf_counter() - t0
            t0 = time.perf_counter()
            deg = [c if family == "clean" else DG.apply(family, c, strength, seed=i) for i, c in enumerate(crops)]
            scores = scorer.score_all(iter(deg), len(deg), family, progress=False)
            scorer.system.llr(scores)
            t_all = time.perf_counter() - t0
            label = "clean" if family == "clean" else DG.strength_label(family, strength)
            alone = "-" if family == "clean" else f"{len(crops) / t_deg:,.0f}"
            print(f"{label:<16}{alone:>16}{len(crops) / t_all:>18,.1f}")


if __name__ == "__main__":
    main()
