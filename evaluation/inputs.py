"""Which feature dumps stages 05-07 read.

By default the dumps of stage 04, ``evaluation.features_dir`` (``<output_dir>/04_features``) /
``<pool>`` for each pool in ``evaluation.splits``; null (the default) = every pool of the split file
that stage 04 dumped, calib included. ``evaluation.inputs`` (a mapping name -> path
of a dump directory or a paper-style ``.npz``) replaces that list, e.g. to evaluate the paper's
``paper_srm_features.npz`` with the same code.
"""
from __future__ import annotations

from pathlib import Path

from common.config import REPO_ROOT, Config, ConfigError
from common.features import FeatureDump, read_feature_dump
from common.io import InputError
from common.splits import POOLS, pools_in


def dump_paths(cfg: Config) -> dict[str, Path]:
    inputs = cfg.get("evaluation.inputs")
    if inputs:
        if not isinstance(inputs, dict):
            raise ConfigError(f"{cfg.source}: evaluation.inputs must map a name to a dump path, got {inputs!r}")
        out = {}
        for name, p in inputs.items():
            p = Path(str(p)).expanduser()
            out[str(name)] = p if p.is_absolute() else REPO_ROOT / p
        return out
    base = cfg.path("evaluation.features_dir") or cfg.stage_dir("04", create=False)
    splits = cfg.get("evaluation.splits")
    if splits is None:
        return dumped_pools(cfg, base)
    if not isinstance(splits, list) or not splits:
        raise ConfigError(f"{cfg.source}: evaluation.splits must be a non-empty list such as [train, val, test], "
                          f"or null for every pool")
    return {str(s): base / str(s) for s in splits}


def dumped_pools(cfg: Config, base: Path) -> dict[str, Path]:
    """Every pool of the split file (``split.file``; all of POOLS without one) that stage 04 dumped
    under ``base``, calib included: the LR system is fitted on it, so its features are checked too."""
    split_file = cfg.path("split.file")
    listed = pools_in(split_file) if split_file is not None and split_file.is_file() else POOLS
    out = {p: base / p for p in listed if (base / p).exists()}
    if not out:
        raise InputError(f"{base}: no feature dump of the pools {', '.join(listed)}; run stage 04 first, or set "
                         f"evaluation.splits / evaluation.inputs")
    return out


def load_dumps(cfg: Config, mmap: bool = True) -> dict[str, FeatureDump]:
    """Every dump of :func:`dump_paths`; a missing one is an error naming the path and the config key."""
    out = {}
    for name, path in dump_paths(cfg).items():
        if not path.exists():
            raise InputError(f"{path}: feature dump '{name}' not found; run stage 04 first, or change "
                             f"evaluation.splits / evaluation.inputs")
        out[name] = read_feature_dump(path, mmap=mmap)
    return out
