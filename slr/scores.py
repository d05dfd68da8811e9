"""Scores (stage 08): one score function, :func:`score_values`, used by stage 08 and by casework.

Score choices (``slr.score``), each in its natural direction (the LR models find the direction):

- ``cosine_centroid`` (the paper): cosine similarity of a frame's flattened feature to the
  centroid (arithmetic mean) of the flattened features of the real (label 0) frames of the
  ``train`` pool, in [-1, 1], higher = more like the real training frames;
- ``logit``: the detector's log-odds of fake (stage 04's ``logit`` column), higher = more fake;
- ``fake_probability``: the detector's probability of fake, in [0, 1], higher = more fake.

Real frames give the Hp scores, fake frames the Hd scores. The cosine is computed in float64 by
elementwise products and numpy's per-row (pairwise) sums, never BLAS, so a frame's score does not
depend on the batch it is computed in: stage 08 and casework give bit-identical scores.

Features are read ``batch_size`` rows at a time (a feature dump is a memory map), accumulated in
float64, so memory stays at about ``batch_size x D x 8`` bytes even for flattened 2048x8x8 conv
maps (D = 131,072).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from common.features import FeatureDump, read_feature_dump
from common.io import InputError, write_json
from common.registry import Registry
from common.splits import POOLS, read_split

from . import metrics, plots
from .io import ScoreSet, write_scores

log = logging.getLogger(__name__)


def iter_batches(features: np.ndarray, batch_size: int, rows: np.ndarray | None = None,
                 desc: str | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(row_index, batch)`` with batch = float64 (b, D) copies of ``features[row_index]``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = features.shape[0]
    rows = np.arange(n) if rows is None else np.asarray(rows)
    for start in tqdm(range(0, len(rows), batch_size), desc=desc, unit="batch", disable=desc is None,
                      leave=False):
        idx = rows[start:start + batch_size]
        # contiguous runs are read as slices (fast on memory maps); otherwise fancy indexing
        if len(idx) and idx[-1] - idx[0] == len(idx) - 1 and np.all(np.diff(idx) == 1):
            block = features[idx[0]:idx[-1] + 1]
        else:
            block = features[idx]
        yield idx, np.asarray(block, dtype=np.float64).reshape(len(idx), -1)


class StreamingCentroid:
    """Running mean of feature rows, accumulated in float64 one batch at a time."""

    def __init__(self):
        self.total: np.ndarray | None = None
        self.count = 0

    def add(self, batch: np.ndarray) -> "StreamingCentroid":
        batch = np.asarray(batch, dtype=np.float64).reshape(len(batch), -1)
        if self.total is None:
            self.total = np.zeros(batch.shape[1])
        elif batch.shape[1] != self.total.shape[0]:
            raise ValueError(f"feature size changed from {self.total.shape[0]} to {batch.shape[1]}")
        self.total += batch.sum(axis=0)
        self.count += len(batch)
        return self

    @property
    def centroid(self) -> np.ndarray:
        if not self.count:
            raise ValueError("no rows were added to the centroid")
        return self.total / self.count


def real_centroid(dump: FeatureDump, batch_size: int = 64) -> np.ndarray:
    """(D,) float64 mean of the real (label 0) rows of ``dump``."""
    rows = np.flatnonzero(dump.labels == 0)
    if not len(rows):
        raise InputError(f"{dump.source}: no real (label 0) rows; the centroid needs real training features")
    acc = StreamingCentroid()
    for _, batch in iter_batches(dump.features, batch_size, rows, desc="centroid"):
        acc.add(batch)
    c = acc.centroid
    if not np.all(np.isfinite(c)):
        raise InputError(f"{dump.source}: the real training features contain NaN or infinite values")
    if not np.any(c):
        raise InputError(f"{dump.source}: the centroid of the real training features is the zero vector; "
                         f"cosine similarity to it is undefined")
    return c


class BadScoreRow(InputError):
    """A row whose score is undefined (zero or non-finite feature, non-finite logit); ``row`` is its index."""

    def __init__(self, message: str, row: int):
        super().__init__(message)
        self.row = int(row)


def _row_sums(x: np.ndarray) -> np.ndarray:
    """Per-row sums by numpy's pairwise summation: the same bits whatever the number of rows."""
    return np.add.reduce(x, axis=1)


def _unit_centroid(centroid) -> np.ndarray:
    c = np.asarray(centroid, dtype=np.float64).ravel()
    norm = float(np.sqrt(np.add.reduce(c * c)))
    if not np.isfinite(norm) or norm == 0:
        raise InputError("the centroid is the zero vector or not finite; cosine similarity to it is undefined "
                         "(re-run stage 08 on finite real train features)")
    return c / norm


def _cosine_scores(features=None, centroid=None, **_) -> np.ndarray:
    if features is None or centroid is None:
        raise InputError("score 'cosine_centroid' needs the features and the centroid of the real train "
                         "features (stage 08's centroid.npy)")
    f = np.asarray(features)
    f = f.reshape(len(f), -1).astype(np.float64, copy=False)
    c_unit = _unit_centroid(centroid)
    if f.shape[1] != c_unit.shape[0]:
        raise InputError(f"features have {f.shape[1]} values per item, the centroid has {c_unit.shape[0]}; "
                         f"features and centroid must come from the same detector and layer")
    norms = np.sqrt(_row_sums(f * f))
    bad = ~(np.isfinite(norms) & (norms > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise BadScoreRow(f"feature row {i} is {'all zero' if np.isfinite(norms[i]) else 'not finite'}; "
                          f"its cosine similarity is undefined", i)
    return np.clip(_row_sums(f * c_unit) / norms, -1.0, 1.0)


def _detector_scores(name: str, raw) -> np.ndarray:
    if raw is None:
        raise InputError(f"score '{name}' needs the detector's {name.replace('_', ' ')} (stage 04's "
                         f"'{name}' column)")
    v = np.array(raw, dtype=np.float64).ravel()
    bad = ~np.isfinite(v) if name == "logit" else ~(np.isfinite(v) & (v >= 0) & (v <= 1))
    if bad.any():
        i = int(np.argmax(bad))
        raise BadScoreRow(f"row {i}: {name} is {v[i]}, expected a finite number"
                          f"{'' if name == 'logit' else ' in [0, 1]'}", i)
    return v


@dataclass(frozen=True)
class ScoreFunction:
    """One score of the registry: what it is, its axis label, and its function of an item's detector outputs."""
    description: str
    axis: str
    compute: Callable[..., np.ndarray]
    higher: str                     # the class a high score points to: "real" or "fake"


SCORES = Registry("score", {                                                              # slr.score
    "cosine_centroid": ScoreFunction(
        "cosine similarity to the centroid of the real train features (higher = more real)",
        "score: cosine similarity to the real-train centroid (unitless)", _cosine_scores, "real"),
    "logit": ScoreFunction("the detector's log-odds of fake, z_fake - z_real (higher = more fake)",
                           "score: detector logit of fake (log-odds, nats)",
                           lambda logit=None, **_: _detector_scores("logit", logit), "fake"),
    "fake_probability": ScoreFunction(
        "the detector's probability of fake (higher = more fake)", "score: detector fake probability (0-1)",
        lambda fake_probability=None, **_: _detector_scores("fake_probability", fake_probability), "fake"),
}, unknown="slr.score must be one of {names}, got {name}", error=InputError)
SCORE_NAMES = SCORES.names()
SCORE_DESCRIPTIONS = {n: SCORES.get(n).description for n in SCORES}
SCORE_HIGHER = {n: SCORES.get(n).higher for n in SCORES}
SCORE_AXIS = {n: SCORES.get(n).axis for n in SCORES}


def oriented_auc(name: str, hp: np.ndarray, hd: np.ndarray) -> tuple[float | None, str]:
    """AUC of score ``name`` oriented by the class a high score points to (``SCORE_HIGHER``): P(score
    of an item of that class > score of an item of the other) + half the ties, so 0.5 is chance, 1 a
    perfect separation and below 0.5 a reversed score. Returns (AUC or None without both classes, what it is)."""
    high = SCORE_HIGHER[name]
    what = (f"P(score of a {high} item > score of a {'fake' if high == 'real' else 'real'} item) + half the ties; "
            f"higher {name} = more {high}; 0.5 = chance, 1 = perfect, below 0.5 = reversed")
    if not (len(hp) and len(hd)):
        return None, what
    return float(metrics.auc(hp, hd) if high == "real" else metrics.auc(hd, hp)), what


def score_values(name: str, features=None, centroid=None, logit=None, fake_probability=None) -> np.ndarray:
    """The scores of ``slr.score`` = ``name`` for n items, float64 (n,). The one score function.

    - ``cosine_centroid``: needs ``features`` (n, D) or (n, ...) of any float dtype and ``centroid``
      (D,); cosine of each row to the centroid, computed in float64 with per-row pairwise sums
      (no BLAS), clipped to [-1, 1]. A row's value does not depend on the other rows.
    - ``logit``: needs ``logit`` (n,): the detector's log-odds of fake, as float64.
    - ``fake_probability``: needs ``fake_probability`` (n,) in [0, 1], as float64.

    Raises :class:`BadScoreRow` (an InputError with ``.row``) for an undefined score, InputError for
    a missing input or an unknown name.
    """
    return SCORES.get(name).compute(features=features, centroid=centroid, logit=logit,
                                    fake_probability=fake_probability)


def cosine_scores(dump: FeatureDump, centroid: np.ndarray, batch_size: int = 64,
                  desc: str | None = "scores") -> np.ndarray:
    """(N,) float64 cosine similarity of every row of ``dump`` to ``centroid`` (:func:`score_values`, batched)."""
    centroid = np.asarray(centroid, dtype=np.float64).ravel()
    if dump.dim != centroid.shape[0]:
        raise InputError(f"{dump.source}: features have {dump.dim} values per item, the centroid "
                         f"(from the training split) has {centroid.shape[0]}; all splits must come "
                         f"from the same detector and layer")
    out = np.empty(len(dump), dtype=np.float64)
    for idx, batch in iter_batches(dump.features, batch_size, desc=desc):
        try:
            out[idx] = score_values("cosine_centroid", features=batch, centroid=centroid)
        except BadScoreRow as err:
            i = int(idx[err.row])
            what = "all zero" if np.all(np.isfinite(batch[err.row])) else "not finite"
            raise InputError(f"{dump.source}: feature row {i} ({dump.image_paths[i]}) is {what}; its cosine "
                             f"similarity is undefined: re-run the feature dump") from None
    return out


def check_dims(dumps: dict[str, FeatureDump]) -> int:
    """The common feature size of all splits; an error naming the splits if they differ."""
    dims = {split: d.dim for split, d in dumps.items()}
    if len(set(dims.values())) > 1:
        detail = ", ".join(f"{split} ({dumps[split].source}): {dim}" for split, dim in dims.items())
        raise InputError(f"feature sizes differ across splits ({detail}); all splits must come from the same "
                         f"detector and layer: re-run stage 04 for every split")
    return next(iter(dims.values()))


def compute_scores(dumps: dict[str, FeatureDump], batch_size: int = 64, centroid_split: str = "train"
                   ) -> tuple[np.ndarray, dict[str, ScoreSet]]:
    """Centroid of the real ``centroid_split`` rows and the cosine scores of every pool."""
    centroid, sets = pool_scores(dumps, "cosine_centroid", batch_size, centroid_split)
    return centroid, sets


def dump_person_ids(dump: FeatureDump, persons: dict | None = None) -> np.ndarray:
    """Person of every row: the dump's ``person_id`` column; else ``persons`` (video -> person, from
    the split file); else each video counts as its own person (logged)."""
    if dump.person_ids is not None:
        return np.asarray(dump.person_ids, dtype=str)
    vids = np.asarray(dump.video_ids, dtype=str)
    if persons:
        missing = sorted(set(vids) - set(persons))
        if missing:
            raise InputError(f"{dump.source}: video(s) {missing[:5]} have no person in the split file's meta.persons; "
                             f"the features and the split file describe different data: re-run stages 02-04")
        return np.array([persons[v] for v in vids], dtype=str)
    log.warning("%s has no person_id column and no split file names persons: each video counts as one person",
                dump.source)
    return vids.copy()


def dump_scores(dump: FeatureDump, name: str, centroid: np.ndarray | None = None, batch_size: int = 64,
                desc: str | None = None) -> np.ndarray:
    """(N,) float64 scores ``name`` of every row of ``dump`` (:func:`score_values`; errors name the row)."""
    if name == "cosine_centroid":
        return cosine_scores(dump, centroid, batch_size, desc=desc)
    if name == "logit" and dump.logit is None:
        raise InputError(f"{dump.source}: no 'logit' column (the paper's .npz and dumps written before logits "
                         f"existed have none); re-run stage 04 or set slr.score to cosine_centroid or "
                         f"fake_probability")
    if name == "fake_probability" and np.isnan(np.asarray(dump.fake_probability, float)).all():
        raise InputError(f"{dump.source}: no fake probabilities; re-run stage 04 or set slr.score: cosine_centroid")
    try:
        return score_values(name, logit=dump.logit, fake_probability=dump.fake_probability)
    except BadScoreRow as err:
        i = err.row
        raise InputError(f"{dump.source}: row {i} ({dump.image_paths[i]}): {str(err).split(': ', 1)[1]}; "
                         f"re-run stage 04") from None


def pool_scores(dumps: dict[str, FeatureDump], score: str = "cosine_centroid", batch_size: int = 64,
                centroid_pool: str = "train", persons: dict | None = None
                ) -> tuple[np.ndarray | None, dict[str, ScoreSet]]:
    """Scores ``score`` of every pool of ``dumps``: ``(centroid or None, {pool: ScoreSet})``.

    The centroid (only for ``cosine_centroid``) is the mean of the real rows of ``centroid_pool``.
    Each ScoreSet carries image paths, video ids and person ids (:func:`dump_person_ids`).
    """
    SCORES.get(score)                       # an unknown name is an error naming slr.score
    centroid = None
    if score == "cosine_centroid":
        if centroid_pool not in dumps:
            raise InputError(f"no '{centroid_pool}' features: the centroid is fitted on the training split; a split "
                             f"without one (split.ratios [calib, test]) needs slr.score logit or fake_probability")
        check_dims(dumps)
        centroid = real_centroid(dumps[centroid_pool], batch_size)
    out = {}
    for pool in sorted(dumps, key=lambda p: (POOLS.index(p) if p in POOLS else len(POOLS), p)):
        dump = dumps[pool]
        s = dump_scores(dump, score, centroid, batch_size, desc=f"scores {pool}")
        out[pool] = ScoreSet(s, dump.labels.astype(np.int64), dump.video_ids.astype(str),
                             dump.image_paths.astype(str), dump.source, person_ids=dump_person_ids(dump, persons))
    return centroid, out


def split_record(s: ScoreSet, auc: float | None) -> dict:
    """Stage 08's counts of one pool's scores (items per class, videos, persons, persons per class) and its AUC."""
    hp_persons, hd_persons = s.person_ids[s.labels == 0], s.person_ids[s.labels == 1]
    return {"n_hp": int((s.labels == 0).sum()), "n_hd": int((s.labels == 1).sum()),
            "n_videos": int(len(np.unique(s.video_ids))), "n_persons": int(len(np.unique(s.person_ids))),
            "n_persons_hp": int(len(np.unique(hp_persons))), "n_persons_hd": int(len(np.unique(hd_persons))),
            "auc": auc}


def stage08(dumps: dict[str, FeatureDump], out: Path, batch_size: int = 64, score: str = "cosine_centroid",
            persons: dict | None = None) -> dict:
    """Scores ``score`` of every pool -> ``<pool>.csv`` (image_path, person_id, video_id, label, score),
    ``centroid.npy`` (cosine_centroid only), ``scores.png`` and ``summary.json``."""
    out = Path(out)
    centroid, sets = pool_scores(dumps, score, batch_size, persons=persons)
    summary = {"score_name": score, "score": SCORE_DESCRIPTIONS[score], "pools": list(sets),
               "auc_definition": oriented_auc(score, [], [])[1],
               "sources": {s: d.source for s, d in dumps.items()}, "splits": {}}
    if centroid is not None:
        np.save(out / "centroid.npy", centroid)
        summary.update(feature_dim=int(centroid.shape[0]), centroid_norm=float(np.linalg.norm(centroid)),
                       centroid_fitted_on="real frames of train")
    fig, axes = plots.new_figure(len(sets))
    for ax, (pool, s) in zip(axes, sets.items()):
        write_scores(out / f"{pool}.csv", s)
        summary["splits"][pool] = split_record(s, oriented_auc(score, s.hp, s.hd)[0])
        label = pool + (" (detector-training data)" if pool in ("train", "val") else "")
        plots.plot_score_density(ax, s.hp, s.hd, title=label, xlabel=SCORE_AXIS[score])
    plots.save_figure(fig, out / "scores.png", SCORE_DESCRIPTIONS[score][:1].upper() + SCORE_DESCRIPTIONS[score][1:])
    write_json(out / "summary.json", summary)
    return summary


def load_split_dumps(features_dir: str | Path, splits) -> dict[str, FeatureDump]:
    """Stage 04's dumps ``<features_dir>/<split>/`` (memory-mapped)."""
    features_dir = Path(features_dir)
    return {s: read_feature_dump(features_dir / s) for s in splits}


def _norm_path(p: str) -> str:
    p = str(p).replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p


def divide_feature_file(features_file: str | Path, split_file: str | Path, splits) -> dict[str, FeatureDump]:
    """Divide one paper-style ``.npz`` (or dump directory) into splits by the frames of a split file.

    Frames are matched on their path relative to the dataset root (``real/frames/0000/000.png``).
    Frames of the split file missing from the feature file are skipped (the paper's file holds
    2,438 of UADFV's 3,099 frames) and counted in the log; a label disagreement is an error.
    """
    dump = read_feature_dump(features_file)
    index = {_norm_path(p): i for i, p in enumerate(dump.image_paths)}
    if len(index) != len(dump):
        raise InputError(f"{features_file}: image_paths are not unique")
    out, used = {}, np.zeros(len(dump), bool)
    for split in splits:
        samples = read_split(split_file, split)
        rows, missing = [], 0
        for smp in samples:
            i = index.get(_norm_path(smp.path))
            if i is None:
                missing += 1
                continue
            if int(dump.labels[i]) != smp.label:
                raise InputError(f"{features_file}: '{smp.path}' has label {int(dump.labels[i])} but "
                                 f"{split_file} says {smp.label} (1 = fake); the two files disagree")
            if used[i]:
                raise InputError(f"{split_file}: frame '{smp.path}' appears in more than one split")
            used[i] = True
            rows.append(i)
        if not rows:
            raise InputError(f"{split_file}: no frame of split '{split}' is in {features_file}; "
                             f"do the two files describe the same dataset?")
        if missing:
            log.info("split %s: %d of %d frames of %s are not in %s (skipped)", split, missing, len(samples),
                     split_file, features_file)
        sub = dump.subset(np.asarray(rows))
        sub.source = f"{features_file} [{split}]"
        out[split] = sub
    if (~used).any():
        log.info("%d rows of %s are in none of the splits", int((~used).sum()), features_file)
    return out
