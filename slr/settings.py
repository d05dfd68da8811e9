"""The ``slr`` config section, validated (shared by the pipeline, the LR system and run_scores)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from common import schema
from common.config import Config, ConfigError

from .calibration import CALIBRATORS
from .elub import BOUNDERS
from .interface import SYSTEMS
from .models import MODELS as MODEL_REGISTRY
from .scores import SCORES as SCORE_REGISTRY

PROTOCOLS = SYSTEMS.names()                  # every list of names derives from its registry
CALIBRATIONS = CALIBRATORS.names()
MODELS = MODEL_REGISTRY.names() + ("auto",)    # auto: chosen by person-grouped CV (slr.model_choice)
SCORES = SCORE_REGISTRY.names()
BOUNDS = BOUNDERS.names()
CASEWORK_SYSTEMS = ("calib", "calib+test")
VALIDATIONS = schema.BY_NAME["slr.validation"].choices   # four_pools | crossval (slr/crossval.py)
CROSSVAL_PROTOCOLS = ("sound",)     # the protocols with a cross-validated variant
USER_SUPPLIED = "user-supplied"      # the score of slr.run_scores: a lab's own, not computed here
FUSED = "fusion"                     # the fused members' LLR (slr/fused_stage.py)
DEFAULTS = schema.defaults("slr", resolve=True)   # the schema's defaults: the dataclass keeps no copy of its own
_BW, _BOOT = DEFAULTS["bandwidth"], DEFAULTS["bootstrap"]


def bandwidth_grid(lo, hi, n) -> np.ndarray:
    """The CV bandwidth grid: ``n`` log-spaced values from ``lo`` to ``hi``."""
    return np.geomspace(float(lo), float(hi), int(n))


@dataclass
class Settings:
    """Validated LR settings. ``grid``: the bandwidths of the CV search (kde model), in score units
    (``grid_scale="absolute"``) or as multiples of the standard deviation of the hypothesis's
    fitting scores (``grid_scale="std"``, the default: any score scale works).

    Sound protocol v2 (docs/slr.md): ``model`` (kde | logistic | isotonic) fitted on calib,
    ``crossfit_folds`` person-grouped folds for the cross-fitted calib LLRs on which ``calibration``
    and the ELUB bounds are fitted, ``bootstrap_n`` person-cluster resamples (0 = no intervals)."""
    protocol: str = DEFAULTS["protocol"]
    calibration: str = DEFAULTS["calibration"]
    grid: np.ndarray = field(default_factory=lambda: bandwidth_grid(_BW["grid_min"], _BW["grid_max"], _BW["grid_n"]))
    grid_scale: str = _BW["scale"]
    n_folds: int = _BW["n_folds"]
    seed: int = _BW["seed"]
    paper_seed: int = DEFAULTS["paper_seed"]
    video_level: bool = DEFAULTS["video_level"]
    model: str = DEFAULTS["model"]
    score: str = DEFAULTS["score"]
    crossfit_folds: int = DEFAULTS["crossfit_folds"]
    bootstrap_n: int = _BOOT["n"]
    bootstrap_seed: int = _BOOT["seed"]
    bounds: str = DEFAULTS["bounds"]
    case_interval_n: int = DEFAULTS["case_interval"]["n"]
    case_interval_seed: int = DEFAULTS["case_interval"]["seed"]
    casework_system: str = DEFAULTS["casework_system"]
    validation: str = DEFAULTS["validation"]     # sound: four_pools (test pool) | crossval (slr/crossval.py)
    crossval_folds: int = DEFAULTS["crossval"]["folds"]
    crossval_seed: int = DEFAULTS["crossval"]["seed"]

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"slr.protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.calibration not in CALIBRATIONS:
            raise ConfigError(f"slr.calibration must be one of {CALIBRATIONS}, got {self.calibration!r}")
        if self.model not in MODELS:
            raise ConfigError(f"slr.model must be one of {MODELS}, got {self.model!r}")
        if self.score not in SCORES + (USER_SUPPLIED, FUSED):
            raise ConfigError(f"slr.score must be one of {SCORES}, got {self.score!r}")
        if self.validation not in VALIDATIONS:
            raise ConfigError(f"slr.validation must be one of {VALIDATIONS}, got {self.validation!r}")
        if self.validation == "crossval" and self.protocol not in CROSSVAL_PROTOCOLS:
            raise ConfigError(f"slr.validation = crossval needs slr.protocol in {CROSSVAL_PROTOCOLS} (the "
                              f"{self.protocol} protocol has no cross-validated variant)")
        if self.validation == "crossval" and self.casework_system != "calib":
            raise ConfigError("slr.casework_system = calib+test is for slr.validation = four_pools: under crossval the "
                              "saved system is already fitted on every person of calib and test")
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
        if self.bounds not in BOUNDS:
            raise ConfigError(f"slr.bounds must be one of {BOUNDS}, got {self.bounds!r}")
        if self.casework_system not in CASEWORK_SYSTEMS:
            raise ConfigError(f"slr.casework_system must be one of {CASEWORK_SYSTEMS}, got {self.casework_system!r}")
        if int(self.case_interval_n) < 0:
            raise ConfigError(f"slr.case_interval.n must be >= 0 (0 = off), got {self.case_interval_n}")
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
                       grid=bandwidth_grid(lo, hi, n), grid_scale=str(get("slr.bandwidth.scale")),
                       n_folds=int(get("slr.bandwidth.n_folds")), seed=int(get("slr.bandwidth.seed")),
                       paper_seed=int(get("slr.paper_seed")), video_level=bool(get("slr.video_level")),
                       model=str(get("slr.model")), score=str(get("slr.score")),
                       crossfit_folds=int(get("slr.crossfit_folds")),
                       bootstrap_n=int(get("slr.bootstrap.n")), bootstrap_seed=int(get("slr.bootstrap.seed")),
                       bounds=str(get("slr.bounds")), case_interval_n=int(get("slr.case_interval.n")),
                       case_interval_seed=int(get("slr.case_interval.seed")),
                       casework_system=str(get("slr.casework_system")),
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
                     bandwidth_scale=self.grid_scale, n_folds=self.n_folds, seed=self.seed, bounds=self.bounds,
                     case_interval={"n": self.case_interval_n, "seed": self.case_interval_seed},
                     casework_system=self.casework_system)
        else:
            d.update(paper_seed=self.paper_seed)
        if self.validation == "crossval":   # only then: a four_pools system's JSON (and SHA-256) is unchanged
            d["crossval"] = {"folds": self.crossval_folds, "seed": self.crossval_seed}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Settings":
        """Inverse of to_dict (as stored in a saved LR system); a missing entry takes the schema default."""
        kw = {name: cast(d[key]) for name, key, cast in (
            ("protocol", "protocol", str), ("calibration", "calibration", str), ("grid_scale", "bandwidth_scale", str),
            ("n_folds", "n_folds", int), ("seed", "seed", int), ("paper_seed", "paper_seed", int),
            ("video_level", "video_level", bool), ("model", "model", str), ("score", "score", str),
            ("crossfit_folds", "crossfit_folds", int)) if key in d}
        if d.get("bandwidth_grid"):
            kw["grid"] = bandwidth_grid(*d["bandwidth_grid"])
        boot = d.get("bootstrap") or {}
        kw.update({name: int(boot[key]) for name, key in (("bootstrap_n", "n"), ("bootstrap_seed", "seed"))
                   if key in boot})
        kw.update({name: str(d[name]) for name in ("bounds", "casework_system") if name in d})
        ci = d.get("case_interval") or {}     # a system saved before issue 21 has no case interval: n = 0
        kw.update(case_interval_n=int(ci.get("n", 0)), case_interval_seed=int(ci.get("seed", DEFAULTS["case_interval"]["seed"])))
        cv = d.get("crossval")                # only a crossval system records it (to_dict)
        if cv:
            kw.update(validation="crossval", crossval_folds=int(cv["folds"]), crossval_seed=int(cv["seed"]))
        return cls(**kw)
