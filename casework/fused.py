"""Casework on a fused LR system (``slr.score: fusion``, slr/fused_stage.py).

The saved system records every member run (its folder and stage 04's detector identity) and the
fitted fusion. :class:`FusedScorer` builds each member's detector pass from the member run's own
config (``resolved_config.txt``; its checkpoint as stage 04 found it), refuses a member whose detector
does not match its recorded identity (exit 2, both hashes and ``slr.fusion.members[k]`` named), runs
every member on the crops, forms the (crops x members) score matrix with the member score of the
fusion (``slr.fusion.score``) and applies the fusion: the fused log10 LR is the LR system's score, as
stage 08 made it. The annex's detector logit and fake probability are the members' means.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def is_fused(system) -> bool:
    return "fusion" in (system.detector or {})


class FusedScorer:
    """Every member's ``training.dump.FrameScorer``, checked against the system's record, and the fusion."""

    def __init__(self, system, cfg, system_dir: Path | str, who: str = "evidence.py"):
        from slr.fused_stage import member_config
        from slr.fusion import LogisticFusion
        from training.dump import FrameScorer
        from common.io import InputError
        from training.identity import COMPARED, check_detector

        rec = system.detector
        self.scorers, self.names = [], []
        for k, m in enumerate(rec["members"]):
            if not any(key in (m.get("identity") or {}) for key in COMPARED):
                raise InputError(f"{system_dir}: the fused system records no detector identity for member {k} "
                                 f"({m['name']}: {m['run_dir']}; its stage-04 summary predates the record), so "
                                 f"casework cannot check that detector; re-run stage 04 of that member and stages "
                                 f"08-10 of the fused run (slr.fusion.members[{k}])")
            scorer = FrameScorer(member_config(Path(m["run_dir"]), str(cfg.get("device"))), who=who)
            check_detector(m["identity"], scorer.identity,
                           f"slr.fusion.members[{k}] ({m['name']}: {m['run_dir']})", system_dir)
            self.scorers.append(scorer)
            self.names.append(m["name"])
        self.score = rec["fusion"]["score"]
        self.fusion = LogisticFusion.from_record(rec["fusion"]["choice"]["system"])
        self.identity = {"fusion": {"score": self.score, "members": self.names,
                                    "used": rec["fusion"]["choice"]["system"]["members"]},
                         "members": [{"name": n, **s.identity} for n, s in zip(self.names, self.scorers)]}

    def run(self, crops) -> dict:
        """``{"score": fused log10 LR (n,), "logit", "fake_probability": the members' means (n,),
        "members": {name: member score (n,)}}`` of uint8 RGB crops."""
        from slr.scores import score_values

        outs = [s.run(crops) for s in self.scorers]
        matrix = np.column_stack([score_values(self.score, logit=o["logit"], fake_probability=o["fake_probability"])
                                  for o in outs])
        return {"score": self.fusion.llr(matrix),
                "logit": np.mean([o["logit"] for o in outs], axis=0),
                "fake_probability": np.mean([o["fake_probability"] for o in outs], axis=0),
                "members": {n: matrix[:, j].tolist() for j, n in enumerate(self.names)}}
