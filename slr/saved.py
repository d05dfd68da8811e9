"""Which saved LR system casework uses (beside :meth:`slr.system.LRSystem.load`).

Stage 10 saves the fitted system in ``10_kde_lr/system``; stage 15 saves the same system with its
validated degradation ranges in ``15_robustness/system`` and a pointer ``casework_system.json``
(the base system's SHA-256). :func:`casework_system_dir` picks the robustness system while it is
current, else stage 10's.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from common.config import Config

from .casework_system import CASEWORK_DIR
from .system import LRSystem

log = logging.getLogger(__name__)

STAGE = "15"              # stage ids of the table (common/stages.py)
BASE_STAGE = "10"
SYSTEM_SUBDIR = "system"


def base_system_dir(cfg: Config) -> Path:
    """``<output_dir>/10_kde_lr/system``: the LR system stage 10 fitted."""
    return cfg.stage_dir(BASE_STAGE, create=False) / SYSTEM_SUBDIR


def robust_system_dir(cfg: Config) -> Path:
    """``<output_dir>/15_robustness/system``: the same system with ``validated_degradations``."""
    return cfg.stage_dir(STAGE, create=False) / SYSTEM_SUBDIR


def _manifest_time(d: Path) -> float:
    files = [p for p in d.iterdir() if p.is_file()] if d.is_dir() else []
    return max((p.stat().st_mtime for p in files), default=-math.inf)


def casework_system_dir(cfg: Config) -> Path:
    """The LR system casework should load: ``15_robustness/system`` when it exists, is not older than
    ``10_kde_lr/system`` and was derived from the system now in ``10_kde_lr/system`` (its recorded base
    SHA-256 matches); otherwise ``10_kde_lr/system`` (without validated degradation ranges). With
    ``slr.casework_system: calib+test``: the system stage 10 refitted on calib + test (slr.casework_system)."""
    if cfg.get("slr.casework_system") == "calib+test":
        return cfg.stage_dir(BASE_STAGE, create=False) / CASEWORK_DIR
    base, robust = base_system_dir(cfg), robust_system_dir(cfg)
    pointer = cfg.stage_dir(STAGE, create=False) / "casework_system.json"
    if not (robust / "system.json").is_file() or not pointer.is_file():
        return base
    if (base / "system.json").is_file() and _manifest_time(robust) < _manifest_time(base):
        log.warning("%s is older than %s (stage 10 re-ran): casework uses %s; re-run stage 15 for validated "
                    "degradation ranges", robust, base, base)
        return base
    try:
        info = json.loads(pointer.read_text())
    except (OSError, json.JSONDecodeError):
        return base
    if (base / "system.json").is_file():
        current = _system_sha(base)
        if current is not None and info.get("base_sha256") not in (None, current):
            log.warning("%s was derived from another stage-10 system (SHA-256 %s, now %s): casework uses %s",
                        robust, info.get("base_sha256"), current, base)
            return base
    return robust


def _system_sha(d: Path) -> str | None:
    try:
        return LRSystem.load(d).sha256
    except Exception:   # noqa: BLE001 -- a damaged base system is reported by whoever loads it
        return None
