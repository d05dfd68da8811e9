"""Detector training (stage 03): one loop for every detector, on one CPU or many GPUs (torchrun).

What the loop does, and the config keys that steer it (section ``training``; see docs/training.md):

- data: the split file's ``train`` split through the data-mode registry (``data_mode``), validation
  on the ``val`` split (never ``test``) through the eval mode; ``frames_per_video`` /
  ``val_frames_per_video`` subsample frames evenly; ``balanced`` draws classes 1:1; the order of
  every epoch depends only on (seed, epoch).
- objective: ``Detector.training_step(batch) -> (loss, logs)``, called through a thin module so
  DistributedDataParallel sees it as ``forward`` and synchronises gradients.
- optimiser (``optimizer.name`` adam | adamw | sgd, ``lr``, ``weight_decay``, ``momentum``),
  schedule stepped once per epoch (``scheduler.name`` none | cosine | step | plateau), optional
  ``grad_clip`` (max global L2 norm).
- speed: ``amp`` (auto = bf16 autocast on CUDA, off on CPU; bf16 | off), ``channels_last`` (auto =
  on CUDA), ``cudnn_benchmark``.
- checkpoints in ``<output_dir>/03_train/``: ``last.pt`` after every epoch (model, optimiser,
  scheduler, RNG states, history) and ``best.pt`` (model weights + epoch + metric) whenever the
  validation metric ``select_metric`` improves strictly; ``resume: true`` continues from
  ``last.pt`` with the same state an uninterrupted run would have.
- outputs: ``log.csv`` (one row per epoch), ``training_curves.png``, ``summary.json``,
  TensorBoard events under ``tensorboard/`` when the package is installed.

Conventions: label 1 = fake; validation metrics are fractions (AUC, AP, accuracy at 0.5, EER), the
loss is cross-entropy in nats on the detector's logits, whatever its training objective.
"""
from __future__ import annotations

import csv
import hashlib
import logging
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from common.config import Config, ConfigError
from common.figures import save_figure
from common.io import InputError, atomic_path, write_csv, write_json
from evaluation import metrics as M

from . import data as D

log = logging.getLogger(__name__)

STAGE = "03_train"
METRICS = ("auc", "video_auc", "ap", "acc", "eer", "loss")   # val_<name> may be the select_metric
LOWER_IS_BETTER = ("eer", "loss")
# config keys whose change makes an existing last.pt unusable for resuming
RESUME_KEYS = ("seed", "model", "split.file", "dataset.root", "training.batch_size", "training.optimizer",
               "training.scheduler", "training.data_mode", "training.frames_per_video", "training.balanced",
               "training.augment", "training.normalization", "training.select_metric")


# ----------------------------------------------------------------------------------------------
# environment


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False   # True if this module initialised the process group

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_type: str) -> Dist:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1 (NCCL on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    owns = False
    if not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
        owns = True
    return Dist(dist.get_rank(), dist.get_world_size(), local, owns)


def resolve_device(cfg: Config, local_rank: int = 0) -> torch.device:
    """Top-level ``device``: auto (CUDA if available) | cpu | cuda."""
    want = str(cfg.get("device", "auto")).lower()
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"{cfg.source}: device is '{want}' but no CUDA GPU is available; use device: auto or cpu")
        return torch.device("cuda", local_rank)
    if want != "cpu":
        raise ConfigError(f"{cfg.source}: device must be auto, cpu or cuda, got {want!r}")
    return torch.device("cpu")


def amp_dtype(cfg: Config, device: torch.device) -> torch.dtype | None:
    """``training.amp``: auto (bf16 on CUDA, none on CPU) | bf16 | off."""
    mode = cfg.get("training.amp", "auto")
    mode = "off" if mode is False else str(mode).lower()
    if mode == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if mode == "bf16":
        return torch.bfloat16
    if mode in ("off", "none", "fp32"):
        return None
    raise ConfigError(f"{cfg.source}: training.amp must be auto, bf16 or off, got {mode!r}")


def use_channels_last(cfg: Config, device: torch.device) -> bool:
    v = cfg.get("training.channels_last", "auto")
    return device.type == "cuda" if v == "auto" else bool(v)


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def to_device(batch: dict, device: torch.device, channels_last: bool = False) -> dict:
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=True)
            if channels_last and v.ndim == 4 and v.is_floating_point():
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


# ----------------------------------------------------------------------------------------------
# optimisation


def build_optimizer(cfg: Config, params) -> torch.optim.Optimizer:
    o = cfg.section("training.optimizer")
    name = str(o.get("name", "adam")).lower()
    lr, wd = float(o.get("lr", 2e-4)), float(o.get("weight_decay", 0.0))
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, betas=tuple(o.get("betas", (0.9, 0.999))))
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, betas=tuple(o.get("betas", (0.9, 0.999))))
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=float(o.get("momentum", 0.9)),
                               nesterov=bool(o.get("nesterov", False)))
    raise ConfigError(f"{cfg.source}: training.optimizer.name must be adam, adamw or sgd, got {name!r}")


def build_scheduler(cfg: Config, optimizer: torch.optim.Optimizer, epochs: int):
    """Stepped once per epoch (``plateau`` with the validation metric)."""
    s = cfg.section("training.scheduler")
    name = str(s.get("name", "none")).lower()
    if name in ("none", "constant"):
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, int(s.get("t_max", epochs))),
                                                          eta_min=float(s.get("min_lr", 0.0)))
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(s.get("step_size", 10)),
                                               gamma=float(s.get("gamma", 0.1)))
    if name == "plateau":
        mode = "min" if select_metric(cfg)[1] in LOWER_IS_BETTER else "max"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=float(s.get("factor", 0.1)),
                                                          patience=int(s.get("patience", 2)))
    raise ConfigError(f"{cfg.source}: training.scheduler.name must be none, cosine, step or plateau, got {name!r}")


def select_metric(cfg: Config) -> tuple[str, str]:
    """(``val_<metric>``, ``<metric>``) from ``training.select_metric``."""
    key = str(cfg.get("training.select_metric", "val_auc"))
    base = key[4:] if key.startswith("val_") else key
    if base not in METRICS:
        raise ConfigError(f"{cfg.source}: training.select_metric must be one of "
                          f"{', '.join('val_' + m for m in METRICS)}, got {key!r}")
    return "val_" + base, base


def improved(value: float, best: float | None, metric: str) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best if metric in LOWER_IS_BETTER else value > best


class StepModule(nn.Module):
    """Makes ``detector.training_step`` the ``forward`` DDP wraps (so gradients are synchronised)."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, batch: dict):
        return self.detector.training_step(batch)


# ----------------------------------------------------------------------------------------------
# prediction and validation


def _gather(obj, dd: Dist) -> list:
    if dd.world_size == 1:
        return [obj]
    out = [None] * dd.world_size
    dist.all_gather_object(out, obj)
    return out


@torch.no_grad()
def predict(detector: nn.Module, loader: DataLoader, device: torch.device, dtype: torch.dtype | None = None,
            channels_last: bool = False, progress: bool = True, desc: str = "predict", dd: Dist | None = None) -> dict:
    """Fake probabilities of every item: ``{prob, label, loss, video_id, path, index}`` (numpy arrays).

    ``loss`` is the per-item cross-entropy (nats) of the logits. Under DDP each process predicts its
    shard and the results are gathered (duplicates from padding removed) on every process.
    """
    dd = dd or Dist()
    was_training = detector.training
    detector.eval()
    parts: dict[str, list] = {k: [] for k in ("prob", "label", "loss", "video_id", "path", "index")}
    for batch in tqdm(loader, desc=desc, leave=False, disable=not (progress and dd.main)):
        b = to_device(batch, device, channels_last)
        with autocast(device, dtype):
            out = detector(b["image"])
        logits = out["logits"].float()
        parts["prob"].append(out["prob"].float().cpu().numpy())
        parts["label"].append(batch["label"].numpy())
        parts["loss"].append(F.cross_entropy(logits, b["label"], reduction="none").cpu().numpy())
        parts["video_id"].extend(batch["video_id"])
        parts["path"].extend(batch["path"])
        parts["index"].append(np.asarray(batch["index"]))
    detector.train(was_training)
    local = {k: (np.concatenate(v) if k in ("prob", "label", "loss", "index") else np.asarray(v, dtype=str))
             for k, v in parts.items()}
    if dd.world_size > 1:
        shards = _gather(local, dd)
        local = {k: np.concatenate([s[k] for s in shards]) for k in local}
        _, first = np.unique(local["index"], return_index=True)
        local = {k: v[first] for k, v in local.items()}
    order = np.argsort(local["index"], kind="stable")
    return {k: v[order] for k, v in local.items()}


def validation_metrics(pred: dict) -> dict:
    """``val_loss`` (mean CE, nats), frame ``val_auc/ap/acc/eer`` and ``val_video_auc`` (fractions)."""
    frame = M.binary_report(pred["label"], pred["prob"])
    _, vy, vs, _ = M.video_level(pred["label"], pred["prob"], pred["video_id"])
    video_auc = M.roc_auc(vy, vs) if M.two_classes(vy) else float("nan")
    return {"val_loss": float(np.mean(pred["loss"])), "val_auc": frame.auc, "val_video_auc": video_auc,
            "val_ap": frame.ap, "val_acc": frame.acc, "val_eer": frame.eer}


# ----------------------------------------------------------------------------------------------
# checkpoints and logs


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


def plot_curves(path: Path, history: list[dict], metric_key: str, best_epoch: int | None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(ep, [r["train_loss"] for r in history], "o-", label="train (training objective)")
    a1.plot(ep, [r["val_loss"] for r in history], "s-", label="val (cross-entropy)")
    a1.set(title="Loss per epoch", xlabel="epoch", ylabel="loss (nats)")
    a1.legend()
    a2.plot(ep, [r[metric_key] for r in history], "o-", label=metric_key)
    if best_epoch is not None:
        a2.axvline(best_epoch, color="k", ls=":", label=f"best.pt (epoch {best_epoch})")
    a2.set(title=f"Validation {metric_key[4:]} per epoch", xlabel="epoch", ylabel=f"{metric_key[4:]} (fraction)")
    a2.legend()
    from matplotlib.ticker import MaxNLocator
    for ax in (a1, a2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    save_figure(fig, path)


def _tensorboard(out_dir: Path, enabled: bool):
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: the CSV log has the same numbers
        log.info("TensorBoard not installed; per-epoch numbers are in log.csv")
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))


# ----------------------------------------------------------------------------------------------
# the loop


def build_detector(cfg: Config):
    try:
        from .detectors.factory import build_from_config
    except ImportError:  # pragma: no cover - the factory is part of the detectors issue
        from .detectors import build_detector as _build
        return _build(cfg.require("model.name", str))
    return build_from_config(cfg)


def _loader(dataset, batch_size: int, sampler, workers: int, device: torch.device, drop_last: bool,
            seed: int) -> DataLoader:
    # a data mode may bring its own collate (sbi: B pairs -> 2B images, half real, half blended)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      collate_fn=getattr(dataset, "collate_fn", None),
                      pin_memory=device.type == "cuda", drop_last=drop_last, worker_init_fn=D.worker_init,
                      persistent_workers=False, generator=torch.Generator().manual_seed(seed))


def train(cfg: Config, detector: nn.Module | None = None, progress: bool = True) -> dict:
    """Train ``model`` per the config (see module docstring); returns the summary dict.

    ``detector`` overrides the one the config's ``model`` section builds (tests, notebooks).
    Under torchrun every process calls this; only rank 0 writes files.
    """
    dd = setup_distributed("cuda" if str(cfg.get("device", "auto")) != "cpu" and torch.cuda.is_available() else "cpu")
    try:
        return _train(cfg, detector, progress, dd)
    finally:
        if dd.owns_group:
            dist.destroy_process_group()


def _train(cfg: Config, detector, progress: bool, dd: Dist) -> dict:
    t_start = time.time()
    seed = cfg.seed
    epochs = int(cfg.require("training.epochs", int))
    batch_size = int(cfg.require("training.batch_size", int))
    metric_key, metric = select_metric(cfg)
    device = resolve_device(cfg, dd.local_rank)
    dtype = amp_dtype(cfg, device)
    chl = use_channels_last(cfg, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(cfg.get("training.cudnn_benchmark", True))
    out_dir = cfg.stage_dir(STAGE)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"

    seed_everything(seed)
    if detector is None:
        detector = build_detector(cfg)
    seed_everything(seed + 1)   # training randomness independent of how the detector was built
    spec = D.input_spec(cfg, detector)

    # data: train and val only; the test split is never read here
    train_samples, skipped_train = D.split_samples(cfg, "train", cfg.get("training.frames_per_video", None))
    val_samples, skipped_val = D.split_samples(cfg, "val", cfg.get("training.val_frames_per_video", None))
    root = cfg.path("dataset.root")
    train_set = D.build_train_dataset(cfg, train_samples, root, spec)
    val_set = D.build_eval_dataset(cfg, val_samples, root, spec)
    labels = getattr(train_set, "labels", None)
    if labels is None:
        labels = np.array([s.label for s in train_samples])
    per_rank = max(1, batch_size // dd.world_size)
    if batch_size % dd.world_size:
        log.warning("training.batch_size %d is not a multiple of %d processes; using %d per process",
                    batch_size, dd.world_size, per_rank)
    workers = int(cfg.get("training.num_workers", 2))
    sampler = D.EpochSampler(labels, seed, balanced=bool(cfg.get("training.balanced", False)),
                             rank=dd.rank, world_size=dd.world_size)
    train_loader = _loader(train_set, per_rank, sampler, workers, device, len(sampler) > per_rank, seed)
    val_sampler = D.EpochSampler(np.zeros(len(val_set), int), seed, shuffle=False, rank=dd.rank,
                                 world_size=dd.world_size)
    val_loader = _loader(val_set, per_rank, val_sampler, workers, device, False, seed)
    max_steps = cfg.get("training.max_steps_per_epoch", None)

    detector.to(device)
    if chl:
        detector.to(memory_format=torch.channels_last)
    step_module: nn.Module = StepModule(detector)
    if dd.world_size > 1:
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[dd.local_rank] if device.type == "cuda" else None,
            find_unused_parameters=bool(cfg.get("training.find_unused_parameters", False)))
    optimizer = build_optimizer(cfg, [p for p in detector.parameters() if p.requires_grad])
    scheduler = build_scheduler(cfg, optimizer, epochs)
    grad_clip = cfg.get("training.grad_clip", None)

    # the split's content, not only its path: a re-made split must not resume an old run
    split_digest = hashlib.sha256(cfg.path("split.file").read_bytes()).hexdigest()[:16]
    fingerprint = f"{cfg.fingerprint(RESUME_KEYS)}-{split_digest}"
    history: list[dict] = []
    best = {"metric": metric_key, "value": None, "epoch": None}
    start_epoch = 1
    if cfg.get("training.resume", True) and last_path.is_file():
        ck = load_last(last_path)
        if ck.get("fingerprint") != fingerprint:
            raise ConfigError(f"{cfg.source}: {last_path} was written with a different configuration (model, data "
                              f"or optimiser keys changed); pass --set training.resume=false to start over, "
                              f"or use another output_dir")
        detector.load_state_dict(ck["model"], strict=True)
        optimizer.load_state_dict(ck["optimizer"])
        if scheduler is not None and ck.get("scheduler") is not None:
            scheduler.load_state_dict(ck["scheduler"])
        history, best = ck["history"], ck["best"]
        start_epoch = int(ck["epoch"]) + 1
        set_rng_state(ck["rng"])
        log.info("resuming from %s after epoch %d (best %s = %s at epoch %s)", last_path, ck["epoch"],
                 metric_key, best["value"], best["epoch"])
    elif dd.main:
        for stale in (last_path, best_path):
            if stale.exists():
                log.warning("starting over: removing %s from an earlier run", stale)
                stale.unlink()
    tb = _tensorboard(out_dir, bool(cfg.get("training.tensorboard", True))) if dd.main else None

    for epoch in range(start_epoch, epochs + 1):
        sampler.set_epoch(epoch)
        train_loader.generator.manual_seed(seed * 1009 + epoch)   # worker seeds depend on (seed, epoch) only
        step_module.train()
        sums: dict[str, float] = {}
        n_seen, t0 = 0, time.time()
        total = len(train_loader) if not max_steps else min(len(train_loader), int(max_steps))
        bar = tqdm(train_loader, total=total, desc=f"epoch {epoch}/{epochs}", leave=False,
                   disable=not (progress and dd.main))
        for step, batch in enumerate(bar):
            if max_steps and step >= int(max_steps):
                break
            batch = to_device(batch, device, chl)
            with autocast(device, dtype):
                loss, logs = step_module(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss became {float(loss)} at epoch {epoch}, step {step}; "
                                         f"lower training.optimizer.lr or set training.grad_clip")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(detector.parameters(), float(grad_clip))
            optimizer.step()
            b = len(batch["label"])
            n_seen += b
            for k, v in {"loss": float(loss.detach()), **logs}.items():
                sums[k] = sums.get(k, 0.0) + float(v) * b
            bar.set_postfix(loss=f"{sums['loss'] / n_seen:.4f}")
        train_seconds = time.time() - t0
        if dd.world_size > 1:   # average the logs over all processes
            keys = sorted(sums)
            t = torch.tensor([sums[k] for k in keys] + [n_seen], dtype=torch.float64, device=device)
            dist.all_reduce(t)
            sums, n_seen = dict(zip(keys, t[:-1].tolist())), int(t[-1])
        row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
               **{f"train_{k}": v / max(n_seen, 1) for k, v in sums.items()},
               "train_images_per_s": n_seen / max(train_seconds, 1e-9)}

        pred = predict(detector, val_loader, device, dtype, chl, progress, f"val {epoch}", dd)
        row.update(validation_metrics(pred))
        row["seconds"] = time.time() - t0
        history.append(row)
        value = row[metric_key]
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(value if math.isfinite(value) else 0.0)
            else:
                scheduler.step()
        is_best = improved(value, best["value"], metric)
        if is_best:
            best = {"metric": metric_key, "value": float(value), "epoch": epoch}
        if dd.main:
            state = {k: v.detach().cpu() for k, v in detector.state_dict().items()}
            if is_best:
                save_checkpoint(best_path, {"model": state, "epoch": epoch, "metric": metric_key,
                                            "value": float(value), "model_name": str(cfg.get("model.name", "")),
                                            "feature_dim": int(getattr(detector, "feature_dim", 0))})
            save_checkpoint(last_path, {"model": state, "optimizer": optimizer.state_dict(),
                                        "scheduler": scheduler.state_dict() if scheduler is not None else None,
                                        "epoch": epoch, "history": history, "best": best, "rng": rng_state(),
                                        "fingerprint": fingerprint})
            write_log(out_dir / "log.csv", history)
            if tb is not None:
                for k, v in row.items():
                    if k != "epoch":
                        tb.add_scalar(k, v, epoch)
            log.info("epoch %d/%d: train loss %.4f, %s %.4f%s (%.0f img/s)", epoch, epochs, row["train_loss"],
                     metric_key, value, " (best)" if is_best else "", row["train_images_per_s"])
        if dd.world_size > 1:
            dist.barrier()

    if tb is not None:
        tb.close()
    summary = {"stage": STAGE, "model": str(cfg.get("model.name", "")), "device": str(device),
               "world_size": dd.world_size, "amp": str(dtype) if dtype else "off", "channels_last": chl,
               "epochs": epochs, "n_train": len(train_set), "n_val": len(val_set),
               "skipped_missing": {"train": len(skipped_train), "val": len(skipped_val)},
               "select_metric": metric_key, "best_epoch": best["epoch"], "best_value": best["value"],
               "history": history, "best_checkpoint": str(best_path), "last_checkpoint": str(last_path),
               "seconds": time.time() - t_start}
    if dd.main and history:
        plot_curves(out_dir / "training_curves.png", history, metric_key, best["epoch"])
        write_json(out_dir / "summary.json", summary)
    if best["epoch"] is None and dd.main:
        raise InputError(f"no epoch gave a finite {metric_key}; the validation split cannot rank real against fake")
    return summary
