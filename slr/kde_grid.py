"""The FFT smoothing of the KDE's binned grid (slr.kde.GaussianKDE1D's grid path), with the kernel's
transform cached: in grid units every bandwidth has the same kernel, so a bandwidth search over
many folds and bandwidths transforms it a few dozen times instead of once per grid.
"""
from __future__ import annotations

import numpy as np
import scipy.fft

_CACHE: dict[tuple[int, float, int], np.ndarray] = {}
_CACHE_MAX_ENTRIES = 256
_CACHE_MAX_LEN = 1 << 18     # longer transforms are not kept (a few MB at most in all)


def smooth_counts(counts: np.ndarray, half: int, ratio: float) -> np.ndarray:
    """``scipy.signal.fftconvolve(counts, kernel, mode="same")`` with the kernel exp(-(i ratio)^2 / 2),
    i = -half..half, computed by the same FFT calls, so the same bits (tests/test_kde_speed_golden.py);
    the kernel's transform is cached by (half, ratio, FFT length)."""
    fl = scipy.fft.next_fast_len(counts.size + 2 * half, True)
    key = (half, ratio, fl)
    kf = _CACHE.get(key)
    if kf is None:
        k = np.arange(-half, half + 1) * ratio
        kf = scipy.fft.rfft(np.exp(-0.5 * k * k), fl)
        if fl <= _CACHE_MAX_LEN:
            if len(_CACHE) >= _CACHE_MAX_ENTRIES:
                _CACHE.clear()
            _CACHE[key] = kf
    return scipy.fft.irfft(scipy.fft.rfft(counts, fl) * kf, fl)[half:half + counts.size].copy()
