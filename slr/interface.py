"""The one interface of an LR system, whatever its protocol (``slr.protocol``), and its registry.

An LR system is fitted on pools and applied to a pool at a level:

- ``cls.fit_pools(level_sets, settings, score_spec, centroid, conditions)``: fit on
  ``{level: {pool: ScoreSet}}`` (the pools the protocol reads, :meth:`read_pools`); the levels it
  could not fit are in ``system.skipped`` ({level: reason}).
- ``system.apply(s, pool, level)``: the :class:`slr.lrdata.PoolLLR` of score set ``s`` (model,
  calibrated and final LLRs with the bounds reported for that pool).
- hooks (class methods, so stages 11-14 can call them on LLRs read back from stage 10): the pools'
  labels and roles in figures, a protocol's extra metrics and figures, the ELUB panels of stage 14.

Two systems implement it: ``sound`` (:class:`slr.system.LRSystem`, fitted on calib, saved and used by
casework) and ``paper`` (:class:`slr.paper.PaperSystem`, the paper's code with its quirks).
``SYSTEMS`` is the registry (``system_class(name)``); stages 09-14 and run_scores are loops over pools that
never test the protocol.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from common.io import InputError
from common.registry import Registry, import_target

from .io import ScoreSet, check_scores, read_score_dir, video_level
from .lrdata import LevelLLR, PoolLLR, pools_of

log = logging.getLogger(__name__)

MIN_VIDEOS_EVAL = 2     # per hypothesis in a pool, for the video level


class SystemInterface:
    """Defaults of the hooks; a system overrides what its protocol does differently."""
    protocol = ""
    model_column = "llr_model"         # name of the score model's LLR column in the LR CSVs
    fit_pool = "calib"                 # the pool whose scores stage 10's fitting figures show
    saves = False                      # whether stage 10 saves the fitted system (casework loads it)
    ece_keys: tuple = ()               # extra metric keys stage 13 reports
    levels: dict
    skipped: dict

    # ------------------------------------------------------------------ pools
    @classmethod
    def read_pools(cls, directory: str | Path, context: str = "") -> dict[str, ScoreSet]:
        """The score CSVs of ``directory`` that the protocol uses (InputError on a missing one)."""
        return read_score_dir(directory)

    @classmethod
    def lr_pools(cls, sets: dict[str, ScoreSet]) -> dict[str, ScoreSet]:
        """The pools the system is fitted on and evaluated, made from the score files' pools (as they are;
        crossval pools calib and test, slr.crossval.CrossvalSystem)."""
        return sets

    @classmethod
    def evaluated_pools(cls, sets: dict) -> list[str]:
        """The pools the protocol evaluates, in order."""
        return pools_of(sets)

    @classmethod
    def check(cls, sets: dict[str, ScoreSet], what: str) -> None:
        for s in cls.evaluated_pools(sets):
            check_scores(sets[s].scores, sets[s].labels, sets[s].source or f"{what} [{s}]")

    @classmethod
    def min_videos(cls, pool: str) -> int:
        """Videos per hypothesis that pool ``pool`` needs for the video level."""
        return MIN_VIDEOS_EVAL

    @classmethod
    def pool_label(cls, pool: str) -> str:
        """Title of a pool in figures."""
        return pool

    @classmethod
    def pool_role(cls, pool: str) -> str | None:
        """The pool's role in the summary (None: not reported)."""
        return None

    # ------------------------------------------------------------------ metrics and figures
    @classmethod
    def extra_metrics(cls, sl: PoolLLR) -> dict:
        """The protocol's own figures of one pool, added to its summary block."""
        return {}

    @classmethod
    def extra_eer(cls, hp: np.ndarray, hd: np.ndarray) -> dict:
        """Stage 12: the protocol's own EER figures of one pool."""
        return {}

    @classmethod
    def extra_figures(cls, stage: str, r: LevelLLR, out: Path) -> None:
        """Figures of its own that the protocol adds to stage ``stage`` for level ``r``."""

    @classmethod
    def elub_fits(cls, r: LevelLLR) -> list[tuple[str, np.ndarray, str]]:
        """Stage 14's NBE panels: (pool, item weights, title) for each pool the bounds were fitted on."""
        return []

    @classmethod
    def extra_elub(cls) -> dict:
        """Stage 14: the protocol's own bounds figures, per pool."""
        return {}

    def summary_extra(self) -> dict:
        """Fields the protocol adds to stage 10's summary."""
        return {}

    # ------------------------------------------------------------------ the fitted system
    def apply(self, s: ScoreSet, pool: str, level: str) -> PoolLLR:
        raise NotImplementedError

    def level_info(self, level: str) -> dict:
        """``{bandwidth, bandwidth_details, calibration, model}`` of a fitted level."""
        raise NotImplementedError

    def llr_curve(self, level: str):
        """The fitted level with ``llr_parts``, bounds and monotonicity for stage 10's LLR curve, or None."""
        return None

    def summary_block(self, levels: dict[str, LevelLLR]) -> dict:
        """Stage 10's ``system`` block."""
        raise NotImplementedError

    def apply_all(self, level_sets: dict[str, dict[str, ScoreSet]], note: str = "") -> dict[str, LevelLLR]:
        """Every fitted level applied to every pool the protocol evaluates."""
        out = {}
        for lv in self.levels:
            sets = level_sets[lv]
            info = self.level_info(lv)
            out[lv] = LevelLLR(lv, self.protocol, {p: self.apply(sets[p], p, lv) for p in self.evaluated_pools(sets)},
                               info["bandwidth"], info["bandwidth_details"], info["calibration"], info["model"],
                               fitted=self.levels[lv], note=note)
        return out


SYSTEMS = Registry("LR system", {"sound": "slr.system:LRSystem", "paper": "slr.paper:PaperSystem"},   # slr.protocol
                   unknown="slr.protocol must be one of {names}, got {name}", error=InputError, load=import_target)


def system_class(protocol: str) -> type[SystemInterface]:
    """The LR system of protocol ``protocol`` (``slr.protocol``)."""
    return SYSTEMS.get(protocol)


def system_for(settings) -> type[SystemInterface]:
    """The LR system of ``settings``: the protocol's, or its cross-validated variant under
    ``slr.validation: crossval`` (slr.crossval.CrossvalSystem, a sound LRSystem)."""
    if settings.validation == "crossval":
        from .crossval import CrossvalSystem   # noqa: PLC0415 (crossval builds on slr.system)

        return CrossvalSystem
    return system_class(settings.protocol)


def video_sets(sets: dict[str, ScoreSet], cls: type[SystemInterface]
               ) -> tuple[dict[str, ScoreSet] | None, str | None]:
    """Video-level score sets of the protocol's pools, or ``(None, reason)`` when they cannot be fitted."""
    pools = cls.evaluated_pools(sets)
    if any(sets[s].video_ids is None for s in pools):
        return None, "no video_id column in the score files"
    vs = {s: video_level(sets[s]) for s in pools}
    for s in pools:
        need = cls.min_videos(s)
        n_hp, n_hd = int((vs[s].labels == 0).sum()), int((vs[s].labels == 1).sum())
        if min(n_hp, n_hd) < need:
            return None, (f"pool '{s}' has {n_hp} real and {n_hd} fake videos; the video level needs at least "
                          f"{need} of each")
        if np.ptp(vs[s].scores) == 0:
            return None, f"pool '{s}': all video scores are equal"
    return vs, None


def level_sets(sets: dict[str, ScoreSet], settings, cls: type[SystemInterface], warn: bool = True
               ) -> tuple[dict[str, dict[str, ScoreSet]], dict[str, str]]:
    """``({level: {pool: ScoreSet}}, {level: why skipped})``: frame always, video when asked and possible."""
    out, skipped = {"frame": sets}, {}
    if not settings.video_level:
        skipped["video"] = "slr.video_level is false"
        return out, skipped
    vs, why = video_sets(sets, cls)
    if vs is None:
        if warn:
            log.warning("video level skipped: %s", why)
        skipped["video"] = why
    else:
        out["video"] = vs
    return out, skipped
