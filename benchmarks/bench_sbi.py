"""SBI data generation against the training step: is generating self-blended fakes the bottleneck?

Measures, on real UADFV crops (``$UADFV_ROOT`` or ``../shared/data/UADFV``):

1. SBI generation per core: self-blended images per second with OpenCV and torch on one thread
   (256 px crops, and 1280x720 frames with the face pasted in, where only the face region is processed);
2. the FED target per core: dlib embeddings of a (real, fake) pair per second (the real one is
   cached per frame in training, so one new embedding per pair);
3. the training step: images per second of ``training_step`` (forward, loss, backward, Adam) of a
   detector at its input size on this machine's default thread count (``--detector``, default
   ``efficientnet_b4`` on the ``sbi_fed`` wrapper, i.e. the SBI recipe's model).

It prints the cores a DataLoader needs so that generation keeps up:
``ceil(train images/s / (2 x SBI pairs/s per core))`` (a pair is one real + one blended image).

    python benchmarks/bench_sbi.py [--n 40] [--detector efficientnet_b4] [--batch-size 8] [--steps 3]
        [--input-size 256] [--no-fed] [--json out.json]

Not a test. CPU figures depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import schema  # noqa: E402
from preprocessing.sbi import SBIOptions, self_blend_details  # noqa: E402


def uadfv_root() -> Path:
    return Path(os.environ.get("UADFV_ROOT", Path(__file__).resolve().parents[2] / "shared" / "data" / "UADFV"))


def load_faces(root: Path, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    frames = sorted((root / "real" / "frames").glob("*/*.png"))
    if not frames:
        sys.exit(f"no real frames under {root}/real/frames; set UADFV_ROOT")
    pick = [frames[i] for i in np.linspace(0, len(frames) - 1, n).round().astype(int)]
    out = []
    for p in pick:
        img = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        lm = np.load(root / "real" / "landmarks" / p.parent.name / (p.stem + ".npy")).astype(np.float64)
        out.append((img, lm))
    return out


def time_sbi(faces, frame: bool, opts: SBIOptions) -> float:
    rng = np.random.default_rng(0)
    items = []
    for img, lm in faces:
        if frame:
            big = np.full((720, 1280, 3), 90, np.uint8)
            big[200:456, 500:756] = img
            items.append((big, lm + (500, 200)))
        else:
            items.append((img, lm))
    self_blend_details(*items[0], rng, opts=opts)           # warm-up
    t = time.perf_counter()
    for img, lm in items:
        self_blend_details(img, lm, rng, opts=opts)
    return len(items) / (time.perf_counter() - t)


def time_fed(faces, opts: SBIOptions) -> float:
    from training.fed import DlibEmbedder
    emb = DlibEmbedder()
    rng = np.random.default_rng(0)
    fakes = [self_blend_details(img, lm, rng, opts=opts).blended for img, lm in faces]
    emb.embed(*faces[0])
    t = time.perf_counter()
    for (img, lm), fake in zip(faces, fakes):
        emb.embed(fake, lm)
    return len(faces) / (time.perf_counter() - t)


def time_train(detector: str, size: int, batch: int, steps: int, threads: int) -> float:
    from training.detectors import build_detector
    torch.set_num_threads(threads)
    det = build_detector("sbi_fed", base=detector, input_size=size)
    opt = torch.optim.Adam(det.parameters(), lr=1e-4)
    x = torch.randn(batch, 2, 3, size, size)
    batch_d = {"image": x, "label": torch.tensor([[0, 1]] * batch),
               "fed_delta": torch.randn(batch, 128) * 0.05, "fed_weight": torch.tensor([0.4] * batch)}

    def step():
        loss, _ = det.training_step(batch_d)
        opt.zero_grad()
        loss.backward()
        opt.step()
    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return 2 * batch * steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="faces to blend (default 40)")
    ap.add_argument("--detector", default="efficientnet_b4")
    ap.add_argument("--input-size", type=int, default=schema.BY_NAME["model.input_size"].default)
    ap.add_argument("--batch-size", type=int, default=8, help="pairs per step (2x images)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--no-fed", action="store_true", help="skip the dlib embedding timing")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import logging
    logging.basicConfig(level=logging.ERROR)

    faces = load_faces(uadfv_root(), args.n)
    opts = SBIOptions()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    rows = {"sbi_crop_256_img_per_s_per_core": time_sbi(faces, False, opts),
            "sbi_frame_1280x720_img_per_s_per_core": time_sbi(faces, True, opts)}
    if not args.no_fed:
        rows["fed_dlib_embeddings_per_s_per_core"] = time_fed(faces[: max(4, args.n // 4)], opts)
    threads = os.cpu_count() or 1
    cv2.setNumThreads(-1)
    rows["train_img_per_s"] = time_train(args.detector, args.input_size, args.batch_size, args.steps, threads)
    rows["train_threads"] = threads
    per_core_pairs = rows["sbi_crop_256_img_per_s_per_core"]
    if "fed_dlib_embeddings_per_s_per_core" in rows:   # one blend + one embedding per pair
        per_core_pairs = 1.0 / (1.0 / per_core_pairs + 1.0 / rows["fed_dlib_embeddings_per_s_per_core"])
    rows["loader_cores_needed"] = math.ceil(rows["train_img_per_s"] / (2.0 * per_core_pairs))
    rows["detector"] = args.detector
    rows["input_size"] = args.input_size
    for k, v in rows.items():
        print(f"{k:40s} {v:.2f}" if isinstance(v, float) else f"{k:40s} {v}")
    print(f"-> SBI{' + FED' if not args.no_fed else ''} generation needs about {rows['loader_cores_needed']} "
          f"DataLoader core(s) (training.num_workers) to keep up with {args.detector} training on this machine")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
