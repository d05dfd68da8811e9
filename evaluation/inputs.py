"""Which feature dumps stages 05-07 read.

By default the dumps of stage 04, ``evaluation.features_dir`` (``<output_dir>/04_features``) /
``<split>`` for each split in ``evaluation.splits``. ``evaluation.inputs`` (a mapping name -> path
of a dump directory or a paper-style ``.npz``) replaces that list, e.g. to evaluate the paper's
``paper_srm_features.npz`` with the same code.
"""
from __future__ import annotations

from pathlib import Path

from common.config import REPO_ROOT, Config, ConfigError
from common.features import FeatureDump, read_feature_dump
from common.io import InputError


def dump_paths(cfg: Config) -> dict[str, Path]:
    inputs = cfg.get("evaluation.inputs", None)
    if inputs:
        if not isinstance(inputs, dict):
            raise ConfigError(f"{cfg.source}: evaluation.inputs must map a name to a dump path, got {inputs!r}")
        out = {}
        for name, p in inputs.items():
            p = Path(str(p)).expanduser()
            out[str(name)] = p if p.is_absolute() else REPO_ROOT / p
        return out
    base = cfg.path("evaluation.features_dir", None) or cfg.stage_dir("04", create=False)
    splits = cfg.get("evaluation.splits", ["train", "val", "test"])
    if not isinstance(splits, list) or not splits:
        raise ConfigError(f"{cfg.source}: evaluation.splits must be a non-empty list such as [train, val, test]")
    return {str(s): base / str(s) for s in splits}


def load_dumps(cfg: Config, mmap: bool = True) -> dict[str, FeatureDump]:
    """Every dump of :func:`dump_paths`; a missing one is an error naming the path and the config key."""
    out = {}
    for name, path in dump_paths(cfg).items():
        if not path.exists():
            raise InputError(f"{path}: feature dump '{name}' not found; run stage 04 first, or change "
                             f"evaluation.splits / evaluation.inputs")
        out[name] = read_feature_dump(path, mmap=mmap)
    return out
