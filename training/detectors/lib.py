"""LIB: Local Information Blocks ("Exposing the Deception", Ba et al., AAAI 2024), detector ``lib``.

Architecture (n = ``num_LIBs`` blocks, default 4):

- every block is a full backbone (``model``: resnet34 default, efficientnet_b0..b4,
  mobilenet_v3_small, or ``small_cnn`` for CPU tests) applied to the same whole image, giving a
  pooled feature f_i of size D;
- ``head_all``: logits of p(y | concat(f_1..f_n)); ``heads_without[i]``: logits of
  p(y | concat of the other n-1 features);
- the fusion bottleneck concat -> 1000 -> BN -> ReLU -> dropout -> 500 -> BN -> ReLU -> dropout
  gives the feature G, and ``head_G`` gives p(y | G), the prediction used at test time.

``forward`` returns ``logits``/``prob`` of the G head and ``feature`` = G (dumped by stage 04 and
scored by stage 08), plus ``logits_all`` (B, 2), ``logits_without`` (B, n, 2) and
``local_features`` (B, n, D). ``training_step`` implements the original objective (see
:mod:`training.lib_losses`): cross-entropy on the heads, the Global and Local Information Losses
at temperature T, balanced by learnable uncertainty weights (``auto``) or fixed ``scales``
(``hyper``), on mixup batches. With ``lil_loss`` and ``gil_loss`` both off it is plain
cross-entropy on p(y | G).

Config: every option of the original command line is a key of ``model.lib`` (names kept):
``model, num_LIBs, lil_loss, gil_loss, mi_calculator, balance_loss_method, scales, temperature,
mixup, alpha``; plus ``backbone_weights`` (a local backbone weight file loaded into every block,
e.g. torchvision's ImageNet ResNet-34 state dict; null = random init, logged), ``bottleneck``
(widths, default [1000, 500]), ``dropout`` and ``seed`` (mixup draws).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from common import schema
from common.config import ConfigError

from .. import lib_losses as L
from .backbones import BACKBONES, Backbone, build_backbone, load_pretrained
from .base import Detector, merge_options, warn_random_init

log = logging.getLogger(__name__)

BALANCE_METHODS = ("auto", "hyper")
LOCAL_BACKBONES = ("mobilenet_v3_small", "small_cnn")

# defaults of the original command line (seed_systems.md, system 2)
LIB_DEFAULTS = schema.defaults("model.lib", resolve=True)   # declared once, in common/schema.py


class SmallCNN(Backbone):
    """Four conv-BN-ReLU stages with stride 2 (16-32-64-``width`` channels): a CPU-sized block."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        chans = [3, 16, 32, 64, int(width)]
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.feature_dim = int(width)

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class MobileNetV3Small(Backbone):
    """torchvision's mobilenet_v3_small feature extractor (576-d pooled feature), random init."""

    external_format = "torchvision mobilenet_v3_small state dict"

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v3_small
        self.net = mobilenet_v3_small(weights=None)
        self.net.classifier = nn.Identity()
        self.feature_dim = 576

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)

    def load_external(self, path: Path, config_key: str) -> None:
        _load_filtered(self.net, path, config_key, drop=("classifier.",))


def _load_filtered(module: nn.Module, path, config_key: str, drop: tuple) -> None:
    """Strictly load a published state dict into ``module`` after dropping its classifier keys."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{config_key}: weight file '{path}' does not exist; fix the path or set it to null")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
    state = {k: v for k, v in state.items() if not k.startswith(drop)}
    own = {k: v for k, v in module.state_dict().items() if not k.startswith(drop)}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(f"{config_key}: '{path}' does not fit {type(module).__name__}: {len(missing)} missing keys "
                         f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, {len(wrong)} wrong shapes "
                         f"{wrong[:3]}; is it a file for another architecture?")
    module.load_state_dict(state, strict=False)      # strict apart from the dropped classifier keys
    log.info("loaded backbone weights from %s (%d tensors)", path, len(state))


def make_block(name: str) -> Backbone:
    """One Local Information Block backbone by name (see module docstring)."""
    if name == "small_cnn":
        return SmallCNN()
    if name == "mobilenet_v3_small":
        return MobileNetV3Small()
    if name in BACKBONES:
        return build_backbone(name)[0]
    raise ConfigError(f"model.lib.model: unknown backbone '{name}'; known: "
                      f"{', '.join(sorted(set(BACKBONES) | set(LOCAL_BACKBONES)))}")


def lib_options(section: dict | None = None, **flat) -> dict:
    """The LIB options: defaults, then the ``model.lib`` mapping, then keyword overrides; validated."""
    opts = merge_options(LIB_DEFAULTS, "model.lib.", section, flat)
    if int(opts["num_LIBs"]) < 2:
        raise ConfigError(f"model.lib.num_LIBs must be >= 2 (leave-one-out heads), got {opts['num_LIBs']}")
    if opts["mi_calculator"] not in L.MI_CALCULATORS:
        raise ConfigError(f"model.lib.mi_calculator must be one of {L.MI_CALCULATORS}, got {opts['mi_calculator']!r}")
    if opts["balance_loss_method"] not in BALANCE_METHODS:
        raise ConfigError(f"model.lib.balance_loss_method must be one of {BALANCE_METHODS}, "
                          f"got {opts['balance_loss_method']!r}")
    if len(opts["scales"]) != 3:
        raise ConfigError(f"model.lib.scales needs 3 values (CE, GIL, LIL), got {opts['scales']!r}")
    if float(opts["temperature"]) <= 0:
        raise ConfigError(f"model.lib.temperature must be > 0, got {opts['temperature']}")
    if opts["mixup"] and float(opts["alpha"]) <= 0:
        raise ConfigError(f"model.lib.alpha must be > 0 when mixup is on, got {opts['alpha']}")
    return opts


class LIBDetector(Detector):
    name = "lib"
    input_size = 224

    def __init__(self, pretrained_path=None, input_size: int | None = None, lib: dict | None = None,
                 **options) -> None:
        super().__init__()
        self.opts = lib_options(lib, **options)
        o = self.opts
        if input_size is not None:
            self.input_size = int(input_size)
        n = int(o["num_LIBs"])
        self.num_libs = n
        self.blocks = nn.ModuleList(make_block(str(o["model"])) for _ in range(n))
        d = self.blocks[0].feature_dim
        self.local_dim = d
        self.head_all = nn.Linear(n * d, 2)
        self.heads_without = nn.ModuleList(nn.Linear((n - 1) * d, 2) for _ in range(n))
        widths = [n * d] + [int(w) for w in o["bottleneck"]]
        layers = []
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU(inplace=True), nn.Dropout(float(o["dropout"]))]
        self.bottleneck = nn.Sequential(*layers)
        self.feature_dim = widths[-1]
        self.head_G = nn.Linear(self.feature_dim, 2)
        # learnable uncertainty weights s_k of the active terms (CE[, GIL][, LIL]), init 1. Parameters the
        # chosen objective never uses are frozen, so DistributedDataParallel needs no find_unused_parameters.
        self.active_terms = ("ce",) + (("gil",) if o["gil_loss"] else ()) + (("lil",) if o["lil_loss"] else ())
        self.loss_sigma = nn.Parameter(torch.ones(len(self.active_terms)),
                                       requires_grad=o["balance_loss_method"] == "auto" and len(self.active_terms) > 1)
        if not (o["gil_loss"] or o["lil_loss"]):
            self.head_all.requires_grad_(False)
        if not o["lil_loss"]:
            self.heads_without.requires_grad_(False)
        self.reseed(int(o["seed"]))
        if o["backbone_weights"]:
            for block in self.blocks:
                self._load_block(block, o["backbone_weights"])
        elif not pretrained_path:
            warn_random_init(f"LIB backbones ({o['model']})", "model.lib.backbone_weights")
        if pretrained_path:
            load_pretrained(self, pretrained_path)

    @staticmethod
    def _load_block(block: Backbone, path) -> None:
        if not block.external_format:
            raise ConfigError(f"model.lib.backbone_weights: backbone {type(block).__name__} takes no external weights")
        block.load_external(Path(path), "model.lib.backbone_weights")

    def reseed(self, seed: int) -> None:
        """Reset the mixup random streams (lambda from numpy, permutation from torch)."""
        self._rng = np.random.default_rng(seed)
        self._gen = torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor) -> dict:
        feats = [block(x) for block in self.blocks]               # n x (B, D)
        f_all = torch.cat(feats, dim=1)
        logits_all = self.head_all(f_all)
        logits_without = torch.stack(
            [head(torch.cat(feats[:i] + feats[i + 1:], dim=1)) for i, head in enumerate(self.heads_without)], dim=1)
        g = self.bottleneck(f_all)
        return self.outputs(self.head_G(g), g, logits_all=logits_all, logits_without=logits_without,
                            local_features=torch.stack(feats, dim=1))

    def loss_terms(self, out: dict, labels_a: torch.Tensor, labels_b: torch.Tensor, lam: float) -> dict:
        """The active loss terms: ``ce`` (cross-entropy group), ``gil``, ``lil`` (scalars)."""
        o = self.opts
        T, mi = float(o["temperature"]), str(o["mi_calculator"])
        ce = L.mixed_cross_entropy(out["logits"], labels_a, labels_b, lam)
        terms = {}
        if o["gil_loss"] or o["lil_loss"]:
            ce = ce + L.mixed_cross_entropy(out["logits_all"], labels_a, labels_b, lam)
        if o["lil_loss"]:
            for i in range(self.num_libs):
                ce = ce + L.mixed_cross_entropy(out["logits_without"][:, i], labels_a, labels_b, lam)
        terms["ce"] = ce
        if o["gil_loss"]:
            terms["gil"] = L.global_information_loss(out["logits_all"], out["logits"], T, mi)
        if o["lil_loss"]:
            terms["lil"] = L.local_information_loss(out["logits_all"], out["logits_without"], T, mi)
        return terms

    def combine(self, terms: dict) -> torch.Tensor:
        """Balance the active terms; a single (CE-only) term is returned as is."""
        if len(terms) == 1:
            return terms["ce"]
        losses = [terms[k] for k in self.active_terms]
        if self.opts["balance_loss_method"] == "auto":
            return L.uncertainty_weighted(losses, self.loss_sigma)
        return L.scaled_sum(losses, [self.opts["scales"][("ce", "gil", "lil").index(k)] for k in self.active_terms])

    def training_step(self, batch: dict) -> tuple[torch.Tensor, dict]:
        x, y = batch["image"], batch["label"]
        if self.opts["mixup"] and self.training:
            x, ya, yb, lam = L.mixup(x, y, float(self.opts["alpha"]), self._rng, self._gen)
        else:
            ya, yb, lam = y, y, 1.0
        out = self(x)
        terms = self.loss_terms(out, ya, yb, lam)
        loss = self.combine(terms)
        logs = {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}
        if lam != 1.0:
            logs["mixup_lambda"] = lam
        return loss, logs
