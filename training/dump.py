"""Feature dumps (stage 04): run the trained detector over each pool and stream its features to disk.

For every pool in ``features.splits`` (null: every pool of the split file, e.g. train, val, calib,
test) the dump ``<output_dir>/04_features/<pool>/`` follows the contract of :mod:`common.features`
(``features.npy`` + ``meta.csv``: image_path, video_id, label, fake_probability, logit, person_id,
plus any ``meta_columns`` of the eval dataset, e.g. window bounds). ``logit`` is the detector's
log-odds of fake (:func:`fake_logit`); ``person_id`` comes from the split file's ``meta.persons``.
Rows are written batch by batch into a memory map, so memory is bounded by one batch whatever the
dataset size, and an interrupted dump never looks complete.

Config keys (section ``features``): ``checkpoint`` (default ``<output_dir>/03_train/best.pt``),
``splits`` (null = all pools of the split file), ``full_map`` (false: the detector's pooled
``feature``; true: its flattened ``feature_map``, e.g. 2048x8x8 = 131,072 values for the paper's SRM), ``dtype`` (float32 |
float16), ``batch_size``, ``num_workers``, ``frames_per_video`` (null = all frames),
``skip_missing`` (count and skip missing images instead of failing).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from common.config import Config, ConfigError
from common.features import FeatureDumpWriter
from common.io import InputError, write_json
from common.splits import person_of_video, pools_in
from common.stages import folder, stage_dir

from . import data as D
from .identity import check_published_source, detector_identity
from .trainer import build_detector, resolve_device, to_device

log = logging.getLogger(__name__)

STAGE = folder("04")


def checkpoint_path(cfg: Config) -> Path:
    p = cfg.path("features.checkpoint")
    return p if p is not None else stage_dir(cfg, "03") / "best.pt"


def load_trained_detector(cfg: Config, path: Path | None = None):
    """The config's detector with the trained weights of ``path`` (default: ``features.checkpoint``);
    with ``training.mode: external``, ``path`` may be the published weight file itself."""
    from .detectors.base import load_weights
    path = Path(path) if path is not None else checkpoint_path(cfg)
    if not path.is_file():
        raise InputError(f"{path}: trained checkpoint not found (config key features.checkpoint); run stage 03 "
                         f"first or point features.checkpoint at a weight file")
    check_published_source(cfg, path)      # a published/probed detector is rebuilt from its own file
    pretrained = cfg.path("model.pretrained_path")
    if cfg.get("training.mode") == "external" and pretrained is not None and path.resolve() == pretrained.resolve():
        return build_detector(cfg)          # the published weights as they are (no stage-03 checkpoint)
    quiet = logging.getLogger("training.detectors")
    level = quiet.level
    quiet.setLevel(logging.ERROR)   # the "random initialisation" warning is moot: weights follow
    try:
        detector = build_detector(cfg)
    finally:
        quiet.setLevel(level)
    try:
        load_weights(detector, path, f"detector '{cfg.get('model.name')}'", "features.checkpoint")
    except ValueError as exc:   # another architecture: the message names the keys
        raise InputError(str(exc)) from None
    return detector


def fake_logit(out: dict) -> torch.Tensor:
    """(B,) float32 log-odds of fake from a detector's output: ``z_fake - z_real`` for two-class
    logits (class 1 = fake; ``sigmoid`` of it is the softmax fake probability), the logit itself for a
    one-logit head ((B,) or (B, 1))."""
    z = out["logits"].float()
    if z.ndim == 1 or (z.ndim == 2 and z.shape[1] == 1):
        return z.reshape(len(z))
    if z.ndim == 2 and z.shape[1] == 2:
        return z[:, 1] - z[:, 0]
    raise ValueError(f"detector logits of shape {tuple(z.shape)}: expected (B, 2) or (B, 1)")


@torch.no_grad()
def forward_fixed_batch(detector, images: torch.Tensor, batch_size: int) -> dict:
    """The detector's outputs for ``images`` (at most ``batch_size``), computed on a batch of exactly
    ``batch_size`` (zero images appended, their outputs dropped). CPU kernels give last-bit different
    results for different batch sizes; with one batch size a frame gets the same numbers in stage 04,
    in casework and in the robustness stage, whatever else is in its batch."""
    n = len(images)
    if n > batch_size:
        raise ValueError(f"{n} images in one batch of at most {batch_size}")
    if n < batch_size:
        images = torch.cat([images, images.new_zeros((batch_size - n, *images.shape[1:]))])
    out = detector(images)
    return {k: v[:n] if isinstance(v, torch.Tensor) and v.ndim and len(v) == batch_size else v
            for k, v in out.items()}


def feature_batch_size(cfg: Config) -> int:
    """The one batch size of every detector pass that feeds the LR system (stage 04, casework, stage 15)."""
    return int(cfg.get("features.batch_size"))


def feature_dtype(cfg: Config) -> str:
    dtype = str(cfg.get("features.dtype"))
    if dtype not in ("float32", "float16"):
        raise ConfigError(f"{cfg.source}: features.dtype must be float32 or float16, got {dtype!r}")
    return dtype


def dumped_feature(cfg: Config, out: dict, full_map: bool) -> torch.Tensor:
    """The feature stage 04 stores: the pooled ``feature``, or the flattened ``feature_map``."""
    if not full_map:
        return out["feature"]
    if "feature_map" not in out:
        raise ConfigError(f"{cfg.source}: features.full_map is true but detector '{cfg.get('model.name')}' "
                          f"returns no feature map; set it to false")
    return out["feature_map"].flatten(1)


class FrameScorer:
    """Stage 04's detector pass over in-memory RGB crops (casework, the robustness stage).

    The same transforms (``data.fit_size``, ``data.to_tensor`` with ``data.input_spec``), batch size
    (``forward_fixed_batch``) and stored dtype as the dump, read back as float64 as stage 08 reads it:
    a crop the pipeline dumped gets bit-identical features, logit and fake probability.
    ``who`` / ``remedy`` word the error for a detector that does not score single frames."""

    def __init__(self, cfg: Config, checkpoint: Path | None = None, who: str = "this command", remedy: str = ""):
        if D.eval_mode_name(cfg) != "frames":
            raise ConfigError(f"{cfg.source}: {who} scores single frames; the eval mode '{D.eval_mode_name(cfg)}' "
                              f"(training.eval_mode / data_mode) is not supported{remedy}")
        self.cfg = cfg
        self.checkpoint = Path(checkpoint) if checkpoint is not None else checkpoint_path(cfg)
        self.device = resolve_device(cfg)
        self.detector = load_trained_detector(cfg, self.checkpoint).to(self.device).eval()
        self.spec = D.input_spec(cfg, self.detector)
        if self.spec.is_video:
            raise ConfigError(f"{cfg.source}: model.name={cfg.get('model.name')!r} is a video (window) detector; "
                              f"{who} scores single frames and needs a frame detector{remedy}")
        self.full_map = bool(cfg.get("features.full_map"))
        self.detector.return_feature_map = self.full_map
        self.dtype = feature_dtype(cfg)
        self.batch_size = feature_batch_size(cfg)
        self.identity = detector_identity(cfg, self.detector, self.spec, self.checkpoint)   # see training/identity.py

    def run(self, crops) -> dict:
        """``{"features": (n, D) float64, "logit": (n,), "fake_probability": (n,)}`` of uint8 RGB crops."""
        parts = [self._run(crops[i:i + self.batch_size]) for i in range(0, len(crops), self.batch_size)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    @torch.no_grad()
    def _run(self, crops) -> dict:
        x = torch.stack([D.to_tensor(D.fit_size(c, self.spec.size), self.spec.mean, self.spec.std) for c in crops])
        out = forward_fixed_batch(self.detector, x.to(self.device), self.batch_size)
        stored = dumped_feature(self.cfg, out, self.full_map).float().cpu().numpy().astype(self.dtype)
        return {"features": stored.astype(np.float64).reshape(len(crops), -1),
                "logit": fake_logit(out).cpu().numpy().astype(np.float64).reshape(-1),
                "fake_probability": out["prob"].float().cpu().numpy().astype(np.float64).reshape(-1)}


@torch.no_grad()
def dump_split(cfg: Config, detector, split: str, out_path: Path, device: torch.device,
               progress: bool = True, persons: dict | None = None) -> dict:
    """Write one pool's dump to ``out_path``; returns its counts. ``persons``: video_id -> person_id."""
    full_map = bool(cfg.get("features.full_map"))
    dtype = feature_dtype(cfg)
    skip = cfg.get("features.skip_missing")
    samples, skipped = D.split_samples(cfg, split, cfg.get("features.frames_per_video"),
                                       skip_missing=skip, need_both_classes=False)
    if persons is None:
        persons = person_of_video(cfg.path("split.file"))
    missing = sorted({s.video_id for s in samples} - set(persons))
    if missing:
        raise InputError(f"{cfg.path('split.file')}: meta.persons has no person for video(s) {missing[:5]}; "
                         f"re-run stage 02")
    spec = D.input_spec(cfg, detector)
    dataset = D.build_eval_dataset(cfg, samples, cfg.path("dataset.root"), spec)
    extra_cols = tuple(getattr(dataset, "meta_columns", ()))
    batch_size = feature_batch_size(cfg)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        num_workers=int(cfg.get("features.num_workers")),
                        pin_memory=device.type == "cuda")
    detector.eval()
    detector.return_feature_map = full_map
    with FeatureDumpWriter(out_path, len(dataset), dtype) as writer:
        for batch in tqdm(loader, desc=f"04 {split}", disable=not progress):
            out = forward_fixed_batch(detector, to_device(batch, device)["image"], batch_size)
            feat = dumped_feature(cfg, out, full_map)
            extra = {c: [v.item() if isinstance(v, torch.Tensor) else v for v in batch[c]] for c in extra_cols}
            vids = [str(v) for v in batch["video_id"]]
            writer.write(feat.float().cpu().numpy(), list(batch["path"]), vids,
                         batch["label"].tolist(), out["prob"].float().cpu().numpy().tolist(),
                         logit=fake_logit(out).cpu().numpy().tolist(), person_ids=[persons[v] for v in vids],
                         **extra)
        dim = int(writer.features.shape[1]) if writer.features is not None else 0
    labels = np.array([s.label for s in samples])
    return {"path": str(out_path), "n": len(dataset), "n_real": int((labels == 0).sum()),
            "n_fake": int((labels == 1).sum()), "n_videos": len({s.video_id for s in samples}),
            "n_persons": len({persons[s.video_id] for s in samples}), "dim": dim,
            "dtype": dtype, "full_map": full_map, "skipped_missing": len(skipped)}


def dump_features(cfg: Config, progress: bool = True, out: Path | None = None) -> dict:
    """Dump every pool of ``features.splits`` (null: all pools of the split file) into ``out`` (the
    stage's work folder; default its folder); writes and returns ``summary.json``'s content."""
    t0 = time.time()
    split_file = cfg.path("split.file")
    if not split_file.is_file():
        raise InputError(f"{split_file}: split file not found (config key split.file); run stage 02 first")
    have = pools_in(split_file)
    splits = cfg.get("features.splits")
    if splits is None:
        splits = list(have)
    if not isinstance(splits, list) or not splits:
        raise ConfigError(f"{cfg.source}: features.splits must be null (every pool of the split file) or a "
                          f"non-empty list such as {list(have)}")
    absent = [s for s in splits if s not in have]
    if absent:
        raise ConfigError(f"{cfg.source}: features.splits names {absent}, which {split_file} does not have (it has "
                          f"{list(have)}); set features.splits to null or change split.ratios and re-run stage 02")
    persons = person_of_video(split_file)
    device = resolve_device(cfg)
    ck = checkpoint_path(cfg)
    detector = load_trained_detector(cfg, ck).to(device)
    out_dir = Path(out) if out is not None else stage_dir(cfg, "04", create=True)
    per_split = {}
    for split in splits:
        per_split[split] = dump_split(cfg, detector, str(split), out_dir / str(split), device, progress, persons)
        per_split[split]["path"] = str(stage_dir(cfg, "04") / str(split))   # where it is published
        log.info("04 %s: %d rows x %d features -> %s", split, per_split[split]["n"], per_split[split]["dim"],
                 per_split[split]["path"])
    from . import learned
    ls = learned.settings(cfg)
    aucs = learned.pool_aucs_from_dumps(out_dir, splits, ls["bootstrap_n"], ls["seed"])
    verdict = learned.verdict(aucs, ls["margin"])
    (log.warning if verdict["learned"] is False else log.info)("04: %s", learned.describe(aucs, verdict))
    summary = {"stage": STAGE, "model": cfg.get("model.name"), "checkpoint": str(ck),
               "detector": detector_identity(cfg, detector, D.input_spec(cfg, detector), ck),
               "device": str(device), "pools": list(splits), "splits": per_split, "detector_auc": aucs, "detector_learned": verdict,
               "seconds": time.time() - t0}
    write_json(out_dir / "summary.json", summary)
    return summary
