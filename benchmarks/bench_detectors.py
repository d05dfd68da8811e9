"""Training speed of each detector: images per second of full training steps (forward, the
detector's own ``training_step`` loss, backward, Adam update) at its input size on synthetic
normalised images, after warm-up steps.

On CPU it times fp32 (the only sensible mode there). With a CUDA GPU it times fp32 and bf16
autocast with channels-last tensors (the recommended GPU setting), and reports peak GPU memory.
The device that ran is printed; ``--json`` writes the rows too. On CPU it also reports images per
CPU-second of the process (all its threads), which is less sensitive to other load than wall time.

    python benchmarks/bench_detectors.py [--detectors meso4,xception,...] [--batch-size 8]
        [--steps 5] [--warmup 2] [--device auto|cpu|cuda] [--json out.json]

Not a test: it prints its figures. CPU figures depend on the cores and on other load.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import schema  # noqa: E402
from training.detectors import build_detector  # noqa: E402

DEFAULT = "meso4,meso_inception4,efficientnet_b0,efficientnet_b4,resnet34,xception,srm"


def build(name: str):
    if name.startswith("efficientnet_b") and name != "efficientnet_b4":
        return build_detector("efficientnet", variant=name.split("_")[1])
    return build_detector(name)


def time_training(name: str, device: torch.device, mode: str, batch: int, steps: int, warmup: int) -> dict:
    """Images/s of ``steps`` timed training steps; ``mode`` is 'fp32' or 'bf16+channels_last'."""
    torch.manual_seed(0)
    det = build(name).to(device).train()
    fast = mode != "fp32"
    if fast:
        det = det.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(det.parameters(), lr=1e-4)
    s = det.input_size
    x = torch.randn(batch, 3, s, s, device=device)
    if fast:
        x = x.contiguous(memory_format=torch.channels_last)
    batch_dict = {"image": x, "label": torch.arange(batch, device=device) % 2}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if fast else contextlib.nullcontext()

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss, _ = det.training_step(batch_dict)
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        step()
    sync()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    sync()
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    row = {"detector": det.name, "input_size": s, "batch": batch, "mode": mode, "device": str(device),
           "steps": steps, "seconds": round(seconds, 3), "images_per_s": round(batch * steps / seconds, 2),
           "params_M": round(sum(p.numel() for p in det.parameters()) / 1e6, 2)}
    if device.type == "cpu":     # per CPU-second of this process (all its threads): robust to other load
        row["images_per_cpu_s"] = round(batch * steps / cpu_seconds, 2)
    if device.type == "cuda":
        row["peak_gpu_GiB"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detectors", default=DEFAULT, help=f"comma-separated (default {DEFAULT})")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default=schema.BY_NAME["device"].default, choices=["auto", "cpu", "cuda"])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)      # silence the random-initialisation warnings
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA GPU is visible", file=sys.stderr)
        return 2
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    if use_cuda:
        torch.backends.cudnn.benchmark = True
        where = f"GPU {torch.cuda.get_device_name(0)}"
        modes = ["fp32", "bf16+channels_last"]
    else:
        where = f"CPU, {torch.get_num_threads()} threads (no GPU: fp32 only)"
        modes = ["fp32"]
    print(f"device: {where}; torch {torch.__version__}; batch {args.batch_size}, "
          f"{args.warmup} warm-up + {args.steps} timed steps", flush=True)
    rows = []
    print(f"{'detector':<18}{'px':>5}{'mode':>20}{'img/s':>10}{'img/CPU-s':>11}{'params M':>10}{'peak GiB':>10}")
    for name in [n.strip() for n in args.detectors.split(",") if n.strip()]:
        for mode in modes:
            row = time_training(name, device, mode, args.batch_size, args.steps, args.warmup)
            rows.append(row)
            nan = float("nan")
            print(f"{row['detector']:<18}{row['input_size']:>5}{mode:>20}{row['images_per_s']:>10.2f}"
                  f"{row.get('images_per_cpu_s', nan):>11.2f}{row['params_M']:>10.2f}"
                  f"{row.get('peak_gpu_GiB', nan):>10.2f}", flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": where, "rows": rows}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
