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
- checkpoints in stage 03's folder (``<output_dir>/03_train/``; written in its work folder first): ``last.pt`` after every epoch (model, optimiser,
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
from common.io import InputError, atomic_path, link_tree, write_csv, write_json
from common.stages import folder, stage_dir
from common import metrics as M

from . import data as D

log = logging.getLogger(__name__)

STAGE = folder("03")
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
    want = str(cfg.get("device")).lower()
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
    mode = cfg.get("training.amp")
    mode = "off" if mode is False else str(mode).lower()
    if mode == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if mode == "bf16":
        return torch.bfloat16
    if mode in ("off", "none", "fp32"):
        return None
    raise ConfigError(f"{cfg.source}: training.amp must be auto, bf16 or off, got {mode!r}")


def use_channels_last(cfg: Config, device: torch.device) -> bool:
    v = cfg.get("training.channels_last")
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
    o = cfg.section("training.optimizer")       # every key has its schema default
    name = str(o["name"]).lower()
    lr, wd = float(o["lr"]), float(o["weight_decay"])
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, betas=tuple(o["betas"]))
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, betas=tuple(o["betas"]))
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=float(o["momentum"]),
                               nesterov=bool(o["nesterov"]))
    raise ConfigError(f"{cfg.source}: training.optimizer.name must be adam, adamw or sgd, got {name!r}")


def build_scheduler(cfg: Config, optimizer: torch.optim.Optimizer, epochs: int):
    """Stepped once per epoch (``plateau`` with the validation metric)."""
    s = cfg.section("training.scheduler")       # every key has its schema default
    name = str(s["name"]).lower()
    if name in ("none", "constant"):
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, int(s["t_max"] or epochs)),
                                                          eta_min=float(s["min_lr"]))
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(s["step_size"]), gamma=float(s["gamma"]))
    if name == "plateau":
        mode = "min" if select_metric(cfg)[1] in LOWER_IS_BETTER else "max"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=float(s["factor"]),
                                                          patience=int(s["patience"]))
    raise ConfigError(f"{cfg.source}: training.scheduler.name must be none, cosine, step or plateau, got {name!r}")


def select_metric(cfg: Config) -> tuple[str, str]:
    """(``val_<metric>``, ``<metric>``) from ``training.select_metric``."""
    key = str(cfg.get("training.select_metric"))
    base = key[4:] if key.startswith("val_") else key
    if base not in METRICS:
        raise ConfigError(f"{cfg.source}: training.select_metric must be one of "
                          f"{', '.join('val_' + m for m in METRICS)}, got {key!r}")
    return "val_" + base, base


def improved(value: float, best: float | None, metric: str) -> bool:
    """Whether ``value`` beats ``best`` strictly (lower for eer/loss, higher otherwise); NaN never does."""
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best if metric in LOWER_IS_BETTER else value > best


def update_best(best: dict, value: float, epoch: int, metric: str) -> tuple[dict, bool]:
    """The best-epoch record after ``epoch`` scored ``value``: ``(best, is_best)``. Ties keep the earlier
    epoch (improvement must be strict), a NaN epoch is never best."""
    if improved(value, best["value"], metric):
        return {"metric": best["metric"], "value": float(value), "epoch": int(epoch)}, True
    return best, False


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
    from .detectors.factory import build_from_config

    return build_from_config(cfg)


def _loader(dataset, batch_size: int, sampler, workers: int, device: torch.device, drop_last: bool,
            seed: int) -> DataLoader:
    # a data mode may bring its own collate (sbi: B pairs -> 2B images, half real, half blended)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      collate_fn=getattr(dataset, "collate_fn", None),
                      pin_memory=device.type == "cuda", drop_last=drop_last, worker_init_fn=D.worker_init,
                      persistent_workers=False, generator=torch.Generator().manual_seed(seed))


@dataclass(frozen=True)
class TrainSettings:
    """The ``training`` keys the loop uses, read and checked once (the schema has filled the defaults)."""
    seed: int
    epochs: int
    batch_size: int
    metric_key: str                  # val_<metric>
    metric: str
    frames_per_video: int | None
    val_frames_per_video: int | None
    balanced: bool
    num_workers: int
    max_steps: int | None
    grad_clip: float | None
    resume: bool
    tensorboard: bool
    cudnn_benchmark: bool
    find_unused_parameters: bool

    @classmethod
    def from_config(cls, cfg: Config) -> "TrainSettings":
        metric_key, metric = select_metric(cfg)
        s = cls(seed=cfg.seed, epochs=int(cfg.require("training.epochs", int)),
                batch_size=int(cfg.require("training.batch_size", int)), metric_key=metric_key, metric=metric,
                frames_per_video=cfg.get("training.frames_per_video"),
                val_frames_per_video=cfg.get("training.val_frames_per_video"),
                balanced=bool(cfg.get("training.balanced")), num_workers=int(cfg.get("training.num_workers")),
                max_steps=cfg.get("training.max_steps_per_epoch"), grad_clip=cfg.get("training.grad_clip"),
                resume=bool(cfg.get("training.resume")), tensorboard=bool(cfg.get("training.tensorboard")),
                cudnn_benchmark=bool(cfg.get("training.cudnn_benchmark")),
                find_unused_parameters=bool(cfg.get("training.find_unused_parameters")))
        if s.epochs < 1 or s.batch_size < 1:
            raise ConfigError(f"{cfg.source}: training.epochs and training.batch_size must be >= 1, "
                              f"got {s.epochs}, {s.batch_size}")
        return s


@dataclass
class Loaders:
    train_set: object
    val_set: object
    train: DataLoader
    val: DataLoader
    sampler: object
    skipped_train: list
    skipped_val: list


@dataclass
class Progress:
    """What survives an epoch: the history, the best epoch so far and where to continue."""
    history: list
    best: dict
    start_epoch: int


@dataclass
class Env:
    device: torch.device
    dtype: torch.dtype | None
    channels_last: bool
    dd: Dist
    progress: bool


def build_loaders(cfg: Config, st: TrainSettings, spec, env: Env) -> Loaders:
    """Train and val loaders (the test split is never read here); the order of every epoch depends
    only on (seed, epoch)."""
    dd = env.dd
    train_samples, skipped_train = D.split_samples(cfg, "train", st.frames_per_video)
    val_samples, skipped_val = D.split_samples(cfg, "val", st.val_frames_per_video)
    root = cfg.path("dataset.root")
    train_set = D.build_train_dataset(cfg, train_samples, root, spec)
    val_set = D.build_eval_dataset(cfg, val_samples, root, spec)
    labels = getattr(train_set, "labels", None)
    if labels is None:
        labels = np.array([s.label for s in train_samples])
    per_rank = max(1, st.batch_size // dd.world_size)
    if st.batch_size % dd.world_size:
        log.warning("training.batch_size %d is not a multiple of %d processes; using %d per process",
                    st.batch_size, dd.world_size, per_rank)
    sampler = D.EpochSampler(labels, st.seed, balanced=st.balanced, rank=dd.rank, world_size=dd.world_size)
    train_loader = _loader(train_set, per_rank, sampler, st.num_workers, env.device, len(sampler) > per_rank, st.seed)
    val_sampler = D.EpochSampler(np.zeros(len(val_set), int), st.seed, shuffle=False, rank=dd.rank,
                                 world_size=dd.world_size)
    val_loader = _loader(val_set, per_rank, val_sampler, st.num_workers, env.device, False, st.seed)
    return Loaders(train_set, val_set, train_loader, val_loader, sampler, skipped_train, skipped_val)


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


def train_one_epoch(step_module: nn.Module, detector: nn.Module, loaders: Loaders, optimizer, st: TrainSettings,
                    env: Env, epoch: int) -> dict:
    """One pass over the train loader; the epoch's log row (``epoch``, ``lr``, ``train_<log>``, speed)."""
    dd, device = env.dd, env.device
    loaders.sampler.set_epoch(epoch)
    loaders.train.generator.manual_seed(st.seed * 1009 + epoch)   # worker seeds depend on (seed, epoch) only
    step_module.train()
    sums: dict[str, float] = {}
    n_seen, t0 = 0, time.time()
    total = len(loaders.train) if not st.max_steps else min(len(loaders.train), int(st.max_steps))
    bar = tqdm(loaders.train, total=total, desc=f"epoch {epoch}/{st.epochs}", leave=False,
               disable=not (env.progress and dd.main))
    for step, batch in enumerate(bar):
        if st.max_steps and step >= int(st.max_steps):
            break
        batch = to_device(batch, device, env.channels_last)
        with autocast(device, env.dtype):
            loss, logs = step_module(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {float(loss)} at epoch {epoch}, step {step}; "
                                     f"lower training.optimizer.lr or set training.grad_clip")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if st.grad_clip:
            torch.nn.utils.clip_grad_norm_(detector.parameters(), float(st.grad_clip))
        optimizer.step()
        b = len(batch["label"])
        n_seen += b
        for k, v in {"loss": float(loss.detach()), **logs}.items():
            sums[k] = sums.get(k, 0.0) + float(v) * b
        bar.set_postfix(loss=f"{sums['loss'] / n_seen:.4f}")
    seconds = time.time() - t0
    if dd.world_size > 1:   # average the logs over all processes
        keys = sorted(sums)
        t = torch.tensor([sums[k] for k in keys] + [n_seen], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        sums, n_seen = dict(zip(keys, t[:-1].tolist())), int(t[-1])
    return {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
            **{f"train_{k}": v / max(n_seen, 1) for k, v in sums.items()},
            "train_images_per_s": n_seen / max(seconds, 1e-9), "_t0": t0}


def validate(detector: nn.Module, loaders: Loaders, env: Env, epoch: int) -> dict:
    """Validation metrics of the current weights on the val split (see ``validation_metrics``)."""
    pred = predict(detector, loaders.val, env.device, env.dtype, env.channels_last, env.progress, f"val {epoch}",
                   env.dd)
    return validation_metrics(pred)


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


def learned_check(cfg: Config, detector: nn.Module, loaders: Loaders, env: Env, out_dir: Path) -> dict:
    """``detector_auc.val`` (raw AUC of best.pt's fake probability with its person-cluster interval) and
    ``detector_learned`` (training/learned.py's verdict on val); the detector's weights are left as they were."""
    from common.splits import person_of_video
    from . import learned
    keep = {k: v.detach().clone() for k, v in detector.state_dict().items()}
    detector.load_state_dict(torch.load(out_dir / "best.pt", map_location=env.device, weights_only=False)["model"])
    pred = predict(detector, loaders.val, env.device, env.dtype, env.channels_last, False, "val (best)", env.dd)
    detector.load_state_dict(keep)
    persons = person_of_video(cfg.path("split.file"))
    ls = learned.settings(cfg)
    per_pool = {"val": learned.detector_auc(pred["prob"], pred["label"], [persons.get(v, v) for v in pred["video_id"]],
                                            ls["bootstrap_n"], ls["seed"])}
    result = learned.verdict(per_pool, ls["margin"])
    if env.dd.main:
        (log.warning if result["learned"] is False else log.info)("03: %s", learned.describe(per_pool, result))
    return {"detector_auc": per_pool, "detector_learned": result}


def train(cfg: Config, detector: nn.Module | None = None, progress: bool = True, out: Path | None = None) -> dict:
    """Train the config's detector (see module docstring); returns the summary dict.

    ``detector`` overrides the one the config's ``model`` section builds (tests, notebooks). ``out`` is
    the folder to write into (stage 03's work folder; default the stage folder itself); a run that
    writes into a work folder may continue from the published folder's ``last.pt``. Under torchrun
    every process calls this; only rank 0 writes files.
    """
    dd = setup_distributed("cuda" if str(cfg.get("device")) != "cpu" and torch.cuda.is_available() else "cpu")
    try:
        return _train(cfg, detector, progress, dd, out)
    finally:
        if dd.owns_group:
            dist.destroy_process_group()


def _train(cfg: Config, detector, progress: bool, dd: Dist, out: Path | None = None) -> dict:
    t_start = time.time()
    st = TrainSettings.from_config(cfg)
    device = resolve_device(cfg, dd.local_rank)
    env = Env(device, amp_dtype(cfg, device), use_channels_last(cfg, device), dd, progress)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = st.cudnn_benchmark
    published = stage_dir(cfg, "03")
    out_dir = Path(out) if out is not None else stage_dir(cfg, "03", create=True)

    seed_everything(st.seed)
    if detector is None:
        detector = build_detector(cfg)
    seed_everything(st.seed + 1)   # training randomness independent of how the detector was built
    loaders = build_loaders(cfg, st, D.input_spec(cfg, detector), env)

    detector.to(device)
    if env.channels_last:
        detector.to(memory_format=torch.channels_last)
    step_module: nn.Module = StepModule(detector)
    if dd.world_size > 1:
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[dd.local_rank] if device.type == "cuda" else None,
            find_unused_parameters=st.find_unused_parameters)
    optimizer = build_optimizer(cfg, [p for p in detector.parameters() if p.requires_grad])
    scheduler = build_scheduler(cfg, optimizer, st.epochs)
    fingerprint = resume_fingerprint(cfg)
    state = resume_or_start(cfg, st, out_dir, published if out_dir.resolve() != published.resolve() else None,
                            fingerprint, detector, optimizer, scheduler, dd)
    tb = _tensorboard(out_dir, st.tensorboard) if dd.main else None

    for epoch in range(state.start_epoch, st.epochs + 1):
        row = train_one_epoch(step_module, detector, loaders, optimizer, st, env, epoch)
        t0 = row.pop("_t0")
        row.update(validate(detector, loaders, env, epoch))
        row["seconds"] = time.time() - t0
        state.history.append(row)
        value = row[st.metric_key]
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(value if math.isfinite(value) else 0.0)
            else:
                scheduler.step()
        state.best, is_best = update_best(state.best, value, epoch, st.metric)
        if dd.main:
            save_epoch(cfg, out_dir, detector, optimizer, scheduler, state, row, is_best, fingerprint, tb)
            log.info("epoch %d/%d: train loss %.4f, %s %.4f%s (%.0f img/s)", epoch, st.epochs, row["train_loss"],
                     st.metric_key, value, " (best)" if is_best else "", row["train_images_per_s"])
        if dd.world_size > 1:
            dist.barrier()

    if tb is not None:
        tb.close()
    history, best = state.history, state.best
    check = learned_check(cfg, detector, loaders, env, out_dir) if best["epoch"] is not None else None
    summary = {"stage": STAGE, "model": str(cfg.get("model.name")), "device": str(device),
               "world_size": dd.world_size, "amp": str(env.dtype) if env.dtype else "off",
               "channels_last": env.channels_last, "epochs": st.epochs, "n_train": len(loaders.train_set),
               "steps": st.epochs * (min(len(loaders.train), int(st.max_steps)) if st.max_steps else len(loaders.train)),
               "n_val": len(loaders.val_set),
               "skipped_missing": {"train": len(loaders.skipped_train), "val": len(loaders.skipped_val)},
               "select_metric": st.metric_key, "best_epoch": best["epoch"], "best_value": best["value"],
               "history": history, "best_checkpoint": str(published / "best.pt"),
               "last_checkpoint": str(published / "last.pt"), "seconds": time.time() - t_start,
               **(check or {})}
    if dd.main and history:
        plot_curves(out_dir / "training_curves.png", history, st.metric_key, best["epoch"])
        write_json(out_dir / "summary.json", summary)
    if best["epoch"] is None and dd.main:
        raise InputError(f"no epoch gave a finite {st.metric_key}; the validation split cannot rank real against fake")
    return summary
