"""Score files: reading, validating and writing the per-split score CSVs of stages 08-14.

A score CSV has at least the columns ``score`` and ``label`` (0 = real = Hp, 1 = fake = Hd);
stage 08 also writes ``image_path``, ``person_id`` and ``video_id``. A user's own scores
(``slr.run_scores``) need only ``score,label``; with a ``video_id`` column the video-level results
are computed too. Dependence groups: without ``person_id`` each video counts as one person, without
``video_id`` each row counts as one video (and one person) -- see :meth:`ScoreSet.videos` and
:meth:`ScoreSet.persons`.

Every problem is an :class:`common.io.InputError` naming the file, the row (1-based, counting
the header as row 1) and what to do.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.io import InputError, numeric_column, read_csv, write_csv
from common.splits import POOLS, SPLITS
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

    def videos(self) -> np.ndarray:
        """Video of each item: ``video_ids``, or one video per row when unknown."""
        if self.video_ids is not None:
            return np.asarray(self.video_ids, dtype=str)
        return np.array([f"row{i + 2}" for i in range(len(self))], dtype=str)

    def persons(self) -> np.ndarray:
        """Person of each item: ``person_ids``, else the video (each video counts as a person)."""
        if self.person_ids is not None:
            return np.asarray(self.person_ids, dtype=str)
        return self.videos()

    def counts(self) -> dict:
        """Persons, videos and frames per class: ``{n_persons, n_videos, n_frames, n_hp, n_hd,
        n_persons_hp, n_persons_hd, n_videos_hp, n_videos_hd}`` (frames = items of this set)."""
        p, v, y = self.persons(), self.videos(), self.labels
        return {"n_persons": int(len(np.unique(p))), "n_videos": int(len(np.unique(v))), "n_frames": int(len(y)),
                "n_hp": int((y == 0).sum()), "n_hd": int((y == 1).sum()),
                "n_persons_hp": int(len(np.unique(p[y == 0]))), "n_persons_hd": int(len(np.unique(p[y == 1]))),
                "n_videos_hp": int(len(np.unique(v[y == 0]))), "n_videos_hd": int(len(np.unique(v[y == 1])))}

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
    s = ScoreSet(scores, labels, vids, paths, str(path), person_ids=persons)
    check_groups(s)
    return s


def check_groups(s: ScoreSet, first_row: int = 2) -> None:
    """InputError if a video of ``s`` is mapped to two persons (file, row, fix)."""
    if s.person_ids is None or s.video_ids is None:
        return
    vids, pers = np.asarray(s.video_ids, str), np.asarray(s.person_ids, str)
    seen: dict[str, str] = {}
    for i, (v, p) in enumerate(zip(vids, pers)):
        q = seen.setdefault(v, p)
        if q != p:
            raise InputError(f"{s.source}: row {i + first_row}: video '{v}' has person_id '{p}' but person '{q}' "
                             f"in an earlier row; a video shows one person: fix the person_id column")


def check_disjoint(sets: dict[str, ScoreSet]) -> None:
    """InputError if a person appears in more than one pool (persons must be disjoint)."""
    owner: dict[str, str] = {}
    for pool, s in sets.items():
        if s.person_ids is None and s.video_ids is None:
            continue                       # rows of different files cannot be matched
        for i, p in enumerate(s.persons()):
            q = owner.setdefault(p, pool)
            if q != pool:
                raise InputError(f"{s.source}: row {i + 2}: person '{p}' is also in pool '{q}'; pools must be "
                                 f"person-disjoint: move all of this person's videos into one pool (re-run stage "
                                 f"02 with a person split)")


def read_score_dir(directory: str | Path, splits=SPLITS, optional=(), disjoint: bool = False) -> dict[str, ScoreSet]:
    """``{pool: ScoreSet}`` from ``<directory>/<pool>.csv``: every pool of ``splits`` (required)
    and those of ``optional`` that exist. ``disjoint``: persons must not cross pools (sound)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: score folder not found; it must hold {', '.join(f'{s}.csv' for s in splits)}")
    out = {}
    for split in POOLS + tuple(s for s in tuple(splits) + tuple(optional) if s not in POOLS):
        path = directory / f"{split}.csv"
        if split in splits:
            if not path.is_file():
                raise InputError(f"{path}: score file not found; the score folder must hold "
                                 f"{', '.join(f'{s}.csv' for s in splits)}")
        elif split not in optional or not path.is_file():
            continue
        out[split] = read_scores(path)
    if disjoint:
        check_disjoint(out)
    return out


def pools_in_dir(directory: str | Path) -> tuple:
    """The pools (of POOLS) that have a ``<pool>.csv`` in ``directory``."""
    directory = Path(directory)
    return tuple(p for p in POOLS if (directory / f"{p}.csv").is_file())


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
        check_groups(s)
        first = dict(zip(np.asarray(s.video_ids, str)[::-1], np.asarray(s.person_ids, str)[::-1]))
        persons = np.array([first[v] for v in v.video_ids], dtype=str)
    return ScoreSet(v.scores, v.labels, v.video_ids, None, f"{s.source} (video level)", v.counts, persons)
