"""Datasets for training (stage 03) and feature dumps (stage 04), behind a small pluggable registry.

A *data mode* turns the samples of a split file into a torch ``Dataset`` of dicts. Each item has
at least ``image`` (float tensor, (3, H, W) for frames or (T, 3, H, W) for video windows, already
normalised), ``label`` (long, 1 = fake), ``video_id`` and ``path`` (relative to the dataset root);
a mode may add keys (masks, landmarks, a self-blended partner, window bounds, ...), which reach
``Detector.training_step`` unchanged through the default collate.

Registry (lazy, like the detector registry; a new mode is one line here or a ``register_*`` call):

- ``TRAIN_MODES[name] = "module:function"``, ``function(cfg, samples, dataset_root, spec) -> Dataset``
  selected by ``training.data_mode`` (default ``frames``);
- ``EVAL_MODES[name] = "module:function"`` with the same signature, used for validation (03) and
  feature dumps (04). ``training.eval_mode`` picks it; when null, the training mode's eval builder
  if it has one (``windows``), otherwise ``frames`` (``sbi`` trains on blends, evaluates frames).
  An eval dataset may set ``meta_columns`` (names of extra per-item keys, e.g. ``frame_start``) that
  stage 04 writes into ``meta.csv``.

``spec`` (:class:`InputSpec`) carries what the detector expects: input side in pixels and the
normalisation mean/std (RGB, images scaled to [0, 1] first).
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from common.config import Config, ConfigError
from common.io import InputError
from common.splits import Sample

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

TRAIN_MODES: dict[str, str] = {
    "frames": "training.data:build_frames_train",
    "fidelity": "training.fidelity:build_fidelity_train",     # DeepFidelity: frames + fidelity targets
    "windows": "training.windows:build_windows_train",
    "sbi": "training.sbi_data:build_sbi_train",
}
EVAL_MODES: dict[str, str] = {
    "frames": "training.data:build_frames_eval",
    "windows": "training.windows:build_windows_eval",
}


@dataclass(frozen=True)
class InputSpec:
    size: int                    # square input side, pixels
    mean: tuple = IMAGENET_MEAN  # per-channel RGB mean on [0, 1] images
    std: tuple = IMAGENET_STD
    is_video: bool = False


def input_spec(cfg: Config, detector) -> InputSpec:
    """The detector's input size and normalisation; ``training.normalization: imagenet`` overrides."""
    norm = cfg.get("training.normalization")
    if norm == "detector":
        mean, std = tuple(detector.mean), tuple(detector.std)
    elif norm == "imagenet":
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    else:
        raise ConfigError(f"{cfg.source}: training.normalization must be 'detector' or 'imagenet', got {norm!r}")
    return InputSpec(int(detector.input_size), mean, std, bool(getattr(detector, "is_video", False)))


def register_train_mode(name: str, target: str) -> None:
    TRAIN_MODES[name] = target


def register_eval_mode(name: str, target: str) -> None:
    EVAL_MODES[name] = target


def _resolve(table: dict[str, str], name: str, key: str) -> Callable:
    if name not in table:
        raise ConfigError(f"{key}: unknown data mode '{name}'; known: {', '.join(sorted(table))}")
    module, fn = table[name].split(":")
    return getattr(importlib.import_module(module), fn)


def eval_mode_name(cfg: Config) -> str:
    mode = cfg.get("training.eval_mode")
    if mode:
        return str(mode)
    train_mode = str(cfg.get("training.data_mode"))
    return train_mode if train_mode in EVAL_MODES else "frames"


def build_train_dataset(cfg: Config, samples: Sequence[Sample], dataset_root: Path, spec: InputSpec) -> Dataset:
    mode = str(cfg.get("training.data_mode"))
    return _resolve(TRAIN_MODES, mode, "training.data_mode")(cfg, samples, dataset_root, spec)


def build_eval_dataset(cfg: Config, samples: Sequence[Sample], dataset_root: Path, spec: InputSpec) -> Dataset:
    return _resolve(EVAL_MODES, eval_mode_name(cfg), "training.eval_mode")(cfg, samples, dataset_root, spec)


# ----------------------------------------------------------------------------------------------
# sample lists


def subsample_frames(samples: Sequence[Sample], per_video: int | None) -> list[Sample]:
    """At most ``per_video`` frames per video, evenly spaced over the listed (temporal) order.

    Deterministic (no seed needed); ``None`` or 0 keeps every frame.
    """
    if not per_video:
        return list(samples)
    by_video: dict[str, list[Sample]] = {}
    for s in samples:
        by_video.setdefault(s.video_id, []).append(s)
    out: list[Sample] = []
    for frames in by_video.values():
        if len(frames) <= per_video:
            out.extend(frames)
        else:
            idx = np.unique(np.round(np.linspace(0, len(frames) - 1, per_video)).astype(int))
            out.extend(frames[i] for i in idx)
    return out


def check_samples(samples: Sequence[Sample], root: Path, where: str, skip_missing: bool = False,
                  need_both_classes: bool = True) -> tuple[list[Sample], list[str]]:
    """Drop or reject samples whose image file is missing; reject a one-class split.

    ``where`` names the split file and split in messages. Returns (kept samples, skipped paths).
    """
    kept, skipped = [], []
    for s in samples:
        if (root / s.path).is_file():
            kept.append(s)
        elif skip_missing:
            skipped.append(s.path)
        else:
            raise InputError(f"{where}: image '{s.path}' listed for video '{s.video_id}' does not exist under "
                             f"{root}; fix the split file (re-run stage 02) or set training.skip_missing=true "
                             f"to skip and count missing frames")
    if skipped:
        log.warning("%s: skipped %d missing image(s), first: %s", where, len(skipped), skipped[0])
    if not kept:
        raise InputError(f"{where}: no images; is the split empty or dataset.root wrong ({root})?")
    labels = {s.label for s in kept}
    if need_both_classes and len(labels) < 2:
        only = "fake" if labels == {1} else "real"
        raise InputError(f"{where}: only {only} images ({len(kept)}); a detector needs real (0) and fake (1) "
                         f"examples; check the split file and its ratios")
    return kept, skipped


# ----------------------------------------------------------------------------------------------
# images


def read_image(path: Path, size: int | None = None) -> np.ndarray:
    """RGB uint8 (H, W, 3); resized to ``size`` x ``size`` (area/linear interpolation) if given."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path}: cannot read the image (missing or not an image file)")
    return fit_size(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), size)


def fit_size(img: np.ndarray, size: int | None) -> np.ndarray:
    """An RGB uint8 image resized to ``size`` x ``size`` (area when shrinking, linear when growing);
    unchanged when it has that size or ``size`` is None. Stage 04 and casework both use it."""
    if size and (img.shape[0] != size or img.shape[1] != size):
        interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
        img = cv2.resize(img, (size, size), interpolation=interp)
    return img


def to_tensor(img: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> float32 (3, H, W), scaled to [0, 1] then normalised."""
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (t - m) / s


class Augment:
    """Light, configurable augmentation on uint8 RGB images (off by default, as in the paper).

    Options (``training.augment``): ``hflip`` probability, ``crop_scale`` (min area fraction of a
    random resized crop, 1 = off), ``brightness``/``contrast`` (max relative change), ``jpeg``
    (probability of re-encoding at quality 60-95). Randomness comes from numpy's global generator,
    which the trainer seeds per worker.
    """

    def __init__(self, hflip: float = 0.5, crop_scale: float = 1.0, brightness: float = 0.0,
                 contrast: float = 0.0, jpeg: float = 0.0):
        self.hflip, self.crop_scale = float(hflip), float(crop_scale)
        self.brightness, self.contrast, self.jpeg = float(brightness), float(contrast), float(jpeg)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        rng = np.random
        h, w = img.shape[:2]
        if self.crop_scale < 1.0:
            area = rng.uniform(self.crop_scale, 1.0)
            ch, cw = max(8, int(round(h * np.sqrt(area)))), max(8, int(round(w * np.sqrt(area))))
            y0, x0 = rng.randint(0, h - ch + 1), rng.randint(0, w - cw + 1)
            img = cv2.resize(img[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_LINEAR)
        if rng.random() < self.hflip:
            img = img[:, ::-1]
        if self.brightness or self.contrast:
            f = img.astype(np.float32)
            c = 1.0 + rng.uniform(-self.contrast, self.contrast)
            b = 255.0 * rng.uniform(-self.brightness, self.brightness)
            img = np.clip((f - f.mean()) * c + f.mean() + b, 0, 255).astype(np.uint8)
        if self.jpeg and rng.random() < self.jpeg:
            ok, enc = cv2.imencode(".jpg", np.ascontiguousarray(img), [cv2.IMWRITE_JPEG_QUALITY, int(rng.randint(60, 96))])
            if ok:
                img = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)
        return np.ascontiguousarray(img)


def augment_from_config(cfg: Config) -> Augment | None:
    opts = cfg.get("training.augment")
    if opts in (False, None):
        return None
    if opts is True:
        return Augment()
    if not isinstance(opts, dict):
        raise ConfigError(f"{cfg.source}: training.augment must be false, true or a mapping of options "
                          f"(hflip, crop_scale, brightness, contrast, jpeg), got {opts!r}")
    try:
        return Augment(**opts)
    except TypeError as exc:
        raise ConfigError(f"{cfg.source}: training.augment: {exc}") from None


class FrameDataset(Dataset):
    """One item per frame: ``{image, label, video_id, path, index}`` (see module docstring).

    ``cache=True`` keeps decoded uint8 images in memory after first use (small datasets only:
    256x256x3 bytes = 192 KiB per frame); with DataLoader workers each worker has its own cache.
    """

    meta_columns: tuple = ()

    def __init__(self, samples: Sequence[Sample], root: Path, spec: InputSpec,
                 augment: Callable | None = None, cache: bool = False):
        self.samples = list(samples)
        self.root = Path(root)
        self.spec = spec
        self.augment = augment
        self.cache: dict[int, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)

    def load(self, i: int) -> np.ndarray:
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        img = read_image(self.root / self.samples[i].path, self.spec.size)
        if self.cache is not None:
            self.cache[i] = img
        return img

    def __getitem__(self, i: int) -> dict:
        s = self.samples[i]
        img = self.load(i)
        if self.augment is not None:
            img = self.augment(img)
        return {"image": to_tensor(img, self.spec.mean, self.spec.std), "label": torch.tensor(s.label, dtype=torch.long),
                "video_id": s.video_id, "path": s.path, "index": i}


def build_frames_train(cfg: Config, samples: Sequence[Sample], dataset_root: Path, spec: InputSpec) -> Dataset:
    return FrameDataset(samples, dataset_root, spec, augment_from_config(cfg),
                        cache=bool(cfg.get("training.cache_images")))


def build_frames_eval(cfg: Config, samples: Sequence[Sample], dataset_root: Path, spec: InputSpec) -> Dataset:
    return FrameDataset(samples, dataset_root, spec, None, cache=bool(cfg.get("training.cache_images")))


# ----------------------------------------------------------------------------------------------
# sampling


class EpochSampler(Sampler[int]):
    """Seeded order per epoch, optionally class-balanced, sharded across DDP processes.

    The order of epoch ``e`` depends only on (``seed``, ``e``), so a resumed run sees exactly the
    batches an uninterrupted run would. ``balanced`` draws ``len(labels)`` indices with replacement,
    each class with probability 1/2. With ``world_size`` > 1 the list is padded (by repeating from
    its start) to a multiple of ``world_size`` and rank ``r`` takes every ``world_size``-th index.
    """

    def __init__(self, labels: Sequence[int], seed: int, balanced: bool = False, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.seed, self.balanced, self.shuffle = int(seed), bool(balanced), bool(shuffle)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        n = len(self.labels)
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.balanced:
            counts = np.bincount(self.labels, minlength=2).astype(np.float64)
            w = np.where(counts[self.labels] > 0, 0.5 / np.maximum(counts[self.labels], 1), 0.0)
            idx = rng.choice(n, size=n, replace=True, p=w / w.sum())
        elif self.shuffle:
            idx = rng.permutation(n)
        else:
            idx = np.arange(n)
        if self.world_size > 1:
            pad = (-len(idx)) % self.world_size
            idx = np.r_[idx, idx[:pad]][self.rank::self.world_size]
        return idx

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return -(-len(self.labels) // self.world_size)


def worker_init(worker_id: int) -> None:
    """Seed numpy and ``random`` in each DataLoader worker from torch's per-worker seed."""
    import random
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def split_samples(cfg: Config, split: str, per_video: int | None = None, skip_missing: bool | None = None,
                  need_both_classes: bool = True) -> tuple[list[Sample], list[str]]:
    """Checked samples of ``split`` from the split file ``split.file`` under ``dataset.root``.

    Returns (samples, skipped missing paths); ``per_video`` subsamples frames evenly per video.
    """
    from common.splits import read_split
    split_file = cfg.path("split.file")
    root = cfg.path("dataset.root")
    if not split_file.is_file():
        raise InputError(f"{split_file}: split file not found (config key split.file); run stage 02 first")
    if not root.is_dir():
        raise InputError(f"{root}: dataset root not found (config key dataset.root)")
    samples = subsample_frames(read_split(split_file, split), per_video)
    if skip_missing is None:
        skip_missing = bool(cfg.get("training.skip_missing"))
    return check_samples(samples, root, f"{split_file} [{split}]", skip_missing, need_both_classes)
