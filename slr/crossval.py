"""Cross-validated validation of the LR system (``slr.validation: crossval``; issue 18 item 5).

For a detector that never saw the data (published weights, someone else's scores) no person is
needed for detector training, so every person can validate the LR system. The persons of the
LR system's pools (``calib`` and, when present, ``test``: LR_POOLS) are pooled and dealt into
``slr.crossval.folds`` person-grouped folds (:func:`slr.models.group_folds`, seed
``slr.crossval.seed``). Each fold's LLRs come from an LR system fitted on the other folds with
:meth:`slr.system.LRSystem.fit`, exactly as the saved system is fitted (score model, its own
person-grouped cross-fitting inside those folds, calibration, bounds). The out-of-fold LLRs
of all persons are pooled and judged with person-cluster intervals (slr/bootstrap.py): they are
the ``test`` pool. The saved (casework) system is fitted on all persons; its own cross-fitted
LLRs are the ``calib`` pool, as under ``four_pools``. The video level uses the same person folds.
``train`` / ``val`` pools, if any, stay diagnostics of the final system.

:class:`CrossvalSystem` is that saved system behind the LR-system interface (slr.interface; chosen by
:func:`slr.interface.system_for`): ``lr_pools`` pools calib and test, ``fit_pools`` computes the
out-of-fold LLRs and fits on all persons, ``apply`` gives the ``test`` pool its out-of-fold
:class:`slr.lrdata.PoolLLR`. Pure helpers: :func:`lr_data`, :func:`subset`, :func:`person_folds`,
:func:`out_of_fold`; :func:`fit_all` is :func:`slr.pipeline.fit_all` under crossval.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from common.io import InputError

from .casework_system import union
from .io import ScoreSet, check_disjoint, read_score_dir
from .lrdata import PoolLLR, pools_of
from .models import group_folds
from .settings import Settings
from .system import SOUND_OPTIONAL, LRSystem, calib_conditions

log = logging.getLogger(__name__)

LR_POOLS = ("calib", "test")        # pools the LR system may use (not detector-training data)
NO_CALIB_CROSSVAL = ("calib.csv (with test.csv, optional) holds every person available to the LR system "
                     "(split.ratios [calib, test], e.g. [0.5, 0.5], for a detector trained elsewhere)")
ROLE_TEST = "validation: cross-validated, the out-of-fold LLRs of every person"


@dataclass
class LRData(ScoreSet):
    """Every item of the LR system's pools in one ScoreSet; ``pools``: the pools it was made of."""
    pools: tuple = ("calib",)


def lr_data(sets: dict[str, ScoreSet]) -> LRData:
    """One ScoreSet of every item of the LR system's pools (``LR_POOLS`` present in ``sets``),
    persons disjoint across pools (InputError otherwise). Needs at least ``calib``. Without a
    ``video_id`` column a row is its own video and person (kept distinct across the pools)."""
    if "calib" not in sets:
        raise InputError(f"slr.validation = crossval: no calib scores; {NO_CALIB_CROSSVAL}")
    used = [p for p in LR_POOLS if p in sets]
    check_disjoint({p: sets[p] for p in used})
    parts = [replace(x, person_ids=x.persons() if x.video_ids is not None else np.char.add(f"{p}:", x.persons()))
             for p, x in ((p, sets[p]) for p in used)]
    u = union(parts, " + ".join(x.source or p for p, x in zip(used, parts)))
    return LRData(**{f.name: getattr(u, f.name) for f in fields(ScoreSet)}, pools=tuple(used))


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
        system = _fit(LRSystem, train, settings, score_spec, f"slr.validation = crossval, fold {i + 1} of {k}")
        skipped.update(system.skipped)
        for lv in system.levels:
            te = folds[lv] == i
            parts = system.llr_parts(data[lv].scores[te], lv)
            for name in ("model", "calibrated", "llr"):
                out[lv][name][te] = parts[name]
            lo, hi = system.bounds_log10(lv)
            out[lv]["folds"].append({"fold": i, "bounds_log10": [lo, hi], "held_out": subset(data[lv], te).counts(),
                                     "fitted_on": train[lv].counts()})
    return {lv: v for lv, v in out.items() if lv not in skipped}, skipped


def _fit(cls: type[LRSystem], train: dict[str, ScoreSet], settings: Settings, score_spec: dict, where: str,
         **kw) -> LRSystem:
    """``cls.fit`` on ``train``; a video level that cannot be fitted is left out (``system.skipped``)."""
    try:
        system = cls.fit(train, settings, score_spec, optional=("video",), **kw)
    except InputError as exc:
        raise InputError(f"{where}: {exc}; give the LR system more persons or lower slr.crossval.folds") from None
    system.skipped = {lv: f"{where}: {why}" for lv, why in system.skipped.items()}
    return system


def crossval_block(settings: Settings, k: int, data: ScoreSet, pools: list[str], oof: dict) -> dict:
    """What the summary and the saved system say about the protocol."""
    return {"validation": "crossval", "folds": int(k), "requested_folds": settings.crossval_folds,
            "seed": settings.crossval_seed, "grouped_by": "person", "pools": pools, "counts": data.counts(),
            "per_fold": {lv: o["folds"] for lv, o in oof.items()},
            "note": (f"Every one of the {data.counts()['n_persons']} persons of "
                     f"{' + '.join(pools)} validated once, by an LR system fitted on the other {k - 1} of {k} "
                     f"person-grouped folds; 'test' = these out-of-fold LLRs pooled. The saved system "
                     f"(casework) is fitted on all these persons; its 'calib' figures are its own cross-fitted "
                     f"LLRs")}


class CrossvalSystem(LRSystem):
    """The sound LR system fitted on every person of calib (+ test), with the out-of-fold LLRs of those
    persons (``oof``: {level: model / calibrated / llr / fold / folds}) as its ``test`` pool."""
    oof: dict

    @classmethod
    def read_pools(cls, directory: str | Path, context: str = "") -> dict[str, ScoreSet]:
        """``calib.csv`` required; ``test.csv``, ``train.csv``, ``val.csv`` optional."""
        d = Path(directory)
        if d.is_dir() and not (d / "calib.csv").is_file():
            raise InputError(f"{d / 'calib.csv'}: score file not found{context}; {NO_CALIB_CROSSVAL}")
        return read_score_dir(d, ("calib",), SOUND_OPTIONAL + ("test",), disjoint=True)

    @classmethod
    def check(cls, sets: dict[str, ScoreSet], what: str) -> None:
        if "calib" not in sets:
            raise InputError(f"{what}: no calib pool: {NO_CALIB_CROSSVAL}")
        super(LRSystem, cls).check(sets, what)      # the interface's score checks; test is optional here

    @classmethod
    def lr_pools(cls, sets: dict[str, ScoreSet]) -> dict[str, ScoreSet]:
        """Diagnostics (train, val) as given; ``calib`` and ``test`` both = every LR person (lr_data)."""
        data = lr_data(sets)
        diag = {p: sets[p] for p in sets if p not in LR_POOLS}
        check_disjoint({**diag, "calib": data})
        return {**diag, "calib": data, "test": data}

    @classmethod
    def pool_role(cls, pool: str) -> str:
        return ROLE_TEST if pool == "test" else super().pool_role(pool)

    @classmethod
    def fit_pools(cls, level_sets: dict[str, dict[str, ScoreSet]], settings: Settings, score_spec: dict | None = None,
                  centroid=None, conditions: dict | None = None) -> "CrossvalSystem":
        """``level_sets`` from :meth:`lr_pools`: out-of-fold LLRs of the calib persons, then the system
        fitted on all of them (the one saved)."""
        spec = dict(score_spec or {"name": settings.score})
        data = level_sets["frame"]["calib"]
        fold_of, k = person_folds(data, settings.crossval_folds, settings.crossval_seed)
        by_level = {lv: ls["calib"] for lv, ls in level_sets.items()}
        oof, skipped = out_of_fold(by_level, fold_of, k, settings, spec)
        system = _fit(cls, {lv: by_level[lv] for lv in oof}, settings, spec, "slr.validation = crossval, the saved "
                      "system (all persons)", centroid=centroid,
                      conditions={"calib": calib_conditions(data), **(conditions or {})})
        system.skipped = {**skipped, **system.skipped}
        system.oof = {lv: o for lv, o in oof.items() if lv in system.levels}
        sets = level_sets["frame"]
        system.pools = {p: sets[p].counts() for p in pools_of(sets) if p != "test"}
        system.validation = {"crossval": crossval_block(settings, k, data, list(getattr(data, "pools", ("calib",))),
                                                        oof)}
        return system

    def apply(self, s: ScoreSet, pool: str, level: str) -> PoolLLR:
        """The ``test`` pool: the out-of-fold LLRs, with the envelope of the folds' bounds."""
        if pool != "test":
            return super().apply(s, pool, level)
        o = self.oof[level]
        b = np.array([f["bounds_log10"] for f in o["folds"]])
        return PoolLLR.of(s, o["model"], o["calibrated"], o["llr"],
                          {"lower_log10": float(b[:, 0].min()), "upper_log10": float(b[:, 1].max()),
                           "fitted_on": "each fold's own system (calib of the other folds); the envelope of the "
                                        "folds' bounds", "applied": True})

    def summary_extra(self) -> dict:
        return {"crossval": self.validation["crossval"]}


def fit_all(sets: dict[str, ScoreSet], settings: Settings, score_spec: dict | None = None, centroid=None,
            conditions: dict | None = None):
    """:func:`slr.pipeline.fit_all` under crossval: ``(levels, skipped, system)``; ``levels[lv].splits``:
    train / val (diagnostics, if given), ``calib`` (all LR persons, the final system's cross-fitted LLRs),
    ``test`` (the out-of-fold LLRs of the same persons)."""
    from .pipeline import fit_all as pipeline_fit_all   # noqa: PLC0415 (the stages above the systems)

    if settings.validation != "crossval":
        raise ValueError("slr.crossval.fit_all needs settings.validation = crossval")
    return pipeline_fit_all(sets, settings, score_spec, centroid, conditions)


__all__ = ["LR_POOLS", "lr_data", "subset", "person_folds", "fold_index", "out_of_fold", "fit_all", "crossval_block",
           "CrossvalSystem"]
