"""Detector registry. Each name maps to ``module:Class``; the module is imported only when that
detector is built, so one detector's heavy dependencies never slow down or break another."""
from __future__ import annotations

from common.registry import Registry, import_target

from .base import Detector

REGISTRY = Registry("detector", {
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
}, unknown="model.name: unknown detector {name}; known: {names}", error=KeyError,
    load=lambda target: import_target(f"{__name__}.{target}"))


def register(name: str, target: str) -> None:
    REGISTRY.register(name, target)


def detector_class(name: str) -> type[Detector]:
    return REGISTRY.get(name)


def build_detector(name: str, **kwargs) -> Detector:
    """Build detector ``name`` with keyword options from the config's ``model`` section."""
    return detector_class(name)(**kwargs)
