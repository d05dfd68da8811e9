"""Stage 05: sanity checks of feature dumps: shapes, dtypes, counts per split and label, NaN/inf.

Counts are exact integers; the NaN/inf scan reads the (memory-mapped) feature matrix in blocks of
``block_rows`` rows, so memory stays bounded for full-map dumps (131,072 values per row).
"""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from common.features import FeatureDump


def check_dump(dump: FeatureDump, block_rows: int = 1024, progress: bool = False) -> dict:
    """Numbers of one dump (see module docstring); ``ok`` is False when any value is NaN/inf."""
    n = len(dump)
    feats = dump.features
    nan_rows = inf_rows = nan_values = inf_values = 0
    fmin, fmax, total, total_sq = np.inf, -np.inf, 0.0, 0.0
    for start in tqdm(range(0, n, block_rows), desc="05 scan", disable=not progress, leave=False):
        block = np.asarray(feats[start:start + block_rows]).reshape(min(block_rows, n - start), -1)
        isnan, isinf = np.isnan(block), np.isinf(block)
        nan_rows += int(isnan.any(axis=1).sum())
        inf_rows += int(isinf.any(axis=1).sum())
        nan_values += int(isnan.sum())
        inf_values += int(isinf.sum())
        finite = block[np.isfinite(block)].astype(np.float64)
        if finite.size:
            fmin, fmax = min(fmin, float(finite.min())), max(fmax, float(finite.max()))
            total += float(finite.sum())
            total_sq += float((finite ** 2).sum())
    n_finite = n * dump.dim - nan_values - inf_values
    mean = total / n_finite if n_finite else float("nan")
    std = float(np.sqrt(max(total_sq / n_finite - mean ** 2, 0.0))) if n_finite else float("nan")
    prob = np.asarray(dump.fake_probability, dtype=np.float64)
    labels = dump.labels
    vids_real = set(dump.video_ids[labels == 0].tolist())
    vids_fake = set(dump.video_ids[labels == 1].tolist())
    prob_nan = int(np.isnan(prob).sum())
    prob_out = int(((prob < 0) | (prob > 1)).sum())
    return {
        "source": dump.source, "n": n, "shape": list(feats.shape), "dtype": str(feats.dtype), "dim": dump.dim,
        "n_real": int((labels == 0).sum()), "n_fake": int((labels == 1).sum()),
        "n_videos_real": len(vids_real), "n_videos_fake": len(vids_fake),
        "videos_with_both_labels": len(vids_real & vids_fake),
        "nan_rows": nan_rows, "inf_rows": inf_rows, "nan_values": nan_values, "inf_values": inf_values,
        "feature_min": fmin if np.isfinite(fmin) else float("nan"),
        "feature_max": fmax if np.isfinite(fmax) else float("nan"), "feature_mean": mean, "feature_std": std,
        "fake_probability_nan": prob_nan, "fake_probability_outside_0_1": prob_out,
        "ok": nan_values == 0 and inf_values == 0 and prob_out == 0 and not (vids_real & vids_fake),
    }


TABLE_COLUMNS = ("split", "n", "shape", "dtype", "n_real", "n_fake", "n_videos_real", "n_videos_fake",
                 "nan_rows", "inf_rows", "fake_probability_nan", "ok")


def table(results: dict[str, dict]) -> str:
    """A fixed-width text table of the main numbers, one row per split."""
    rows = [[str(name)] + [("x".join(map(str, r[c])) if c == "shape" else str(r[c])) for c in TABLE_COLUMNS[1:]]
            for name, r in results.items()]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(TABLE_COLUMNS)]
    def line(cells):
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(TABLE_COLUMNS), line(["-" * w for w in widths])] + [line(r) for r in rows])


def plot_counts(ax, results: dict[str, dict]) -> None:
    """Grouped bars: real and fake frames per split, on an Axes the caller owns."""
    names = list(results)
    x = np.arange(len(names))
    real = [results[n]["n_real"] for n in names]
    fake = [results[n]["n_fake"] for n in names]
    ax.bar(x - 0.2, real, 0.4, label="real (label 0)", color="tab:blue")
    ax.bar(x + 0.2, fake, 0.4, label="fake (label 1)", color="tab:red")
    ax.set_xticks(x, names)
    ax.set(title="Frames per split and label", xlabel="split", ylabel="frames (count)")
    ax.legend()
