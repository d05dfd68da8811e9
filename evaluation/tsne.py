"""Stage 06: 2-D t-SNE of a split's features, real and fake coloured.

Above ``max_points`` rows a seeded random subset is embedded, drawn per label in proportion to the
label counts (so the real/fake mix is kept). Features are standardised per dimension and reduced
by PCA to at most ``pca_dims`` dimensions before t-SNE (standard practice; it makes full-map dumps
with 131,072 values per row tractable). Embedding coordinates have no unit.
"""
from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

from common.features import FeatureDump


def subsample_index(labels: np.ndarray, max_points: int | None, seed: int) -> np.ndarray:
    """Sorted row indices: all rows if ``max_points`` is None or not exceeded, else a stratified
    seeded subset of exactly ``max_points`` rows."""
    n = len(labels)
    if not max_points or n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    picks = []
    classes = np.unique(labels)
    quota = {c: int(round(max_points * (labels == c).sum() / n)) for c in classes}
    quota[classes[-1]] = max_points - sum(quota[c] for c in classes[:-1])
    for c in classes:
        rows = np.flatnonzero(labels == c)
        picks.append(rng.choice(rows, size=min(quota[c], len(rows)), replace=False))
    return np.sort(np.concatenate(picks))


def embed(features: np.ndarray, seed: int, perplexity: float = 30.0, pca_dims: int | None = 50,
          threads: int | None = None) -> np.ndarray:
    """(N, 2) t-SNE coordinates of ``features`` (N, D) after standardising and PCA.

    ``threads`` caps the OpenMP/BLAS threads (None = library default, all cores); on a shared,
    oversubscribed machine 1 thread is several times faster than spinning threads.
    """
    with threadpool_limits(limits=threads):
        return _embed(features, seed, perplexity, pca_dims)


def _embed(features: np.ndarray, seed: int, perplexity: float, pca_dims: int | None) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf; run stage 05 to find them")
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    if pca_dims and x.shape[1] > pca_dims and len(x) > pca_dims:
        x = PCA(n_components=pca_dims, random_state=seed).fit_transform(x)
    perplexity = min(float(perplexity), max(1.0, (len(x) - 1) / 3.0))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                learning_rate="auto").fit_transform(x)


def tsne_of_dump(dump: FeatureDump, seed: int, max_points: int | None = 2000, perplexity: float = 30.0,
                 pca_dims: int | None = 50, threads: int | None = None) -> dict:
    idx = subsample_index(dump.labels, max_points, seed)
    xy = embed(np.asarray(dump.features[idx]), seed, perplexity, pca_dims, threads)
    return {"index": idx, "xy": xy, "labels": dump.labels[idx], "image_paths": dump.image_paths[idx],
            "video_ids": dump.video_ids[idx]}


def plot_tsne(ax, xy: np.ndarray, labels: np.ndarray, title: str) -> None:
    """Scatter on an Axes the caller owns: real blue, fake red."""
    for lab, name, color in ((0, "real (label 0)", "tab:blue"), (1, "fake (label 1)", "tab:red")):
        m = labels == lab
        ax.scatter(xy[m, 0], xy[m, 1], s=6, alpha=0.6, c=color, label=f"{name}, n={int(m.sum())}")
    ax.set(title=title, xlabel="t-SNE 1 (no unit)", ylabel="t-SNE 2 (no unit)")
    ax.legend(markerscale=2)
