"""MesoNet: Meso-4 and MesoInception-4 (Afchar et al., WIFS 2018), at 256 px as in DeepfakeBench.

Both are four convolutional blocks whose output map (16 channels, input/32 per side: 8x8 at 256 px)
is flattened into the feature (1024 values at 256 px), then dropout 0.5 -> FC 16 -> LeakyReLU 0.1
-> dropout 0.5 -> FC. The original ends in one sigmoid unit; here the last layer gives two logits
(class 1 = fake) to fit the common interface. Input: RGB scaled to [0, 1] (the original's
``rescale=1/255``), i.e. mean 0, std 1. The authors' published Keras weights load from
``model.pretrained_path`` (a ``.h5`` file; keras_meso.py).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .backbones import Backbone, load_pretrained
from .base import Detector


def _check_size(input_size: int) -> int:
    input_size = int(input_size)
    if input_size < 32 or input_size % 32:
        raise ValueError(f"model.input_size: MesoNet needs a multiple of 32 pixels (four poolings of "
                         f"2, 2, 2, 4), got {input_size}")
    return input_size


def _conv_block(cin: int, cout: int, k: int, pool: int) -> nn.Sequential:
    # the original order: conv with ReLU, then batch norm, then max pooling
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU(inplace=True),
                         nn.BatchNorm2d(cout), nn.MaxPool2d(pool, pool))


class _MesoBase(Backbone):
    """Flattened 16 x (s/32) x (s/32) map as the feature (MesoNet does not pool globally)."""

    def __init__(self, input_size: int = 256) -> None:
        super().__init__()
        self.input_size = _check_size(input_size)
        self.feature_dim = 16 * (self.input_size // 32) ** 2

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.blocks(x), 1)


class Meso4Backbone(_MesoBase):
    """Meso-4 blocks: 8 3x3, 8 5x5, 16 5x5, 16 5x5 filters; max pools 2, 2, 2, 4."""

    def __init__(self, input_size: int = 256) -> None:
        super().__init__(input_size)
        self.blocks = nn.Sequential(_conv_block(3, 8, 3, 2), _conv_block(8, 8, 5, 2),
                                    _conv_block(8, 16, 5, 2), _conv_block(16, 16, 5, 4))


class _Inception(nn.Module):
    """MesoInception module: 1x1 | 1x1->3x3 | 1x1->3x3 dilation 2 | 1x1->3x3 dilation 3, concat."""

    def __init__(self, cin: int, a: int, b: int, c: int, d: int) -> None:
        super().__init__()
        relu = nn.ReLU
        self.b1 = nn.Sequential(nn.Conv2d(cin, a, 1), relu(inplace=True))
        self.b2 = nn.Sequential(nn.Conv2d(cin, b, 1), relu(inplace=True), nn.Conv2d(b, b, 3, padding=1),
                                relu(inplace=True))
        self.b3 = nn.Sequential(nn.Conv2d(cin, c, 1), relu(inplace=True),
                                nn.Conv2d(c, c, 3, padding=2, dilation=2), relu(inplace=True))
        self.b4 = nn.Sequential(nn.Conv2d(cin, d, 1), relu(inplace=True),
                                nn.Conv2d(d, d, 3, padding=3, dilation=3), relu(inplace=True))
        self.out_channels = a + b + c + d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], dim=1)


class MesoInception4Backbone(_MesoBase):
    """Inception(1,4,4,2) -> BN -> pool 2; Inception(2,4,4,2) -> BN -> pool 2; then Meso-4's last two."""

    def __init__(self, input_size: int = 256) -> None:
        super().__init__(input_size)
        i1, i2 = _Inception(3, 1, 4, 4, 2), _Inception(11, 2, 4, 4, 2)
        self.blocks = nn.Sequential(
            nn.Sequential(i1, nn.BatchNorm2d(i1.out_channels), nn.MaxPool2d(2, 2)),
            nn.Sequential(i2, nn.BatchNorm2d(i2.out_channels), nn.MaxPool2d(2, 2)),
            _conv_block(i2.out_channels, 16, 5, 2), _conv_block(16, 16, 5, 4))


class _MesoDetector(Detector):
    input_size = 256
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)
    backbone_cls: type = Meso4Backbone

    def __init__(self, pretrained_path=None, input_size: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        self.backbone = self.backbone_cls(input_size)
        self.input_size = self.backbone.input_size
        self.feature_dim = self.backbone.feature_dim
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.feature_dim, 16),
                                  nn.LeakyReLU(0.1), nn.Dropout(dropout), nn.Linear(16, 2))
        load_pretrained(self, pretrained_path)

    def load_keras(self, path, config_key: str) -> None:
        """The authors' published Keras weights (``Meso4_DF.h5`` ...; see keras_meso.py)."""
        from .keras_meso import load_keras_meso
        load_keras_meso(self, path, config_key)

    def forward(self, x: torch.Tensor) -> dict:
        fmap = self.backbone.forward_map(x)
        feature = torch.flatten(fmap, 1)
        more = {"feature_map": fmap} if self.return_feature_map else {}
        return self.outputs(self.head(feature), feature, **more)


class Meso4(_MesoDetector):
    """Meso-4; feature = flattened 16x8x8 map at 256 px (1024)."""
    name = "meso4"
    backbone_cls = Meso4Backbone


class MesoInception4(_MesoDetector):
    """MesoInception-4; feature = flattened 16x8x8 map at 256 px (1024)."""
    name = "meso_inception4"
    backbone_cls = MesoInception4Backbone
