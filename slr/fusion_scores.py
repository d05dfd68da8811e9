"""``run_scores --fusion logistic``: several detectors' scores (columns ``score_<name>``) fused into one
score per item by :mod:`slr.fusion`, then validated exactly like a single-detector system.

The fusion (members and penalty chosen by source-grouped CV on calib; optional column ``source``)
is fitted on calib. Its output, a log10 LR, becomes the item's ``score``: calib items get it
cross-fitted (the fusion refitted on ``settings.crossfit_folds`` person-grouped folds of calib with
the chosen members and penalty, each item scored by the fit that did not see its person), every
other pool from the fusion fitted on all of calib. The LR system is then fitted on those calib
scores as always (cross-fitting, calibration, bounds), so the fused system is validated like any
other; the fusion's choice goes into ``summary.json`` (``fusion``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.io import InputError, numeric_column, read_csv

from .fusion import LogisticFusion, choose_fusion
from .io import ScoreSet, check_groups, check_scores
from .models import group_folds

PREFIX = "score_"


def read_multi_scores(path: Path) -> tuple[ScoreSet, np.ndarray, list[str], np.ndarray | None]:
    """(ScoreSet with a placeholder score, the (items x detectors) score matrix, detector names, sources)."""
    cols = read_csv(path, required=("label",))
    names = sorted(c[len(PREFIX):] for c in cols if c.startswith(PREFIX))
    if len(names) < 2:
        raise InputError(f"{path}: --fusion needs at least 2 columns score_<detector>, found {len(names)} "
                         f"({', '.join(PREFIX + n for n in names) or 'none'}); give one column per detector")
    matrix = np.column_stack([numeric_column(cols, PREFIX + n, path) for n in names])
    labels = numeric_column(cols, "label", path)
    if not np.isin(labels, (0.0, 1.0)).all():
        i = int(np.argmax(~np.isin(labels, (0.0, 1.0))))
        raise InputError(f"{path}: row {i + 2}, column 'label' is '{cols['label'][i]}'; labels must be 0 (real, "
                         f"Hp) or 1 (fake, Hd)")
    for j, n in enumerate(names):
        check_scores(matrix[:, j], labels.astype(np.int64), f"{path} (column {PREFIX}{n})")
    opt = {k: np.asarray(cols[k], dtype=str) if k in cols else None for k in ("video_id", "person_id", "source")}
    s = ScoreSet(matrix[:, 0], labels.astype(np.int64), opt["video_id"], None, str(path),
                 person_ids=opt["person_id"])
    check_groups(s)
    return s, matrix, names, opt["source"]


def fuse_matrices(read: dict, names: list[str], sources, settings, where: str = "calib"
                  ) -> tuple[dict[str, ScoreSet], dict]:
    """The one fusion of score matrices (run_scores and the pipeline's stage 08): ``read`` maps each pool
    to (ScoreSet, its (items x detectors) matrix in ``names`` order); ``sources`` the calib items'
    sources or None. Returns ``{pool: ScoreSet with the fused score}`` and the choice record (module
    docstring); ``where`` names calib's file in errors."""
    if "calib" not in read:
        raise InputError(f"{where}: not found; the fusion is fitted on calib")
    cs, cm = read["calib"]
    system, choice = choose_fusion(cm, cs.labels, names, cs.persons(), sources, settings.crossfit_folds,
                                   settings.seed)
    fold, k = group_folds(cs.persons(), settings.crossfit_folds, settings.seed, cs.labels)
    cf = np.empty(len(cs))
    for i in range(k):
        tr, te = fold != i, fold == i
        cf[te] = LogisticFusion(system.members, system.C).fit(cm[tr], cs.labels[tr]).llr(cm[te])
    out = {}
    for p, (s, m) in read.items():
        fused = cf if p == "calib" else system.llr(m)
        out[p] = ScoreSet(fused, s.labels, s.video_ids, s.image_paths, s.source, person_ids=s.person_ids)
    choice["calib_scores"] = f"fused LLRs cross-fitted over {k} person-grouped folds of calib"
    return out, choice


def fuse_pools(directory: Path, pools: tuple, settings) -> tuple[dict[str, ScoreSet], dict]:
    """``{pool: ScoreSet with the fused score}`` and the fusion's choice record (module docstring)."""
    read = {p: read_multi_scores(directory / f"{p}.csv") for p in pools if (directory / f"{p}.csv").is_file()}
    if "calib" not in read:
        raise InputError(f"{directory / 'calib.csv'}: not found; the fusion is fitted on calib")
    names = read["calib"][2]
    for p, (_, _, n, _) in read.items():
        if n != names:
            raise InputError(f"{directory / (p + '.csv')}: detectors {n} differ from calib's {names}; every pool "
                             f"needs the same score_<detector> columns")
    return fuse_matrices({p: (s, m) for p, (s, m, _, _) in read.items()}, names, read["calib"][3], settings,
                         str(directory / "calib.csv"))
