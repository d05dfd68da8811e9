"""The paper's detector: two-stream Xception with SRM high-frequency guidance (DeepfakeBench ``srm``,
after Luo et al., "Generalizing Face Forgery Detection with High-frequency Features", CVPR 2021).

Data flow at 256 px (channels x side):

1. SRM residuals: three fixed 5x5 high-pass filters (:data:`SRM_FILTERS`), each summed over R, G
   and B, truncated to [-3, 3] -> 3 x 256.
2. RGB stream: Xception conv1 on the image (32 x 127). SRM stream: its own Xception conv1 on the
   residuals, plus the multi-scale SRM branch (the same filters applied per channel to the RGB
   conv1 map, truncated, 1x1 conv, BN, ReLU) -> 32 x 127. Both through conv2 -> 64 x 125.
3. SRM-guided spatial attention: two convolutions on the residuals, channel mean and max, 7x7 conv,
   sigmoid -> a 1 x 125 map A; the RGB map becomes x * (1 + A).
4. Entry-flow blocks (728 x 16) -> dual cross-modality attention -> middle flow -> dual
   cross-modality attention -> exit flows (2048 x 8 each).
5. Channel-attention fusion: concat (4096) -> 1x1 conv, BN, ReLU (2048) -> f + f * CA(f), with CA
   a shared two-layer MLP on the average- and max-pooled channels (ratio 16), sigmoid.
6. Feature = global average of the fused map (2048); ``feature_map`` = the fused 2048 x 8 x 8 map.
7. AM-Softmax head (Wang et al. 2018): logits = s * cos(feature, w_c) with unit-norm class weights;
   the loss subtracts the margin m from the true class's cosine (m 0.45, s 30). At test time the
   logits carry no margin, so prob = softmax(logits)[:, 1] as for every detector.

The attention modules are a compact implementation of the paper's description, not a copy of the
original code. Input normalisation: mean 0.5, std 0.5 (DeepfakeBench), so the residuals are of
pixels in [-1, 1] and the +-3 truncation binds only on strong edges.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .backbones import load_pretrained
from .base import Detector
from .xception import Xception

# The three SRM kernels (Fridrich & Kodovsky 2012) used by Zhou et al. 2018 and Luo et al. 2021:
# KV (5x5, /12), KB (3x3, /4) and a second-order horizontal filter (/2), zero-padded to 5x5.
SRM_FILTERS = torch.tensor([
    [[-1, 2, -2, 2, -1],
     [2, -6, 8, -6, 2],
     [-2, 8, -12, 8, -2],
     [2, -6, 8, -6, 2],
     [-1, 2, -2, 2, -1]],
    [[0, 0, 0, 0, 0],
     [0, -1, 2, -1, 0],
     [0, 2, -4, 2, 0],
     [0, -1, 2, -1, 0],
     [0, 0, 0, 0, 0]],
    [[0, 0, 0, 0, 0],
     [0, 0, 0, 0, 0],
     [0, 1, -2, 1, 0],
     [0, 0, 0, 0, 0],
     [0, 0, 0, 0, 0]],
], dtype=torch.float32) / torch.tensor([12.0, 4.0, 2.0])[:, None, None]
SRM_CLIP = 3.0


class SRMConv(nn.Module):
    """Fixed SRM residuals of a (B, C, H, W) input, truncated to [-3, 3].

    ``per_channel=False``: 3 outputs, each filter summed over the C input channels (the image).
    ``per_channel=True``: 3C outputs, each filter on each channel separately (feature maps).
    The kernels are a buffer: saved with the model, never trained.
    """

    def __init__(self, in_channels: int = 3, per_channel: bool = False) -> None:
        super().__init__()
        self.per_channel = per_channel
        self.groups = in_channels if per_channel else 1
        if per_channel:
            kernel = SRM_FILTERS[:, None].repeat(in_channels, 1, 1, 1)            # (3C, 1, 5, 5)
        else:
            kernel = SRM_FILTERS[:, None].repeat(1, in_channels, 1, 1)            # (3, C, 5, 5)
        self.register_buffer("kernel", kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardtanh(F.conv2d(x, self.kernel.to(x.dtype), padding=2, groups=self.groups), -SRM_CLIP, SRM_CLIP)


def _conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class SRMSpatialAttention(nn.Module):
    """Residuals (3 x 256) -> conv 3x3/2 (32) -> conv 3x3 (64) -> [mean, max] -> 7x7 -> sigmoid (1 x 125)."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.Sequential(_conv_bn_relu(3, 32, 3, 2), _conv_bn_relu(32, 64, 3))
        self.spatial = nn.Conv2d(2, 1, 7, padding=3, bias=False)

    def forward(self, srm: torch.Tensor) -> torch.Tensor:
        y = self.convs(srm)
        pooled = torch.cat([y.mean(dim=1, keepdim=True), y.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.spatial(pooled))


class DualCrossModalityAttention(nn.Module):
    """Each stream attends over the other's positions and adds the result (learned scale, init 0).

    x' = x + g_x * V_y softmax(Q_x^T K_y / sqrt(d)),  y' = y + g_y * V_x softmax(Q_y^T K_x / sqrt(d)),
    with 1x1 projections to d = C / reduction for queries and keys and C for values.
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        d = max(channels // reduction, 1)
        self.scale = d ** -0.5
        self.q_x, self.k_x = nn.Conv2d(channels, d, 1), nn.Conv2d(channels, d, 1)
        self.q_y, self.k_y = nn.Conv2d(channels, d, 1), nn.Conv2d(channels, d, 1)
        self.v_x, self.v_y = nn.Conv2d(channels, channels, 1), nn.Conv2d(channels, channels, 1)
        self.gamma_x = nn.Parameter(torch.zeros(1))
        self.gamma_y = nn.Parameter(torch.zeros(1))

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, c, h, w = v.shape
        attn = torch.softmax(torch.bmm(q.flatten(2).transpose(1, 2), k.flatten(2)) * self.scale, dim=-1)  # (B, N, N)
        return torch.bmm(v.flatten(2), attn.transpose(1, 2)).view(b, c, h, w)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_new = x + self.gamma_x * self._attend(self.q_x(x), self.k_y(y), self.v_y(y))
        y_new = y + self.gamma_y * self._attend(self.q_y(y), self.k_x(x), self.v_x(x))
        return x_new, y_new


class ChannelAttentionFusion(nn.Module):
    """concat(x, y) -> 1x1 conv, BN, ReLU -> f + f * sigmoid(MLP(avg f) + MLP(max f))."""

    def __init__(self, channels: int = 2048, ratio: int = 16) -> None:
        super().__init__()
        self.reduce = _conv_bn_relu(2 * channels, channels, 1)
        self.mlp = nn.Sequential(nn.Conv2d(channels, channels // ratio, 1, bias=False), nn.ReLU(inplace=True),
                                 nn.Conv2d(channels // ratio, channels, 1, bias=False))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        f = self.reduce(torch.cat([x, y], dim=1))
        ca = torch.sigmoid(self.mlp(F.adaptive_avg_pool2d(f, 1)) + self.mlp(F.adaptive_max_pool2d(f, 1)))
        return f + f * ca


def am_softmax_loss(cosine: torch.Tensor, labels: torch.Tensor, margin: float = 0.45,
                    scale: float = 30.0) -> torch.Tensor:
    """Additive-margin softmax loss (nats), mean over the batch.

    ``cosine``: (B, K) cosines between the unit feature and the unit class weights; ``labels``: (B,).
    loss_i = -log( e^{s (cos_{i,y} - m)} / (e^{s (cos_{i,y} - m)} + sum_{j != y} e^{s cos_{i,j}}) ).
    """
    onehot = F.one_hot(labels, cosine.shape[1]).to(cosine.dtype)
    return F.cross_entropy(scale * (cosine - margin * onehot), labels)


class AMSoftmaxHead(nn.Module):
    """Cosine between the L2-normalised feature and the L2-normalised class weights (B, K)."""

    def __init__(self, in_features: int, n_classes: int = 2) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, n_classes))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return F.normalize(feature.float(), dim=1) @ F.normalize(self.weight.float(), dim=0)


class SRMDetector(Detector):
    """Two-stream SRM-guided Xception with AM-Softmax; feature (2048) = pooled fused map."""
    name = "srm"
    input_size = 256
    feature_dim = 2048
    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)
    external_format = "ImageNet Xception state dict (loaded into both streams)"

    def __init__(self, pretrained_path=None, input_size: int = 256, margin: float = 0.45,
                 scale: float = 30.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.input_size = int(input_size)
        self.margin, self.scale = float(margin), float(scale)
        self.srm_conv = SRMConv(3)
        self.rgb = Xception()
        self.srm = Xception()
        self.srm_multiscale = nn.Sequential(SRMConv(32, per_channel=True), _conv_bn_relu(96, 32, 1))
        self.srm_attention = SRMSpatialAttention()
        self.dcma_entry = DualCrossModalityAttention(728)
        self.dcma_middle = DualCrossModalityAttention(728)
        self.fusion = ChannelAttentionFusion(2048)
        self.dropout = nn.Dropout(dropout)
        self.head = AMSoftmaxHead(2048, 2)
        load_pretrained(self, pretrained_path)

    def fused_map(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised image (B, 3, 256, 256) -> fused map (B, 2048, 8, 8)."""
        residual = self.srm_conv(x)
        xr = self.rgb.stem_conv1(x)
        ys = self.srm.stem_conv1(residual) + self.srm_multiscale(xr)
        xr, ys = self.rgb.stem_conv2(xr), self.srm.stem_conv2(ys)
        xr = xr * (1 + self.srm_attention(residual))
        xr, ys = self.dcma_entry(self.rgb.entry_blocks(xr), self.srm.entry_blocks(ys))
        xr, ys = self.dcma_middle(self.rgb.middle_flow(xr), self.srm.middle_flow(ys))
        return self.fusion(self.rgb.exit_flow(xr), self.srm.exit_flow(ys))

    def forward(self, x: torch.Tensor) -> dict:
        fmap = self.fused_map(x)
        feature = torch.flatten(F.adaptive_avg_pool2d(fmap, 1), 1)
        cosine = self.head(self.dropout(feature))
        more = {"feature_map": fmap} if self.return_feature_map else {}
        return self.outputs(self.scale * cosine, feature, cosine=cosine, **more)

    def training_step(self, batch: dict) -> tuple[torch.Tensor, dict]:
        out = self(batch["image"])
        loss = am_softmax_loss(out["cosine"], batch["label"], self.margin, self.scale)
        return loss, {"loss": float(loss.detach())}

    def load_external(self, path: Path, config_key: str) -> None:
        """An ImageNet Xception file initialises both streams (classifier dropped); the SRM,
        attention, fusion and head layers stay random."""
        for stream in (self.rgb, self.srm):
            stream.load_external(path, config_key)
