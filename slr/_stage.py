"""Helpers shared by the numbered SLR scripts (08-14): their inputs (outputs go through common.cli.run_stage)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.config import Config, ConfigError
from common.splits import POOLS, SPLITS, pools_in
from common.stages import stage_dir

CONTAMINATED = "contaminated: features of a detector trained on all persons (slr.features_file)"


def feature_dumps(cfg: Config) -> dict:
    """Stage 08's input: ``slr.features_file`` divided into every pool of ``slr.split_file``, or the
    per-pool dumps under ``slr.features_dir`` (train, val, test and, when dumped, calib)."""
    from .scores import divide_feature_file

    features_file = cfg.get("slr.features_file")
    if features_file:
        split_file = cfg.path("slr.split_file")
        if split_file is None:
            raise ConfigError(f"{cfg.source}: slr.features_file is set, so slr.split_file must name the split "
                              f"JSON that divides it into {', '.join(POOLS)} (or {', '.join(SPLITS)})")
        return divide_feature_file(cfg.path("slr.features_file"), split_file, pools_in(split_file))
    return dir_dumps(cfg.path("slr.features_dir"), cfg.path("slr.split_file"))


def dir_dumps(features_dir: Path, split_file: Path | None) -> dict:
    """Stage 04's per-pool dumps under ``features_dir`` of the pools ``split_file`` lists."""
    from .scores import load_split_dumps

    listed = pools_in(split_file) if split_file is not None and split_file.is_file() else POOLS
    # train/val/test always (those the split file lists); other pools when dumped and listed
    pools = tuple(p for p in POOLS if (p in SPLITS and p in listed) or ((features_dir / p).is_dir() and p in listed))
    return load_split_dumps(features_dir, pools)


def score_dir(cfg: Config) -> Path:
    return cfg.path("slr.scores_dir") or stage_dir(cfg, "08")


def read_pool_scores(cfg: Config, settings) -> dict:
    """The score CSVs of stages 09-10 that the protocol's system reads (slr.interface: sound needs
    calib.csv and test.csv, train/val optional, persons disjoint across pools; crossval: test optional;
    paper train/val/test)."""
    from .interface import system_for

    context = f" (slr.protocol = {settings.protocol}, slr.validation = {settings.validation}, {cfg.source})"
    return system_for(settings).read_pools(score_dir(cfg), context)


def data_note(cfg: Config) -> str:
    """A note for every figure and summary: features from ``slr.features_file`` (the paper's) come
    from a detector that saw every person, so no pool is unseen data."""
    return CONTAMINATED if cfg.get("slr.features_file") else ""


def centroid(cfg: Config) -> np.ndarray | None:
    """Stage 08's centroid (cosine score), stored with the LR system, or None."""
    p = score_dir(cfg) / "centroid.npy"
    return np.load(p, allow_pickle=False) if p.is_file() else None
