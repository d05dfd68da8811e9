"""Windows of consecutive sampled frames for the video detectors, and window -> video aggregation.

A *window* is ``length`` consecutive frames of one video, in temporal order, taken from the frames
the split file lists for that video (with 32 evenly spaced frames per video, "consecutive" means
consecutive *sampled* frames, about 1/32 of the video apart). Windows start every ``stride``
frames (``stride = length``: non-overlapping). A video with fewer than ``length`` frames gives one
window padded by repeating its last frame (logged), so no video is silently dropped; a tail shorter
than a window is covered by one last window aligned to the video's end.

Data modes (``training.data_mode: windows``): training items are windows with label and video id;
evaluation / feature-dump items add ``frame_start``/``frame_end`` (the frame numbers of the first and
last frame, from the file names) which stage 04 writes into ``meta.csv`` (one row per window).
Video-level score = mean over the video's windows (:func:`video_scores`).

Config: ``model.window.length`` (default 5), ``model.window.stride`` (default = length).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from common import schema
from common.config import Config, ConfigError
from common.splits import Sample
from common.videos import video_means

log = logging.getLogger(__name__)

DEFAULT_LENGTH = schema.BY_NAME["model.window.length"].default   # declared in common/schema.py


@dataclass(frozen=True)
class Window:
    video_id: str
    label: int                # 1 = fake
    paths: tuple              # frame paths (relative to the dataset root), temporal order
    position: int             # index of the first frame among the video's listed frames
    frame_start: int          # frame number of the first frame (file name), -1 if not numeric
    frame_end: int            # frame number of the last frame


def frame_number(path: str) -> int:
    """``real/frames/0003/046.png`` -> 46; -1 when the file name is not a number."""
    stem = Path(path).stem
    return int(stem) if stem.isdigit() else -1


def _temporal(frames: list[Sample]) -> list[Sample]:
    """Frames in temporal order: by frame number when every name is numeric, else as listed."""
    nums = [frame_number(s.path) for s in frames]
    if all(n >= 0 for n in nums):
        return [s for _, s in sorted(zip(nums, frames), key=lambda t: t[0])]
    return list(frames)


def window_options(cfg: Config | None) -> tuple[int, int]:
    """(length, stride) from ``model.window``; checked."""
    if cfg is None:
        return DEFAULT_LENGTH, DEFAULT_LENGTH
    length = cfg.get("model.window.length")
    stride = cfg.get("model.window.stride") or length
    if not isinstance(length, int) or length < 1:
        raise ConfigError(f"{cfg.source}: model.window.length must be a positive integer, got {length!r}")
    if not isinstance(stride, int) or stride < 1:
        raise ConfigError(f"{cfg.source}: model.window.stride must be a positive integer, got {stride!r}")
    return length, stride


def make_windows(samples: Sequence[Sample], length: int = DEFAULT_LENGTH, stride: int | None = None) -> list[Window]:
    """Windows of ``length`` consecutive frames per video (videos in first-seen order)."""
    if length < 1:
        raise ValueError(f"model.window.length must be >= 1, got {length}")
    stride = stride or length
    by_video: dict[str, list[Sample]] = {}
    for s in samples:
        by_video.setdefault(s.video_id, []).append(s)
    out: list[Window] = []
    padded = 0
    for vid, frames in by_video.items():
        labels = {s.label for s in frames}
        if len(labels) != 1:
            raise ValueError(f"video '{vid}' has frames with different labels {sorted(labels)}; check the split file")
        frames = _temporal(frames)
        n = len(frames)
        if n < length:
            padded += 1
            starts = [0]
        else:
            starts = list(range(0, n - length + 1, stride))
            if starts[-1] + length < n:         # cover the tail with a window ending at the last frame
                starts.append(n - length)
        for st in starts:
            idx = [min(st + j, n - 1) for j in range(length)]
            paths = tuple(frames[i].path for i in idx)
            out.append(Window(vid, frames[0].label, paths, st, frame_number(paths[0]), frame_number(paths[-1])))
    if padded:
        log.warning("%d video(s) have fewer than %d frames: one window each, padded with the last frame",
                    padded, length)
    return out


def video_scores(video_ids: Sequence[str], scores: Sequence[float], labels: Sequence[int] | None = None) -> dict:
    """Video-level score = mean of its windows' (or frames') scores.

    Returns ``{"video_ids": array, "scores": array, "labels": array or None, "counts": array}`` in
    first-seen video order. Labels must agree within a video.
    """
    if len(video_ids) != len(scores):
        raise ValueError(f"video_ids ({len(video_ids)}) and scores ({len(scores)}) differ in length")
    v = video_means(video_ids, scores, labels)
    if v.mixed is not None and v.mixed.any():
        bad = v.video_ids[np.argmax(v.mixed)]
        found = sorted({int(lab) for vid, lab in zip(np.asarray(video_ids).astype(str), labels) if vid == bad})
        raise ValueError(f"video '{bad}' has windows with different labels {found}")
    return {"video_ids": v.video_ids, "scores": v.scores, "labels": v.labels, "counts": v.counts}


class WindowDataset(Dataset):
    """Items ``{image (T, 3, H, W), label, video_id, path (first frame), index, frame_start, frame_end}``.

    ``augment`` (training) is applied with the same random draws to every frame of a window, so the
    window stays temporally consistent.
    """

    meta_columns: tuple = ("frame_start", "frame_end")

    def __init__(self, windows: Sequence[Window], root: Path, spec, augment: Callable | None = None):
        self.windows = list(windows)
        self.root = Path(root)
        self.spec = spec
        self.augment = augment

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def labels(self) -> np.ndarray:
        return np.array([w.label for w in self.windows], dtype=np.int64)

    def __getitem__(self, i: int) -> dict:
        from .data import read_image, to_tensor
        w = self.windows[i]
        frames = [read_image(self.root / p, self.spec.size) for p in w.paths]
        if self.augment is not None:
            state = np.random.get_state()
            out = []
            for f in frames:
                np.random.set_state(state)         # same draws for every frame of the window
                out.append(self.augment(f))
            frames = out
        image = torch.stack([to_tensor(f, self.spec.mean, self.spec.std) for f in frames])
        return {"image": image, "label": torch.tensor(w.label, dtype=torch.long), "video_id": w.video_id,
                "path": w.paths[0], "index": i, "frame_start": w.frame_start, "frame_end": w.frame_end}


def build_windows_train(cfg: Config, samples: Sequence[Sample], dataset_root: Path, spec) -> Dataset:
    from .data import augment_from_config
    length, stride = window_options(cfg)
    return WindowDataset(make_windows(samples, length, stride), dataset_root, spec, augment_from_config(cfg))


def build_windows_eval(cfg: Config, samples: Sequence[Sample], dataset_root: Path, spec) -> Dataset:
    length, stride = window_options(cfg)
    return WindowDataset(make_windows(samples, length, stride), dataset_root, spec, None)
