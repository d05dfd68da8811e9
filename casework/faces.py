"""Faces of the questioned frames: stage 01's cropper, one options object, tracks across frames.

The cropper is built by ``preprocessing.crop.build_cropper(options_from_config(cfg.section(
"preprocessing")))``: the very function and options stage 01 uses, so a questioned face is found,
aligned and cropped as the training, calib and test faces were (``tests/test_casework.py`` checks
both build the same cropper). Per frame each face is ``cropper.detect`` -> ``cropper.align_face``,
stage 01's two calls; stage 01 keeps only the largest face of a frame, casework assesses every face
at least ``evidence.min_face_fraction`` of the largest face's area and lists the smaller ones as
faces not assessed (their own tracks, ``Track.not_assessed`` saying why): no detected face disappears.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def crop_options(cfg) -> dict:
    """The one options object of stage 01 and casework (``preprocessing`` section, defaults, checks)."""
    from preprocessing.crop import options_from_config
    return options_from_config(cfg.section("preprocessing"))


def build_cropper(opts: dict):
    from preprocessing.crop import build_cropper as _build, check_model_paths
    check_model_paths(opts)
    return _build(opts)


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


@dataclass
class Track:
    """One face followed across frames: per frame its index, box (source-frame px) and aligned crop."""
    frames: list = field(default_factory=list)    # frame indices
    boxes: list = field(default_factory=list)
    crops: list = field(default_factory=list)
    measures: list = field(default_factory=list)  # frame-level conditions of each frame (common.conditions)
    first_frame: np.ndarray | None = None         # the source frame the face first appears in (overview)
    fractions: list = field(default_factory=list)  # per frame: box area / the frame's largest face's area
    not_assessed: str | None = None               # why the face is listed but not assessed (None: assessed)

    @property
    def last_box(self):
        return self.boxes[-1]

    def largest(self) -> int:
        """Position of the frame with the largest face box (the frame-level fallback's frame)."""
        areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in self.boxes]
        return int(np.argmax(areas))


def _link(tracks: list, idx: int, frame, dets, largest: float, cropper, min_iou: float) -> None:
    """Align each detection and add it to the track whose last box overlaps it most (or a new track)."""
    from common.conditions import measure_frame

    used: set[int] = set()
    for d in dets:
        face = cropper.align_face(frame, d)           # stage 01: landmarks + alignment
        best, best_iou = None, min_iou
        for t_i, t in enumerate(tracks):
            if t_i in used:
                continue
            v = _iou(face.box, t.last_box)
            if v >= best_iou:
                best, best_iou = t_i, v
        if best is None:
            tracks.append(Track())
            best = len(tracks) - 1
        used.add(best)
        t = tracks[best]
        t.frames.append(int(idx))
        t.boxes.append(tuple(int(v) for v in face.box))
        t.crops.append(face.crop)
        t.measures.append(measure_frame(frame, face.box))
        t.fractions.append(float(d.area / largest) if largest > 0 else 1.0)
        if t.first_frame is None:
            t.first_frame = frame


def track_faces(frames, cropper, min_fraction: float, min_iou: float = 0.3) -> list[Track]:
    """Faces of every frame, linked into tracks by box overlap with a track's last box (greedy,
    largest face first). A face smaller than ``min_fraction`` x the frame's largest face is followed
    in tracks of its own, listed after the assessed ones with ``not_assessed`` saying why."""
    tracks: list[Track] = []
    small: list[Track] = []
    for idx, frame in frames:
        dets = cropper.detect(frame)                  # stage 01: detect, largest first
        if not dets:
            continue
        largest = dets[0].area
        _link(tracks, idx, frame, [d for d in dets if d.area >= min_fraction * largest], largest, cropper, min_iou)
        _link(small, idx, frame, [d for d in dets if d.area < min_fraction * largest], largest, cropper, min_iou)
    for t in small:
        t.not_assessed = (f"its box is {100 * max(t.fractions):.0f} % of the area of the largest face in its "
                          f"frame, below evidence.min_face_fraction = {min_fraction:g} (a smaller face beside a "
                          f"larger one is not assessed by default; set evidence.min_face_fraction lower to "
                          f"assess it)")
    return tracks + small
