"""Reading the questioned file: stage 01's readers and frame sampling, and every kind of bad input.

The kind is decided from the content, not the name: a file is an image if OpenCV decodes it as
one, else a video if OpenCV opens it as one and decodes a frame; a text file named ``.mp4`` is
neither. Frames of a video are sampled exactly as stage 01 samples them (``preprocessing.video.
open_item`` with the run's ``preprocessing.frames_per_video`` / ``frame_stride``, or
``evidence.max_frames`` when set), so a video-level statement uses the frames per video the video
system was validated on. ``frames_expected`` is the number of sampled frames the container's own
frame count implies; ``frames_read`` those that decoded (fewer: a truncated file, scored on what
was read, and the statement says so).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .outcome import EXIT_BAD_INPUT, CaseworkError


@dataclass
class Questioned:
    path: Path
    kind: str                                  # image | video
    frames: list                               # [(frame index, RGB uint8 frame)] that decoded
    frames_expected: int
    container_frames: int | None = None        # the video container's frame count
    notes: list = field(default_factory=list)  # statements about the input (alpha removed, truncated, ...)

    @property
    def frames_read(self) -> int:
        return len(self.frames)


def check_path(path: Path) -> None:
    """A usable file, or CaseworkError(EXIT_BAD_INPUT) with one line naming the problem and the fix."""
    if path.is_dir():
        raise CaseworkError(EXIT_BAD_INPUT, f"{path}: is a folder; give one image or video file (one case per file)")
    if not path.exists():
        raise CaseworkError(EXIT_BAD_INPUT, f"{path}: no such file; check the --input path")
    if not path.is_file():
        raise CaseworkError(EXIT_BAD_INPUT, f"{path}: not a regular file; give an image or video file")
    if not os.access(path, os.R_OK):
        raise CaseworkError(EXIT_BAD_INPUT, f"{path}: cannot be read (permission denied); copy it somewhere readable")
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise CaseworkError(EXIT_BAD_INPUT, f"{path}: cannot be read ({exc.strerror or exc}); check the file") from None
    if size == 0:
        raise CaseworkError(EXIT_BAD_INPUT, f"{path}: the file is empty (0 bytes); obtain the original file")


def _decode_image(path: Path):
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    return img


def _channel_notes(raw: np.ndarray) -> list[str]:
    notes = []
    ch = 1 if raw.ndim == 2 else raw.shape[2]
    if raw.dtype == np.uint16:
        notes.append("16-bit image: reduced to 8 bits per channel (the upper byte), as stage 01 reads images")
    if ch in (1, 2):
        notes.append("grayscale image: its one channel was copied to red, green and blue (the detector takes "
                     "colour images; it was trained and validated on colour faces)")
    if ch in (2, 4):
        notes.append("the image has an alpha (transparency) channel: it was removed, the colour values kept as "
                     "stored (not composited on a background)")
    return notes


def read_questioned(path: Path, frames_per_video: int | None, stride: int | None) -> Questioned:
    """The questioned file's decoded frames; CaseworkError(EXIT_BAD_INPUT) for anything unusable."""
    from preprocessing.video import InputItem, Unreadable, open_item, read_image, video_frame_count

    check_path(path)
    raw = None
    try:
        raw = _decode_image(path)
    except (OSError, cv2.error):
        raw = None
    if raw is not None:
        try:
            frame = read_image(path)                       # stage 01's image reader (to RGB uint8)
        except Unreadable as exc:
            raise CaseworkError(EXIT_BAD_INPUT, f"{path}: an image that cannot be used ({exc}); convert it to "
                                                f"an 8- or 16-bit PNG or JPEG") from None
        return Questioned(path, "image", [(0, frame)], 1, None, _channel_notes(raw))
    cap = cv2.VideoCapture(str(path))
    opened = cap.isOpened() and cap.grab()
    cap.release()
    if not opened:
        raise CaseworkError(EXIT_BAD_INPUT, f"{path}: not an image or video that can be decoded (name says "
                                            f"'{path.suffix or 'no extension'}'); give the original image or video")
    try:
        n = video_frame_count(path)
        item = InputItem(0, path.stem, "video", path)
        indices, frames = open_item(item, frames_per_video, stride)   # stage 01's sampling and reader
        got = [(int(i), f) for i, f in frames if f is not None]
    except (Unreadable, cv2.error) as exc:
        raise CaseworkError(EXIT_BAD_INPUT, f"{path}: the video cannot be decoded ({exc})") from None
    if not got:
        raise CaseworkError(EXIT_BAD_INPUT, f"{path}: no frame of the video could be decoded; obtain an intact copy")
    q = Questioned(path, "video", got, len(indices), int(n))
    if len(got) < len(indices):
        q.notes.append(f"the video is truncated or damaged: its container claims {n} frames, so {len(indices)} "
                       f"sampled frames were expected, but only {len(got)} could be read; the results use the "
                       f"{len(got)} frames that were read")
    return q
