"""SSAAFormer (DeepFidelity): a vision transformer with symmetric spatial-attention augmentation.

The original backbone is UniFormer-Large, whose weights are not available offline; this is a
smaller, configurable ViT with the same symmetric block, registered as detector ``ssaaformer``.

- Patch embedding (``stem``): ``conv`` (default: log2(``patch_size``) 3x3 stride-2 convolutions
  with BN and GELU between them -- a convolutional stem, which makes small transformers train much
  faster on little data, in the spirit of UniFormer's convolutional early stages) or ``linear``
  (ViT patchify, kernel = stride = ``patch_size``), giving an (h x w) token grid with learnable
  absolute position embeddings, no class token (the feature is the mean over tokens, so the
  token grid stays a plain image grid that can be mirrored).
- The first ``symmetric_blocks`` blocks are *symmetric* and *local*: each query attends to the
  tokens in a ``local_window`` x ``local_window`` neighbourhood (null = all tokens), and the
  attention map A (per head, N x N over tokens) is blended with its horizontal mirror,

      attn = w1 * A + w2 * M A M,    (w1, w2) = softmax(two learnable logits),

  where M is the permutation that mirrors the token grid left-right, so M A M is the map that the
  mirrored query gives, mirrored back. Faces are roughly left-right symmetric; the blend lets a
  token borrow the attention pattern of its mirror position. The block is exactly
  mirror-equivariant: tokens M X give attention M attn(X) M and outputs M Y(X).
- The remaining blocks are plain global multi-head self-attention blocks.

Outputs: ``logits`` (B, 2) from a linear head (class 1 = fake), ``feature`` (B, ``embed_dim``) =
LayerNorm(mean token), ``fidelity`` (B,) in (0, 1) from a sigmoid regression head (1 = real-like).
``training_step``: cross-entropy on ``logits`` plus ``fidelity_weight`` x MSE of ``fidelity``
against the batch's ``fidelity`` targets (training/fidelity.py), when the batch has them.
The fidelity score used as evidence comes from the SVR fitted on the dumped features
(training/04b_fit_fidelity_svr.py), as in the original.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import schema
from common.config import ConfigError

from .base import Detector, load_weights, merge_options, warn_random_init

SSAA_DEFAULTS = schema.defaults("model.ssaaformer")   # a ViT-S-sized model (common/schema.py); tests pass smaller


def mirror_permutation(h: int, w: int) -> torch.Tensor:
    """Index of the left-right mirrored token for each token of an (h x w) row-major grid."""
    return torch.arange(h * w).reshape(h, w).flip(1).reshape(-1)


def local_mask(h: int, w: int, window: int | None) -> torch.Tensor | None:
    """(N, N) bool, True where query i may attend key j (|dr|, |dc| <= window // 2); None = global."""
    if window is None:
        return None
    r, c = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    r, c = r.reshape(-1), c.reshape(-1)
    half = int(window) // 2
    return ((r[:, None] - r[None, :]).abs() <= half) & ((c[:, None] - c[None, :]).abs() <= half)


class Attention(nn.Module):
    """Multi-head self-attention; optionally local (masked) and symmetric (mirror-blended)."""

    def __init__(self, dim: int, heads: int, symmetric: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"model.ssaaformer.embed_dim ({dim}) must be divisible by num_heads ({heads})")
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)
        self.symmetric = symmetric
        if symmetric:
            self.mirror_logits = nn.Parameter(torch.zeros(2))   # softmax -> (w1, w2) = (0.5, 0.5) at start
        self.last_attention: torch.Tensor | None = None
        self.keep_attention = False

    @property
    def mirror_weights(self) -> torch.Tensor:
        """(w1, w2): weights of A and of its mirror; they sum to one."""
        return F.softmax(self.mirror_logits, dim=0)

    def forward(self, x: torch.Tensor, mirror: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        logits = (q @ k.transpose(-2, -1)) * self.scale                  # (B, heads, N, N)
        if mask is not None:
            logits = logits.masked_fill(~mask.to(logits.device), float("-inf"))
        attn = logits.softmax(dim=-1)
        if self.symmetric:
            w = self.mirror_weights
            attn = w[0] * attn + w[1] * attn[:, :, mirror][:, :, :, mirror]
        if self.keep_attention:
            self.last_attention = attn.detach()
        out = (self.drop(attn) @ v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, symmetric: bool, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, symmetric, dropout)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def forward(self, x, mirror=None, mask=None):
        x = x + self.attn(self.norm1(x), mirror, mask)
        return x + self.mlp(self.norm2(x))


class SSAAFormer(Detector):
    name = "ssaaformer"
    input_size = 224

    def __init__(self, pretrained_path=None, input_size: int | None = None, ssaaformer: dict | None = None,
                 **options) -> None:
        super().__init__()
        self.opts = o = merge_options(SSAA_DEFAULTS, "model.ssaaformer.", ssaaformer, options)
        if input_size is not None:
            self.input_size = int(input_size)
        p = int(o["patch_size"])
        if self.input_size % p:
            raise ConfigError(f"model.input_size ({self.input_size}) must be a multiple of "
                              f"model.ssaaformer.patch_size ({p})")
        if not 0 <= int(o["symmetric_blocks"]) <= int(o["depth"]):
            raise ConfigError(f"model.ssaaformer.symmetric_blocks must be in [0, depth={o['depth']}]")
        self.grid = (self.input_size // p, self.input_size // p)
        dim = int(o["embed_dim"])
        self.feature_dim = dim
        if o["stem"] == "conv":           # convolutional stem: log2(p) 3x3 stride-2 conv-BN-GELU layers
            if p < 2 or p & (p - 1):
                raise ConfigError(f"model.ssaaformer.patch_size must be a power of two with stem 'conv', got {p}")
            n_layers = p.bit_length() - 1
            chans = [3] + [max(dim // 2 ** (n_layers - 1 - i), 16) for i in range(n_layers - 1)] + [dim]
            layers = []
            for i, (cin, cout) in enumerate(zip(chans[:-1], chans[1:])):
                layers.append(nn.Conv2d(cin, cout, 3, stride=2, padding=1))
                if i < n_layers - 1:
                    layers += [nn.BatchNorm2d(cout), nn.GELU()]
            self.patch_embed = nn.Sequential(*layers)
        elif o["stem"] == "linear":       # ViT patchify: one conv with kernel = stride = p
            self.patch_embed = nn.Conv2d(3, dim, p, stride=p)
        else:
            raise ConfigError(f"model.ssaaformer.stem must be 'conv' or 'linear', got {o['stem']!r}")
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        n_sym = int(o["symmetric_blocks"])
        self.blocks = nn.ModuleList(Block(dim, int(o["num_heads"]), float(o["mlp_ratio"]), i < n_sym, float(o["dropout"]))
                                    for i in range(int(o["depth"])))
        self.n_symmetric = n_sym
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 2)
        self.fidelity_head = nn.Linear(dim, 1)
        self.register_buffer("mirror", mirror_permutation(*self.grid), persistent=False)
        m = local_mask(*self.grid, o["local_window"])
        self.register_buffer("mask", m if m is not None else torch.ones(0, dtype=torch.bool), persistent=False)
        self.apply(self._init)
        if pretrained_path:
            load_weights(self, pretrained_path, "detector 'ssaaformer'", "model.pretrained_path")
        else:
            warn_random_init("detector 'ssaaformer'", "model.pretrained_path")

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens with position embeddings, (B, N, dim), row-major over the grid."""
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        if t.shape[1] != self.pos_embed.shape[1]:
            raise ValueError(f"ssaaformer expects {self.input_size}x{self.input_size} input, got {tuple(x.shape[-2:])}")
        return t + self.pos_embed

    def run_blocks(self, t: torch.Tensor) -> torch.Tensor:
        mask = self.mask if self.mask.numel() else None
        for i, block in enumerate(self.blocks):
            t = block(t, self.mirror, mask) if i < self.n_symmetric else block(t)
        return t

    def forward(self, x: torch.Tensor) -> dict:
        t = self.run_blocks(self.tokens(x))
        feature = self.norm(t.mean(dim=1))
        fidelity = torch.sigmoid(self.fidelity_head(feature)).squeeze(1)
        return self.outputs(self.head(feature), feature, fidelity=fidelity)

    def training_step(self, batch: dict) -> tuple[torch.Tensor, dict]:
        out = self(batch["image"])
        ce = F.cross_entropy(out["logits"], batch["label"])
        logs = {"ce": float(ce.detach())}
        loss = ce + 0.0 * out["fidelity"].sum()     # keeps the fidelity head in the graph (DDP) when no target
        w = float(self.opts["fidelity_weight"])
        if w > 0 and "fidelity" in batch:
            target = batch["fidelity"].to(out["fidelity"].dtype)
            known = torch.isfinite(target)
            if known.any():
                mse = F.mse_loss(out["fidelity"][known], target[known])
                loss = loss + w * mse
                logs["fidelity_mse"] = float(mse.detach())
        logs["loss"] = float(loss.detach())
        return loss, logs
