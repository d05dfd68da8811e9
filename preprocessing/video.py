"""Finding the inputs of stage 01 and reading only the sampled frames.

Input layout under a dataset root (label folder ``real`` = 0, ``fake`` = 1):

- videos: ``<root>/<label>/*.<ext>`` or ``<root>/<label>/videos/*.<ext>`` (ext in VIDEO_EXTS);
- frame folders (one folder = one video): ``<root>/<label>/frames/<video_id>/*.png`` or
  ``<root>/<label>/<video_id>/*.png``; the frame index is the file's number, else its position;
- single images: ``<root>/<label>/*.png`` (a one-frame "video" with frame index 0);
- masks (optional), matched by video id: ``<root>/<label>/masks/[videos/]<video_id>.<ext>`` or a
  folder ``<root>/<label>/masks/<video_id>/<frame_idx>.png``.

Frames are RGB uint8. Sampling: ``frames_per_video`` evenly spaced indices
``linspace(0, n - 1, N)`` truncated to integers (the paper's rule), or every ``stride``-th frame.
Videos are decoded sequentially with ``grab()`` and only the sampled frames are converted
(``retrieve()``); reading stops after the last sampled frame.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from common.io import InputError
from .faces import to_rgb

log = logging.getLogger(__name__)

LABELS = ("real", "fake")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
_RESERVED = {"videos", "frames", "masks", "landmarks"}


class Unreadable(Exception):
    """A video or image that cannot be opened or decoded."""


@dataclass
class InputItem:
    label: int                 # 1 = fake
    video_id: str
    kind: str                  # video | frames | image
    path: Path                 # the video file, frame folder or image
    mask: Path | None = None   # mask video / folder, if any
    frames: list = field(default_factory=list)  # for kind == frames: sorted image paths

    @property
    def label_name(self) -> str:
        return LABELS[self.label]


def _is_video(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in VIDEO_EXTS


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTS


def _frame_index(p: Path, pos: int) -> int:
    return int(p.stem) if p.stem.isdigit() else pos


def _images_in(folder: Path) -> list[Path]:
    imgs = [p for p in folder.iterdir() if _is_image(p)]
    return sorted(imgs, key=lambda p: (0, int(p.stem), p.name) if p.stem.isdigit() else (1, 0, p.name))


def _find_mask(label_dir: Path, video_id: str) -> Path | None:
    mdir = label_dir / "masks"
    if not mdir.is_dir():
        return None
    for base in (mdir, mdir / "videos"):
        for ext in VIDEO_EXTS:
            if (base / f"{video_id}{ext}").is_file():
                return base / f"{video_id}{ext}"
    if (mdir / video_id).is_dir():
        return mdir / video_id
    return None


def list_inputs(root: str | Path) -> list[InputItem]:
    """Every video / frame folder / image under ``root/<real|fake>``, sorted by (label, video_id)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"input folder '{root}' does not exist (config key preprocessing.input or --input)")
    items: list[InputItem] = []
    for label, name in enumerate(LABELS):
        ldir = root / name
        if not ldir.is_dir():
            continue
        found: list[InputItem] = []
        for base in (ldir, ldir / "videos"):
            if base.is_dir():
                found += [InputItem(label, p.stem, "video", p) for p in sorted(base.iterdir()) if _is_video(p)]
        found += [InputItem(label, p.stem, "image", p, frames=[p]) for p in sorted(ldir.iterdir()) if _is_image(p)]
        folders = [p for p in sorted(ldir.iterdir()) if p.is_dir() and p.name not in _RESERVED]
        if (ldir / "frames").is_dir():
            folders += [p for p in sorted((ldir / "frames").iterdir()) if p.is_dir()]
        for d in folders:
            imgs = _images_in(d)
            if imgs:
                found.append(InputItem(label, d.name, "frames", d, frames=imgs))
        seen: dict[str, Path] = {}
        for it in found:
            if it.video_id in seen:
                raise InputError(f"two inputs give the video id '{it.video_id}': '{seen[it.video_id]}' and "
                                 f"'{it.path}'; rename one of them")
            seen[it.video_id] = it.path
            it.mask = _find_mask(ldir, it.video_id)
        items += found
    if not items:
        raise InputError(f"no videos or images found under '{root}/real' or '{root}/fake' "
                          f"(video types {', '.join(VIDEO_EXTS)}; images {', '.join(IMAGE_EXTS)})")
    ids = {}
    for it in items:
        if it.video_id in ids:
            raise InputError(f"video id '{it.video_id}' appears under both real and fake ('{ids[it.video_id]}', "
                             f"'{it.path}'); video ids must be unique")
        ids[it.video_id] = it.path
    return sorted(items, key=lambda it: (it.label, it.video_id))


def sample_indices(n_frames: int, frames_per_video: int | None = 32, stride: int | None = None) -> list[int]:
    """Frame indices to sample from a video of ``n_frames`` frames (sorted, unique)."""
    if n_frames <= 0:
        return []
    if stride:
        return list(range(0, n_frames, int(stride)))
    n = int(frames_per_video or 32)
    return sorted(set(np.linspace(0, n_frames - 1, min(n, n_frames), endpoint=True, dtype=int).tolist()))


def read_image(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8 (grayscale, alpha and 16-bit images converted); Unreadable if not."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise Unreadable(f"{path}: {exc}") from exc
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise Unreadable(f"{path}: not a decodable image")
    try:
        return to_rgb(img)
    except ValueError as exc:
        raise Unreadable(f"{path}: {exc}") from exc


def read_gray(path: str | Path) -> np.ndarray:
    img = read_image(path)
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def video_frame_count(path: str | Path) -> int:
    """Number of frames (container header; counted by decoding when the header has none)."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise Unreadable(f"{path}: cannot be opened as a video")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if n > 0:
            return n
        n = 0
        while cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def read_video_frames(path: str | Path, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray | None]]:
    """Yield ``(index, RGB frame)`` for each wanted index, in order; ``None`` for a frame that cannot be
    decoded (for example past the end of a truncated file). Unreadable if the file will not open."""
    want = sorted(set(int(i) for i in indices))
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise Unreadable(f"{path}: cannot be opened as a video")
        pos, k = 0, 0
        ok = True
        while k < len(want):
            target = want[k]
            while ok and pos < target:
                ok = cap.grab()
                pos += 1
            if ok:
                ok = cap.grab()
                pos += 1
            frame = None
            if ok:
                got, bgr = cap.retrieve()
                frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if got and bgr is not None else None
            yield target, frame
            k += 1
    finally:
        cap.release()


def mask_frames(mask: Path | None, indices: Sequence[int]) -> dict[int, np.ndarray]:
    """Grayscale mask frames for ``indices`` from a mask video or folder ({} when there is none)."""
    if mask is None:
        return {}
    out: dict[int, np.ndarray] = {}
    try:
        if mask.is_dir():
            imgs = _images_in(mask)
            by_idx = {_frame_index(p, i): p for i, p in enumerate(imgs)}
            for i in indices:
                if i in by_idx:
                    out[i] = read_gray(by_idx[i])
        else:
            for i, frame in read_video_frames(mask, indices):
                if frame is not None:
                    out[i] = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    except Unreadable as exc:
        log.warning("mask %s unreadable (%s): crops made without masks", mask, exc)
    return out


def open_item(item: InputItem, frames_per_video: int | None = 32,
              stride: int | None = None) -> tuple[list[int], Iterator[tuple[int, np.ndarray | None]]]:
    """The sampled frame indices of one input and an iterator of ``(frame_index, RGB frame or None)``
    over them (None: that frame could not be decoded). Raises Unreadable if the video or image cannot
    be opened at all."""
    if item.kind == "video":
        n = video_frame_count(item.path)
        if n <= 0:
            raise Unreadable(f"{item.path}: no decodable frames")
        idx = sample_indices(n, frames_per_video, stride)
        return idx, read_video_frames(item.path, idx)
    if item.kind == "image":
        return [0], iter([(0, read_image(item.path))])
    imgs = item.frames
    pos = sample_indices(len(imgs), frames_per_video, stride)

    def gen():
        for k in pos:
            try:
                frame = read_image(imgs[k])
            except Unreadable:
                frame = None
            yield _frame_index(imgs[k], k), frame
    return [_frame_index(imgs[k], k) for k in pos], gen()
