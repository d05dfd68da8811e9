"""Checkpoints and resume of stage 03: ``last.pt`` / ``best.pt``, ``log.csv``, and where a run continues.

Owns the files an epoch leaves (``save_epoch``), the resume fingerprint (``RESUME_KEYS`` + the split
file's content) and ``resume_or_start`` (this run's ``last.pt``, else the published run's, else epoch 1).
"""
from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from common.config import Config, ConfigError
from common.io import atomic_path, link_tree, write_csv

from .train_env import Dist, rng_state, set_rng_state

if TYPE_CHECKING:
    from .trainer import TrainSettings

log = logging.getLogger(__name__)

# config keys whose change makes an existing last.pt unusable for resuming
RESUME_KEYS = ("seed", "model", "split.file", "dataset.root", "training.batch_size", "training.optimizer",
               "training.scheduler", "training.data_mode", "training.frames_per_video", "training.balanced",
               "training.augment", "training.normalization", "training.select_metric")

def save_checkpoint(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_last(path: Path) -> dict:
    # our own file (it holds numpy RNG state, so not weights-only)
    return torch.load(path, map_location="cpu", weights_only=False)


def write_log(path: Path, history: list[dict]) -> None:
    if not history:
        return
    cols: list[str] = []
    for row in history:
        cols.extend(k for k in row if k not in cols)
    write_csv(path, {c: [row.get(c, float("nan")) for row in history] for c in cols})


def read_log(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


@dataclass
class Progress:
    """What survives an epoch: the history, the best epoch so far and where to continue."""
    history: list
    best: dict
    start_epoch: int


def resume_fingerprint(cfg: Config) -> str:
    """Identity of a training run: the resume-relevant config keys and the split file's *content*
    (a re-made split must not resume an old run)."""
    split_digest = hashlib.sha256(cfg.path("split.file").read_bytes()).hexdigest()[:16]
    return f"{cfg.fingerprint(RESUME_KEYS)}-{split_digest}"


def resume_or_start(cfg: Config, st: TrainSettings, out_dir: Path, published: Path | None, fingerprint: str,
                    detector: nn.Module, optimizer, scheduler, dd: Dist) -> Progress:
    """Continue from ``out_dir/last.pt`` (an interrupted run), else from the published folder's
    ``last.pt`` when it was written for the same fingerprint (its files are linked into ``out_dir``),
    else start at epoch 1. A ``last.pt`` in ``out_dir`` for another fingerprint is a ConfigError."""
    fresh = Progress([], {"metric": st.metric_key, "value": None, "epoch": None}, 1)
    last_path = out_dir / "last.pt"
    source = None
    if st.resume and last_path.is_file():
        ck = load_last(last_path)
        if ck.get("fingerprint") != fingerprint:
            raise ConfigError(f"{cfg.source}: {last_path} was written with a different configuration (model, data "
                              f"or optimiser keys changed); pass --set training.resume=false to start over, "
                              f"or use another output_dir")
        source = last_path
    elif st.resume and published is not None and (published / "last.pt").is_file():
        ck = load_last(published / "last.pt")
        if ck.get("fingerprint") == fingerprint:
            if dd.main:   # the completed run's files; tensorboard event files are appended to, so not linked
                link_tree(published, out_dir, skip=lambda rel: rel.parts[0] == "tensorboard" or rel.name.startswith("."))
            source = published / "last.pt"
        else:
            log.info("the published run in %s was made with another configuration; starting over", published)
    if source is None:
        if dd.main:
            for stale in (last_path, out_dir / "best.pt"):
                if stale.exists():
                    log.warning("starting over: removing %s from an earlier run", stale)
                    stale.unlink()
        return fresh
    detector.load_state_dict(ck["model"], strict=True)
    optimizer.load_state_dict(ck["optimizer"])
    if scheduler is not None and ck.get("scheduler") is not None:
        scheduler.load_state_dict(ck["scheduler"])
    set_rng_state(ck["rng"])
    log.info("resuming from %s after epoch %d (best %s = %s at epoch %s)", source, ck["epoch"],
             st.metric_key, ck["best"]["value"], ck["best"]["epoch"])
    return Progress(ck["history"], ck["best"], int(ck["epoch"]) + 1)


def save_epoch(cfg: Config, out_dir: Path, detector: nn.Module, optimizer, scheduler, progress: Progress,
               row: dict, is_best: bool, fingerprint: str, tb) -> None:
    """``best.pt`` when the epoch is the best so far, ``last.pt`` (everything a resume needs), log.csv."""
    epoch = row["epoch"]
    state = {k: v.detach().cpu() for k, v in detector.state_dict().items()}
    if is_best:
        save_checkpoint(out_dir / "best.pt", {"model": state, "epoch": epoch, "metric": progress.best["metric"],
                                              "value": float(progress.best["value"]),
                                              "model_name": str(cfg.get("model.name")),
                                              "feature_dim": int(getattr(detector, "feature_dim", 0))})
    save_checkpoint(out_dir / "last.pt", {"model": state, "optimizer": optimizer.state_dict(),
                                          "scheduler": scheduler.state_dict() if scheduler is not None else None,
                                          "epoch": epoch, "history": progress.history, "best": progress.best,
                                          "rng": rng_state(), "fingerprint": fingerprint})
    write_log(out_dir / "log.csv", progress.history)
    if tb is not None:
        for k, v in row.items():
            if k != "epoch":
                tb.add_scalar(k, v, epoch)
