"""Video detectors of DeepfakeForensics-v1: an image backbone per frame, an LSTM over the window.

Input (B, T, 3, H, W): a window of T consecutive sampled frames (see training/windows.py). Each
frame goes through the image backbone (Meso-4 or EfficientNet, reused from the image detectors
through ``build_backbone``, not copied), the per-frame features (B, T, D) through an LSTM
(``lstm_layers`` 1-2, ``hidden`` units, zero initial state), and the LSTM output at the last step
is the window's ``feature`` (B, hidden) and the input of the classifier head (dropout -> linear,
2 logits, class 1 = fake). The original drew the initial state at random and used N layers, which
makes predictions random; here the state starts at zero, so the same window gives the same output.

Options (config ``model``): ``window`` (mapping: ``length`` frames per window, default 5;
``stride``; ``lstm_layers`` 1 or 2; ``hidden`` units, default 256), ``input_size``, ``dropout``,
``variant`` (EfficientNet only, b0..b4, default b4), ``pretrained_path`` (a stage-03 checkpoint of
this detector, or a backbone-only file in the image backbone's published layout).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .backbones import build_backbone, load_pretrained
from .base import IMAGENET_MEAN, IMAGENET_STD, Detector

WINDOW_KEYS = ("length", "stride", "lstm_layers", "hidden")


class VideoLSTMDetector(Detector):
    is_video = True
    backbone_name = ""

    def __init__(self, pretrained_path=None, input_size: int = 256, window: dict | None = None,
                 dropout: float = 0.5, **backbone_options) -> None:
        super().__init__()
        window = dict(window or {})
        unknown = sorted(set(window) - set(WINDOW_KEYS))
        if unknown:
            raise ValueError(f"model.window: unknown key(s) {unknown}; known: {list(WINDOW_KEYS)}")
        self.window_length = int(window.get("length", 5))
        layers = int(window.get("lstm_layers", 1))
        hidden = int(window.get("hidden", 256))
        if layers not in (1, 2):
            raise ValueError(f"model.window.lstm_layers must be 1 or 2, got {layers}")
        if self.window_length < 1 or hidden < 1:
            raise ValueError(f"model.window: length and hidden must be positive, got {self.window_length}, {hidden}")
        self.input_size = int(input_size)
        self.backbone, self.frame_dim = build_backbone(self.backbone_name, **self._backbone_kwargs(backbone_options))
        self.lstm = nn.LSTM(self.frame_dim, hidden, num_layers=layers, batch_first=True)
        self.feature_dim = hidden
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, 2))
        load_pretrained(self, pretrained_path)

    def _backbone_kwargs(self, options: dict) -> dict:
        return options

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> per-frame backbone features (B, T, D)."""
        if x.dim() != 5:
            raise ValueError(f"{self.name}: input must be a window batch (B, T, 3, H, W), got shape {tuple(x.shape)}; "
                             f"video detectors need training.data_mode: windows")
        b, t = x.shape[:2]
        return self.backbone(x.reshape(b * t, *x.shape[2:])).reshape(b, t, -1)

    def forward(self, x: torch.Tensor) -> dict:
        seq = self.frame_features(x)
        h0 = seq.new_zeros(self.lstm.num_layers, seq.shape[0], self.lstm.hidden_size)
        out, _ = self.lstm(seq, (h0, torch.zeros_like(h0)))   # zero initial state: deterministic
        feature = out[:, -1]
        return self.outputs(self.head(feature), feature)


class Meso4LSTM(VideoLSTMDetector):
    """Meso-4 per frame (flattened 16 x s/32 x s/32 map) -> LSTM -> head. Input RGB in [0, 1]."""
    name = "meso4_lstm"
    backbone_name = "meso4"
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def _backbone_kwargs(self, options: dict) -> dict:
        if options:
            raise ValueError(f"model: unknown option(s) {sorted(options)} for meso4_lstm")
        return {"input_size": self.input_size}


class EfficientNetLSTM(VideoLSTMDetector):
    """EfficientNet-``variant`` per frame (global-average feature) -> LSTM -> head. ImageNet normalisation."""
    name = "efficientnet_lstm"
    mean = IMAGENET_MEAN
    std = IMAGENET_STD

    def __init__(self, pretrained_path=None, input_size: int = 256, window: dict | None = None,
                 dropout: float = 0.5, variant: str = "b4") -> None:
        variant = str(variant).lower().removeprefix("efficientnet_")
        self.backbone_name = f"efficientnet_{variant}"
        super().__init__(pretrained_path, input_size, window, dropout)
