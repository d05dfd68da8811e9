"""TEMPORARY stand-in for slr.system.LRSystem (helper H1) until h1-lrsystem lands; deleted afterwards.

Built from a finished demo run's current outputs: centroid of stage 08, KDEs of stage 10 on the val
scores (standing in for calib), stage 10's ELUB bounds."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common.conditions import pool_conditions
from common.splits import read_split
from slr.io import read_scores, video_level
from slr.kde import KDELikelihoodRatio


class StandIn:
    def __init__(self, out: Path):
        out = Path(out)
        summ = json.loads((out / "10_kde_lr" / "summary.json").read_text())
        self.levels, self.kdes, self.bounds, self.calib = {}, {}, {}, {}
        for level in ("frame", "video"):
            info = summ["levels"].get(level)
            if not info:
                continue
            s = read_scores(out / "08_scores" / "val.csv")
            if level == "video":
                s = video_level(s)
            bw = info["bandwidth"]
            self.kdes[level] = KDELikelihoodRatio().fit(s.hp, s.hd, float(bw["hp"]), float(bw["hd"]))
            e = info["elub"]["val"]
            self.bounds[level] = (float(e["lower_log10"]), float(e["upper_log10"]))
            self.calib[level] = (s.hp, s.hd)
            self.levels[level] = object()
        self.score_spec = {"name": "cosine_centroid"}
        self.centroid = np.load(out / "08_scores" / "centroid.npy").astype(np.float64)
        vids = {x.video_id for x in read_split(out / "02_split" / "split.json", "val")}
        self.conditions = pool_conditions(out / "01_faces", vids, out / "00_demo_videos")
        self.validation = {}
        self.sha256 = "0" * 64

    def llr(self, scores, level="frame", bounded=True):
        v = np.asarray(self.kdes[level].llr(np.asarray(scores, float)), float)
        return np.clip(v, *self.bounds[level]) if bounded else v

    def bounds_log10(self, level="frame"):
        return self.bounds[level]

    def score(self, features=None, logit=None, fake_probability=None):
        c = self.centroid / np.linalg.norm(self.centroid)
        return np.clip(features @ c / np.linalg.norm(features, axis=1), -1, 1)

    def calib_scores(self, level="frame"):
        return self.calib[level]
