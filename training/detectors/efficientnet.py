"""EfficientNet-B0..B4 image detectors on torchvision's architecture (built with ``weights=None``).

Backbone = torchvision's ``features`` (the MBConv stages and the final 1x1 conv); feature = its
global average (1280 for B0/B1, 1408 B2, 1536 B3, 1792 B4); head = dropout (torchvision's rate for
the variant) -> linear (2 logits). A local torchvision ImageNet state dict of the same variant
(``efficientnet_b4_rwightman-*.pth`` etc.) loads into the backbone: its ``classifier.*`` keys are
dropped, everything else must match strictly. Input normalisation: ImageNet mean/std.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torchvision

from .backbones import Backbone, BackboneDetector
from .base import load_state_strict, read_state

VARIANTS = {"b0": (1280, 0.2), "b1": (1280, 0.2), "b2": (1408, 0.3), "b3": (1536, 0.3), "b4": (1792, 0.4)}


class EfficientNetBackbone(Backbone):
    external_format = "torchvision ImageNet EfficientNet state dict (classifier dropped)"

    def __init__(self, variant: str = "b4") -> None:
        super().__init__()
        variant = str(variant).lower().removeprefix("efficientnet_")
        if variant not in VARIANTS:
            raise ValueError(f"model.variant: EfficientNet variant must be one of {', '.join(VARIANTS)}, "
                             f"got '{variant}'")
        self.variant = variant
        net = getattr(torchvision.models, f"efficientnet_{variant}")(weights=None)
        self.features = net.features
        self.feature_dim = VARIANTS[variant][0]

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def load_external(self, path: Path, config_key: str) -> None:
        state = {k: v for k, v in read_state(path, config_key).items() if not k.startswith("classifier.")}
        load_state_strict(self, state, path, f"the EfficientNet-{self.variant.upper()} backbone", config_key)


def _variant_fn(variant: str):
    def build(**options) -> EfficientNetBackbone:
        return EfficientNetBackbone(variant=variant, **options)
    build.__name__ = f"efficientnet_backbone_{variant}"
    return build


efficientnet_backbone_b0 = _variant_fn("b0")
efficientnet_backbone_b1 = _variant_fn("b1")
efficientnet_backbone_b2 = _variant_fn("b2")
efficientnet_backbone_b3 = _variant_fn("b3")
efficientnet_backbone_b4 = _variant_fn("b4")


class EfficientNetDetector(BackboneDetector):
    """EfficientNet-``variant`` -> global average pool (feature) -> dropout -> linear (2 logits)."""
    name = "efficientnet_b4"
    backbone_name = "efficientnet_b4"
    input_size = 256

    def __init__(self, pretrained_path=None, input_size: int | None = None, variant: str = "b4",
                 dropout: float | None = None) -> None:
        variant = str(variant).lower().removeprefix("efficientnet_")
        if variant not in VARIANTS:
            raise ValueError(f"model.variant: EfficientNet variant must be one of {', '.join(VARIANTS)}, "
                             f"got '{variant}'")
        self.name = self.backbone_name = f"efficientnet_{variant}"
        super().__init__(pretrained_path, input_size, VARIANTS[variant][1] if dropout is None else dropout)
