"""Benchmark: the LR system of issue 10 (sound protocol v2) on 10^4 calib and 10^4 test frames.

    python benchmarks/bench_lr_system.py [--items 10000] [--bootstrap 1000] [--model kde] [--naive 20]

Synthetic scores with persons (a real and a fake video of 10 frames each) and within-video
correlation (tests/test_slr_system.py's generator). Prints wall time per part and in total:
cross-fitting (k person-grouped folds, each with its own grouped bandwidth CV), the final fit on
all of calib, calibration + per-video ELUB, monotonicity, applying the system to test, the
person-cluster bootstrap (``--bootstrap`` resamples of all seven metrics, on test and on the
cross-fitted calib), and stages 09-14 with every figure (``slr.pipeline.run_scores``, which fits
again and bootstraps again). Issue 21 parts, each timed: the case-interval bootstrap (``--case-n``
refits of the whole system on person resamples of calib, :mod:`slr.case_interval`), ``slr.model: auto``
(:func:`slr.model_choice.choose_model`), and one case LR with its interval from the saved system
after loading (target < 10 ms). Targets printed: fit with cross-fitting <= 5 s, run_scores with
every figure <= 15 s. The vectorised bootstrap is compared with a plain Python loop over
resamples (``slr.bootstrap.naive_bootstrap_loop``, ``--naive`` resamples; per-resample times,
same data, same run) and the speed-up printed. Not a test: it prints its figures.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common import schema  # noqa: E402
from slr import pipeline  # noqa: E402
from slr.bootstrap import cluster_bootstrap, naive_bootstrap_loop  # noqa: E402
from slr.io import ScoreSet  # noqa: E402
from slr.settings import Settings  # noqa: E402
from slr.case_interval import case_interval_band  # noqa: E402
from slr.model_choice import CANDIDATES, choose_model  # noqa: E402
from slr.system import LRSystem, fit_level_model  # noqa: E402


def generate(rng, n_items: int, prefix: str, frames: int = 10) -> ScoreSet:
    n_persons = max(2, n_items // (2 * frames))
    pe = np.repeat(rng.normal(0, 0.4, n_persons), 2 * frames)
    labels = np.tile(np.repeat([0, 1], frames), n_persons)
    ve = np.repeat(rng.normal(0, 0.3, 2 * n_persons), frames)
    scores = np.where(labels == 0, 1.0, -1.0) + pe + ve + rng.normal(0, 0.5, len(labels))
    persons = np.repeat([f"{prefix}{i}" for i in range(n_persons)], 2 * frames)
    videos = np.array([f"{p}_{'rf'[lab]}" for p, lab in zip(persons, labels)])
    return ScoreSet(scores, labels, videos, None, f"<{prefix}>", person_ids=persons)


def _case_cost(lm, settings, scores) -> float:
    """Seconds per case (bounded LLR and its interval, one item at a time) from the saved system, loaded."""
    with tempfile.TemporaryDirectory() as tmp:
        LRSystem({"frame": lm}, {"name": "logit"}, settings=settings).save(Path(tmp) / "system")
        loaded = LRSystem.load(Path(tmp) / "system").level("frame")
        t0 = time.perf_counter()
        for s in scores:
            loaded.llr([s])
            loaded.interval([s])
        return (time.perf_counter() - t0) / len(scores)


def _time_run_scores(args, calib, test, parts: dict) -> float:
    """Time ``run_scores`` (stages 09-14, every figure) and each stage inside it; adds them to ``parts``."""
    stage_times = {}
    originals = {n: getattr(pipeline, f"stage{n:02d}") for n in range(9, 15)}

    def timed(n, f):
        def g(*a, **kw):
            t = time.perf_counter()
            try:
                return f(*a, **kw)
            finally:
                stage_times[n] = time.perf_counter() - t
        return g

    for n, f in originals.items():
        setattr(pipeline, f"stage{n:02d}", timed(n, f))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_settings = Settings(model=args.model, bootstrap_n=args.bootstrap, video_level=True,
                                case_interval_n=args.case_n)
        pipeline.run_scores({"calib": calib, "test": test}, Path(tmp), run_settings)
        t_run = parts[f"stages 09-14 with all figures (run_scores, case interval {args.case_n})"] = \
            time.perf_counter() - t0
    for n, f in originals.items():
        setattr(pipeline, f"stage{n:02d}", f)
    for n, t in stage_times.items():
        parts[f"  stage {n:02d}"] = t
    return t_run


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--items", type=int, default=10_000, help="frames in calib and in test (each)")
    p.add_argument("--bootstrap", type=int, default=schema.BY_NAME["slr.bootstrap.n"].default)
    p.add_argument("--model", choices=("kde", "logistic", "isotonic"),
                   default=schema.BY_NAME["slr.model"].default)
    p.add_argument("--naive", type=int, default=20, help="resamples of the plain-loop reference")
    p.add_argument("--case-n", type=int, default=200, help="refits of the case-interval bootstrap")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)
    import logging
    logging.basicConfig(level=logging.WARNING)
    rng = np.random.default_rng(0)
    calib, test = generate(rng, args.items, "ca"), generate(rng, args.items, "te")
    settings = Settings(model=args.model, bootstrap_n=args.bootstrap, video_level=True, case_interval_n=0)
    parts = {}
    t_all = time.perf_counter()
    t0 = time.perf_counter()
    lm = fit_level_model(calib, settings, "frame")
    parts["fit, all steps (frame level)"] = time.perf_counter() - t0
    for k, v in lm.timings.items():
        parts[f"  {k[:-2]}"] = v
    t_fit = parts["fit, all steps (frame level)"]
    t0 = time.perf_counter()
    lm.case_band = case_interval_band(lm, args.case_n, 0)
    parts[f"case-interval bootstrap, {args.case_n} refits of the system on {len(calib)} calib items"] = \
        time.perf_counter() - t0
    t0 = time.perf_counter()
    choice = choose_model(calib.scores, calib.labels, calib.videos(), calib.persons(), settings)
    parts[f"slr.model auto: {len(CANDIDATES)} candidates cross-fitted (chose {choice['chosen']})"] = \
        time.perf_counter() - t0
    t_case = _case_cost(lm, settings, test.scores[:100])
    t0 = time.perf_counter()
    llr_test = lm.llr(test.scores)
    parts["apply to test"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cluster_bootstrap(llr_test, test.labels, test.persons(), n=args.bootstrap, seed=0)
    t_boot = time.perf_counter() - t0
    parts[f"bootstrap {args.bootstrap} x {len(test)} (test, 7 metrics)"] = t_boot
    t0 = time.perf_counter()
    cluster_bootstrap(lm.calib["cf_llr"], calib.labels, calib.persons(), n=args.bootstrap, seed=0)
    parts[f"bootstrap {args.bootstrap} x {len(calib)} (cross-fitted calib)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive_bootstrap_loop(llr_test, test.labels, test.persons(), n=args.naive, seed=0)
    t_naive = time.perf_counter() - t0
    parts[f"naive loop, {args.naive} resamples (reference)"] = t_naive
    t_run = _time_run_scores(args, calib, test, parts)
    total = time.perf_counter() - t_all
    print(f"\nLR system (sound v2, model {args.model}, calibration {settings.calibration}, "
          f"{settings.crossfit_folds} cross-fitting folds): {len(calib)} calib and {len(test)} test frames, "
          f"{len(set(calib.persons()))} + {len(set(test.persons()))} persons")
    w = max(len(k) for k in parts)
    for k, v in parts.items():
        print(f"  {k:<{w}}  {v:8.2f} s")
    print(f"  {'total':<{w}}  {total:8.2f} s")
    print(f"\nfit with cross-fitting {t_fit:.2f} s (target <= 5 s); run_scores with every figure {t_run:.2f} s "
          f"(target <= 15 s); one case LR with its interval after loading {1000 * t_case:.2f} ms (target < 10 ms)")
    per_fast, per_naive = t_boot / args.bootstrap, t_naive / args.naive
    print(f"\nbootstrap per resample: vectorised {1000 * per_fast:.2f} ms, plain loop {1000 * per_naive:.2f} ms; "
          f"speed-up {per_naive / per_fast:.1f}x (target >= 20x); {args.bootstrap} resamples of {len(test)} items in "
          f"{t_boot:.2f} s (target < 10 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
