"""Benchmark: KDE likelihood ratios for 1,000,000 scores from KDEs fitted on 100,000 training scores
per hypothesis (slr.kde.KDELikelihoodRatio), against scikit-learn's exact KernelDensity.

Synthetic cosine-similarity-like scores: Hp (real) ~ N(0.80, 0.05), Hd (fake) ~ N(0.50, 0.10),
bandwidths by Silverman's rule; the 1e6 evaluation scores are half from each distribution, so each
KDE is also evaluated deep in its tail (where the exact path takes over). sklearn on 1e6 points
takes many minutes, so it is timed on a random subset (``--subset``) and compared per point; the
largest |LLR difference| is taken over that subset plus 200 far-tail points. If KDEpy is
installed, its FFTKDE (grid-only) is timed and compared the same way, to show its tail error.

    python benchmarks/bench_kde.py [--n-train 100000] [--n-eval 1000000] [--subset 2000] [--seed 0]

Not a test: it prints its figures.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slr.kde import KDELikelihoodRatio, silverman_bandwidth, sklearn_log10_pdf  # noqa: E402


def _kdepy_comparison(hp, hd, bw_hp, bw_hd, x, xs, ref, n_bulk: int) -> None:
    """KDEpy's FFTKDE on a 2^16 grid: its time and its LLR differences from sklearn (bulk and far tails)."""
    try:
        from KDEpy import FFTKDE
    except ImportError:
        print("KDEpy not installed: FFTKDE comparison skipped")
        return
    t0 = time.perf_counter()
    lo, hi = min(hp.min(), hd.min()) - 1.0, max(hp.max(), hd.max()) + 1.0
    grid = np.linspace(lo, hi, 2 ** 16)
    f_hp = FFTKDE(bw=bw_hp).fit(hp).evaluate(grid)
    f_hd = FFTKDE(bw=bw_hd).fit(hd).evaluate(grid)
    with np.errstate(divide="ignore", invalid="ignore"):
        kdepy = np.log10(np.interp(x, grid, f_hp)) - np.log10(np.interp(x, grid, f_hd))
        kdepy_xs = np.log10(np.interp(xs, grid, f_hp)) - np.log10(np.interp(xs, grid, f_hd))
    t_kp = time.perf_counter() - t0
    bad = ~np.isfinite(kdepy_xs)
    d = np.abs(kdepy_xs - ref)
    print(f"KDEpy FFTKDE (2^16 grid): {t_kp:.3f} s for {x.size:,}; max |LLR - sklearn| bulk "
          f"{np.nanmax(d[:n_bulk][np.isfinite(d[:n_bulk])]):.2e}, far tails "
          f"{np.nanmax(np.where(np.isfinite(d[n_bulk:]), d[n_bulk:], np.nan)):.3g} "
          f"({int(bad.sum())} non-finite of {xs.size}; {int((~np.isfinite(kdepy)).sum())} non-finite of {x.size:,})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=100_000)
    ap.add_argument("--n-eval", type=int, default=1_000_000)
    ap.add_argument("--subset", type=int, default=2000, help="points for the sklearn timing/comparison")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    hp = rng.normal(0.80, 0.05, args.n_train)
    hd = rng.normal(0.50, 0.10, args.n_train)
    bw_hp, bw_hd = silverman_bandwidth(hp), silverman_bandwidth(hd)
    x = np.concatenate([rng.normal(0.80, 0.05, args.n_eval // 2), rng.normal(0.50, 0.10, args.n_eval - args.n_eval // 2)])
    print(f"training scores per hypothesis: {args.n_train:,}; evaluation scores: {x.size:,}")
    print(f"bandwidths (Silverman): Hp {bw_hp:.5f}, Hd {bw_hd:.5f}")

    t0 = time.perf_counter()
    model = KDELikelihoodRatio().fit(hp, hd, bw_hp, bw_hd)
    llr = model.llr(x)
    t_ours = time.perf_counter() - t0
    print(f"ours: fit + LLR of {x.size:,} scores: {t_ours:.3f} s  ({t_ours / x.size * 1e6:.3f} us/score)")
    print(f"      Hp KDE: {model.kde_hp.last_method_}, Hd KDE: {model.kde_hd.last_method_} (points by path)")
    assert np.all(np.isfinite(llr))

    idx = rng.choice(x.size, size=min(args.subset, x.size), replace=False)
    tails = np.r_[np.linspace(-1.0, 0.2, 100), np.linspace(1.1, 2.0, 100)]
    xs = np.r_[x[idx], tails]
    t0 = time.perf_counter()
    ref_sub = sklearn_log10_pdf(hp, bw_hp, x[idx]) - sklearn_log10_pdf(hd, bw_hd, x[idx])
    t_sk = time.perf_counter() - t0
    ref = np.r_[ref_sub, sklearn_log10_pdf(hp, bw_hp, tails) - sklearn_log10_pdf(hd, bw_hd, tails)]
    ours = np.r_[llr[idx], model.llr(tails)]
    per_sk, per_ours = t_sk / idx.size, t_ours / x.size
    print(f"sklearn KernelDensity: LLR of {idx.size:,} scores: {t_sk:.3f} s ({per_sk * 1e6:.1f} us/score);"
          f" projected for {x.size:,}: {per_sk * x.size:.0f} s")
    print(f"speed ratio sklearn/ours per score: {per_sk / per_ours:,.0f}x")
    diff = np.abs(ours - ref)
    print(f"max |LLR ours - sklearn| over {idx.size:,} bulk points: {diff[:idx.size].max():.2e}; over "
          f"{tails.size} far-tail points (|LLR| up to {np.abs(ref[idx.size:]).max():.3g}): "
          f"{diff[idx.size:].max():.2e} (relative {np.max(diff[idx.size:] / np.abs(ref[idx.size:])):.1e})")

    _kdepy_comparison(hp, hd, bw_hp, bw_hd, x, xs, ref, idx.size)
    return 0

if __name__ == "__main__":
    sys.exit(main())
