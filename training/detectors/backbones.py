"""Reusable image backbones and the single-backbone detector built on them.

A *backbone* maps a normalised image batch (B, 3, H, W) to a pooled feature (B, D) with
``forward`` and to its last spatial map (B, C, h, w) with ``forward_map``; it declares
``feature_dim`` = D. Video detectors (LSTM over frames) and multi-backbone detectors (LIB) reuse
them through :func:`build_backbone`, which imports only the module of the backbone asked for::

    backbone, dim = build_backbone("efficientnet_b0")
    backbone, dim = build_backbone("meso4", input_size=256)

Local pretrained weights: :func:`load_pretrained` takes either a checkpoint of the whole detector
(as written by stage 03) or, where a backbone declares it, a backbone-only file in a published
layout (torchvision's ImageNet state dicts for EfficientNet/ResNet, the PyTorch port's ImageNet
Xception); both are loaded strictly. See docs/detectors.md.
"""
from __future__ import annotations

import importlib
import logging
from pathlib import Path

import torch
import torch.nn as nn

from .base import Detector, load_weights, read_state, warn_random_init

log = logging.getLogger(__name__)

PRETRAINED_KEY = "model.pretrained_path"

# name -> "module:function"; each function takes keyword options and returns a Backbone.
BACKBONES: dict[str, str] = {
    "meso4": "meso:Meso4Backbone",
    "meso_inception4": "meso:MesoInception4Backbone",
    "xception": "xception:Xception",
    "efficientnet_b0": "efficientnet:efficientnet_backbone_b0",
    "efficientnet_b1": "efficientnet:efficientnet_backbone_b1",
    "efficientnet_b2": "efficientnet:efficientnet_backbone_b2",
    "efficientnet_b3": "efficientnet:efficientnet_backbone_b3",
    "efficientnet_b4": "efficientnet:efficientnet_backbone_b4",
    "resnet18": "resnet:resnet_backbone_18",
    "resnet34": "resnet:resnet_backbone_34",
    "resnet50": "resnet:resnet_backbone_50",
}


class Backbone(nn.Module):
    """Feature extractor: ``forward_map`` -> (B, C, h, w), ``forward`` -> pooled (B, feature_dim).

    Subclasses may set ``external_format`` (a short description) and implement
    ``load_external(path, config_key)`` to accept a published backbone-only weight file.
    """
    feature_dim: int = 0
    external_format: str | None = None

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.forward_map(x), 1), 1)

    def load_external(self, path: Path, config_key: str) -> None:
        raise NotImplementedError


def build_backbone(name: str, **options) -> tuple[Backbone, int]:
    """(backbone module, feature_dim) for backbone ``name``; see :data:`BACKBONES` for the names."""
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone '{name}'; known: {', '.join(sorted(BACKBONES))}")
    module, fn = BACKBONES[name].split(":")
    backbone = getattr(importlib.import_module(f"{__package__}.{module}"), fn)(**options)
    return backbone, backbone.feature_dim


def load_pretrained(detector: Detector, path, config_key: str = PRETRAINED_KEY) -> None:
    """Load ``path`` into ``detector`` strictly, or warn that it starts from random weights.

    ``path`` None -> random initialisation, logged. A file whose keys are the detector's own
    (a stage-03 checkpoint, bare or under ``state_dict``/``model``) loads into the whole detector.
    Otherwise, if the detector (``load_external``) or its ``backbone`` accepts a published
    backbone-only layout (``external_format``), the file loads there (the head stays random).
    Any mismatch is an error naming the file, the config key and the missing/unexpected keys.
    """
    what = f"detector '{detector.name}'"
    if path is None or str(path) == "":
        warn_random_init(what, config_key)
        return
    path = Path(path)
    if path.suffix.lower() in (".h5", ".hdf5"):               # a Keras weight file (published MesoNet)
        if not hasattr(detector, "load_keras"):
            raise ValueError(f"{config_key}: '{path}' is a Keras weight file; only meso4 / meso_inception4 "
                             f"read those, not {what}")
        if not path.is_file():
            raise FileNotFoundError(f"{config_key}: weight file '{path}' does not exist; fix the path in the config")
        detector.load_keras(path, config_key)
        return
    # who takes a backbone-only file: the detector itself (several backbones) or its backbone
    target = detector if hasattr(detector, "load_external") else getattr(detector, "backbone", None)
    if path.is_file():
        keys = set(read_state(path, config_key))              # a clear error if unreadable
        if getattr(target, "external_format", None) and keys and not keys & set(detector.state_dict()):
            target.load_external(path, config_key)            # no key in common: not our checkpoint
            return
    load_weights(detector, path, what, config_key)


class BackboneDetector(Detector):
    """A backbone, pooled feature, dropout and a linear 2-class head (Xception/EfficientNet/ResNet).

    ``feature`` is the pooled backbone feature (B, feature_dim); ``feature_map`` the backbone's
    last map. Training: cross-entropy on the logits (class 1 = fake), base default.
    """
    backbone_name: str = ""

    def __init__(self, pretrained_path=None, input_size: int | None = None, dropout: float = 0.5,
                 **backbone_options) -> None:
        super().__init__()
        if input_size is not None:
            self.input_size = int(input_size)
        self.backbone, self.feature_dim = build_backbone(self.backbone_name, **backbone_options)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.feature_dim, 2))
        load_pretrained(self, pretrained_path)

    def forward(self, x: torch.Tensor) -> dict:
        fmap = self.backbone.forward_map(x)
        feature = torch.flatten(nn.functional.adaptive_avg_pool2d(fmap, 1), 1)
        more = {"feature_map": fmap} if self.return_feature_map else {}
        return self.outputs(self.head(feature), feature, **more)
