"""Detector registry. Each name maps to ``module:Class``; the module is imported only when that
detector is built, so one detector's heavy dependencies never slow down or break another."""
from __future__ import annotations

import importlib

from .base import Detector

REGISTRY: dict[str, str] = {
    # name: "module (relative to this package):Class" -- filled in by each detector's issue
    "meso4": "meso:Meso4",
    "meso_inception4": "meso:MesoInception4",
    "xception": "xception:XceptionDetector",
    "efficientnet_b4": "efficientnet:EfficientNetDetector",
    "efficientnet": "efficientnet:EfficientNetDetector",
    "resnet34": "resnet:ResNetDetector",
    "srm": "srm:SRMDetector",
    "meso4_lstm": "video_lstm:Meso4LSTM",
    "efficientnet_lstm": "video_lstm:EfficientNetLSTM",
    "sbi_fed": "sbi_fed:SBIFEDDetector",
    "lib": "lib:LIBDetector",
    "ssaaformer": "ssaaformer:SSAAFormer",
    "dlib_face_embedding": "face_embedding:DlibFaceEmbedding",   # a shortcut control (identity), not a detector
}


def register(name: str, target: str) -> None:
    REGISTRY[name] = target


def detector_class(name: str) -> type[Detector]:
    if name not in REGISTRY:
        raise KeyError(f"model.name: unknown detector '{name}'; known: {', '.join(sorted(REGISTRY))}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def build_detector(name: str, **kwargs) -> Detector:
    """Build detector ``name`` with keyword options from the config's ``model`` section."""
    return detector_class(name)(**kwargs)
