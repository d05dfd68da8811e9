"""Score files: reading, validating and writing the per-split score CSVs of stages 08-14.

A score CSV has at least the columns ``score`` and ``label`` (0 = real = Hp, 1 = fake = Hd);
stage 08 also writes ``image_path`` and ``video_id``. A user's own scores (``slr.run_scores``)
need only ``score,label``; with a ``video_id`` column the video-level results are computed too.

Every problem is an :class:`common.io.InputError` naming the file, the row (1-based, counting
the header as row 1) and what to do.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.io import InputError, numeric_column, read_csv, write_csv
from common.splits import SPLITS
from common.videos import video_means

REQUIRED_COLUMNS = ("score", "label")
SCORE_COLUMNS = ("image_path", "person_id", "video_id", "label", "score")


@dataclass
class ScoreSet:
    """Scores of one split. ``labels``: 1 = fake (Hd), 0 = real (Hp)."""
    scores: np.ndarray                  # (N,) float64
    labels: np.ndarray                  # (N,) int64
    video_ids: np.ndarray | None = None  # (N,) str, or None when unknown
    image_paths: np.ndarray | None = None
    source: str = ""
    n_frames: np.ndarray | None = None  # (N,) frames per item for video-level sets
    person_ids: np.ndarray | None = None  # (N,) str, or None when unknown (each video is a person)

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def hp(self) -> np.ndarray:
        """Scores of the real items (Hp)."""
        return self.scores[self.labels == 0]

    @property
    def hd(self) -> np.ndarray:
        """Scores of the fake items (Hd)."""
        return self.scores[self.labels == 1]


def check_scores(scores: np.ndarray, labels: np.ndarray, source: str, what: str = "score",
                 first_row: int = 2) -> None:
    """Raise InputError for non-finite values, labels other than 0/1, an empty hypothesis or
    constant scores. ``first_row`` is the file row of element 0 (2 for a CSV with a header)."""
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels)
    if len(scores) == 0:
        raise InputError(f"{source}: no rows; every split needs real (label 0) and fake (label 1) items")
    bad = ~np.isfinite(scores)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{source}: row {i + first_row}, column '{what}' is {scores[i]} ({int(bad.sum())} "
                         f"non-finite value(s) in all); {what}s must be finite numbers: remove or fix these rows")
    bad = ~np.isin(labels, (0, 1))
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{source}: row {i + first_row}, column 'label' is {labels[i]}; labels must be "
                         f"0 (real, Hp) or 1 (fake, Hd)")
    for lab, name in ((0, "real (label 0, Hp)"), (1, "fake (label 1, Hd)")):
        if not (labels == lab).any():
            raise InputError(f"{source}: no {name} items; every split needs items of both hypotheses")
    if np.ptp(scores) == 0:
        raise InputError(f"{source}: all {len(scores)} {what}s are equal ({scores[0]}); they carry no "
                         f"evidence and no density can be fitted: check the system that produced them")


def read_scores(path: str | Path) -> ScoreSet:
    """Read and validate one score CSV (columns ``score``, ``label``; optional ``video_id``, ``image_path``)."""
    path = Path(path)
    cols = read_csv(path, required=REQUIRED_COLUMNS)
    scores = numeric_column(cols, "score", path)
    raw = numeric_column(cols, "label", path)
    bad = ~np.isin(raw, (0.0, 1.0))
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{path}: row {i + 2}, column 'label' is '{cols['label'][i]}'; labels must be "
                         f"0 (real, Hp) or 1 (fake, Hd)")
    labels = raw.astype(np.int64)
    check_scores(scores, labels, str(path))
    vids = np.asarray(cols["video_id"], dtype=str) if "video_id" in cols else None
    if vids is not None and (vids == "").any():
        raise InputError(f"{path}: row {int(np.argmax(vids == '')) + 2} has an empty video_id; fill it in "
                         f"or drop the column (video-level results are then skipped)")
    paths = np.asarray(cols["image_path"], dtype=str) if "image_path" in cols else None
    persons = np.asarray(cols["person_id"], dtype=str) if "person_id" in cols else None
    if persons is not None and (persons == "").any():
        raise InputError(f"{path}: row {int(np.argmax(persons == '')) + 2} has an empty person_id; fill it in "
                         f"or drop the column (each video then counts as one person)")
    return ScoreSet(scores, labels, vids, paths, str(path), person_ids=persons)


def read_score_dir(directory: str | Path, splits=SPLITS) -> dict[str, ScoreSet]:
    """``{split: ScoreSet}`` from ``<directory>/<split>.csv`` for every split."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: score folder not found; it must hold {', '.join(f'{s}.csv' for s in splits)}")
    out = {}
    for split in splits:
        path = directory / f"{split}.csv"
        if not path.is_file():
            raise InputError(f"{path}: score file not found; the score folder must hold "
                             f"{', '.join(f'{s}.csv' for s in splits)}")
        out[split] = read_scores(path)
    return out


def write_scores(path: str | Path, s: ScoreSet) -> Path:
    """Atomic write of ``image_path, person_id, video_id, label, score`` (missing text columns left empty)."""
    n = len(s)
    return write_csv(path, {
        "image_path": list(s.image_paths) if s.image_paths is not None else [""] * n,
        "person_id": list(s.person_ids) if s.person_ids is not None else [""] * n,
        "video_id": list(s.video_ids) if s.video_ids is not None else [""] * n,
        "label": [int(v) for v in s.labels],
        "score": [float(v) for v in s.scores],
    })


def video_level(s: ScoreSet) -> ScoreSet:
    """Video-level scores: the mean frame score of each video (videos in order of first appearance).

    A video whose frames carry different labels is an error: a video is real or fake as a whole.
    """
    if s.video_ids is None:
        raise InputError(f"{s.source}: no 'video_id' column; video-level results need one")
    v = video_means(s.video_ids, s.scores, s.labels)
    if v.mixed.any():
        raise InputError(f"{s.source}: video '{v.video_ids[np.argmax(v.mixed)]}' has frames labelled both real and "
                         f"fake; fix the labels or the video_id column")
    persons = None
    if s.person_ids is not None:
        first = dict(zip(np.asarray(s.video_ids, str)[::-1], np.asarray(s.person_ids, str)[::-1]))
        persons = np.array([first[v] for v in v.video_ids], dtype=str)
    return ScoreSet(v.scores, v.labels, v.video_ids, None, f"{s.source} (video level)", v.counts, persons)
