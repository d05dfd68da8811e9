"""Benchmark: stages 08-14 on the real UADFV features of the paper (``paper_srm_features.npz``,
2,438 frames x 512), split by person (sound: four pools, paper: three), under one protocol: wall and CPU time per stage, total, and
peak memory (resident set of this process; with --trace also the peak of Python/numpy allocations
by tracemalloc, which slows the run down).

    python benchmarks/bench_slr_stages.py [--protocol sound|paper] [--uadfv PATH] [--trace]

The stages run in this process through the numbered scripts' ``main`` (no interpreter start-up
in the times). Not a test: it prints its figures.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from common import schema  # noqa: E402
from common.config import load_config  # noqa: E402
from common.stages import get  # noqa: E402
from slr_helpers import load_script, person_split_json, write_config  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--protocol", choices=("sound", "paper"), default=schema.BY_NAME["slr.protocol"].default)
    p.add_argument("--trace", action="store_true", help="also trace Python/numpy allocations (slower)")
    p.add_argument("--uadfv", default=os.environ.get("UADFV_ROOT", str(REPO.parent / "shared" / "data" / "UADFV")))
    args = p.parse_args(argv)
    npz = Path(args.uadfv) / "paper_srm_features.npz"
    if not npz.is_file():
        print(f"error: {npz} not found; pass --uadfv or set UADFV_ROOT", file=sys.stderr)
        return 2
    import logging
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.protocol == "sound":     # four person-disjoint pools (the LR system is fitted on calib)
            from preprocessing.splits import make_split, write_split
            write_split(tmp / "split.json", make_split(Path(args.uadfv), unit="person",
                                                       ratios=(0.45, 0.15, 0.25, 0.15), seed=1024,
                                                       dataset_name="UADFV"))
        else:
            person_split_json(npz, tmp / "split.json", seed=0)
        cfg = load_config(write_config(tmp, npz, tmp / "split.json", args.protocol))
        scripts = {n: load_script(n) for n in range(8, 15)}     # imports outside the timings
        if args.trace:
            tracemalloc.start()
        times = {}
        t_all, c_all = time.perf_counter(), time.process_time()
        for n, mod in scripts.items():
            t0, c0 = time.perf_counter(), time.process_time()
            mod.main(cfg, None)
            times[n] = (time.perf_counter() - t0, time.process_time() - c0)
        total = (time.perf_counter() - t_all, time.process_time() - c_all)
        py_peak = tracemalloc.get_traced_memory()[1] if args.trace else None
        tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB
    print(f"\nstages 08-14 on {npz.name} (2,438 frames x 512, person split), protocol {args.protocol}")
    print(f"  {'stage':24s} {'wall':>8s} {'CPU':>8s}")
    for n, (w, c) in times.items():
        print(f"  {get(n).folder:24s} {w:7.2f}s {c:7.2f}s")
    print(f"  {'total':24s} {total[0]:7.2f}s {total[1]:7.2f}s")
    print(f"  peak memory: {rss:.0f} MiB resident (whole process, imports included)"
          + (f", {py_peak / 2**20:.1f} MiB peak of traced Python/numpy allocations" if py_peak is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
