"""Face detection, landmarks and the paper's 5-point alignment (stage 01; also used on single frames).

Conventions: images are RGB uint8 arrays (H, W, 3); points are (x, y) pixel coordinates with the
origin at the top-left pixel's centre (dlib's and OpenCV's convention); boxes are
``(left, top, right, bottom)`` in pixels of the frame they were found in.

Alignment as in the paper (DeepfakeBench's ``img_align_crop``): five landmarks, 0-based points 37,
44, 30, 49, 55 of the 68-point iBUG scheme (upper left-eye lid, upper right-eye lid, nose tip, upper
lip beside each mouth corner) are mapped by a least-squares similarity transform (Umeyama) onto the
ArcFace 112-px template shifted 8 px right, scaled to ``size`` and shrunk by the margin factor
(1.3), then ``cv2.warpAffine`` (bilinear, black border). All landmarks are mapped into the crop
through the same matrix, so no second detection is run on the crop.

Speed: with ``detect_max_width`` set, a frame wider than that is detected, without upsampling, on a
copy downscaled to at most that width (to a level of the paper pass's own 6:5 image pyramid), the box is mapped back and the landmark predictor runs on the
full-resolution frame; only when this finds no face does the paper's full-resolution pass (with
``upsample``) run. Models are loaded once per process (:func:`load_model`).
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import cv2
import numpy as np

from common import schema
from common.config import ConfigError

log = logging.getLogger(__name__)

# ArcFace 112x112 five-point template (eyes, nose, mouth corners), x shifted by 8 px as in the paper.
ARCFACE_112 = np.array([[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366],
                        [33.5493, 92.3655], [62.7299, 92.2041]], dtype=np.float64)
PAPER_POINTS = (37, 44, 30, 49, 55)


def models_dir(config_key: str = "preprocessing.landmarks.model_path") -> Path:
    """The ``models/`` folder of the installed ``face_recognition_models`` package (not imported).

    ``config_key`` names the key that can point at a local model file instead (for the error).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise ConfigError(f"the package face_recognition_models is not installed; install it "
                          f"(pip install face_recognition_models) or set {config_key} to a local dlib model (.dat)")
    return Path(spec.origin).parent / "models"


def template(size: int = 256, margin: float = 1.3) -> np.ndarray:
    """The five target points (5, 2) in crop pixels for a ``size`` x ``size`` crop with ``margin``."""
    dst = ARCFACE_112.copy()
    dst[:, 0] += 8.0
    dst *= size / 112.0
    pad = size * (margin - 1.0) / 2.0
    return (dst + pad) * size / (size + 2.0 * pad)


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) taking ``src`` to
    ``dst`` (both (N, 2)), by Umeyama's method; returns the 2x3 matrix for ``cv2.warpAffine``."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    var_s = (s0 ** 2).sum() / len(src)
    scale = (sig * d).sum() / var_s if var_s > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def apply_matrix(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through a 2x3 affine matrix."""
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def align(image: np.ndarray, landmarks: np.ndarray, size: int = 256, margin: float = 1.3,
          points: Sequence[int] = PAPER_POINTS, mask: np.ndarray | None = None):
    """Warp ``image`` (and ``mask``) to the aligned ``size`` x ``size`` crop defined by ``landmarks``
    (K, 2) in image pixels. Returns ``(crop, landmarks_in_crop (K, 2) float64, matrix 2x3, mask_crop)``."""
    lm = np.asarray(landmarks, dtype=np.float64)
    m = similarity_matrix(lm[list(points)], template(size, margin))
    crop = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mcrop = None
    if mask is not None:
        mcrop = cv2.warpAffine(mask, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, apply_matrix(m, lm), m, mcrop


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Any decoded image (gray, gray+alpha, BGR, BGRA as OpenCV reads them; 8 or 16 bit) as RGB uint8."""
    img = np.asarray(image)
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f"unsupported image dtype {img.dtype}")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.ndim == 3 and img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if img.ndim == 3 and img.shape[2] == 2:  # gray + alpha
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if img.ndim == 3 and img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    raise ValueError(f"unsupported image shape {img.shape}")


_MODELS: dict = {}


def load_model(kind: str, path: str | Path | None = None):
    """A dlib model, loaded once per process and shared by every cropper of that process
    (``hog``: frontal face detector; ``cnn``: MMOD detector file; ``shape``: shape predictor file)."""
    import dlib

    key = (kind, str(path) if path else None)
    if key not in _MODELS:
        if kind == "hog":
            _MODELS[key] = dlib.get_frontal_face_detector()
        elif kind == "cnn":
            _MODELS[key] = dlib.cnn_face_detection_model_v1(str(path))
        else:
            _MODELS[key] = dlib.shape_predictor(str(path))
    return _MODELS[key]


class FaceCrop(NamedTuple):
    crop: np.ndarray          # (size, size, 3) RGB uint8
    landmarks: np.ndarray     # (K, 2) float64, crop pixels
    box: tuple                # (left, top, right, bottom), frame pixels
    score: float              # detector score (HOG margin or CNN confidence)


@dataclass
class AlignedFace:
    crop: np.ndarray
    landmarks: np.ndarray         # (K, 2) crop pixels
    box: tuple
    score: float
    matrix: np.ndarray            # 2x3, frame -> crop
    frame_landmarks: np.ndarray   # (K, 2) frame pixels
    mask: np.ndarray | None = None


@dataclass
class Detection:
    box: tuple       # (left, top, right, bottom), frame pixels
    score: float

    @property
    def area(self) -> float:
        return max(0, self.box[2] - self.box[0]) * max(0, self.box[3] - self.box[1])


class FaceCropper:
    """Detector + landmark predictor + alignment, models loaded once.

    detector: ``hog`` (dlib frontal face detector, the paper's) or ``cnn`` (dlib MMOD from
    face_recognition_models, or ``detector_path``). landmarks_model: a dlib shape predictor .dat
    (81 or 68 points); None -> the 68-point model of face_recognition_models (logged).
    """

    def __init__(self, detector: str = "hog", upsample: int = 1, detect_max_width: int | None = 640,
                 landmarks_model: str | Path | None = None, size: int = 256, margin: float = 1.3,
                 points: Sequence[int] = PAPER_POINTS, detector_path: str | Path | None = None,
                 landmarks_key: str = "preprocessing.landmarks.model_path"):
        import dlib  # heavy; imported when a cropper is built

        self.size, self.margin, self.points = int(size), float(margin), tuple(int(p) for p in points)
        self.upsample = int(upsample)
        self.detect_max_width = int(detect_max_width) if detect_max_width else None
        self.kind = detector
        if detector == "hog":
            self._hog = load_model("hog")
        elif detector == "cnn":
            path = Path(detector_path) if detector_path else models_dir() / "mmod_human_face_detector.dat"
            if not path.is_file():
                raise ConfigError(f"preprocessing.detector_path: CNN detector file '{path}' does not exist")
            self._cnn = load_model("cnn", path)
        else:
            raise ConfigError(f"preprocessing.detector must be 'hog' or 'cnn', got {detector!r}")
        if landmarks_model:
            path = Path(landmarks_model)
            if not path.is_file():
                raise ConfigError(f"{landmarks_key}: landmark model '{path}' does not exist; fix the path "
                                  "or set it to null to use the 68-point model of face_recognition_models")
        else:
            path = models_dir() / "shape_predictor_68_face_landmarks.dat"
            log.info("%s is not set: using the 68-point landmark model %s (crops are made the same way; "
                     "landmark files will hold 68 points, not 81)", landmarks_key, path)
        self.landmarks_path = path
        self._predictor = load_model("shape", path)
        self._dlib = dlib
        self.n_points = self._predict(np.zeros((64, 64, 3), np.uint8), (8, 8, 56, 56)).shape[0]
        if max(self.points) >= self.n_points:
            raise ConfigError(f"{landmarks_key}: model '{path}' gives {self.n_points} points; alignment needs "
                              f"point indices {self.points}")
        self.passes = {"fast": 0, "full": 0}   # detection passes run (downscaled / full resolution)

    @classmethod
    def from_options(cls, opts: dict, key: str = "preprocessing") -> "FaceCropper":
        """Build from a config section mapping (``cfg.section('preprocessing')``); a key it lacks takes
        its default from common/schema.py."""
        o = {**schema.defaults("preprocessing"), **opts}
        return cls(detector=o["detector"], upsample=o["upsample"], detect_max_width=o["detect_max_width"],
                   landmarks_model=(o["landmarks"] or {}).get("model_path"), size=o["size"], margin=o["margin"],
                   points=o["align_points"], detector_path=o["detector_path"],
                   landmarks_key=f"{key}.landmarks.model_path")

    # -------------------------------------------------------------------- detection
    def _detect_raw(self, image: np.ndarray, upsample: int) -> list[Detection]:
        if self.kind == "hog":
            rects, scores, _ = self._hog.run(image, upsample, 0.0)
            return [Detection((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in zip(rects, scores)]
        dets = self._cnn(image, upsample)
        return [Detection((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), float(d.confidence))
                for d in dets]

    def fast_scale(self, width: int) -> float:
        """Downscale factor of the fast pass: the first level of the full pass's own image pyramid
        (``2**upsample * (5/6)**L``, dlib's 6:5 pyramid) that is at most ``detect_max_width`` wide, so the
        fast pass scans the same scales as the paper's pass and finds (nearly) the same boxes."""
        s = 2.0 ** self.upsample
        while width * s > self.detect_max_width:
            s *= 5.0 / 6.0
        return s

    def detect(self, image: np.ndarray, full: bool = False) -> list[Detection]:
        """Faces in an RGB frame, largest first. ``full=True`` forces the paper's full-resolution pass."""
        image = np.ascontiguousarray(image)
        h, w = image.shape[:2]
        dets: list[Detection] = []
        if not full and self.detect_max_width and w > self.detect_max_width:
            s = self.fast_scale(w)
            small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
            dets = [Detection(tuple(int(round(v / s)) for v in d.box), d.score) for d in self._detect_raw(small, 0)]
            self.passes["fast"] += 1
        if not dets:
            dets = self._detect_raw(image, self.upsample)
            self.passes["full"] += 1
        return sorted(dets, key=lambda d: -d.area)

    # -------------------------------------------------------------------- landmarks and alignment
    def _predict(self, image: np.ndarray, box: tuple) -> np.ndarray:
        shape = self._predictor(np.ascontiguousarray(image), self._dlib.rectangle(*(int(v) for v in box)))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def landmarks(self, image: np.ndarray, box: tuple | None = None) -> np.ndarray | None:
        """(K, 2) landmarks of the largest face of ``image`` (or of ``box``); None if no face."""
        if box is None:
            dets = self.detect(image)
            if not dets:
                return None
            box = dets[0].box
        return self._predict(image, box)

    def align_face(self, image: np.ndarray, det: Detection, mask: np.ndarray | None = None) -> AlignedFace:
        lm = self._predict(image, det.box)
        crop, lm_crop, m, mcrop = align(image, lm, self.size, self.margin, self.points, mask)
        return AlignedFace(crop, lm_crop, det.box, det.score, m, lm, mcrop)

    def align_all(self, image: np.ndarray, mask: np.ndarray | None = None) -> list[AlignedFace]:
        """Every detected face aligned, largest first."""
        return [self.align_face(image, d, mask) for d in self.detect(image)]

    def crop_all(self, frame_rgb: np.ndarray) -> list[FaceCrop]:
        """``[(crop size x size RGB, landmarks in crop (K, 2), box, score)]``, largest face first."""
        return [FaceCrop(a.crop, a.landmarks, a.box, a.score) for a in self.align_all(frame_rgb)]
