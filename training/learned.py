"""Did the detector learn? The raw detector score's AUC per pool and the "detector did not learn" flag.

An LR system fitted on the scores of a detector at chance is degenerate for a reason that lies
upstream of it (ELUB bounds of zero width, every LR near 1): the report must say so apart from the
LR system's own flags. The check uses the detector's raw fake logit (no LR model) per pool:

- ``detector_auc``: the frame AUC (fake as positive) with a 95 % person-cluster bootstrap interval
  (``slr.bootstrap.cluster_bootstrap``: persons resampled with all their frames, the same bootstrap
  as every LR figure's interval).
- ``verdict``: the detector "did not learn" when, on ``val`` or ``calib`` (pools it was not fitted
  on), the interval's pessimistic (lower) end is not above ``0.5 + training.learned.margin``. With
  the default margin 0 this is a one-sided 97.5 % test: the pool's persons cannot tell the detector
  from a coin. ``train`` and ``test`` are reported, not judged (train was fitted on; test is what
  the flag must not peek at).

Config keys (``training.learned``): ``margin``, ``bootstrap_n``, ``seed``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from common.config import Config
from common.io import InputError, read_csv
from slr.bootstrap import cluster_bootstrap

FLAG = "detector did not learn"
JUDGED_POOLS = ("val", "calib")


def settings(cfg: Config) -> dict:
    return {"margin": float(cfg.get("training.learned.margin")),
            "bootstrap_n": int(cfg.get("training.learned.bootstrap_n")),
            "seed": int(cfg.get("training.learned.seed"))}


def detector_auc(scores, labels, persons, bootstrap_n: int, seed: int) -> dict:
    """``{auc, ci95: [lo, hi], n_frames, n_persons}`` of detector scores that grow with "fake" (logit or
    fake probability; label 1 = fake). A pool with one class has no AUC (``auc`` None)."""
    z = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(persons).astype(str)
    out = {"auc": None, "ci95": None, "n_frames": int(z.size), "n_persons": int(len(set(p.tolist())))}
    if z.size == 0 or len(set(y.tolist())) < 2:
        return out
    if not np.all(np.isfinite(z)):
        raise InputError(f"detector scores hold {int(np.sum(~np.isfinite(z)))} non-finite value(s)")
    # slr's AUC takes Hp (label 0, real) as positive with higher values supporting it: pass -logit
    from slr.metrics import split_hypotheses, auc as lr_auc
    hp, hd = split_hypotheses(-z, y)
    out["auc"] = float(lr_auc(hp, hd))
    if bootstrap_n > 0:
        lo, hi = cluster_bootstrap(-z, y, p, metrics=("auc",), n=bootstrap_n, seed=seed)["auc"]
        out["ci95"] = [float(lo), float(hi)]
    return out


def verdict(per_pool: dict, margin: float) -> dict:
    """``{learned, flag, threshold, judged, failing}`` from ``{pool: detector_auc(...)}``: not learned
    when a judged pool's interval lower end (its AUC when there is no interval) is <= 0.5 + margin.
    ``learned`` is None when no judged pool has an AUC."""
    threshold = 0.5 + float(margin)
    judged, failing = [], []
    for pool in JUDGED_POOLS:
        rec = per_pool.get(pool) or {}
        if rec.get("auc") is None:
            continue
        judged.append(pool)
        low = rec["ci95"][0] if rec.get("ci95") else rec["auc"]
        if not (math.isfinite(low) and low > threshold):
            failing.append(pool)
    learned = None if not judged else not failing
    return {"learned": learned, "flag": FLAG if learned is False else None, "threshold": threshold,
            "judged": judged, "failing": failing,
            "rule": f"{FLAG} when the 95 % person-cluster interval's lower end of the raw detector AUC on "
                    f"val or calib is not above {threshold:g} (0.5 + training.learned.margin)"}


def pool_aucs_from_dumps(features_dir: Path, pools, bootstrap_n: int, seed: int) -> dict:
    """``{pool: detector_auc}`` from stage 04's ``<features_dir>/<pool>/meta.csv`` (logit, label, person_id)."""
    out = {}
    for pool in pools:
        path = Path(features_dir) / str(pool) / "meta.csv"
        if not path.is_file():
            continue
        cols = read_csv(path, required=("label", "logit"))
        persons = cols.get("person_id") or cols.get("video_id")
        out[str(pool)] = detector_auc([float(v) for v in cols["logit"]], [int(float(v)) for v in cols["label"]],
                                      persons, bootstrap_n, seed)
    return out


def describe(per_pool: dict, result: dict) -> str:
    """One line: the raw AUC per pool with intervals and the verdict."""
    parts = []
    for pool, rec in per_pool.items():
        if rec.get("auc") is None:
            continue
        ci = rec.get("ci95")
        parts.append(f"{pool} {rec['auc']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
    head = "raw detector AUC: " + (", ".join(parts) if parts else "none")
    if result.get("learned") is False:
        return f"{head}; {FLAG.upper()} ({', '.join(result['failing'])}: lower end <= {result['threshold']:g})"
    return head
