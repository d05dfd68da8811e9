"""ResNet-18/34/50 image detectors on torchvision's architecture (built with ``weights=None``).

Backbone = torchvision's ResNet up to ``layer4`` (stem, ``layer1``-``layer4``, names unchanged);
feature = global average of the last map (512 for ResNet-18/34, 2048 for ResNet-50); head =
dropout -> linear (2 logits). A local torchvision ImageNet state dict (``resnet34-*.pth``) loads into
the backbone: its ``fc.*`` keys are dropped, the rest must match strictly. ImageNet mean/std.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torchvision

from .backbones import Backbone, BackboneDetector
from .base import load_state_strict, read_state

DEPTHS = {18: 512, 34: 512, 50: 2048}


class ResNetBackbone(Backbone):
    external_format = "torchvision ImageNet ResNet state dict (fc dropped)"

    def __init__(self, depth: int = 34) -> None:
        super().__init__()
        depth = int(depth)
        if depth not in DEPTHS:
            raise ValueError(f"model.depth: ResNet depth must be one of {sorted(DEPTHS)}, got {depth}")
        self.depth = depth
        net = getattr(torchvision.models, f"resnet{depth}")(weights=None)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(net, name))
        self.feature_dim = DEPTHS[depth]

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def load_external(self, path: Path, config_key: str) -> None:
        state = {k: v for k, v in read_state(path, config_key).items() if not k.startswith("fc.")}
        load_state_strict(self, state, path, f"the ResNet-{self.depth} backbone", config_key)


def resnet_backbone_18(**options) -> ResNetBackbone:
    return ResNetBackbone(18, **options)


def resnet_backbone_34(**options) -> ResNetBackbone:
    return ResNetBackbone(34, **options)


def resnet_backbone_50(**options) -> ResNetBackbone:
    return ResNetBackbone(50, **options)


class ResNetDetector(BackboneDetector):
    """ResNet-``depth`` -> global average pool (feature) -> dropout -> linear (2 logits)."""
    name = "resnet34"
    backbone_name = "resnet34"
    input_size = 256

    def __init__(self, pretrained_path=None, input_size: int | None = None, depth: int = 34,
                 dropout: float = 0.5) -> None:
        if int(depth) not in DEPTHS:
            raise ValueError(f"model.depth: ResNet depth must be one of {sorted(DEPTHS)}, got {depth}")
        self.name = self.backbone_name = f"resnet{int(depth)}"
        super().__init__(pretrained_path, input_size, dropout)
