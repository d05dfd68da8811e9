"""The identity of the detector pass behind an LR system's scores, and the check that a later pass
(casework, stage 15) is the same one.

Stage 04 records :func:`detector_identity` in its ``summary.json``; stage 10 stores it in the saved LR
system (``LRSystem.detector``). A pass that scores new items (``training.dump.FrameScorer``) computes
its own and :func:`check_detector` refuses a mismatch: another checkpoint (SHA-256 of the weight file
the detector was loaded from: stage 03's ``best.pt``, or with ``training.mode: external`` possibly the
published file itself), another detector, input size, normalisation, feature definition, batch size
or stored dtype. For a published or probed detector the published weight file's SHA-256 is recorded
too (``weights_sha256``, from stage 03's ``best.pt``).
"""
from __future__ import annotations

from pathlib import Path

import torch

from common.config import Config
from common.io import InputError, sha256_file

# what must agree between the system's detector pass and a later one
COMPARED = ("name", "checkpoint_sha256", "input_size", "mean", "std", "feature", "batch_size", "features_dtype")


def published_weights(checkpoint: Path) -> dict:
    """``mode`` / ``weights_sha256`` / source / licence of a stage-03 checkpoint written by training/probe.py."""
    if Path(checkpoint).suffix.lower() in (".h5", ".hdf5"):
        return {"weights_sha256": sha256_file(checkpoint)}
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception:        # not ours to judge here: loading the weights reports it
        return {}
    ident = state.get("identity") if isinstance(state, dict) else None
    if not isinstance(ident, dict):
        return {}
    return {k: ident.get(k) for k in ("mode", "weights_sha256", "source", "licence", "training_data")}


def check_published_source(cfg: Config, checkpoint: Path) -> None:
    """A stage-03 checkpoint of a published or probed detector holds its tensors only; the rest (Keras'
    BatchNorm epsilon) comes from building the detector from the same published file. InputError when
    ``model.pretrained_path`` is not the file the checkpoint was made from."""
    if Path(checkpoint).suffix.lower() in (".h5", ".hdf5"):
        return
    want = published_weights(checkpoint).get("weights_sha256")
    if not want:
        return
    pre = cfg.path("model.pretrained_path")
    have = sha256_file(pre) if pre is not None and pre.is_file() else None
    if have != want:
        raise InputError(f"{checkpoint}: made by stage 03 from published weights with sha256 {want}, but "
                         f"model.pretrained_path is {pre} (sha256 {have}); set model.pretrained_path to that file")


def detector_identity(cfg: Config, detector, spec, checkpoint: Path) -> dict:
    """The detector pass's identity: name, checkpoint SHA-256, input size and normalisation, the
    feature stored, batch size and ``features.dtype`` (plus the published weights' identity)."""
    return {"name": str(cfg.get("model.name")), "checkpoint": str(checkpoint),
            "checkpoint_sha256": sha256_file(checkpoint), "input_size": int(spec.size),
            "mean": [float(v) for v in spec.mean], "std": [float(v) for v in spec.std],
            "feature": "feature_map (flattened)" if bool(cfg.get("features.full_map")) else "feature",
            "logit": "log-odds of fake: z_fake - z_real of the two-class head",
            "batch_size": int(cfg.get("features.batch_size")), "features_dtype": str(cfg.get("features.dtype")),
            **published_weights(checkpoint)}


def check_detector(recorded: dict | None, current: dict, config_key: str, system_dir: str | Path = "") -> None:
    """InputError (exit 2) when ``current`` differs from the LR system's ``recorded`` detector in any
    of :data:`COMPARED`; the message names both checkpoint hashes and ``config_key``. A system
    without a record (bring-your-own scores, older systems) is not checked."""
    if not recorded:
        return
    diff = [k for k in COMPARED if k in recorded and recorded.get(k) != current.get(k)]
    if not diff:
        return
    what = "; ".join(f"{k}: system {recorded.get(k)!r}, now {current.get(k)!r}" for k in diff if "sha256" not in k)
    raise InputError(
        f"the detector does not match the LR system{f' {system_dir}' if system_dir else ''}: its scores came from "
        f"checkpoint sha256 {recorded.get('checkpoint_sha256')} ({recorded.get('checkpoint')}), this run loads "
        f"sha256 {current.get('checkpoint_sha256')} ({current.get('checkpoint')})"
        f"{'; ' + what if what else ''}. Point {config_key} at the checkpoint the system was validated with, "
        f"or re-run stages 04-10 with this one")
