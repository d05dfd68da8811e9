"""The ``sbi`` training data mode: real frames only, each paired with a fresh self-blended fake.

``training.data_mode: sbi`` (stage 03). The train split's *real* frames are used (its fake frames
are ignored and counted in the log: SBI needs no fake videos). Item ``i`` is a pair made from real
frame ``i``:

- ``image`` (2, 3, H, W): the real crop and its self-blended version (preprocessing/sbi.py), in that
  order; ``label`` (2,) = [0, 1];
- ``fed_delta`` (E,) float32, when ``training.fed.enabled``: ``e(fake) - e(real)`` from the frozen
  face embedder (training/fed.py), both aligned with the real frame's landmarks;
- ``fed_weight`` (float), ``video_id``, ``path``, ``index``.

``collate_fn`` (the dataset attribute) flattens a batch of B pairs into 2B images, pair ``j`` at
rows ``2j`` (real) and ``2j + 1`` (fake), so every batch is exactly half real, half self-blended
and any image detector's default cross-entropy ``training_step`` trains on it (stage 03's loader
uses a dataset's ``collate_fn``). With a plain default collate ``image`` arrives as
(B, 2, 3, H, W); the ``sbi_fed`` detector (training/detectors/sbi_fed.py) accepts both forms.

The blend is made on the stored crop at its own resolution (the landmarks are in its pixels) and
resized to the detector's input afterwards; ``training.augment`` (if any) is applied after
blending, independently to the real and the fake. Randomness comes from numpy's global generator,
which the trainer seeds per worker and epoch, so a run is reproducible. Landmarks are read from
``<root>/<real|fake>/landmarks/<video>/<frame>.npy`` beside ``frames/`` (the DeepfakeBench layout).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from torch.utils.data._utils.collate import default_collate

from common import schema
from common.config import Config, ConfigError
from common.io import InputError
from common.splits import Sample

from preprocessing.sbi import SBIOptions, make_sbi_options, self_blend

log = logging.getLogger(__name__)


def landmark_path(root: Path, frame_path: str) -> Path:
    """``real/frames/0003/046.png`` -> ``<root>/real/landmarks/0003/046.npy``."""
    p = Path(frame_path)
    parts = list(p.parts)
    if "frames" not in parts:
        raise InputError(f"{frame_path}: frame path has no 'frames' folder; expected "
                         f"<real|fake>/frames/<video>/<frame>.png (DeepfakeBench layout)")
    i = len(parts) - 1 - parts[::-1].index("frames")
    parts[i] = "landmarks"
    return Path(root, *parts).with_suffix(".npy")


def read_landmarks(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: landmarks not found; SBI needs the landmarks stage 01 writes beside the "
                         f"frames (<real|fake>/landmarks/<video>/<frame>.npy)")
    lm = np.load(path).astype(np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2 or len(lm) < 3:
        raise InputError(f"{path}: landmarks must be a (K, 2) array of (x, y) pixels, got shape {lm.shape}")
    return lm


def sbi_collate(items: list[dict]) -> dict:
    """B pair items -> one batch of 2B images: rows 2j (real) and 2j + 1 (self-blended) are pair j."""
    batch = default_collate(items)
    b = batch["image"].shape[0]
    batch["image"] = batch["image"].reshape(2 * b, *batch["image"].shape[2:])
    batch["label"] = batch["label"].reshape(2 * b)
    for key in ("video_id", "path"):
        batch[key] = [v for v in batch[key] for _ in range(2)]
    batch["index"] = batch["index"].repeat_interleave(2)
    batch["sbi_pairs"] = torch.tensor(b)
    return batch


class SBIPairDataset(Dataset):
    """Pairs (real frame, self-blended fake) from real frames; see the module docstring."""

    collate_fn = staticmethod(sbi_collate)

    def __init__(self, samples: Sequence[Sample], root: Path, spec, options: SBIOptions | None = None,
                 augment: Callable | None = None, fed: dict | None = None):
        self.samples = [s for s in samples if s.label == 0]
        ignored = len(samples) - len(self.samples)
        if ignored:
            log.info("sbi data mode: %d real frames used, %d fake frames of the split ignored", len(self.samples), ignored)
        if not self.samples:
            raise InputError(f"sbi data mode: the training split has no real frames under {root}; SBI makes its "
                             f"fakes from real faces")
        self.root = Path(root)
        self.spec = spec
        self.options = options or SBIOptions()
        self.augment = augment
        self.fed = dict(fed or {"enabled": False})      # fed_section(cfg): every key present
        self.fed_enabled = bool(self.fed["enabled"])
        self.fed_weight = float(self.fed["weight"]) if self.fed_enabled else 0.0
        self._embedder = None             # built lazily, once per worker process (dlib objects do not pickle)
        self._real_embedding: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> np.ndarray:
        """One entry per pair (the real frame's label, 0), for the trainer's sampler."""
        return np.zeros(len(self.samples), dtype=np.int64)

    def embedder(self):
        if self._embedder is None:
            from .fed import build_embedder
            self._embedder = build_embedder(self.fed)
        return self._embedder

    def _prepare(self, img: np.ndarray) -> torch.Tensor:
        from .data import to_tensor
        size = self.spec.size
        if img.shape[0] != size or img.shape[1] != size:
            interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
            img = cv2.resize(img, (size, size), interpolation=interp)
        if self.augment is not None:
            img = self.augment(img)
        return to_tensor(img, self.spec.mean, self.spec.std)

    def __getitem__(self, i: int) -> dict:
        from .data import read_image
        s = self.samples[i]
        real = read_image(self.root / s.path)          # native size: landmarks are in its pixels
        lm = read_landmarks(landmark_path(self.root, s.path))
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1, size=2))
        fake, _ = self_blend(real, lm, rng, opts=self.options)
        item = {"image": torch.stack([self._prepare(real), self._prepare(fake)]),
                "label": torch.tensor([0, 1], dtype=torch.long), "video_id": s.video_id, "path": s.path, "index": i}
        if self.fed_enabled:
            emb = self.embedder()
            e_real = self._real_embedding.get(i)
            if e_real is None:
                e_real = self._real_embedding[i] = emb.embed(real, lm)
            e_fake = emb.embed(fake, lm)
            item["fed_delta"] = torch.from_numpy(np.asarray(e_fake - e_real, np.float32))
            item["fed_weight"] = torch.tensor(self.fed_weight, dtype=torch.float32)
        return item


def fed_section(cfg: Config) -> dict:
    """``training.fed`` with every key (defaults from common/schema.py), model paths checked."""
    section = {k: cfg.get(f"training.fed.{k}") for k in schema.defaults("training.fed")}
    if section["enabled"] and str(cfg.get("model.name")) != "sbi_fed":
        raise ConfigError(f"{cfg.source}: training.fed.enabled needs model.name: sbi_fed (the wrapper that adds "
                          f"the distillation head; model.base names the image detector)")
    for key in ("model_path", "shape_predictor_path"):
        if section.get(key):
            p = cfg.path(f"training.fed.{key}")
            if not p.is_file():
                raise ConfigError(f"{cfg.source}: training.fed.{key}: '{p}' does not exist")
            section = {**section, key: str(p)}
    return section


def build_sbi_train(cfg: Config, samples: Sequence[Sample], dataset_root: Path, spec) -> Dataset:
    from .data import augment_from_config
    try:
        options = make_sbi_options(cfg.section("training.sbi"))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cfg.source}: {exc}") from None
    return SBIPairDataset(samples, dataset_root, spec, options, augment_from_config(cfg), fed_section(cfg))
