"""Cross-validated validation of the LR system (``slr.validation: crossval``; issue 18 item 5).

For a detector that never saw the data (published weights, someone else's scores) no person is
needed for detector training, so every person can validate the LR system. The persons of the
LR system's pools (``calib`` and, when present, ``test``: LR_POOLS) are pooled and dealt into
``slr.crossval.folds`` person-grouped folds (:func:`slr.models.group_folds`, seed
``slr.crossval.seed``). Each fold's LLRs come from an LR system fitted on the other folds with
:meth:`slr.system.LRSystem.fit`, exactly as the saved system is fitted (score model, its own
person-grouped cross-fitting inside those folds, calibration, ELUB bounds). The out-of-fold LLRs
of all persons are pooled and judged with person-cluster intervals (slr/bootstrap.py): they are
the ``test`` block of the summary. The saved (casework) system is then fitted on all persons;
its own cross-fitted LLRs are the ``calib`` block, as under ``four_pools``. The video level uses
the same person folds. ``train`` / ``val`` pools, if any, stay diagnostics of the final system.

Pure functions: :func:`lr_data`, :func:`subset`, :func:`person_folds`, :func:`out_of_fold`;
the entry :func:`fit_all` has the signature and result of :func:`slr.pipeline.fit_all` and is
what stage 10 and ``slr.run_scores`` call under ``crossval``.
"""
from __future__ import annotations

import logging

import numpy as np

from common.io import InputError

from .io import ScoreSet, check_disjoint, check_scores, video_level
from .models import group_folds
from .settings import Settings
from .system import LRSystem

log = logging.getLogger(__name__)

LR_POOLS = ("calib", "test")        # pools the LR system may use (not detector-training data)


def lr_data(sets: dict[str, ScoreSet]) -> ScoreSet:
    """One ScoreSet of every item of the LR system's pools (``LR_POOLS`` present in ``sets``),
    persons disjoint across pools (InputError otherwise). Needs at least ``calib``. Without a
    ``video_id`` column a row is its own video and person (kept distinct across the pools)."""
    if "calib" not in sets:
        raise InputError("slr.validation = crossval: no calib scores; calib.csv (with test.csv, optional) holds "
                         "every person available to the LR system (split.ratios [calib, test], e.g. [0.5, 0.5], "
                         "for a detector trained elsewhere)")
    used = [p for p in LR_POOLS if p in sets]
    check_disjoint({p: sets[p] for p in used})
    parts = [sets[p] for p in used]
    if len(parts) == 1:
        return parts[0]
    videos = all(x.video_ids is not None for x in parts)
    persons = [x.persons() if x.video_ids is not None else np.char.add(f"{p}:", x.persons())
               for p, x in zip(used, parts)]
    paths = [x.image_paths for x in parts]
    return ScoreSet(np.concatenate([x.scores for x in parts]).astype(np.float64),
                    np.concatenate([x.labels for x in parts]).astype(np.int64),
                    np.concatenate([x.video_ids for x in parts]).astype(str) if videos else None,
                    np.concatenate(paths).astype(str) if all(a is not None for a in paths) else None,
                    " + ".join(x.source or p for p, x in zip(used, parts)), None,
                    np.concatenate(persons).astype(str))


def subset(s: ScoreSet, mask: np.ndarray) -> ScoreSet:
    """The items of ``s`` where ``mask`` is true (every per-item array cut the same way)."""
    def cut(a):
        return None if a is None else np.asarray(a)[mask]
    return ScoreSet(s.scores[mask], s.labels[mask], cut(s.video_ids), cut(s.image_paths), s.source, cut(s.n_frames),
                    cut(s.person_ids))


def person_folds(s: ScoreSet, n_folds: int, seed: int) -> tuple[dict[str, int], int]:
    """``({person: fold}, k)``: persons dealt into ``min(n_folds, persons)`` folds, stratified by
    their label composition (:func:`slr.models.group_folds`)."""
    persons = s.persons()
    try:
        fold, k = group_folds(persons, n_folds, seed, s.labels)
    except ValueError as exc:
        raise InputError(f"{s.source}: slr.validation = crossval: {exc}") from None
    return dict(zip(persons.tolist(), fold.tolist())), k


def fold_index(s: ScoreSet, fold_of: dict[str, int]) -> np.ndarray:
    return np.array([fold_of[p] for p in s.persons()], dtype=np.int64)


def out_of_fold(data: dict[str, ScoreSet], fold_of: dict[str, int], k: int, settings: Settings,
                score_spec: dict) -> tuple[dict[str, dict], dict[str, str]]:
    """Out-of-fold LLRs per level of ``data`` ({"frame": ScoreSet, "video": ScoreSet?}): for each fold
    an LRSystem fitted on the other folds' items (all levels together) gives the held-out items'
    ``model`` / ``calibrated`` / ``llr`` parts. Returns ({level: {"fold", "model", "calibrated",
    "llr", "folds": [per-fold bounds and counts]}}, {level: why skipped}); a video level a fold
    cannot fit is dropped (with the reason), the frame level is an InputError naming the fold."""
    folds = {lv: fold_index(s, fold_of) for lv, s in data.items()}
    out = {lv: {"fold": folds[lv], "model": np.full(len(s), np.nan), "calibrated": np.full(len(s), np.nan),
                "llr": np.full(len(s), np.nan), "folds": []} for lv, s in data.items()}
    skipped: dict[str, str] = {}
    for i in range(k):
        train = {lv: subset(s, folds[lv] != i) for lv, s in data.items() if lv not in skipped}
        system = _fit(train, settings, score_spec, f"slr.validation = crossval, fold {i + 1} of {k}", skipped)
        for lv in system.levels:
            te = folds[lv] == i
            parts = system.llr_parts(data[lv].scores[te], lv)
            for name in ("model", "calibrated", "llr"):
                out[lv][name][te] = parts[name]
            lo, hi = system.bounds_log10(lv)
            out[lv]["folds"].append({"fold": i, "bounds_log10": [lo, hi], "held_out": subset(data[lv], te).counts(),
                                     "fitted_on": train[lv].counts()})
    return {lv: v for lv, v in out.items() if lv not in skipped}, skipped


def _fit(train: dict[str, ScoreSet], settings: Settings, score_spec: dict, where: str, skipped: dict[str, str],
         **kw) -> LRSystem:
    """LRSystem.fit on ``train``; a video level that cannot be fitted is skipped (reason in ``skipped``)."""
    if "video" in train:
        try:
            return LRSystem.fit(train, settings, score_spec, **kw)
        except InputError as exc:
            skipped["video"] = f"{where}: the video level cannot be fitted: {exc}"
            log.warning("video level skipped: %s", skipped["video"])
            train = {"frame": train["frame"]}
    try:
        return LRSystem.fit(train, settings, score_spec, **kw)
    except InputError as exc:
        raise InputError(f"{where}: {exc}; give the LR system more persons or lower slr.crossval.folds") from None


def _video_data(data: ScoreSet, settings: Settings) -> tuple[ScoreSet | None, str | None]:
    if not settings.video_level:
        return None, "slr.video_level is false"
    if data.video_ids is None:
        return None, "no video_id column in the score files"
    v = video_level(data)
    if min(int((v.labels == 0).sum()), int((v.labels == 1).sum())) < 2 or np.ptp(v.scores) == 0:
        return None, "fewer than 2 videos of a class, or all video scores equal"
    return v, None


def crossval_block(settings: Settings, k: int, data: ScoreSet, pools: list[str], oof: dict) -> dict:
    """What the summary and the saved system say about the protocol."""
    return {"validation": "crossval", "folds": int(k), "requested_folds": settings.crossval_folds,
            "seed": settings.crossval_seed, "grouped_by": "person", "pools": pools, "counts": data.counts(),
            "per_fold": {lv: o["folds"] for lv, o in oof.items()},
            "note": (f"cross-validated: every one of the {data.counts()['n_persons']} persons of "
                     f"{' + '.join(pools)} validated once, by an LR system fitted on the other {k - 1} of {k} "
                     f"person-grouped folds; 'test' = these out-of-fold LLRs pooled. The saved system "
                     f"(casework) is fitted on all these persons; its 'calib' figures are its own cross-fitted "
                     f"LLRs")}


def fit_all(sets: dict[str, ScoreSet], settings: Settings, score_spec: dict | None = None, centroid=None,
            conditions: dict | None = None):
    """The crossval counterpart of :func:`slr.pipeline.fit_all`: ``(levels, skipped, system)``.
    ``levels[lv].splits``: train / val (diagnostics, if given), ``calib`` (all LR persons, the final
    system's cross-fitted LLRs), ``test`` (the out-of-fold LLRs of the same persons)."""
    from . import pipeline as P   # noqa: PLC0415 (pipeline imports this module lazily too)

    spec = dict(score_spec or {"name": settings.score})
    data = lr_data(sets)
    check_scores(data.scores, data.labels, data.source or "LR data")
    diag = {p: sets[p] for p in ("train", "val") if p in sets}
    check_disjoint({**diag, "calib": data})
    pools = [p for p in LR_POOLS if p in sets]
    fold_of, k = person_folds(data, settings.crossval_folds, settings.crossval_seed)
    vdata, why = _video_data(data, settings)
    by_level = {"frame": data, **({"video": vdata} if vdata is not None else {})}
    oof, skipped = out_of_fold(by_level, fold_of, k, settings, spec)
    if why:
        skipped["video"] = why
    cond = {"calib": P.calib_conditions(data), **(conditions or {})}
    system = _fit({lv: by_level[lv] for lv in oof}, settings, spec, "slr.validation = crossval, the saved system "
                  "(all persons)", skipped, centroid=centroid, conditions=cond)
    levels = {}
    for lv, lm in system.levels.items():
        lv_sets = (diag if lv == "frame" else
                   {p: video_level(s) for p, s in diag.items() if s.video_ids is not None})
        levels[lv] = P._sound_level({**lv_sets, "calib": by_level[lv]}, settings, lv, lm)
        o, s = oof[lv], by_level[lv]
        levels[lv].splits["test"] = P.SplitLR(s.scores, s.labels, o["model"], o["calibrated"], o["llr"], s.video_ids,
                                              s.image_paths, s.n_frames, s.person_ids)
        b = np.array([f["bounds_log10"] for f in o["folds"]])
        levels[lv].elub["test"] = {"lower_log10": float(b[:, 0].min()), "upper_log10": float(b[:, 1].max()),
                                   "fitted_on": "each fold's own system (calib of the other folds); the envelope "
                                                "of the folds' bounds", "applied": True}
    system.pools = {**{p: sets[p].counts() for p in diag}, "calib": data.counts()}
    system.validation = {"crossval": crossval_block(settings, k, data, pools, oof)}
    return levels, skipped, system


__all__ = ["LR_POOLS", "lr_data", "subset", "person_folds", "fold_index", "out_of_fold", "fit_all", "crossval_block"]
