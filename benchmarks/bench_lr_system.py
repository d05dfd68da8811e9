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
same data, same run) and the speed-up printed.

Every part is printed with its wall seconds, the CPU seconds of this process (``time.process_time``,
all threads: the fair figure on a shared, loaded machine) and the 1-minute load average when it
ended; targets are judged on CPU seconds and say whether they are met. Unless ``--no-reference``,
the fit is also timed with the reference KDE path (:func:`reference_kde`: main's per-bandwidth
loop and its exact kernel, as before issue 21's speed work) in the same run: the ratios and
whether both fits chose the same bandwidths are printed. Not a test: it prints its figures.
"""
from __future__ import annotations

import argparse
import contextlib
import os
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
from slr import kde as kde_mod  # noqa: E402
from slr import models  # noqa: E402
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


class Clock:
    """Wall and CPU seconds of one part and the 1-minute load average when it ended."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        self.load = os.getloadavg()[0]

    def row(self) -> tuple[float, float | None, float | None]:
        return self.wall, self.cpu, self.load


def _reference_exact(self, x, lo, hi, near):
    """GaussianKDE1D._exact as it was before issue 21's speed work (main at 452fb5e): the shifted
    kernel in seven passes per block, 2^17-term blocks found by a Python loop, a fresh array per block."""
    d, h = self.data_, self.bandwidth_
    counts = hi - lo
    ends = np.cumsum(counts)
    cuts = np.searchsorted(ends, np.arange(1 << 17, ends[-1], 1 << 17), side="right")
    bounds = np.unique(np.concatenate(([0], cuts, [counts.size])))
    todo, blocks = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])], []
    while todo:
        s, e = todo.pop()
        if e - s > 1 and (e - s) * int(hi[s:e].max() - lo[s:e].min()) > 1.5 * int(counts[s:e].sum()) + 2048:
            todo += [(s, (s + e) // 2), ((s + e) // 2, e)]
        else:
            blocks.append((s, e))
    out = np.empty(x.size)
    for s, e in blocks:
        lb, hb = int(lo[s:e].min()), int(hi[s:e].max())
        half_zn2 = 0.5 * ((x[s:e] - d[near[s:e]]) / h) ** 2
        q = np.subtract(x[s:e, None], d[None, lb:hb])
        q *= 1.0 / h
        np.square(q, out=q)
        q *= -0.5
        q += half_zn2[:, None]
        np.exp(q, out=q)
        out[s:e] = np.log(q.sum(axis=1)) - half_zn2
    return out - np.log(d.size * h) - 0.5 * np.log(2.0 * np.pi)


@contextlib.contextmanager
def reference_kde():
    """The KDE path before issue 21's speed work, for a same-run baseline: the bandwidth CV fits a
    fresh KDE, sorts and searches the windows for every bandwidth, and every evaluation uses
    :func:`_reference_exact`. Same numbers to ~1e-13 (tests/test_kde_speed_golden.py)."""
    est = kde_mod.GaussianKDE1D

    def per_bandwidth(train, test, grid, budget):
        kde = est(exact_budget=budget)
        return np.array([float(np.sum(kde.fit(train, bw).ln_pdf(test))) for bw in grid])

    saved = models.heldout_loglik, est._exact
    models.heldout_loglik, est._exact = per_bandwidth, _reference_exact
    try:
        yield
    finally:
        models.heldout_loglik, est._exact = saved


def _case_cost(lm, settings, scores) -> tuple[float, float]:
    """(wall, CPU) seconds per case (bounded LLR and its interval, one item at a time) from the saved
    system, loaded."""
    with tempfile.TemporaryDirectory() as tmp:
        LRSystem({"frame": lm}, {"name": "logit"}, settings=settings).save(Path(tmp) / "system")
        loaded = LRSystem.load(Path(tmp) / "system").level("frame")
        with Clock() as c:
            for s in scores:
                loaded.llr([s])
                loaded.interval([s])
        return c.wall / len(scores), c.cpu / len(scores)


def _time_run_scores(args, calib, test, parts: dict) -> tuple:
    """Time ``run_scores`` (stages 09-14, every figure) and each stage inside it; adds them to ``parts``."""
    stage_times = {}
    originals = {n: getattr(pipeline, f"stage{n:02d}") for n in range(9, 15)}

    def timed(n, f):
        def g(*a, **kw):
            with Clock() as c:
                r = f(*a, **kw)
            stage_times[n] = c.row()
            return r
        return g

    for n, f in originals.items():
        setattr(pipeline, f"stage{n:02d}", timed(n, f))
    with tempfile.TemporaryDirectory() as tmp:
        run_settings = Settings(model=args.model, bootstrap_n=args.bootstrap, video_level=True,
                                case_interval_n=args.case_n)
        with Clock() as c:
            pipeline.run_scores({"calib": calib, "test": test}, Path(tmp), run_settings)
        t_run = parts[f"stages 09-14 with all figures (run_scores, case interval {args.case_n})"] = c.row()
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
    p.add_argument("--no-reference", action="store_true",
                   help="skip the same-run baseline fit with the reference KDE path (reference_kde)")
    return p.parse_args(argv)


def _timed(parts: dict, name: str, f, *a, **kw):
    with Clock() as c:
        r = f(*a, **kw)
    parts[name] = c.row()
    return r


def _print_parts(parts: dict, total: Clock) -> None:
    w = max(len(k) for k in parts)
    print(f"  {'part':<{w}}  {'wall':>8}    {'CPU':>8}    load")
    for k, (wall, cpu, load) in parts.items():
        print(f"  {k:<{w}}  {wall:8.2f} s  {cpu:8.2f} s  " + ("" if load is None else f"{load:5.1f}"))
    print(f"  {'total':<{w}}  {total.wall:8.2f} s  {total.cpu:8.2f} s  {total.load:5.1f}")


def _verdict(name: str, row: tuple, target: float, unit: str = "s", scale: float = 1.0) -> str:
    wall, cpu, load = row
    met = "met" if cpu * scale <= target else "NOT met"
    return (f"{name}: CPU {cpu * scale:.2f} {unit}, wall {wall * scale:.2f} {unit} at load {load:.1f} "
            f"(target <= {target:g} {unit}: {met})")


def _reference_fit(calib, settings, lm, parts: dict) -> None:
    """Time the fit with the reference KDE path; print ratios and whether the bandwidths are the same."""
    with reference_kde():
        ref = _timed(parts, "fit, all steps, reference KDE path (baseline)", fit_level_model, calib, settings, "frame")
    new, old = parts["fit, all steps (frame level)"], parts["fit, all steps, reference KDE path (baseline)"]
    same = ref.bandwidth() == lm.bandwidth()
    gap = float(np.max(np.abs(ref.calib["cf_llr"] - lm.calib["cf_llr"])))
    print(f"\nfit vs the reference KDE path (same run): CPU {old[1]:.2f} s -> {new[1]:.2f} s ({old[1] / new[1]:.2f}x), "
          f"wall {old[0]:.2f} s -> {new[0]:.2f} s ({old[0] / new[0]:.2f}x); bandwidths "
          f"{'identical' if same else 'DIFFERENT'} (hp {lm.bandwidth()['hp']:.6g}, hd {lm.bandwidth()['hd']:.6g}); "
          f"largest cross-fitted LLR difference {gap:.1e}")


def main(argv=None) -> int:
    args = _parse(argv)
    import logging
    logging.basicConfig(level=logging.WARNING)
    rng = np.random.default_rng(0)
    calib, test = generate(rng, args.items, "ca"), generate(rng, args.items, "te")
    settings = Settings(model=args.model, bootstrap_n=args.bootstrap, video_level=True, case_interval_n=0)
    parts = {}
    with Clock() as total:
        lm = _timed(parts, "fit, all steps (frame level)", fit_level_model, calib, settings, "frame")
        for k, v in lm.timings.items():
            parts[f"  {k[:-2]}"] = (v, lm.cpu_timings[k], None)
        t_fit = parts["fit, all steps (frame level)"]
        lm.case_band = _timed(parts, f"case-interval bootstrap, {args.case_n} refits of the system on {len(calib)} "
                              f"calib items", case_interval_band, lm, args.case_n, 0)
        with Clock() as c:
            choice = choose_model(calib.scores, calib.labels, calib.videos(), calib.persons(), settings)
        parts[f"slr.model auto: {len(CANDIDATES)} candidates cross-fitted (chose {choice['chosen']})"] = c.row()
        t_case, cpu_case = _case_cost(lm, settings, test.scores[:100])
        llr_test = _timed(parts, "apply to test", lm.llr, test.scores)
        with Clock() as c:
            cluster_bootstrap(llr_test, test.labels, test.persons(), n=args.bootstrap, seed=0)
        parts[f"bootstrap {args.bootstrap} x {len(test)} (test, 7 metrics)"] = c.row()
        t_boot = c.wall
        _timed(parts, f"bootstrap {args.bootstrap} x {len(calib)} (cross-fitted calib)", cluster_bootstrap,
               lm.calib["cf_llr"], calib.labels, calib.persons(), n=args.bootstrap, seed=0)
        with Clock() as c:
            naive_bootstrap_loop(llr_test, test.labels, test.persons(), n=args.naive, seed=0)
        parts[f"naive loop, {args.naive} resamples (reference)"] = c.row()
        t_naive = c.wall
        t_run = _time_run_scores(args, calib, test, parts)
    print(f"\nLR system (sound v2, model {args.model}, calibration {settings.calibration}, "
          f"{settings.crossfit_folds} cross-fitting folds): {len(calib)} calib and {len(test)} test frames, "
          f"{len(set(calib.persons()))} + {len(set(test.persons()))} persons")
    _print_parts(parts, total)
    print(f"\nfit with cross-fitting {t_fit[0]:.2f} s (target <= 5 s); run_scores with every figure {t_run[0]:.2f} s "
          f"(target <= 15 s); one case LR with its interval after loading {1000 * t_case:.2f} ms (target < 10 ms)")
    print("  " + _verdict("fit with cross-fitting", t_fit, 5.0))
    print("  " + _verdict("run_scores with every figure", t_run, 15.0))
    print(f"  one case LR with its interval after loading: CPU {1000 * cpu_case:.2f} ms, wall {1000 * t_case:.2f} ms "
          f"(target < 10 ms: {'met' if cpu_case < 0.010 else 'NOT met'})")
    per_fast, per_naive = t_boot / args.bootstrap, t_naive / args.naive
    print(f"\nbootstrap per resample: vectorised {1000 * per_fast:.2f} ms, plain loop {1000 * per_naive:.2f} ms; "
          f"speed-up {per_naive / per_fast:.1f}x (target >= 20x); {args.bootstrap} resamples of {len(test)} items in "
          f"{t_boot:.2f} s (target < 10 s)")
    if not args.no_reference:
        _reference_fit(calib, settings, lm, {"fit, all steps (frame level)": t_fit})
    return 0


if __name__ == "__main__":
    sys.exit(main())
