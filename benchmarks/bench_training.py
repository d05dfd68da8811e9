"""Training throughput per detector beside the data loader's own throughput (not a test).

For each detector, at its input size:

- ``loader``: images per second the training DataLoader delivers on its own (real UADFV frames:
  PNG decode, resize, normalisation, collate), with ``--workers`` worker processes;
- ``train``: images per second of full training steps (``training_step`` forward, backward,
  Adam step) on a resident batch, so data loading is excluded. On CPU: fp32. On a CUDA GPU: plain
  fp32 and bf16 autocast + channels-last in the same run, and their ratio.

The data loader keeps the accelerator fed when ``loader / train`` >= 1 (target on GPU: >= 2); the
mixed-precision target on GPU is bf16+CL / fp32 >= 1.5 for ``srm``. Without a GPU the GPU columns
are reported as skipped. Figures are printed as a table (and written as JSON with ``--json``).

    python benchmarks/bench_training.py                      # all image detectors, small runs
    python benchmarks/bench_training.py --detectors meso4 srm --batch-size 32 --steps 10
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common.splits import Sample  # noqa: E402
from training import data as D  # noqa: E402
from training.detectors import build_detector  # noqa: E402
from training.trainer import to_device  # noqa: E402

IMAGE_DETECTORS = ("meso4", "meso_inception4", "resnet34", "efficientnet_b4", "xception", "srm")


def uadfv_samples(root: Path, n: int) -> list[Sample]:
    frames = sorted((root / "real" / "frames").glob("*/*.png"))[: n // 2] + \
        sorted((root / "fake" / "frames").glob("*/*.png"))[: n - n // 2]
    if not frames:
        sys.exit(f"no frames under {root}; set UADFV_ROOT or --data")
    return [Sample(str(p.relative_to(root)), int("fake" in p.parts[-4]), p.parent.name) for p in frames]


def loader_throughput(samples, root, spec, batch_size, workers, batches) -> float:
    ds = D.FrameDataset(samples, root, spec)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True,
                        persistent_workers=False, pin_memory=torch.cuda.is_available())
    it = iter(loader)
    next(it)                                       # start-up (worker spawn) not counted
    n, t0 = 0, time.perf_counter()
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:
            break
        n += len(batch["label"])
    return n / (time.perf_counter() - t0)


def train_throughput(det, size, batch_size, steps, device, amp: bool, channels_last: bool) -> float:
    det = det.to(device).train()
    if channels_last:
        det = det.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(det.parameters(), lr=1e-4)
    batch = to_device({"image": torch.randn(batch_size, 3, size, size),
                       "label": torch.arange(batch_size) % 2}, device, channels_last)
    ctx = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if amp else torch.enable_grad

    def step():
        with ctx():
            loss, _ = det.training_step(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()                                         # warm-up (allocator, cudnn autotune)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--detectors", nargs="+", default=list(IMAGE_DETECTORS))
    p.add_argument("--data", default=os.environ.get("UADFV_ROOT", str(REPO.parent / "shared" / "data" / "UADFV")))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=3, help="timed training steps per setting")
    p.add_argument("--loader-batches", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    root = Path(args.data)
    gpu = torch.cuda.is_available()
    if gpu:
        torch.backends.cudnn.benchmark = True
    samples = uadfv_samples(root, max(64, args.batch_size * (args.loader_batches + 2)))
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, "
          f"GPU: {torch.cuda.get_device_name(0) if gpu else 'none (GPU figures skipped)'}; "
          f"batch {args.batch_size}, {args.steps} timed steps, loader workers {args.workers}")
    head = f"{'detector':<16}{'px':>5}{'loader img/s':>14}{'CPU fp32 img/s':>16}{'loader/CPU':>11}"
    head += f"{'GPU fp32':>10}{'GPU bf16+CL':>13}{'bf16/fp32':>11}{'loader/GPU':>12}" if gpu else ""
    print(head)
    results = {}
    for name in args.detectors:
        try:
            det = build_detector(name)
        except Exception as exc:                   # a detector not available in this checkout
            print(f"{name:<16}  not available: {exc}")
            continue
        size = int(det.input_size)
        spec = D.InputSpec(size, tuple(det.mean), tuple(det.std))
        r = {"input_size": size,
             "loader_img_s": loader_throughput(samples, root, spec, args.batch_size, args.workers, args.loader_batches),
             "cpu_fp32_img_s": train_throughput(det, size, args.batch_size, args.steps, torch.device("cpu"), False, False)}
        line = f"{name:<16}{size:>5}{r['loader_img_s']:>14.1f}{r['cpu_fp32_img_s']:>16.2f}" \
               f"{r['loader_img_s'] / r['cpu_fp32_img_s']:>11.1f}"
        if gpu:
            dev = torch.device("cuda")
            r["gpu_fp32_img_s"] = train_throughput(build_detector(name), size, args.batch_size, args.steps, dev, False, False)
            r["gpu_bf16_cl_img_s"] = train_throughput(build_detector(name), size, args.batch_size, args.steps, dev, True, True)
            line += f"{r['gpu_fp32_img_s']:>10.1f}{r['gpu_bf16_cl_img_s']:>13.1f}" \
                    f"{r['gpu_bf16_cl_img_s'] / r['gpu_fp32_img_s']:>11.2f}" \
                    f"{r['loader_img_s'] / r['gpu_bf16_cl_img_s']:>12.2f}"
        print(line, flush=True)
        results[name] = r
    if args.json:
        Path(args.json).write_text(json.dumps({"gpu": gpu, "batch_size": args.batch_size, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
