"""Classifier metrics on fake probabilities: pure numpy functions, checked against scikit-learn.

Conventions: ``labels`` are 1 = fake, 0 = real; ``scores`` are fake probabilities (higher = more
likely fake), so the positive class of every curve is *fake*. Rates are fractions in [0, 1]; AUC,
AP and EER are fractions too (multiply by 100 for per cent). Video-level results use the mean fake
probability over each video's frames (DeepfakeBench's rule).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.io import InputError
from common.videos import video_means


def _check(labels, scores, what: str = "predictions") -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise InputError(f"{what}: {len(y)} labels but {len(s)} scores")
    if not np.isin(y, (0, 1)).all():
        raise InputError(f"{what}: labels must be 0 (real) or 1 (fake)")
    if not np.isfinite(s).all():
        bad = int(np.argmax(~np.isfinite(s)))
        raise InputError(f"{what}: score at row {bad} is {s[bad]}; scores must be finite")
    return y, s


def two_classes(labels) -> bool:
    y = np.asarray(labels)
    return bool((y == 0).any() and (y == 1).any())


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC of "fake" vs "real": (fpr, tpr, thresholds), thresholds decreasing, starting at +inf.

    Point k counts scores >= thresholds[k] as fake; tied scores form one point (as scikit-learn,
    but keeping every distinct threshold).
    """
    y, s = _check(labels, scores)
    if not two_classes(y):
        raise InputError("ROC needs both real (0) and fake (1) labels")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]    # last index of each tied group
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    tpr = np.r_[0.0, tp / y.sum()]
    fpr = np.r_[0.0, fp / (len(y) - y.sum())]
    return fpr, tpr, np.r_[np.inf, s[last]]


def roc_auc(labels, scores) -> float:
    """Area under the ROC = P(score_fake > score_real) + 0.5 P(tie) (Mann-Whitney), a fraction."""
    y, s = _check(labels, scores)
    if not two_classes(y):
        raise InputError("AUC needs both real (0) and fake (1) labels")
    fpr, tpr, _ = roc_curve(y, s)
    return float(np.trapezoid(tpr, fpr))


def precision_recall_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) for "fake" as the positive class, thresholds decreasing."""
    y, s = _check(labels, scores)
    if not (y == 1).any():
        raise InputError("precision-recall needs at least one fake (1) label")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1]
    tp = np.cumsum(y_sorted)[last]
    predicted = last + 1
    precision = tp / predicted
    recall = tp / y.sum()
    return precision, recall, s_sorted[last]


def average_precision(labels, scores) -> float:
    """AP = sum_k (R_k - R_{k-1}) P_k over decreasing thresholds (no interpolation), a fraction."""
    precision, recall, _ = precision_recall_curve(labels, scores)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def accuracy(labels, scores, threshold: float = 0.5) -> float:
    """Fraction correct when score >= threshold is called fake."""
    y, s = _check(labels, scores)
    return float(np.mean((s >= threshold).astype(np.int64) == y))


def eer(labels, scores) -> tuple[float, float]:
    """Equal error rate (fraction) and the score threshold where it is reached.

    The false-positive rate (real called fake) and the false-negative rate (fake called real) are
    linearly interpolated between neighbouring ROC points at the crossing FPR = FNR.
    """
    fpr, tpr, thr = roc_curve(labels, scores)
    fnr = 1.0 - tpr
    diff = fpr - fnr                     # increases from -1 to +1 along the ROC
    k = int(np.flatnonzero(diff >= 0)[0])
    if diff[k] == 0 or k == 0:
        return float(fpr[k]), float(thr[k])
    t = -diff[k - 1] / (diff[k] - diff[k - 1])
    rate = fpr[k - 1] + t * (fpr[k] - fpr[k - 1])
    lo, hi = thr[k - 1], thr[k]
    threshold = hi if not np.isfinite(lo) else lo + t * (hi - lo)
    return float(rate), float(threshold)


def video_level(labels, scores, video_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean fake probability per video: (video_ids, labels, mean scores, frame counts), sorted by id.

    A video whose frames carry different labels is an error (it would mean a broken split file).
    """
    y, s = _check(labels, scores)
    if len(video_ids) != len(y):
        raise InputError(f"{len(video_ids)} video ids for {len(y)} predictions")
    v = video_means(video_ids, s, y)
    if v.mixed.any():
        raise InputError(f"video '{v.video_ids[np.argmax(v.mixed)]}' has frames labelled both real and fake")
    o = np.argsort(v.video_ids)
    return v.video_ids[o], v.labels[o], v.scores[o], v.counts[o]


@dataclass
class BinaryReport:
    n: int
    n_real: int
    n_fake: int
    auc: float
    ap: float
    acc: float
    eer: float
    eer_threshold: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def binary_report(labels, scores) -> BinaryReport:
    """AUC, AP, accuracy at 0.5 and EER (all fractions); NaN where a class is missing."""
    y, s = _check(labels, scores)
    nan = float("nan")
    if two_classes(y):
        e, t = eer(y, s)
        auc, ap = roc_auc(y, s), average_precision(y, s)
    else:
        e = t = auc = nan
        ap = average_precision(y, s) if (y == 1).any() else nan
    return BinaryReport(len(y), int((y == 0).sum()), int((y == 1).sum()), auc, ap, accuracy(y, s), e, t)


def frame_and_video_report(labels, scores, video_ids) -> dict:
    """``{"frame": {...}, "video": {...}}`` with the metrics of :func:`binary_report`."""
    _, vy, vs, _ = video_level(labels, scores, video_ids)
    return {"frame": binary_report(labels, scores).as_dict(), "video": binary_report(vy, vs).as_dict()}
