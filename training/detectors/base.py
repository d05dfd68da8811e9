"""The one interface every detector implements (DeepfakeBench-style).

``forward(x)`` takes a float image batch (B, 3, H, W), already normalised with the detector's
``mean``/``std`` (video detectors take (B, T, 3, H, W)), and returns a dict with

- ``logits``: (B, 2), class 1 = fake;
- ``prob``: (B,), the fake probability (softmax of ``logits`` unless the detector says otherwise);
- ``feature``: (B, ``feature_dim``), the feature dumped by stage 04 and scored by stage 08;
- optionally ``feature_map``: (B, C, h, w), when ``return_feature_map`` is set (stage 04's
  full-map option; the paper flattened the 2048x8x8 fused map).

``training_step(batch)`` returns ``(loss, logs)``; the default is cross-entropy on ``logits``.
Detectors with their own objectives (AM-Softmax, LIB's information losses and mixup, SBI with
facial-embedding guidance) override it, so the trainer stays the same for all of them. A batch is a
dict with at least ``image`` (B, 3, H, W) and ``label`` (B,) long; data modes may add keys.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.config import ConfigError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Detector(nn.Module):
    name: str = "detector"
    input_size: int = 256                 # square input side in pixels
    feature_dim: int = 0                  # size of out["feature"]
    mean: tuple = IMAGENET_MEAN           # input normalisation the detector expects
    std: tuple = IMAGENET_STD
    is_video: bool = False                # True: input (B, T, 3, H, W)

    def __init__(self) -> None:
        super().__init__()
        self.return_feature_map = False

    @staticmethod
    def outputs(logits: torch.Tensor, feature: torch.Tensor, **more) -> dict:
        return {"logits": logits, "prob": F.softmax(logits.float(), dim=1)[:, 1], "feature": feature, **more}

    def training_step(self, batch: dict) -> tuple[torch.Tensor, dict]:
        out = self(batch["image"])
        loss = F.cross_entropy(out["logits"], batch["label"])
        return loss, {"loss": float(loss.detach())}


def attach_probe_head(detector: Detector) -> Detector:
    """Replace the detector's head by one linear layer on its ``feature`` (``training.mode: probe``:
    stage 03 fits it as a logistic regression; every later stage builds the same architecture)."""
    if not isinstance(getattr(detector, "head", None), nn.Module) or not getattr(detector, "feature_dim", 0):
        raise ConfigError(f"training.mode=probe: detector '{detector.name}' has no head on a pooled feature to "
                          f"replace; use a frame detector such as meso_inception4")
    detector.head = nn.Sequential(nn.Linear(int(detector.feature_dim), 2))
    return detector


def read_state(path: Path, config_key: str) -> dict:
    """State dict stored in ``path`` (bare, or under ``state_dict``/``model``)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:     # not a torch file, truncated, or pickled objects beyond tensors
        raise ValueError(f"{config_key}: '{path}' could not be read as a PyTorch weight file "
                         f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from err
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{config_key}: '{path}' holds a {type(state).__name__}, not a state dict")
    # checkpoints saved from nn.DataParallel prefix every key with 'module.'
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_state_strict(module: nn.Module, state: dict, path: Path, what: str, config_key: str) -> None:
    """Strict load of an already read (and possibly renamed) ``state``; mismatches are a clear error."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong_shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong_shape:
        def show(keys):
            return f"{len(keys)} ({', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''})"
        raise ValueError(f"{config_key}: '{path}' does not fit {what}: missing keys {show(missing)}, "
                         f"unexpected keys {show(unexpected)}, wrong shapes {show(wrong_shape)}. "
                         f"Is it a weight file for another architecture?")
    module.load_state_dict(state, strict=True)
    log.info("loaded %s weights from %s (%d tensors, strict)", what, path, len(state))


def load_weights(module: nn.Module, path: str | Path, what: str, config_key: str) -> None:
    """Load a local weight file into ``module`` strictly; report missing/unexpected keys clearly.

    ``path`` may hold a bare state dict or a checkpoint dict with a ``state_dict``/``model`` entry.
    A file for another architecture is an error naming the file, the config key and the mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{config_key}: weight file '{path}' does not exist; fix the path in the config "
                                f"or set it to null to start from random initialisation")
    load_state_strict(module, read_state(path, config_key), path, what, config_key)


def load_mapped_state(module: nn.Module, path: str | Path, key_map: dict, config_key: str = "model.key_map") -> None:
    """Load the PyTorch file ``path`` (another project's layout) with its keys renamed by ``key_map``:
    ``{their prefix: our prefix}`` (the longest matching prefix wins; ``null`` drops the key), then
    strictly, like :func:`load_weights`. Keys no prefix matches keep their names."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model.pretrained_path: weight file '{path}' does not exist")
    if not isinstance(key_map, dict) or not all(isinstance(k, str) for k in key_map):
        raise ConfigError(f"{config_key}: expected a mapping {{their key prefix: our prefix or null}}, got {key_map!r}")
    prefixes = sorted(key_map, key=len, reverse=True)
    renamed = {}
    for key, value in read_state(path, "model.pretrained_path").items():
        hit = next((p for p in prefixes if key.startswith(p)), None)
        if hit is None:
            renamed[key] = value
        elif key_map[hit] is not None:
            renamed[str(key_map[hit]) + key[len(hit):]] = value
    load_state_strict(module, renamed, path, f"detector '{getattr(module, 'name', '?')}' through {config_key}",
                      config_key)


def merge_options(defaults: dict, config_prefix: str, *sources: dict | None) -> dict:
    """``defaults`` updated by each mapping in ``sources`` in turn (a detector's ``model.<name>``
    sub-section, then keyword overrides); a key not in ``defaults`` is a ConfigError naming it."""
    opts = dict(defaults)
    for source in sources:
        unknown = sorted(set(source or {}) - set(defaults))
        if unknown:
            raise ConfigError(f"config key(s) {', '.join(config_prefix + k for k in unknown)} unknown; "
                              f"options: {', '.join(defaults)}")
        opts.update(source or {})
    return opts


def warn_random_init(what: str, config_key: str) -> None:
    log.warning("%s starts from random initialisation: no local weight file given (config key '%s'); "
                "nothing is downloaded", what, config_key)
