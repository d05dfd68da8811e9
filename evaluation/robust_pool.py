"""The degraded test pool of stage 15: which frames, their sources, the degraded crops, their scores.

Owns the frame selection and stage-01 source lookup (``PoolFrames``), the degraded crop of every frame
(``degraded_crops``; downscale on the source frame and re-cropped where sources exist), the detector +
score-function pass (``Scorer``), the resume area's key and reading, and the re-crop check.
:mod:`evaluation.robustness` runs the stage and judges the results.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from common import degrade as DG
from common.config import Config
from common.io import InputError, read_csv, sha256_file
from common.splits import Sample

if TYPE_CHECKING:
    from .robustness import Settings


# ------------------------------------------------------------------------------------------ frames
@dataclass
class PoolFrames:
    samples: list                # Sample, split order
    persons: np.ndarray          # (N,) str
    root: Path
    sources: dict | None         # image path -> (InputItem, frame index, box) or None
    source_note: str             # why sources are / are not used

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)

    @property
    def videos(self) -> np.ndarray:
        return np.array([s.video_id for s in self.samples]).astype(str)

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.samples]


def person_ids(split_file: Path, samples: Sequence[Sample]) -> np.ndarray:
    """Person of each sample from the split file (common.splits.person_of_video: ``meta.persons``, else
    the UADFV rule); a video without one is its own person."""
    from common.splits import person_of_video
    mapping = person_of_video(split_file)
    return np.array([str(mapping.get(s.video_id, s.video_id)) for s in samples])


def select_frames(samples: Sequence[Sample], max_frames: int | None, seed: int) -> list[Sample]:
    """All samples, or ``max_frames`` of them drawn without replacement (seeded), kept in split order."""
    samples = list(samples)
    if max_frames is None or max_frames >= len(samples):
        return samples
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(samples), size=max_frames, replace=False))
    return [samples[i] for i in keep]


def source_index(cfg: Config, samples: Sequence[Sample]) -> tuple[dict | None, str]:
    """Map each crop to its stage-01 source frame: (item, frame index, face box), or (None, reason)."""
    root = cfg.path("dataset.root")
    manifest = root / "manifest.csv"
    inp = cfg.path("preprocessing.input")
    if not manifest.is_file():
        return None, (f"no stage-01 manifest at {manifest} (a dataset of crops only): downscale degrades the "
                      f"aligned crop, not the source frame")
    if inp is None or not inp.is_dir():
        return None, (f"stage 01's source frames (preprocessing.input = {inp}) are not available: downscale "
                      f"degrades the aligned crop, not the source frame")
    from preprocessing.video import list_inputs
    cols = read_csv(manifest, required=("source", "frame_idx", "crop", "box_left", "box_top", "box_right",
                                        "box_bottom"))
    by_crop = {}
    for i, crop in enumerate(cols["crop"]):
        if crop:
            by_crop[crop] = i
    try:
        items = {it.path.relative_to(inp).as_posix(): it for it in list_inputs(inp)}
    except InputError as exc:
        return None, f"stage 01's source frames cannot be listed ({exc}): downscale degrades the crop"
    out = {}
    for s in samples:
        i = by_crop.get(s.path)
        src = cols["source"][i] if i is not None else None
        if i is None or src not in items:
            return None, (f"{manifest}: no source frame for '{s.path}' (the crops and the source folder "
                          f"{inp} do not match): downscale degrades the aligned crop")
        box = tuple(int(float(cols[k][i])) for k in ("box_left", "box_top", "box_right", "box_bottom"))
        out[s.path] = (items[src], int(cols["frame_idx"][i]), box)
    return out, f"downscale is applied to stage 01's source frames ({inp}) and the faces re-cropped"


def load_test_frames(cfg: Config, settings: Settings) -> PoolFrames:
    from training.data import split_samples
    split_file, root = cfg.path("split.file"), cfg.path("dataset.root")
    samples, _ = split_samples(cfg, "test", skip_missing=False)      # stage 04's checks: files, both classes
    samples = select_frames(samples, settings.max_frames, settings.seed)
    labels = {s.label for s in samples}
    if labels != {0, 1}:
        raise InputError(f"{split_file}: the test frames selected (robustness.max_frames = {settings.max_frames}) "
                         f"hold only label(s) {sorted(labels)}; both real and fake frames are needed")
    persons = person_ids(split_file, samples)
    sources, note = (source_index(cfg, samples) if "downscale" in settings.degradations
                     else (None, "no frame-level degradation configured"))
    return PoolFrames(samples, persons, root, sources, note)


def read_crop(path: Path) -> np.ndarray:
    """A stored crop as RGB uint8 at its own size (as training.data.read_image, before resizing)."""
    import cv2
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path}: cannot read the image (missing or not an image file)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _read_source_frames(item, indices: Sequence[int]) -> dict[int, np.ndarray]:
    from preprocessing.video import _frame_index, read_image, read_video_frames
    want = sorted(set(int(i) for i in indices))
    if item.kind == "video":
        frames = {i: f for i, f in read_video_frames(item.path, want)}
    elif item.kind == "image":
        frames = {0: read_image(item.path)}
    else:
        by_idx = {_frame_index(p, k): p for k, p in enumerate(item.frames)}
        frames = {i: read_image(by_idx[i]) for i in want if i in by_idx}
    missing = [i for i in want if frames.get(i) is None]
    if missing:
        raise InputError(f"{item.path}: frame {missing[0]} cannot be read any more (stage 01 read it); the source "
                         f"changed since stage 01: re-run stage 01 or remove the source folder to degrade crops")
    return frames


def degraded_crops(frames: PoolFrames, family: str, strength: Any, seed: int, cropper=None,
                   upscale: str = "linear") -> Iterator[np.ndarray]:
    """The degraded crop of every test frame, in order (uint8 RGB)."""
    on_frame = family == "downscale" and frames.sources is not None and not DG.is_identity(family, strength)
    if not on_frame:
        for s in frames.samples:
            crop = read_crop(frames.root / s.path)
            if family == "clean":
                yield crop
            else:
                yield DG.apply(family, crop, strength, DG.item_seed(seed, family, strength, s.path), upscale)
        return
    from preprocessing.faces import Detection
    samples = frames.samples
    k = 0
    while k < len(samples):      # consecutive frames of one source are read together
        item = frames.sources[samples[k].path][0]
        j = k
        while j < len(samples) and frames.sources[samples[j].path][0] is item:
            j += 1
        srcs = [frames.sources[s.path] for s in samples[k:j]]
        decoded = _read_source_frames(item, [fi for _, fi, _ in srcs])
        for s, (_, fi, box) in zip(samples[k:j], srcs):
            frame = DG.apply(family, decoded[fi], strength, DG.item_seed(seed, family, strength, s.path), upscale)
            yield cropper.align_face(frame, Detection(box, 0.0)).crop
        k = j


# ------------------------------------------------------------------------------------------ scoring
class Scorer:
    """Stage 04's detector pass (``training.dump.FrameScorer``), then the saved system's score function."""

    def __init__(self, cfg: Config, system):
        from training.dump import FrameScorer
        from training.identity import check_detector
        self.frames = FrameScorer(cfg, who="the robustness stage", remedy=": set robustness.enabled: false")
        check_detector(system.detector, self.frames.identity, "features.checkpoint")   # exit 2 on another detector
        self.system = system

    def score(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray(self.system.score(**self.frames.run(crops)), dtype=np.float64)

    def score_all(self, crops: Iterable[np.ndarray], total: int, desc: str, progress: bool = True) -> np.ndarray:
        from tqdm.auto import tqdm
        out, batch = [], []
        with tqdm(total=total, desc=desc, unit="frame", disable=not progress) as bar:
            for c in crops:
                batch.append(c)
                if len(batch) == self.frames.batch_size:
                    out.append(self.score(batch))
                    bar.update(len(batch))
                    batch = []
            if batch:
                out.append(self.score(batch))
                bar.update(len(batch))
        return np.concatenate(out) if out else np.zeros(0)


# ------------------------------------------------------------------------------------------ resume area
def run_identity(cfg: Config, settings: Settings, frames: PoolFrames, system_sha: str, checkpoint_sha: str) -> dict:
    """Everything the per-frame scores of a setting depend on, except the setting itself and the seed
    (which :func:`_resume_key` adds for noise; the frame subset enters through the frame list).
    No path under ``output_dir`` enters, so a moved or copied run folder keeps its resume area."""
    model = {k: v for k, v in (cfg.get("model", None) or {}).items() if k != "pretrained_path"}
    ident = {"degrade_version": DG.VERSION, "system_sha256": system_sha, "checkpoint_sha256": checkpoint_sha,
             "frames": hashlib.sha256("\n".join(frames.paths).encode()).hexdigest(), "upscale": settings.upscale,
             "sources": frames.sources is not None, "model": model,
             "features": {k: cfg.get(f"features.{k}", None) for k in ("full_map", "dtype", "batch_size")},
             "normalization": cfg.get("training.normalization")}
    if frames.sources is not None:     # re-cropping: the crop geometry and stage 01's record of the sources
        ident["crop"] = {k: cfg.get(f"preprocessing.{k}", None) for k in ("size", "margin", "align_points", "landmarks")}
        ident["manifest_sha256"] = sha256_file(frames.root / "manifest.csv")
    return ident


def _resume_key(identity: dict, family: str, strength: Any, seed: int) -> str:
    """The key of one setting's scores; the seed counts only where it is drawn from (noise)."""
    blob = json.dumps({"identity": identity, "family": family, "strength": strength,
                       "seed": seed if family == "noise" else None}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def load_resumed(resume: Path, label: str, key: str, n: int) -> np.ndarray | None:
    p = resume / f"{label}.json"
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if data.get("key") != key or len(data.get("scores", [])) != n:
        return None
    return np.asarray(data["scores"], dtype=np.float64)


def recrop_check(frames: PoolFrames, cropper, n: int = 4) -> dict:
    """Re-crop the first ``n`` clean source frames and compare with the stored crops: 0 means the
    frame path reproduces stage 01 exactly, so a downscale result reflects the degradation alone."""
    from preprocessing.faces import Detection
    diffs = []
    for s in frames.samples[:n]:
        item, fi, box = frames.sources[s.path]
        frame = _read_source_frames(item, [fi])[fi]
        crop = cropper.align_face(frame, Detection(box, 0.0)).crop
        diffs.append(int(np.abs(crop.astype(np.int16) - read_crop(frames.root / s.path).astype(np.int16)).max()))
    return {"frames": len(diffs), "max_abs_diff_grey_levels": max(diffs) if diffs else None}
