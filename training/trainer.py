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

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader

from common.config import Config, ConfigError
from common.figures import save_figure
from common.io import InputError, write_json
from common.stages import folder, stage_dir

from . import data as D
from .epoch import predict, train_one_epoch, validate, validation_metrics  # noqa: F401
from .checkpoints import (RESUME_KEYS, Progress, load_last, read_log, resume_fingerprint,  # noqa: F401
                          resume_or_start, save_checkpoint, save_epoch, write_log)
from .train_env import (Dist, amp_dtype, autocast, resolve_device, rng_state, seed_everything,  # noqa: F401
                        set_rng_state, setup_distributed, to_device, use_channels_last)

log = logging.getLogger(__name__)

STAGE = folder("03")
METRICS = ("auc", "video_auc", "ap", "acc", "eer", "loss")   # val_<name> may be the select_metric
LOWER_IS_BETTER = ("eer", "loss")



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
# figures and TensorBoard


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


@dataclass
class Run:
    """One training run's parts, built once by :func:`_setup`."""
    st: TrainSettings
    env: Env
    detector: nn.Module
    step_module: nn.Module
    loaders: Loaders
    optimizer: torch.optim.Optimizer
    scheduler: object
    fingerprint: str
    published: Path
    out_dir: Path


def _setup(cfg: Config, detector, progress: bool, dd: Dist, out: Path | None) -> Run:
    """Settings, device, detector (seeded), loaders, DDP wrapper, optimiser and schedule."""
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
    return Run(st, env, detector, step_module, loaders, optimizer, scheduler, resume_fingerprint(cfg),
               published, out_dir)


def _run_epochs(cfg: Config, run: Run, state: Progress, tb) -> None:
    """The epochs from ``state.start_epoch`` on: train, validate, step the schedule, keep the best, save."""
    st, dd, scheduler = run.st, run.env.dd, run.scheduler
    for epoch in range(state.start_epoch, st.epochs + 1):
        row = train_one_epoch(run.step_module, run.detector, run.loaders, run.optimizer, st, run.env, epoch)
        t0 = row.pop("_t0")
        row.update(validate(run.detector, run.loaders, run.env, epoch))
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
            save_epoch(cfg, run.out_dir, run.detector, run.optimizer, scheduler, state, row, is_best,
                       run.fingerprint, tb)
            log.info("epoch %d/%d: train loss %.4f, %s %.4f%s (%.0f img/s)", epoch, st.epochs, row["train_loss"],
                     st.metric_key, value, " (best)" if is_best else "", row["train_images_per_s"])
        if dd.world_size > 1:
            dist.barrier()


def _train(cfg: Config, detector, progress: bool, dd: Dist, out: Path | None = None) -> dict:
    t_start = time.time()
    run = _setup(cfg, detector, progress, dd, out)
    st, env, loaders, published, out_dir = run.st, run.env, run.loaders, run.published, run.out_dir
    state = resume_or_start(cfg, st, out_dir, published if out_dir.resolve() != published.resolve() else None,
                            run.fingerprint, run.detector, run.optimizer, run.scheduler, dd)
    tb = _tensorboard(out_dir, st.tensorboard) if dd.main else None
    _run_epochs(cfg, run, state, tb)
    if tb is not None:
        tb.close()
    history, best = state.history, state.best
    check = learned_check(cfg, run.detector, loaders, env, out_dir) if best["epoch"] is not None else None
    summary = {"stage": STAGE, "model": str(cfg.get("model.name")), "device": str(env.device),
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
