"""Xception (Chollet, CVPR 2017) as used for face forgery detection (FaceForensics++, DeepfakeBench).

Entry flow: conv 3x3/2 (32) -> conv 3x3 (64) -> blocks 1-3 (128, 256, 728 channels, stride 2 each);
middle flow: blocks 4-11 (728 channels, three separable convolutions each, identity skip);
exit flow: block 12 (728 -> 1024, stride 2) -> separable conv 1536 -> separable conv 2048.
At 256 px the final map is 2048 x 8 x 8; the feature is its global average (2048).

Module names follow the common PyTorch port of the ImageNet Xception (``conv1``, ``bn1``, ...,
``block1.rep.0.conv1`` / ``.pointwise``, ``block1.skip``/``skipbn``, ``conv3``/``bn3``,
``conv4``/``bn4``), so such a local ImageNet file can be loaded into the backbone: its classifier
(``fc.*`` or ``last_linear.*``) is dropped and 2-D pointwise weights are reshaped to 1x1 kernels.
Input normalisation: mean 0.5, std 0.5 (pixels to [-1, 1]).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from .backbones import Backbone, BackboneDetector
from .base import load_state_strict, read_state


class SeparableConv2d(nn.Module):
    """Depthwise k x k convolution (``conv1``) followed by a pointwise 1x1 convolution."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, padding: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, k, stride, padding, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.conv1(x))


class Block(nn.Module):
    """``reps`` x (ReLU, separable conv 3x3, BN), max pool 3/``stride`` if strided, 1x1 conv skip."""

    def __init__(self, cin: int, cout: int, reps: int, stride: int = 1, start_with_relu: bool = True,
                 grow_first: bool = True) -> None:
        super().__init__()
        if cout != cin or stride != 1:
            self.skip = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(cout)
        else:
            self.skip = None
        # channel plan of the separable convolutions: grow at the first or at the last one
        chans = [cin] + ([cout] * reps if grow_first else [cin] * (reps - 1) + [cout])
        layers: list[nn.Module] = []
        for i in range(reps):
            layers += [nn.ReLU(inplace=i > 0), SeparableConv2d(chans[i], chans[i + 1]), nn.BatchNorm2d(chans[i + 1])]
        if not start_with_relu:
            layers = layers[1:]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.skip is None else self.skipbn(self.skip(x))
        return self.rep(x) + skip


class Xception(Backbone):
    """Xception feature extractor; the flows are separate methods so two-stream models can
    interleave them (``stem_conv1`` -> ``stem_conv2`` -> ``entry_blocks`` -> ``middle_flow`` -> ``exit_flow``)."""
    feature_dim = 2048
    external_format = "ImageNet Xception state dict (PyTorch port naming; fc/last_linear dropped)"

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, 2, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.block1 = Block(64, 128, 2, 2, start_with_relu=False)
        self.block2 = Block(128, 256, 2, 2)
        self.block3 = Block(256, 728, 2, 2)
        for i in range(4, 12):
            setattr(self, f"block{i}", Block(728, 728, 3, 1))
        self.block12 = Block(728, 1024, 2, 2, grow_first=False)
        self.conv3 = SeparableConv2d(1024, 1536)
        self.bn3 = nn.BatchNorm2d(1536)
        self.conv4 = SeparableConv2d(1536, 2048)
        self.bn4 = nn.BatchNorm2d(2048)

    def stem_conv1(self, x: torch.Tensor) -> torch.Tensor:
        """First convolution: (B, 3, 256, 256) -> (B, 32, 127, 127)."""
        return self.relu(self.bn1(self.conv1(x)))

    def stem_conv2(self, x: torch.Tensor) -> torch.Tensor:
        """Second convolution: (B, 32, 127, 127) -> (B, 64, 125, 125)."""
        return self.relu(self.bn2(self.conv2(x)))

    def entry_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """Blocks 1-3 of the entry flow: (B, 64, 125, 125) -> (B, 728, 16, 16)."""
        return self.block3(self.block2(self.block1(x)))

    def middle_flow(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(4, 12):
            x = getattr(self, f"block{i}")(x)
        return x

    def exit_flow(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 728, 16, 16) -> (B, 2048, 8, 8), after the final BN and ReLU."""
        x = self.relu(self.bn3(self.conv3(self.block12(x))))
        return self.relu(self.bn4(self.conv4(x)))

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.exit_flow(self.middle_flow(self.entry_blocks(self.stem_conv2(self.stem_conv1(x)))))

    def load_external(self, path: Path, config_key: str) -> None:
        state = read_state(path, config_key)
        state = {k: v for k, v in state.items() if not k.startswith(("fc.", "last_linear."))}
        for k, v in state.items():
            if k.endswith("pointwise.weight") and v.dim() == 2:
                state[k] = v[:, :, None, None]
        load_state_strict(self, state, path, "the Xception backbone", config_key)


class XceptionDetector(BackboneDetector):
    """Xception -> global average pool (feature, 2048) -> dropout 0.5 -> linear (2 logits)."""
    name = "xception"
    backbone_name = "xception"
    input_size = 256
    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)
