"""The questioned crops' LR-system scores.

``training.dump.FrameScorer`` runs stage 04's detector pass over the crops (``fit_size``, ``to_tensor``
with ``input_spec``, the fixed batch size, ``features.dtype`` read back as float64, as stage 08 reads
the dump); :func:`system_scores` applies the saved system's score function (``LRSystem.score``, i.e.
``slr.scores.score_values``, the function stage 08 uses), so a face the pipeline scored gets the
bit-identical score and LLR.
"""
from __future__ import annotations

import numpy as np

from common.io import InputError


def system_scores(system, out: dict) -> np.ndarray:
    """The LR system's score of each crop (its own score function and centroid) from
    ``training.dump.FrameScorer.run``'s outputs."""
    if "score" in out:                     # a fused system: the fusion's LLR is the score (casework/fused.py)
        return np.asarray(out["score"], dtype=np.float64)
    name = (system.score_spec or {}).get("name")
    if name == "cosine_centroid":
        c = system.centroid
        if c is not None and np.asarray(c).size != out["features"].shape[1]:
            raise InputError(f"the detector's features have {out['features'].shape[1]} values, the LR system's "
                             f"centroid {np.asarray(c).size}: the checkpoint and the LR system come from "
                             f"different runs (evidence.checkpoint, evidence.lr_system)")
    return np.asarray(system.score(features=out["features"], logit=out["logit"],
                                   fake_probability=out["fake_probability"]), dtype=np.float64)
