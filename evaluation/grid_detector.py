"""What a results-grid cell records about its detector: who it is and whether it learned.

- ``identity``: stage 03's own record of the detector when it has one (an external or probed detector
  names its weight file, SHA-256, source and licence), else "trained here"; always the SHA-256 of the
  checkpoint stage 04 scored with.
- ``auc`` / ``learned``: the raw detector score's frame AUC per pool with its person-cluster interval
  and the "detector did not learn" verdict (training/learned.py), as stage 04 wrote them in its
  summary; measured here from stage 04's dumps when the summary predates them.

A cell whose detector did not learn is flagged apart from the LR system's degenerate flags.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from common.io import InputError, read_json
from common.stages import folder
from training import learned

IDENTITY_KEYS = ("detector_identity", "identity")     # stage 03 summary keys naming an external detector


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _summary(run_dir: Path, stage_name: str) -> dict:
    p = Path(run_dir) / stage_name / "summary.json"
    try:
        s = read_json(p) if p.is_file() else {}
    except (InputError, ValueError):
        return {}
    return s if isinstance(s, dict) else {}


def detector_identity(run_dir: Path, s03: dict, s04: dict) -> dict:
    """``{kind, checkpoint, checkpoint_sha256, ...}``: stage 03's identity record when it wrote one."""
    out: dict = {}
    for key in IDENTITY_KEYS:
        if isinstance(s03.get(key), dict):
            out.update(s03[key])
            break
    out.setdefault("kind", "trained here from scratch" if s03.get("history") else "unknown")
    ck = s04.get("checkpoint")
    if ck:
        p = Path(ck)
        if not p.is_file():      # the published path of an upstream run: seen through the cell's link
            p = Path(run_dir) / folder("03") / p.name
        out["checkpoint"] = p.name
        out["checkpoint_sha256"] = _sha256(p)
    if s03.get("history"):
        out["epochs"] = s03.get("epochs")
        out["n_train"] = s03.get("n_train")
        out["steps"] = s03.get("steps")
    return out


def detector_record(run_dir: Path) -> dict | None:
    """``{identity, auc: {pool: {auc, ci95, n_frames, n_persons}}, learned: verdict}`` of the run's
    detector, or None without a stage 04 (a feature-file pseudo-detector)."""
    s04 = _summary(run_dir, folder("04"))
    if not s04:
        return None
    s03 = _summary(run_dir, folder("03"))
    aucs, verdict = s04.get("detector_auc"), s04.get("detector_learned")
    if not isinstance(aucs, dict) or not isinstance(verdict, dict):
        defaults = learned.settings(_Defaults())
        aucs = learned.pool_aucs_from_dumps(Path(run_dir) / folder("04"), s04.get("pools") or [],
                                            defaults["bootstrap_n"], defaults["seed"])
        verdict = learned.verdict(aucs, defaults["margin"])
    return {"identity": detector_identity(run_dir, s03, s04), "auc": aucs, "learned": verdict}


class _Defaults:
    """The schema's defaults of ``training.learned`` (a summary written before the check existed)."""

    def get(self, key):
        from common.config import config_from_dict
        return config_from_dict({}, "schema defaults").get(key)
