"""``slr.casework_system: calib+test`` (issue 21 item 6): after validation, the system casework uses may
be refitted on calib and test together (lir's case-LLR rule: use all validated data for the case).

Stage 10 then saves, beside the validated calib-only system (``system/``), a second system fitted the
same way on the union of the calib and test pools (``system_casework/``; persons are disjoint across
pools, so the union's person-grouped cross-fitting is sound). Its ``validation`` names the calib-only
system's SHA-256 and says that every validation figure comes from that system: the refitted system
itself has no held-out data left. Casework loads it when the config says so and its statement says
which system gave the number.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .io import ScoreSet, video_level

CASEWORK_DIR = "system_casework"
NOTE = ("refitted on calib and test together after validation (slr.casework_system: calib+test); its validation "
        "figures are those of the calib-only system {sha}")


def union(sets: list[ScoreSet], source: str) -> ScoreSet:
    """One ScoreSet of the items of ``sets`` (optional columns kept only when every set has them)."""
    def cat(attr):
        parts = [getattr(s, attr) for s in sets]
        return None if any(p is None for p in parts) else np.concatenate([np.asarray(p) for p in parts])
    return ScoreSet(np.concatenate([s.scores for s in sets]), np.concatenate([s.labels for s in sets]),
                    cat("video_ids"), cat("image_paths"), source, person_ids=cat("person_ids"))


def fit_casework_system(cls, sets: dict[str, ScoreSet], settings, score_spec, centroid, conditions,
                        validated_sha: str):
    """The protocol's system class ``cls`` fitted on calib + test, with its validation note."""
    both = union([sets["calib"], sets["test"]], "calib+test scores")
    by_level = {"frame": {"calib": both}}
    if settings.video_level:
        by_level["video"] = {"calib": video_level(both)}
    system = cls.fit_pools(by_level, settings, score_spec, centroid, conditions)
    system.validation = {"casework_system": "calib+test", "validated_system_sha256": validated_sha,
                         "note": NOTE.format(sha=validated_sha)}
    return system


def save_casework_system(cls, sets, settings, score_spec, centroid, conditions, validated_sha: str,
                         directory: Path, detector: dict | None = None) -> dict:
    """Fit and save it (with the validated system's ``detector`` record, so casework checks the
    detector against it too); returns the summary's ``system.casework`` block."""
    system = fit_casework_system(cls, sets, settings, score_spec, centroid, conditions, validated_sha)
    system.detector = dict(detector or {})
    sha = system.save(directory)
    return {"fitted_on": "calib+test", "directory": str(directory.name), "sha256": sha,
            "validated_system_sha256": validated_sha, "note": NOTE.format(sha=validated_sha)}
