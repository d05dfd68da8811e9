"""Video-level aggregation shared by every stage: a video's score is the mean over its frames
(or windows)."""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np


class VideoMeans(NamedTuple):
    video_ids: np.ndarray       # (V,) str, in order of first appearance
    scores: np.ndarray          # (V,) float64 mean score per video
    labels: np.ndarray | None   # (V,) int64, 1 if any frame of the video is labelled 1 (None without labels)
    counts: np.ndarray          # (V,) int64 frames per video
    mixed: np.ndarray | None    # (V,) bool: the video's frames carry both labels (callers report it)


def video_means(video_ids: Sequence, scores: Sequence[float], labels: Sequence[int] | None = None) -> VideoMeans:
    """Mean of ``scores`` per video id, videos in order of first appearance."""
    vids = np.asarray(video_ids).astype(str)
    scores = np.asarray(scores, dtype=np.float64)
    if len(vids) != len(scores):
        raise ValueError(f"{len(vids)} video ids for {len(scores)} scores")
    uniq, first, inverse = np.unique(vids, return_index=True, return_inverse=True)
    order = np.argsort(first)
    counts = np.bincount(inverse, minlength=len(uniq))
    means = np.bincount(inverse, weights=scores, minlength=len(uniq)) / counts
    labs = mixed = None
    if labels is not None:
        lab_sum = np.bincount(inverse, weights=np.asarray(labels, dtype=np.float64), minlength=len(uniq))
        mixed = ((lab_sum != 0) & (lab_sum != counts))[order]
        labs = (lab_sum > 0).astype(np.int64)[order]
    return VideoMeans(uniq[order], means[order], labs, counts[order].astype(np.int64), mixed)
