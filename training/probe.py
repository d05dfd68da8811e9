"""Stage 03 without SGD: a published detector as it is (``training.mode: external``), or a linear probe
on its frozen backbone (``training.mode: probe``).

external: the detector built from ``model.pretrained_path`` (e.g. the MesoNet authors' Keras file) is
written to ``best.pt`` unchanged; nothing is fitted and no person is used.

probe: the frozen detector's ``feature`` (eval mode, e.g. MesoInception-4's flattened 16x8x8 map) of
every frame of the train and val pools (``training.frames_per_video`` per video, evenly spaced) gets a
logistic head: scikit-learn ``LogisticRegression`` (L2, lbfgs) on standardised features, its ``C`` from
``training.probe.C_grid`` chosen by person-grouped K-fold CV (``training.probe.folds``; pooled
out-of-fold log loss), then refitted on all train + val frames. The head is folded back to raw
features and written as the detector's last layer (two logits (0, w.f + b), so the fake logit is
w.f + b); with ``training.mode: probe`` the factory builds every detector with that head
(:func:`training.detectors.base.attach_probe_head`), so stage 04 and casework read ``best.pt`` as any
trained checkpoint.

Both record the detector's identity (weight file SHA-256, source, licence, NOTICE, training data as
its authors state) in ``best.pt`` and ``summary.json``.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from common.config import Config, ConfigError
from common.io import InputError, sha256_file, write_json
from common.splits import person_of_video
from common.stages import folder, stage_dir

from . import data as D
from .dump import feature_batch_size, forward_fixed_batch
from .trainer import build_detector, resolve_device, save_checkpoint, seed_everything, to_device

log = logging.getLogger(__name__)

STAGE = folder("03")


def weights_identity(cfg: Config, detector=None) -> dict:
    """The pretrained weight file of ``model.pretrained_path`` (else the file a detector loads itself,
    its ``weights_path``, e.g. dlib's embedder) and what its authors say of it."""
    path = cfg.path("model.pretrained_path") or getattr(detector, "weights_path", None)
    if path is None or not Path(path).is_file():
        raise ConfigError(f"{cfg.source}: training.mode={cfg.get('training.mode')} needs the published weights: "
                          f"model.pretrained_path must name a weight file (got {path})")
    notice = cfg.path("model.provenance.notice")
    return {"weights": str(path), "weights_sha256": sha256_file(path),
            "source": cfg.get("model.provenance.source"), "licence": cfg.get("model.provenance.licence"),
            "notice": str(notice) if notice is not None else None,
            "training_data": cfg.get("model.provenance.training_data")}


@torch.no_grad()
def pool_features(cfg: Config, detector, pools, device) -> dict:
    """``{"x": (n, D) float64, "y": (n,), "person": (n,) str}`` of the frozen detector over ``pools``."""
    persons = person_of_video(cfg.path("split.file"))
    spec = D.input_spec(cfg, detector)
    batch_size = feature_batch_size(cfg)
    xs, ys, who = [], [], []
    detector.eval()
    for pool in pools:
        samples, _ = D.split_samples(cfg, pool, cfg.get("training.frames_per_video"),
                                     skip_missing=cfg.get("training.skip_missing"))
        dataset = D.build_eval_dataset(cfg, samples, cfg.path("dataset.root"), spec)
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                num_workers=int(cfg.get("training.num_workers"))):
            out = forward_fixed_batch(detector, to_device(batch, device)["image"], batch_size)
            xs.append(out["feature"].double().cpu().numpy())
            ys.extend(int(v) for v in batch["label"])
            who.extend(persons[str(v)] for v in batch["video_id"])
    return {"x": np.concatenate(xs), "y": np.asarray(ys), "person": np.asarray(who)}


def fit_probe(x: np.ndarray, y: np.ndarray, groups: np.ndarray, c_grid, folds: int, max_iter: int) -> dict:
    """Logistic head on standardised ``x``; C by person-grouped CV (pooled out-of-fold log loss).
    Returns the raw-feature weights ``w``, bias ``b``, the chosen C and the CV figures."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    if len(set(y.tolist())) < 2:
        raise InputError("training.mode=probe: the train and val pools hold one class only")
    k = min(int(folds), len(set(groups.tolist())))
    if k < 2:
        raise InputError("training.mode=probe: person-grouped CV needs at least 2 persons in train + val")
    cv = {}
    for c in c_grid:
        oof = np.zeros(len(y))
        for tr, te in GroupKFold(n_splits=k).split(x, y, groups):       # scaler fitted inside each fold
            model = make_pipeline(StandardScaler(), LogisticRegression(C=float(c), max_iter=max_iter))
            oof[te] = model.fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
        cv[float(c)] = {"log_loss": float(log_loss(y, oof, labels=[0, 1])), "auc": float(roc_auc_score(y, oof))}
    best = min(cv, key=lambda c: (cv[c]["log_loss"], c))
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=best, max_iter=max_iter).fit(scaler.transform(x), y)
    w = model.coef_[0] / scaler.scale_                                  # folded back to raw features
    b = float(model.intercept_[0] - np.dot(w, scaler.mean_))
    return {"w": w, "b": b, "C": best, "folds": k, "cv": cv, "train_auc": float(roc_auc_score(y, x @ w + b))}


def set_probe_head(layer: nn.Linear, w: np.ndarray, b: float) -> None:
    """Two logits (0, w.f + b): the fake logit z_fake - z_real is w.f + b."""
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        layer.weight[1] = torch.as_tensor(w, dtype=layer.weight.dtype)
        layer.bias[1] = float(b)


def fit_without_sgd(cfg: Config, out: Path | None = None) -> dict:
    """Stage 03 for ``training.mode`` external / probe; writes best.pt and summary.json into ``out``."""
    t0 = time.time()
    mode = str(cfg.get("training.mode"))
    out_dir = Path(out) if out is not None else stage_dir(cfg, "03", create=True)
    seed_everything(int(cfg.get("seed")))
    detector = build_detector(cfg)
    identity = {"name": str(cfg.get("model.name")), "mode": mode, **weights_identity(cfg, detector)}
    device = resolve_device(cfg)
    summary = {"stage": STAGE, "mode": mode, "model": identity["name"], "identity": identity,
               "best_checkpoint": str(stage_dir(cfg, "03") / "best.pt")}
    if mode == "probe":
        layer = detector.head[0]      # the factory's linear probe head
        feats = pool_features(cfg, detector.to(device), ("train", "val"), device)
        fit = fit_probe(feats["x"], feats["y"], feats["person"], cfg.get("training.probe.C_grid"),
                        cfg.get("training.probe.folds"), cfg.get("training.probe.max_iter"))
        set_probe_head(layer, fit["w"], fit["b"])
        summary["probe"] = {"pools": ["train", "val"], "n_frames": int(len(feats["y"])),
                            "n_fake": int(feats["y"].sum()), "n_persons": int(len(set(feats["person"].tolist()))),
                            "feature_dim": int(feats["x"].shape[1]), "C": fit["C"], "folds": fit["folds"],
                            "cv": {str(c): v for c, v in fit["cv"].items()}, "train_auc": fit["train_auc"]}
        summary.update(select_metric="cv_log_loss", best_value=fit["cv"][fit["C"]]["log_loss"], cv_auc=
                       fit["cv"][fit["C"]]["auc"])
        log.info("03 probe: C=%g chosen by %d-fold person-grouped CV (log loss %.4f, AUC %.4f) on %d frames",
                 fit["C"], fit["folds"], summary["best_value"], summary["cv_auc"], len(feats["y"]))
    state = {k: v.detach().cpu() for k, v in detector.state_dict().items()}
    save_checkpoint(out_dir / "best.pt", {"model": state, "mode": mode, "identity": identity,
                                          "model_name": identity["name"],
                                          "feature_dim": int(getattr(detector, "feature_dim", 0))})
    summary["seconds"] = time.time() - t0
    write_json(out_dir / "summary.json", summary)
    return summary
