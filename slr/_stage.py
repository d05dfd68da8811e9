"""Helpers shared by the numbered SLR scripts (08-14): their inputs (outputs go through common.cli.run_stage)."""
from __future__ import annotations

from pathlib import Path

from common.config import Config, ConfigError
from common.splits import SPLITS
from common.stages import stage_dir


def feature_dumps(cfg: Config) -> dict:
    """Stage 08's input: ``slr.features_file`` divided by ``slr.split_file``, or the per-split dumps
    under ``slr.features_dir``."""
    from .scores import divide_feature_file, load_split_dumps

    features_file = cfg.get("slr.features_file", None)
    if features_file:
        split_file = cfg.path("slr.split_file", None)
        if split_file is None:
            raise ConfigError(f"{cfg.source}: slr.features_file is set, so slr.split_file must name the split "
                              f"JSON that divides it into {', '.join(SPLITS)}")
        return divide_feature_file(cfg.path("slr.features_file"), split_file, SPLITS)
    return load_split_dumps(cfg.path("slr.features_dir"), SPLITS)


def score_dir(cfg: Config) -> Path:
    return cfg.path("slr.scores_dir", None) or stage_dir(cfg, "08")
