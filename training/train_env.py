"""The trainer's environment: seeds and RNG states, the torchrun process group, device, autocast, batches.

Owns what every training-time module shares about where and how tensors run (``Dist``, ``resolve_device``,
``amp_dtype``, ``to_device``); :mod:`training.trainer` and :mod:`training.checkpoints` build on it.
"""
from __future__ import annotations

import os
import random
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from common.config import Config, ConfigError


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
