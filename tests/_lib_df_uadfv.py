"""Small person-disjoint UADFV arrays for the LIB and DeepFidelity learning checks (CPU-sized).

The split comes from stage 02's own ``make_split`` (unit ``person``: ``NNNN`` and ``NNNN_fake`` are
one person, so no face is seen in training and test). Frames are subsampled evenly per video and
downscaled with area interpolation; images are ImageNet-normalised float32 (N, 3, S, S).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

import torch

from common.splits import SPLITS
from preprocessing.splits import make_split
from training.data import IMAGENET_MEAN, IMAGENET_STD, read_image, subsample_frames, to_tensor


def person_split_samples(root: Path, seed: int = 1024) -> dict:
    """{split: [(path, label, video_id), ...]} of a person-disjoint 70/15/15 split of ``root``."""
    split = make_split(root, unit="person", seed=seed)
    out = {s: [] for s in SPLITS}
    for dataset, by_label in split.items():
        if dataset == "meta":
            continue
        for label_name, by_split in by_label.items():
            for s, videos in by_split.items():
                for vid, entry in videos.items():
                    lab = 0 if entry["label"].lower().endswith("real") else 1
                    out[s].extend((f, lab, vid) for f in entry["frames"])
    return out


@lru_cache(maxsize=4)
def load_arrays(root: str, size: int = 64, per_video: int = 8, seed: int = 1024) -> dict:
    """{split: (images (N,3,S,S) float32 tensor, labels (N,) long, video_ids, paths)}; val+test pooled as 'test'."""
    from common.splits import Sample
    samples = person_split_samples(Path(root), seed)
    out = {}
    for name, parts in (("train", ("train",)), ("test", ("val", "test"))):
        rows = [Sample(p, lab, vid) for part in parts for p, lab, vid in samples[part]]
        rows = subsample_frames(rows, per_video)
        imgs = torch.stack([to_tensor(read_image(Path(root) / s.path, size), IMAGENET_MEAN, IMAGENET_STD) for s in rows])
        out[name] = (imgs, torch.tensor([s.label for s in rows]), [s.video_id for s in rows], [s.path for s in rows])
    return out


def persons(video_ids) -> set:
    return {v[:-5] if v.endswith("_fake") else v for v in video_ids}


REPO = Path(__file__).resolve().parents[1]
PERSONS = [f"{i:04d}" for i in range(12)]


def small_uadfv(src: Path, dst: Path, frames: int = 4) -> Path:
    """Symlinked DeepfakeBench-layout subset (nothing copied): the first ``frames`` frames (+ landmarks) of 12 persons' real and fake videos."""
    for label, suffix in (("real", ""), ("fake", "_fake")):
        for p in PERSONS:
            vid = p + suffix
            for kind in ("frames", "landmarks"):
                (dst / label / kind / vid).mkdir(parents=True, exist_ok=True)
            for f in sorted((src / label / "frames" / vid).glob("*.png"))[:frames]:
                os.symlink(f, dst / label / "frames" / vid / f.name)
                lm = src / label / "landmarks" / vid / (f.stem + ".npy")
                os.symlink(lm, dst / label / "landmarks" / vid / lm.name)
    return dst


def run(script: str, *sets: str) -> str:
    """Run ``python <script> --set k=v ...`` from the repository root; fail the test with its output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.time()
    r = subprocess.run([sys.executable, *script.split(), *sum((["--set", s] for s in sets), [])],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{script} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    print(f"{script.split()[0]}: {time.time() - t0:.1f} s")
    return r.stdout
