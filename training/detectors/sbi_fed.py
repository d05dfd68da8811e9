"""``sbi_fed``: any image detector trained the SBI way, with facial-embedding-discrepancy guidance.

The wrapper holds the image detector named by ``model.base`` (default ``efficientnet_b4``; every
other ``model`` key except ``fed_dim`` is that detector's option, ``pretrained_path`` included) and
a FED head (training/fed.py: bias-free linear map from the detector's feature to the embedding
size ``fed_dim``: 128 for dlib, 512 for ArcFace). ``forward`` is the base detector's, unchanged:
at test time (stage 04 and later) only the detector is used, the FED head is ignored.

``training_step`` on an ``sbi`` batch (training/sbi_data.py; pairs real/fake at rows 2j/2j+1, or
unflattened (B, 2, 3, H, W)):

    loss = CE(logits, label) + fed_weight * L_fed(P(f_fake) - P(f_real), e_fake - e_real)

with ``fed_weight`` = ``training.fed.weight`` (carried in the batch by the data mode) and L_fed the
relative squared error of :func:`training.fed.fed_distillation_loss`. Without ``fed_delta`` in the
batch (FED disabled) it is the plain cross-entropy.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..fed import FEDHead, fed_distillation_loss
from . import build_detector
from .base import Detector


def flatten_pairs(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (2B, 3, H, W) and labels (2B,) with pair j at rows 2j (real), 2j + 1 (fake)."""
    x, y = batch["image"], batch["label"]
    if x.dim() == 5:                     # default collate of pair items: (B, 2, 3, H, W)
        x = x.reshape(-1, *x.shape[2:])
        y = y.reshape(-1)
    return x, y


class SBIFEDDetector(Detector):
    name = "sbi_fed"

    def __init__(self, base: str = "efficientnet_b4", pretrained_path=None, fed_dim: int = 128, **base_options) -> None:
        super().__init__()
        if base == self.name:
            raise ValueError("model.base: sbi_fed cannot wrap itself; name an image detector (e.g. efficientnet_b4)")
        self.base = build_detector(base, pretrained_path=pretrained_path, **base_options)
        if getattr(self.base, "is_video", False):
            raise ValueError(f"model.base: '{base}' is a video detector; SBI/FED training works on image detectors")
        self.base_name = base
        self.input_size, self.feature_dim = self.base.input_size, self.base.feature_dim
        self.mean, self.std = self.base.mean, self.base.std
        self.fed_head = FEDHead(self.feature_dim, int(fed_dim))

    def forward(self, x: torch.Tensor) -> dict:
        self.base.return_feature_map = self.return_feature_map
        return self.base(x)

    def training_step(self, batch: dict) -> tuple[torch.Tensor, dict]:
        x, y = flatten_pairs(batch)
        out = self.base(x)
        ce = F.cross_entropy(out["logits"], y)
        logs = {"ce": float(ce.detach())}
        delta = batch.get("fed_delta")
        if delta is None:
            return ce, {**logs, "loss": float(ce.detach())}
        if not bool((y[0::2] == 0).all() and (y[1::2] == 1).all()):
            raise ValueError("sbi_fed: a batch with fed_delta must hold (real, fake) pairs at rows 2j, 2j+1; "
                             "use training.data_mode: sbi")
        if delta.shape[-1] != self.fed_head.proj.out_features:
            raise ValueError(f"sbi_fed: the embedder gives {delta.shape[-1]}-d vectors but the FED head is "
                             f"{self.fed_head.proj.out_features}-d; set model.fed_dim: {delta.shape[-1]}")
        weight = batch.get("fed_weight")
        w = float(weight.reshape(-1)[0]) if torch.is_tensor(weight) else float(weight if weight is not None else 0.4)
        feat = out["feature"].float()
        fed = fed_distillation_loss(self.fed_head, feat[0::2], feat[1::2], delta.float())
        loss = ce + w * fed
        return loss, {**logs, "fed": float(fed.detach()), "loss": float(loss.detach())}
