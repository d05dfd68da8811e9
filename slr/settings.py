"""The ``slr`` config section, validated (shared by the pipeline, the LR system and run_scores)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from common.config import Config, ConfigError

PROTOCOLS = ("sound", "paper")
CALIBRATIONS = ("none", "pav", "logistic")
MODELS = ("kde", "logistic", "isotonic")
SCORES = ("cosine_centroid", "logit", "fake_probability")
VALIDATIONS = ("four_pools", "crossval")


@dataclass
class Settings:
    """Validated LR settings. ``grid``: the bandwidths of the CV search (kde model), in score units
    (``grid_scale="absolute"``) or as multiples of the standard deviation of the hypothesis's
    fitting scores (``grid_scale="std"``, the default: any score scale works).

    Sound protocol v2 (docs/slr.md): ``model`` (kde | logistic | isotonic) fitted on calib,
    ``crossfit_folds`` person-grouped folds for the cross-fitted calib LLRs on which ``calibration``
    and the ELUB bounds are fitted, ``bootstrap_n`` person-cluster resamples (0 = no intervals)."""
    protocol: str = "sound"
    calibration: str = "none"
    grid: np.ndarray = field(default_factory=lambda: np.geomspace(0.01, 3.0, 40))
    grid_scale: str = "std"
    n_folds: int = 10
    seed: int = 1024
    paper_seed: int = 42
    video_level: bool = True
    model: str = "kde"
    score: str = "cosine_centroid"
    crossfit_folds: int = 5
    bootstrap_n: int = 1000
    bootstrap_seed: int = 1024
    validation: str = "four_pools"   # sound: four_pools (test pool) | crossval (slr/crossval.py)
    crossval_folds: int = 5
    crossval_seed: int = 1024

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"slr.protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.calibration not in CALIBRATIONS:
            raise ConfigError(f"slr.calibration must be one of {CALIBRATIONS}, got {self.calibration!r}")
        if self.model not in MODELS:
            raise ConfigError(f"slr.model must be one of {MODELS}, got {self.model!r}")
        if self.score not in SCORES:
            raise ConfigError(f"slr.score must be one of {SCORES}, got {self.score!r}")
        if self.validation not in VALIDATIONS:
            raise ConfigError(f"slr.validation must be one of {VALIDATIONS}, got {self.validation!r}")
        if self.validation == "crossval" and self.protocol != "sound":
            raise ConfigError("slr.validation = crossval needs slr.protocol = sound (the paper protocol has no "
                              "cross-validated variant)")
        if int(self.crossval_folds) < 2:
            raise ConfigError(f"slr.crossval.folds must be >= 2, got {self.crossval_folds}")
        self.crossval_folds, self.crossval_seed = int(self.crossval_folds), int(self.crossval_seed)
        self.grid = np.asarray(self.grid, dtype=float)
        if self.grid.ndim != 1 or len(self.grid) < 2 or not np.all(self.grid > 0):
            raise ConfigError("slr.bandwidth: the grid needs grid_n >= 2 and 0 < grid_min < grid_max")
        if self.grid_scale not in ("std", "absolute"):
            raise ConfigError(f"slr.bandwidth.scale must be 'std' or 'absolute', got {self.grid_scale!r}")
        if int(self.n_folds) < 2:
            raise ConfigError(f"slr.bandwidth.n_folds must be >= 2, got {self.n_folds}")
        if int(self.crossfit_folds) < 2:
            raise ConfigError(f"slr.crossfit_folds must be >= 2, got {self.crossfit_folds}")
        if int(self.bootstrap_n) < 0:
            raise ConfigError(f"slr.bootstrap.n must be >= 0 (0 = no intervals), got {self.bootstrap_n}")
        self.n_folds, self.crossfit_folds, self.bootstrap_n = int(self.n_folds), int(self.crossfit_folds), \
            int(self.bootstrap_n)

    @classmethod
    def from_config(cls, cfg: Config) -> "Settings":
        get = cfg.get                              # every key has its default in common/schema.py
        try:
            lo, hi = float(get("slr.bandwidth.grid_min")), float(get("slr.bandwidth.grid_max"))
            n = int(get("slr.bandwidth.grid_n"))
        except (TypeError, ValueError):
            raise ConfigError(f"{cfg.source}: slr.bandwidth.grid_min/grid_max/grid_n must be numbers") from None
        if not 0 < lo < hi or n < 2:
            raise ConfigError(f"{cfg.source}: slr.bandwidth needs 0 < grid_min < grid_max and grid_n >= 2, "
                              f"got {lo}, {hi}, {n}")
        try:
            return cls(protocol=str(get("slr.protocol")), calibration=str(get("slr.calibration")),
                       grid=np.geomspace(lo, hi, n), grid_scale=str(get("slr.bandwidth.scale")),
                       n_folds=int(get("slr.bandwidth.n_folds")), seed=int(get("slr.bandwidth.seed")),
                       paper_seed=int(get("slr.paper_seed")), video_level=bool(get("slr.video_level")),
                       model=str(get("slr.model")), score=str(get("slr.score")),
                       crossfit_folds=int(get("slr.crossfit_folds")),
                       bootstrap_n=int(get("slr.bootstrap.n")), bootstrap_seed=int(get("slr.bootstrap.seed")),
                       validation=str(get("slr.validation")), crossval_folds=int(get("slr.crossval.folds")),
                       crossval_seed=int(get("slr.crossval.seed")))
        except ConfigError as exc:
            raise ConfigError(f"{cfg.source}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{cfg.source}: slr section: {exc}") from None

    def to_dict(self) -> dict:
        d = {"protocol": self.protocol, "video_level": self.video_level,
             "bootstrap": {"n": self.bootstrap_n, "seed": self.bootstrap_seed}}
        if self.protocol == "sound":
            d.update(model=self.model, score=self.score, calibration=self.calibration,
                     crossfit_folds=self.crossfit_folds,
                     bandwidth_grid=[float(self.grid[0]), float(self.grid[-1]), len(self.grid)],
                     bandwidth_scale=self.grid_scale, n_folds=self.n_folds, seed=self.seed)
        else:
            d.update(paper_seed=self.paper_seed)
        if self.validation == "crossval":   # only then: a four_pools system's JSON (and SHA-256) is unchanged
            d["crossval"] = {"folds": self.crossval_folds, "seed": self.crossval_seed}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Settings":
        """Inverse of to_dict (as stored in a saved LR system)."""
        g = d.get("bandwidth_grid") or [0.01, 3.0, 40]
        boot = d.get("bootstrap") or {}
        return cls(protocol=d.get("protocol", "sound"), calibration=d.get("calibration", "none"),
                   grid=np.geomspace(float(g[0]), float(g[1]), int(g[2])), grid_scale=d.get("bandwidth_scale", "std"),
                   n_folds=int(d.get("n_folds", 10)), seed=int(d.get("seed", 1024)),
                   paper_seed=int(d.get("paper_seed", 42)), video_level=bool(d.get("video_level", True)),
                   model=d.get("model", "kde"), score=d.get("score", "cosine_centroid"),
                   crossfit_folds=int(d.get("crossfit_folds", 5)), bootstrap_n=int(boot.get("n", 1000)),
                   bootstrap_seed=int(boot.get("seed", 1024)),
                   validation="crossval" if "crossval" in d else "four_pools",
                   crossval_folds=int((d.get("crossval") or {}).get("folds", 5)),
                   crossval_seed=int((d.get("crossval") or {}).get("seed", 1024)))
