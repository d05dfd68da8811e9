"""Crops -> the detector's features, logit and fake probability exactly as stage 04 dumps them ->
the LR system's score (``LRSystem.score``, i.e. ``slr.scores.score_values``, the function stage 08
uses), so a face the pipeline scored gets the bit-identical score and LLR.

Stage 04's path, step by step: the crop (a lossless PNG of the same uint8 array in the pipeline)
is resized to the detector's input with ``training.data.fit_size``, normalised by
``training.data.to_tensor`` with ``training.data.input_spec``, run through the detector of
``training.dump.load_trained_detector`` in eval mode; the feature is ``feature`` (or the flattened
``feature_map`` when ``features.full_map``), stored at ``features.dtype`` (float32 or float16),
then read as float64, as stage 08 reads the dump.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from common.config import Config, ConfigError
from common.io import InputError


class Scorer:
    """The run's detector, loaded once; ``run(crops)`` -> features/logit/probability; ``score``."""

    def __init__(self, cfg: Config, checkpoint: Path):
        import torch

        from training.data import input_spec
        from training.dump import feature_batch_size, load_trained_detector
        from training.trainer import resolve_device

        self.torch = torch
        self.detector = load_trained_detector(cfg, checkpoint)
        if getattr(self.detector, "is_video", False):
            raise ConfigError(f"{cfg.source}: model.name={cfg.get('model.name')!r} is a video (window) detector; "
                              f"evidence.py scores single frames and needs a frame detector")
        self.full_map = bool(cfg.get("features.full_map"))
        self.dtype = str(cfg.get("features.dtype"))
        if self.dtype not in ("float32", "float16"):
            raise ConfigError(f"{cfg.source}: features.dtype must be float32 or float16, got {self.dtype!r}")
        self.detector.return_feature_map = self.full_map
        self.device = resolve_device(cfg)
        self.detector.to(self.device).eval()
        self.spec = input_spec(cfg, self.detector)
        self.batch_size = feature_batch_size(cfg)

    def run(self, crops: Sequence[np.ndarray]) -> dict:
        """``{"features": (n, D) float64, "logit": (n,), "fake_probability": (n,)}`` of RGB crops."""
        parts = [self._run(crops[i:i + self.batch_size]) for i in range(0, len(crops), self.batch_size)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _run(self, crops: Sequence[np.ndarray]) -> dict:
        from training.data import fit_size, to_tensor
        from training.dump import fake_logit, forward_fixed_batch

        torch = self.torch
        batch = torch.stack([to_tensor(fit_size(c, self.spec.size), self.spec.mean, self.spec.std) for c in crops])
        with torch.no_grad():
            out = forward_fixed_batch(self.detector, batch.to(self.device), self.batch_size)
        if self.full_map and "feature_map" not in out:
            raise ConfigError("features.full_map is true but the detector returns no feature map; set it to false")
        feat = out["feature_map"].flatten(1) if self.full_map else out["feature"]
        stored = feat.float().cpu().numpy().astype(self.dtype)                 # as the dump stores it
        return {"features": np.asarray(stored, dtype=np.float64).reshape(len(crops), -1),
                "logit": np.asarray(fake_logit(out).float().cpu().numpy(), dtype=np.float64).reshape(-1),
                "fake_probability": np.asarray(out["prob"].float().cpu().numpy(), dtype=np.float64).reshape(-1)}

    @staticmethod
    def score(system, out: dict) -> np.ndarray:
        """The LR system's score of each crop (its own score function and centroid)."""
        name = (system.score_spec or {}).get("name", "cosine_centroid")
        if name == "cosine_centroid":
            c = system.centroid
            if c is not None and np.asarray(c).size != out["features"].shape[1]:
                raise InputError(f"the detector's features have {out['features'].shape[1]} values, the LR system's "
                                 f"centroid {np.asarray(c).size}: the checkpoint and the LR system come from "
                                 f"different runs (evidence.checkpoint, evidence.lr_system)")
        return np.asarray(system.score(features=out["features"], logit=out["logit"],
                                       fake_probability=out["fake_probability"]), dtype=np.float64)
