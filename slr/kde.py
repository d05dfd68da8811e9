"""One-dimensional Gaussian kernel density estimation for score-based likelihood ratios.

Conventions: scores are similarity scores (any real units); densities are per score unit; every
``log10_*`` value is base 10, every ``ln_*`` value is natural log. Hp = "the image is real"
(numerator of the LR), Hd = "the image is fake"; LLR = log10 f_Hp(x) - log10 f_Hd(x).

``GaussianKDE1D`` evaluates f(x) = 1/(n h sqrt(2 pi)) sum_i exp(-(x - x_i)^2 / (2 h^2)):

* exactly (windowed log-sum-exp over the sorted training points: only points whose kernel term is
  within a factor e^-50 of the largest one are summed, everything dropped is below n e^-50 relative)
  whenever that is cheap, which covers every data set of the paper's size and every far-tail point
  (bulk blocks summed as exp(-a^2) exp(2ab) exp(-b^2), the same values to ~1e-13 relative);
* otherwise with a binned FFT grid in the bulk (linear binning, 100 grid points per bandwidth,
  linear interpolation of ln f) and the exact windowed sum wherever the grid density is below
  1e-9 of its maximum or x lies off the grid. Agreement with the exact density (tests): grid
  path within 5e-4 in log10 (measured 3e-5 to 1.1e-4), exact path ~1e-12 (docs/slr_metrics.md).

Not KDEpy's FFTKDE alone (its round-off ruins log-densities below ~1e-12 of the peak, where LRs are
often taken) nor sklearn's exact KernelDensity (~25,000x slower on 1e5 points): docs/slr_metrics.md.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import scipy.signal
import scipy.stats
from sklearn.model_selection import KFold

from .kde_grid import smooth_counts

log = logging.getLogger(__name__)

LN10 = math.log(10.0)
_LN_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)

# Paper constants (paper_method.md, "KDE likelihood ratio"): CV grid and bandwidth inflation.
PAPER_BW_GRID = np.logspace(np.log10(0.001), np.log10(0.1), 30)
PAPER_MIN_BW = 0.005
PAPER_MIN_BW_SMALL = 0.01      # when n < 100 or IQR < 0.1
PAPER_SKEW_FACTOR = 1.2        # when |skewness| > 1
PAPER_MULTIMODAL_FACTOR = 1.5  # when the FD histogram has >= 2 peaks
PAPER_GRID_POINTS = 1000
PAPER_GRID_PAD = 0.1
PAPER_DENSITY_FLOOR = 1e-20


class _fit_method:
    """Make ``Cls.fit(...)`` shorthand for ``Cls().fit(...)`` (default options) while ``obj.fit(...)``
    stays an ordinary method call."""

    def __init__(self, func):
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, obj, owner):
        target = obj if obj is not None else owner()
        return self.func.__get__(target, owner)


def _as_scores(values: Any, name: str) -> np.ndarray:
    """1-D float64 array of finite scores, or a ValueError naming ``name``."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1) if np.ndim(values) <= 1 else None
    if arr is None:
        raise ValueError(f"{name}: expected a 1-D array of scores, got shape {np.shape(values)}")
    if arr.size == 0:
        raise ValueError(f"{name}: no scores (empty array); a KDE needs at least one score")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: {int(bad.sum())} non-finite score(s) (first at index {i}: {arr[i]}); "
                         "remove or fix NaN/inf scores before fitting a KDE")
    return arr


def _check_bandwidth(bandwidth: float, name: str = "bandwidth") -> float:
    bw = float(bandwidth)
    if not (math.isfinite(bw) and bw > 0):
        raise ValueError(f"{name} must be a finite positive number, got {bandwidth!r}")
    return bw


class GaussianKDE1D:
    """Gaussian KDE on the real line, fast on large data and exact in the tails.

    Parameters
    ----------
    grid_points_per_bandwidth: grid spacing of the FFT path is bandwidth / this.
    grid_rel_threshold: grid values below this fraction of the grid maximum are not trusted
        (FFT round-off and binning error grow there); such x are evaluated exactly.
    exact_budget: if evaluating every x exactly needs at most this many kernel terms, the grid
        is not used at all.
    max_grid: largest FFT grid; a finer grid is coarsened to this (with a log warning).
    """

    _TERM_CUT = 50.0      # drop kernel terms below e^-50 of the largest one (per x)
    _KERNEL_CUT = 12.0    # grid kernel truncated at 12 bandwidths (e^-72)
    _GRID_PAD = 8.0       # grid extends this many bandwidths beyond the data
    _BLOCK_TERMS = 1 << 16   # window terms per dense block of the exact path
    _FACTOR_A = 4.0       # factorised block sums (_factor_sum): |a| <= 4 ...
    _FACTOR_SHIFT = 25.0  # ... and every row's nearest term >= e^-25 (its z^2 <= 25)

    def __init__(self, grid_points_per_bandwidth: int = 100, grid_rel_threshold: float = 1e-9,
                 exact_budget: float = 3e7, max_grid: int = 1 << 22):
        self.grid_points_per_bandwidth = int(grid_points_per_bandwidth)
        self.grid_rel_threshold = float(grid_rel_threshold)
        self.exact_budget = float(exact_budget)
        self.max_grid = int(max_grid)
        self.data_: np.ndarray | None = None
        self.bandwidth_: float | None = None
        self._grid: tuple[float, float, np.ndarray] | None = None
        self.last_method_: dict[str, int] = {}

    # ------------------------------------------------------------------ fitting
    @_fit_method
    def fit(self, scores: Any, bandwidth: float) -> "GaussianKDE1D":
        """Store the sorted training scores and the bandwidth (score units). Raises ValueError on
        empty input, NaN/inf scores or a non-positive bandwidth."""
        self.data_ = np.sort(_as_scores(scores, "KDE training scores"))
        self.bandwidth_ = _check_bandwidth(bandwidth)
        self._grid = None
        return self

    @property
    def n(self) -> int:
        self._check_fitted()
        return int(self.data_.size)

    def _check_fitted(self) -> None:
        if self.data_ is None:
            raise RuntimeError("GaussianKDE1D is not fitted: call fit(scores, bandwidth) first")

    # --------------------------------------------------------------- evaluation
    def log10_pdf(self, x: Any) -> np.ndarray:
        """log10 of the density at ``x`` (array of any shape; NaN -> NaN, +-inf -> -inf)."""
        return self.ln_pdf(x) / LN10

    def pdf(self, x: Any) -> np.ndarray:
        """Density at ``x`` (per score unit); underflows to 0 far in the tails, use log10_pdf there."""
        return np.exp(self.ln_pdf(x))

    def ln_pdf(self, x: Any) -> np.ndarray:
        """Natural log of the density at ``x`` (same conventions as log10_pdf)."""
        self._check_fitted()
        x = np.asarray(x, dtype=np.float64)
        shape, x = x.shape, x.reshape(-1)
        out = np.full(x.size, -np.inf)
        out[np.isnan(x)] = np.nan
        finite = np.flatnonzero(np.isfinite(x))
        self.last_method_ = {"grid": 0, "exact": 0}
        if finite.size:
            xf = x[finite]
            if self._exact_is_cheap(xf):
                out[finite] = self._exact_sorted(xf)
                self.last_method_["exact"] = int(finite.size)
            else:
                out[finite] = self._ln_pdf_grid(xf)
        return out.reshape(shape)

    def _ln_pdf_grid(self, x: np.ndarray) -> np.ndarray:
        """ln f of finite ``x`` from the FFT grid, exact wherever the grid is not trusted."""
        vals, ok = self._grid_eval(x)
        bad = ~ok
        if bad.any():
            vals[bad] = self._exact_sorted(x[bad])
        self.last_method_ = {"grid": int(ok.sum()), "exact": int(bad.sum())}
        return vals

    def _exact_is_cheap(self, x: np.ndarray, sample: tuple | None = None) -> bool:
        """Whether exact evaluation of all ``x`` needs at most ``exact_budget`` kernel terms, estimated
        from an evenly strided sample of <= 2,000 points (``sample``: it, sorted, with its _nearest)."""
        if x.size * float(self.n) <= self.exact_budget:
            return True
        if sample is None:
            xs = np.sort(x[:: max(1, x.size // 2000)])
            sample = (xs, *self._nearest(xs))
        lo, hi = self._bounds(*sample)
        return float(np.mean(hi - lo)) * x.size <= self.exact_budget

    def _exact_sorted(self, x: np.ndarray) -> np.ndarray:
        """Exact ln f(x), computed on sorted x (cache-friendly searches) and put back in order."""
        order = np.argsort(x, kind="stable")
        xs = x[order]
        near, dist = self._nearest(xs)
        out = np.empty(x.size)
        out[order] = self._exact(xs, *self._bounds(xs, near, dist), near)
        return out

    def _nearest(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of the training point nearest to each x and its distance (no bandwidth involved)."""
        d = self.data_
        idx = np.searchsorted(d, x)
        left, right = np.clip(idx - 1, 0, d.size - 1), np.clip(idx, 0, d.size - 1)
        near = np.where(np.abs(d[right] - x) < np.abs(x - d[left]), right, left)
        return near, np.abs(x - d[near])

    def _bounds(self, x: np.ndarray, near: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index window [lo, hi) per x: the points whose term is within e^-_TERM_CUT of the nearest's."""
        d, h = self.data_, self.bandwidth_
        r = np.sqrt(dist * dist + 2.0 * self._TERM_CUT * h * h)
        lo = np.minimum(np.searchsorted(d, x - r, side="left"), near)
        hi = np.maximum(np.searchsorted(d, x + r, side="right"), near + 1)
        return lo, hi

    def _exact(self, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, near: np.ndarray) -> np.ndarray:
        """Exact ln f(x) (x sorted): the sum over each x's window, in blocks of rows (:meth:`_blocks`),
        one dense (rows x union of their windows) array per block in one reused buffer; the extra
        terms a row so sums are each below e^-50 of its largest. Term: exp(-z^2), z = (x - d) k,
        k = 1 / (h sqrt 2); a block is summed by :meth:`_factor_sum` where its conditions hold, else
        (far tails, wide blocks) as exp(s - z^2), shifted by each row's nearest-point s = z_n^2."""
        d, h = self.data_, self.bandwidth_
        out = np.empty(x.size)
        k = 1.0 / (h * math.sqrt(2.0))
        shift = np.square((x - d[near]) * k)
        starts, ends = self._blocks(lo, hi, x, k)
        lbs, hbs = np.minimum.reduceat(lo, starts), np.maximum.reduceat(hi, starts)
        centre = 0.5 * (x[starts] + x[ends - 1])
        factor = ((ends - starts >= 2) & ((x[ends - 1] - centre) * k <= self._FACTOR_A)
                  & (np.maximum.reduceat(shift, starts) <= self._FACTOR_SHIFT))
        buf = np.empty(int(np.max((ends - starts) * (hbs - lbs))))
        for s, e, lb, hb, c, f in zip(starts.tolist(), ends.tolist(), lbs.tolist(), hbs.tolist(), centre.tolist(),
                                      factor.tolist()):
            q = buf[:(e - s) * (hb - lb)].reshape(e - s, hb - lb)
            if f:
                out[s:e] = self._factor_sum(x[s:e], d[lb:hb], c, k, q)
                continue
            np.subtract(x[s:e, None], d[None, lb:hb], out=q)
            q *= k
            np.square(q, out=q)
            np.subtract(shift[s:e, None], q, out=q)
            np.exp(q, out=q)
            out[s:e] = np.log(q.sum(axis=1)) - shift[s:e]
        return out - math.log(d.size * h) - _LN_SQRT_2PI

    @staticmethod
    def _factor_sum(xb: np.ndarray, db: np.ndarray, c: float, k: float, q: np.ndarray) -> np.ndarray:
        """ln sum_j exp(-((x_i - d_j) k)^2) of a block by exp(-(a - b)^2) = exp(-a^2) exp(2ab) exp(-b^2), a = (x - c) k,
        b = (d - c) k about the block centre c: one exp per term, row sums by a matrix-vector product. Used when |a| <= 4
        and each row's nearest term >= e^-25: |b| <= 12.7, |2ab| <= 102, ~1e-13 rounding (docs/slr_metrics.md)."""
        a = (xb - c) * k
        b = (db - c) * k
        np.multiply((a + a)[:, None], b[None, :], out=q)
        np.exp(q, out=q)
        return np.log(q @ np.exp(-b * b)) - a * a

    def _blocks(self, lo: np.ndarray, hi: np.ndarray, x: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends) of row ranges [s, e) of about _BLOCK_TERMS window terms, also cut where x k
        crosses a multiple of 2 _FACTOR_A (for :meth:`_factor_sum`) unless blocks get < 8 rows on
        average; a block whose union window exceeds 1.5x its rows' own terms is halved (sparse tails)."""
        counts = hi - lo
        ends = np.cumsum(counts)
        if x.size < 8 and ends[-1] <= self._BLOCK_TERMS:     # a few points (a case): one block each
            return np.arange(x.size), np.arange(1, x.size + 1)
        cuts = np.searchsorted(ends, np.arange(self._BLOCK_TERMS, ends[-1], self._BLOCK_TERMS), side="right")
        if self._FACTOR_A > 0:
            spans = np.flatnonzero(np.diff(np.floor((x - x[0]) * (k / (2.0 * self._FACTOR_A))))) + 1
            if spans.size * 8 < x.size:
                cuts = np.concatenate((cuts, spans))
        bounds = np.unique(np.concatenate(([0], cuts, [counts.size])))
        starts, ends = bounds[:-1], bounds[1:]
        union = np.maximum.reduceat(hi, starts) - np.minimum.reduceat(lo, starts)
        wide = (ends - starts > 1) & ((ends - starts) * union > 1.5 * np.add.reduceat(counts, starts) + 2048)
        if not wide.any():
            return starts, ends
        todo = [(int(a), int(b)) for a, b in zip(starts[wide], ends[wide])]
        done = list(zip(starts[~wide].tolist(), ends[~wide].tolist()))
        while todo:
            s, e = todo.pop()
            m = (s + e) // 2
            for u, v in ((s, m), (m, e)):
                if v - u > 1 and (v - u) * int(hi[u:v].max() - lo[u:v].min()) > 1.5 * int(counts[u:v].sum()) + 2048:
                    todo.append((u, v))
                else:
                    done.append((u, v))
        se = np.array(sorted(done), dtype=np.int64)
        return se[:, 0], se[:, 1]

    def _build_grid(self) -> tuple[float, float, np.ndarray]:
        d, h = self.data_, self.bandwidth_
        step = h / self.grid_points_per_bandwidth
        g0 = d[0] - self._GRID_PAD * h
        span = (d[-1] + self._GRID_PAD * h) - g0
        m = int(math.ceil(span / step)) + 1
        if m > self.max_grid:
            log.warning("KDE grid of %d points for bandwidth %.3g over a score range of %.3g exceeds "
                        "%d; using a coarser grid (less accurate bulk values)", m, h, span, self.max_grid)
            m = self.max_grid
            step = span / (m - 1)
        pos = (d - g0) / step
        j = np.clip(np.floor(pos).astype(np.int64), 0, m - 2)
        w = pos - j
        counts = np.bincount(j, weights=1.0 - w, minlength=m) + np.bincount(j + 1, weights=w, minlength=m)
        dens = smooth_counts(counts, int(math.ceil(self._KERNEL_CUT * h / step)), step / h)
        dens /= d.size * h * math.sqrt(2.0 * math.pi)
        trusted = dens >= self.grid_rel_threshold * dens.max()
        lg = np.full(m, -np.inf)
        lg[trusted] = np.log(dens[trusted])
        self._grid = (g0, step, lg)
        return self._grid

    def _grid_eval(self, x: np.ndarray):
        """ln f from the grid and a mask of the x where both neighbouring grid values are trusted."""
        g0, step, lg = self._grid if self._grid is not None else self._build_grid()
        pos = (x - g0) / step
        inside = (pos >= 0) & (pos < lg.size - 1)
        j = np.where(inside, np.floor(np.where(inside, pos, 0)).astype(np.int64), 0)
        t = pos - j
        a, b = lg[j], lg[j + 1]
        ok = inside & np.isfinite(a) & np.isfinite(b)
        with np.errstate(invalid="ignore"):
            vals = a + t * (b - a)
        return vals, ok


def sklearn_log10_pdf(scores: Any, bandwidth: float, x: Any) -> np.ndarray:
    """Reference: log10 density from sklearn's KernelDensity (exact tree sum; slow on big data)."""
    from sklearn.neighbors import KernelDensity
    kde = KernelDensity(bandwidth=float(bandwidth)).fit(np.asarray(scores, float).reshape(-1, 1))
    return kde.score_samples(np.asarray(x, float).reshape(-1, 1)) / LN10


class KDELikelihoodRatio:
    """Score-based LR from one Gaussian KDE per hypothesis: LLR(x) = log10 f_Hp(x) - log10 f_Hd(x).

    Hp = real (project label 0, numerator), Hd = fake (label 1). No clipping: far from both training
    sets the LLR follows the ratio of the two Gaussian tails (it grows like x^2 when the bandwidths
    differ); bound it with slr.elub.ELUBBounder fitted on calibration data.
    """

    def __init__(self, **kde_options: Any):
        self.kde_options = kde_options
        self.kde_hp: GaussianKDE1D | None = None
        self.kde_hd: GaussianKDE1D | None = None

    @_fit_method
    def fit(self, hp_scores: Any, hd_scores: Any, bandwidth_hp: float, bandwidth_hd: float) -> "KDELikelihoodRatio":
        try:
            self.kde_hp = GaussianKDE1D(**self.kde_options).fit(hp_scores, bandwidth_hp)
        except ValueError as exc:
            raise ValueError(f"Hp (real) scores: {exc}") from exc
        try:
            self.kde_hd = GaussianKDE1D(**self.kde_options).fit(hd_scores, bandwidth_hd)
        except ValueError as exc:
            raise ValueError(f"Hd (fake) scores: {exc}") from exc
        return self

    def llr(self, x: Any) -> np.ndarray:
        """log10 LR at scores ``x``. NaN -> NaN. At x = +-inf both densities vanish and the limit of
        the ratio is returned (+-inf, or a finite value when both tails have the same shape)."""
        if self.kde_hp is None:
            raise RuntimeError("KDELikelihoodRatio is not fitted: call fit(...) first")
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            out = self.kde_hp.log10_pdf(x) - self.kde_hd.log10_pdf(x)
        for sign in (1.0, -1.0):
            m = x == sign * np.inf
            if np.any(m):
                out[m] = self._tail_limit(sign)
        return out

    def _tail_limit(self, sign: float) -> float:
        """lim LLR(x) for x -> sign*inf: the wider kernel wins; with equal bandwidths the more extreme
        training point wins; if those tie too, the ratio of the weights of the extreme points."""
        hp, hd = self.kde_hp, self.kde_hd
        if hp.bandwidth_ != hd.bandwidth_:
            return math.inf if hp.bandwidth_ > hd.bandwidth_ else -math.inf
        e_hp = hp.data_[-1] if sign > 0 else hp.data_[0]
        e_hd = hd.data_[-1] if sign > 0 else hd.data_[0]
        if e_hp != e_hd:
            return math.inf if sign * (e_hp - e_hd) > 0 else -math.inf
        k_hp = np.count_nonzero(hp.data_ == e_hp) / hp.n
        k_hd = np.count_nonzero(hd.data_ == e_hd) / hd.n
        return math.log10(k_hp / k_hd)


# ---------------------------------------------------------------- bandwidth selection
def cv_bandwidth(scores: Any, grid: Any, n_folds: int = 10, seed: int = 42) -> tuple[float, dict]:
    """Gaussian-KDE bandwidth maximising the k-fold cross-validated held-out log-likelihood.

    For every bandwidth in ``grid`` (score units): mean over the ``n_folds`` folds (KFold, shuffled
    with ``seed``) of the held-out fold's total natural-log likelihood under the KDE fitted on the
    other folds -- the same criterion as sklearn ``KernelDensity.score`` in a ``GridSearchCV``.
    Ties go to the first grid value. Returns (best bandwidth, {"bandwidth": grid, "cv_loglik": means}).
    """
    x = _as_scores(scores, "bandwidth CV scores")
    grid = np.asarray(grid, dtype=np.float64).reshape(-1)
    if grid.size == 0:
        raise ValueError("bandwidth grid is empty")
    for g in grid:
        _check_bandwidth(g, "every bandwidth in the CV grid")
    if x.size < n_folds:
        raise ValueError(f"{n_folds}-fold bandwidth CV needs at least {n_folds} scores, got {x.size}")
    folds = list(KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(x))
    cv = np.empty(grid.size)
    kde = GaussianKDE1D()
    for i, bw in enumerate(grid):
        totals = [float(np.sum(kde.fit(x[tr], bw).ln_pdf(x[te]))) for tr, te in folds]
        cv[i] = np.mean(totals)
    best = int(np.argmax(cv))
    return float(grid[best]), {"bandwidth": grid.copy(), "cv_loglik": cv}


def fd_histogram_bins(scores: np.ndarray) -> int:
    """The paper's Freedman-Diaconis bin count: 5 bins below 10 scores; bin width 2 IQR n^(-1/3)
    (the sample standard deviation if the IQR is 0); ceil(range / (width + 1e-10)), at least 1."""
    n = scores.size
    if n < 10:
        return 5
    q75, q25 = np.percentile(scores, [75, 25])
    iqr = q75 - q25
    if iqr == 0:
        iqr = np.std(scores, ddof=1)
    width = 2.0 * iqr * n ** (-1.0 / 3.0)
    return max(1, int(np.ceil((scores.max() - scores.min()) / (width + 1e-10))))


def paper_bandwidth(scores: Any, seed: int = 42) -> tuple[float, dict]:
    """The paper's bandwidth rule (paper_method.md), step by step.

    1. best = cv_bandwidth over 30 log-spaced values 0.001..0.1, 10-fold KFold(shuffle, seed).
    2. floor = 0.005, or 0.01 if n < 100 or IQR < 0.1 (IQR from np.percentile, linear).
    3. if |skewness| > 1 (scipy.stats.skew, biased): bw = max(1.2 bw, floor).
    4. if the density histogram with fd_histogram_bins bins has >= 2 peaks by
       scipy.signal.find_peaks(hist, distance=0.1 * bins): bw = max(1.5 bw, floor).
       (find_peaks rejects a distance < 1, which the paper's code would crash on below 10 bins;
       here the distance is raised to 1 and ``details["peak_distance"]`` records it.)
    5. bw = max(bw, floor).
    Returns (bandwidth, details) with every intermediate value.
    """
    x = _as_scores(scores, "paper bandwidth scores")
    best, table = cv_bandwidth(x, PAPER_BW_GRID, n_folds=10, seed=seed)
    n = int(x.size)
    q75, q25 = np.percentile(x, [75, 25])
    iqr = float(q75 - q25)
    floor = PAPER_MIN_BW_SMALL if (n < 100 or iqr < 0.1) else PAPER_MIN_BW
    skew = float(scipy.stats.skew(x)) if n > 1 and np.ptp(x) > 0 else 0.0
    bw = best
    skew_applied = abs(skew) > 1.0
    if skew_applied:
        bw = max(bw * PAPER_SKEW_FACTOR, floor)
    after_skew = bw
    bins = fd_histogram_bins(x)
    hist, _ = np.histogram(x, bins=bins, density=True)
    distance = max(1.0, 0.1 * bins)
    peaks, _ = scipy.signal.find_peaks(hist, distance=distance)
    multimodal = len(peaks) >= 2
    if multimodal:
        bw = max(bw * PAPER_MULTIMODAL_FACTOR, floor)
    after_multimodal = bw
    final = max(floor, bw)
    details = {
        "n": n, "cv_grid": table["bandwidth"].tolist(), "cv_loglik": table["cv_loglik"].tolist(),
        "cv_best": best, "iqr": iqr, "floor": floor, "skewness": skew, "skew_applied": bool(skew_applied),
        "after_skew": after_skew, "fd_bins": int(bins), "peak_distance": distance,
        "hist_peaks": [int(p) for p in peaks], "multimodal_applied": bool(multimodal),
        "after_multimodal": after_multimodal, "final": final,
    }
    return float(final), details


def silverman_bandwidth(scores: Any) -> float:
    """Silverman's rule of thumb 0.9 min(sd, IQR/1.34) n^(-1/5) (score units), for reference."""
    x = _as_scores(scores, "scores")
    sd = np.std(x, ddof=1)
    q75, q25 = np.percentile(x, [75, 25])
    spread = min(sd, (q75 - q25) / 1.34) if q75 > q25 else sd
    return float(0.9 * spread * x.size ** (-0.2))


# ---------------------------------------------------------------- the paper's LR evaluation
def paper_grid_llr(fit_hp: Any, fit_hd: Any, bandwidth_hp: float, bandwidth_hd: float,
                   eval_scores: Any) -> np.ndarray:
    """The paper's LLR computation (its script 5), reproduced exactly.

    KDEs are fitted on ``fit_hp`` / ``fit_hd``; both densities are evaluated on a 1,000-point grid
    from min - 0.1 to max + 0.1 of all fit scores together, floored at 1e-20, each divided by its
    trapezoid-rule area on the grid (the area of the unfloored density, as the paper's code does),
    linearly interpolated at ``eval_scores`` (outside the grid the edge value is used, like the
    paper's interp1d fill_value), and LLR = log10 f_Hp - log10 f_Hd,
    without clipping. Under the paper protocol the fit sets are the evaluated split itself
    (resubstitution); the floor caps |LLR| at about 20 - log10(peak density).
    """
    hp = _as_scores(fit_hp, "paper LLR Hp fit scores")
    hd = _as_scores(fit_hd, "paper LLR Hd fit scores")
    x = np.asarray(eval_scores, dtype=np.float64)
    lo = min(hp.min(), hd.min()) - PAPER_GRID_PAD
    hi = max(hp.max(), hd.max()) + PAPER_GRID_PAD
    grid = np.linspace(lo, hi, PAPER_GRID_POINTS)
    dens = []
    for data, bw in ((hp, bandwidth_hp), (hd, bandwidth_hd)):
        f = np.exp(GaussianKDE1D().fit(data, bw).ln_pdf(grid))
        # as in the paper's code: the area is taken of the density before flooring
        dens.append(np.maximum(f, PAPER_DENSITY_FLOOR) / np.trapezoid(f, grid))
    f_hp = np.interp(x, grid, dens[0])
    f_hd = np.interp(x, grid, dens[1])
    return np.log10(f_hp) - np.log10(f_hd)
