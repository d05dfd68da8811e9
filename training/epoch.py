"""One epoch of stage 03: the training pass over the train loader, and prediction / validation on val.

Owns ``train_one_epoch`` (its log row), ``predict`` (fake probabilities of every item, gathered under
DDP) and ``validation_metrics``; :mod:`training.trainer` runs the epochs and keeps the best.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from common import metrics as M

from .train_env import Dist, autocast, to_device

if TYPE_CHECKING:
    from .trainer import Env, Loaders, TrainSettings


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
