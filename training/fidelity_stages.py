"""The two DeepFidelity steps around stages 03-04 (logic of training/03a_*.py and training/04b_*.py).

- :func:`make_targets` (03a, after stage 02, before 03): face quality of every frame of
  ``fidelity.splits`` (train must be one), the per-class mapping fitted on train, the cache
  ``fidelity.cache_file`` (default: in the 03a folder), and ``<output_dir>/03a_fidelity_targets/``
  (``summary.json``, ``quality.png``).
- :func:`fit_svr` (04b, after stage 04): the RBF SVR from the stage-04 features of train to the
  fidelity targets, saved; per-split fidelity scores in the bring-your-own-scores format
  (``image_path, video_id, label, score``; score high = real) under
  ``<output_dir>/04b_fidelity_svr/scores/{train,val,test}.csv`` (+ ``scores_video/``), ready for
  ``python -m slr.run_scores --scores-dir ...`` or ``--set slr.scores_dir=...`` in stages 09-14.

Train scores are out-of-fold by default (``fidelity.svr.train_scores: cross_fit``): the SVR that
scores a training frame was fitted without that frame's person (GroupKFold over persons), so
the score distributions that stage 10's KDEs fit on train look like those of unseen faces. The
SVR saved and applied to val and test is fitted on all of train.
"""
from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

import numpy as np

from common import schema
from common.cli import in_work
from common.config import Config, ConfigError
from common.features import read_feature_dump
from common.io import InputError, atomic_dir, write_csv, write_json
from common.splits import POOLS, SPLITS, read_split
from common.stages import folder, stage_dir

from . import fidelity as FD

log = logging.getLogger(__name__)

TARGETS_STAGE = folder("03a")
SVR_STAGE = folder("04b")


def _auc_real_high(labels, scores) -> float:
    """ROC AUC of ``scores`` for telling real (label 0) from fake, high score = real; NaN if one class."""
    from sklearn.metrics import roc_auc_score
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(1 - labels, scores))


# ------------------------------------------------------------------------------------------- 03a
def make_targets(cfg: Config, out: Path | None = None) -> dict:
    """Stage 03a into ``out`` (its work folder; None: replace the stage folder atomically). A cache file
    configured inside the stage folder is written into ``out`` with the rest."""
    split_file, root = cfg.path("split.file"), cfg.path("dataset.root")
    if not split_file.is_file():
        raise InputError(f"{split_file}: split file not found (config key split.file); run stage 02 first")
    splits = list(cfg.get("fidelity.splits"))
    if "train" not in splits or not set(splits) <= set(SPLITS):
        raise ConfigError(f"{cfg.source}: fidelity.splits must include train and name only {SPLITS}, got {splits}")
    method = str(cfg.get("fidelity.quality_method"))
    perturbations = int(cfg.get("fidelity.perturbations"))
    face_model = cfg.path("fidelity.face_model_path")
    cache_path = cfg.path("fidelity.cache_file")
    write_path = in_work(cache_path, stage_dir(cfg, "03a"), out) if out is not None else cache_path
    info = {"quality_method": method, "perturbations": perturbations, "seed": cfg.seed, "splits": splits,
            "split_file": str(split_file), "split_hash": FD.file_hash(split_file),
            "face_model": str(face_model or FD.default_face_model()) if method == "embedding_stability" else None}
    if cache_path.is_file() and cache_path.with_suffix(".json").is_file():
        old = FD.read_cache(cache_path)["info"]
        if all(old.get(k) == v for k, v in info.items() if k != "mapping") and not cfg.get("fidelity.recompute"):
            log.info("fidelity cache %s is up to date; reusing it (--set fidelity.recompute=true to redo)", cache_path)
            if write_path != cache_path:
                for p in (cache_path, cache_path.with_suffix(".json")):
                    write_path.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(p, write_path.with_name(p.name))
            return _targets_summary(cfg, FD.read_cache(cache_path), reused=True, out=out)
    rows = [(s, split) for split in splits for s in read_split(split_file, split)]
    if not rows:
        raise InputError(f"{split_file}: no frames in splits {splits}")
    paths = [s.path for s, _ in rows]
    labels = np.array([s.label for s, _ in rows])
    split_of = np.array([sp for _, sp in rows])
    quality = FD.compute_quality(root, paths, method, face_model, perturbations, cfg.seed)
    train = split_of == "train"
    mapping = FD.FidelityMapping().fit(quality[train], labels[train])
    fidelity = mapping.apply(quality, labels)
    info["mapping"] = mapping.to_dict()
    FD.write_cache(write_path, paths, [s.video_id for s, _ in rows], labels, split_of, quality, fidelity, info)
    return _targets_summary(cfg, FD.read_cache(write_path), reused=False, out=out)


@contextlib.contextmanager
def _stage_folder(cfg: Config, stage_id: str, out: Path | None):
    if out is not None:
        yield out
    else:
        with atomic_dir(stage_dir(cfg, stage_id)) as tmp:
            yield tmp


def _targets_summary(cfg: Config, cache: dict, reused: bool, out: Path | None = None) -> dict:
    from . import fidelity_plots
    summary = {"cache_file": str(cfg.path("fidelity.cache_file")), "reused_cache": reused,
               "quality_method": cache["info"].get("quality_method"), "mapping": cache["info"].get("mapping"),
               "splits": {}}
    for split in np.unique(cache["split"]):
        m = cache["split"] == split
        q, lab = cache["quality"][m], cache["label"][m]
        summary["splits"][str(split)] = {
            "n": int(m.sum()), "n_real": int((lab == 0).sum()), "n_fake": int((lab == 1).sum()),
            "quality_mean_real": float(q[lab == 0].mean()) if (lab == 0).any() else None,
            "quality_mean_fake": float(q[lab == 1].mean()) if (lab == 1).any() else None,
            "quality_auc_real_high": _auc_real_high(lab, q)}
    with _stage_folder(cfg, "03a", out) as tmp:
        fidelity_plots.quality_figure(cache, tmp / "quality.png")
        write_json(tmp / "summary.json", summary)
    summary["output_dir"] = str(stage_dir(cfg, "03a"))
    return summary


# ------------------------------------------------------------------------------------------- 04b
def _persons(video_ids) -> np.ndarray:
    from preprocessing.splits import person_of
    return np.array([person_of(v) for v in video_ids])


def cross_fit_scores(features: np.ndarray, targets: np.ndarray, groups: np.ndarray, folds: int,
                     make_svr) -> np.ndarray:
    """Out-of-fold SVR predictions: each row scored by an SVR fitted without its group (person)."""
    from sklearn.model_selection import GroupKFold
    k = min(int(folds), len(np.unique(groups)))
    if k < 2:
        raise InputError(f"fidelity.svr.folds: cross-fitting needs >= 2 persons in train, found {len(np.unique(groups))}")
    out = np.empty(len(targets))
    for fit_idx, score_idx in GroupKFold(n_splits=k).split(features, targets, groups):
        out[score_idx] = make_svr().fit(features[fit_idx], targets[fit_idx]).predict(features[score_idx])
    return out


def fit_svr(cfg: Config, out: Path | None = None) -> dict:
    """Stage 04b into ``out`` (its work folder; None: replace the stage folder atomically)."""
    from . import fidelity_plots
    dump_dir = cfg.path("fidelity.features_dir") or stage_dir(cfg, "04")
    svr_cfg = {k: cfg.get(f"fidelity.svr.{k}") for k in schema.defaults("fidelity.svr")}
    mode = str(svr_cfg["train_scores"])
    if mode not in ("cross_fit", "in_sample"):
        raise ConfigError(f"{cfg.source}: fidelity.svr.train_scores must be cross_fit or in_sample, got {mode!r}")

    def make_svr():
        return FD.FidelitySVR(C=svr_cfg["C"], epsilon=svr_cfg["epsilon"], gamma=svr_cfg["gamma"],
                              max_train=svr_cfg["max_train"], seed=cfg.seed)

    dumps = {pool: read_feature_dump(Path(dump_dir) / pool) for pool in POOLS    # every pool stage 04 dumped
             if pool in SPLITS or (Path(dump_dir) / pool).is_dir()}
    cache = FD.read_cache(cfg.path("fidelity.cache_file"), cfg.path("split.file"),
                          cfg.get("fidelity.quality_method"))
    train = dumps["train"]
    X = np.asarray(train.features, np.float64)
    y = FD.targets_for(cache, train.image_paths, f"{train.source}/meta.csv")
    svr = make_svr().fit(X, y)
    scores = {}
    if mode == "cross_fit":
        scores["train"] = cross_fit_scores(X, y, _persons(train.video_ids), int(svr_cfg["folds"]), make_svr)
    else:
        scores["train"] = svr.predict(X)
    for split in [p for p in dumps if p != "train"]:
        scores[split] = svr.predict(np.asarray(dumps[split].features, np.float64))

    summary = {"features_dir": str(dump_dir), "train_scores": mode,
               "svr": {**svr.params, "n_train": svr.n_train}, "score": "fidelity (high = real, Hp)", "splits": {}}
    with _stage_folder(cfg, "04b", out) as tmp:
        svr.save(tmp / "svr.npz")
        for split, dump in dumps.items():
            s = scores[split]
            write_csv(tmp / "scores" / f"{split}.csv", {"image_path": list(dump.image_paths),
                      "video_id": list(dump.video_ids), "label": [int(v) for v in dump.labels],
                      "score": [float(v) for v in s]})
            v = FD.video_level(s, dump.video_ids, dump.labels)
            write_csv(tmp / "scores_video" / f"{split}.csv", {"video_id": list(v["video_id"]),
                      "label": [int(x) for x in v["label"]], "score": [float(x) for x in v["score"]],
                      "n_frames": [int(x) for x in v["n_frames"]]})
            summary["splits"][split] = {"n": len(s), "auc_frame": _auc_real_high(dump.labels, s),
                                        "auc_video": _auc_real_high(v["label"], v["score"]),
                                        "mean_score_real": float(s[dump.labels == 0].mean()) if (dump.labels == 0).any() else None,
                                        "mean_score_fake": float(s[dump.labels == 1].mean()) if (dump.labels == 1).any() else None}
        summary["splits"]["train"]["target_mse"] = float(np.mean((scores["train"] - y) ** 2))
        fidelity_plots.score_figure(dumps, scores, tmp / "fidelity_scores.png")
        write_json(tmp / "summary.json", summary)
    summary["output_dir"] = str(stage_dir(cfg, "04b"))
    return summary
