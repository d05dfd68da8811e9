"""Crops -> the detector's features (``training.dump.FrameScorer``), logit and fake probability exactly as stage 04 dumps them ->
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

import numpy as np

from common.io import InputError


def system_scores(system, out: dict) -> np.ndarray:
    """The LR system's score of each crop (its own score function and centroid) from
    ``training.dump.FrameScorer.run``'s outputs."""
    name = (system.score_spec or {}).get("name")
    if name == "cosine_centroid":
        c = system.centroid
        if c is not None and np.asarray(c).size != out["features"].shape[1]:
            raise InputError(f"the detector's features have {out['features'].shape[1]} values, the LR system's "
                             f"centroid {np.asarray(c).size}: the checkpoint and the LR system come from "
                             f"different runs (evidence.checkpoint, evidence.lr_system)")
    return np.asarray(system.score(features=out["features"], logit=out["logit"],
                                   fake_probability=out["fake_probability"]), dtype=np.float64)
