"""``build_from_config(cfg)``: the detector named by the config's ``model`` section.

``model.name`` picks the detector from the registry, ``model.pretrained_path`` (null or a local
file; relative paths are taken from the repository root) is passed on, and every other key of the
section is a keyword option of that detector (for example ``model.variant: b0`` for
``efficientnet``, ``model.input_size: 256``). A mapping-valued key is a detector's own sub-section
(``model.lib``, ``model.window``, ``model.ssaaformer``): passed to the detector that takes it,
skipped by the others. Unknown options are a ConfigError naming the key. ``model.key_map``
(``{their key prefix: our prefix, or null to drop}``) loads a PyTorch checkpoint of another project's
layout (e.g. a DeepfakeBench checkpoint) into the detector, strictly. With ``training.mode: probe``
the detector's head is one linear layer on its feature (fitted by stage 03, training/probe.py).
"""
from __future__ import annotations

import inspect
from pathlib import Path

from common.config import REPO_ROOT, Config, ConfigError

from . import detector_class
from .base import Detector, attach_probe_head, load_mapped_state


def build_from_config(cfg: Config, **overrides) -> Detector:
    """Build the detector of ``cfg``'s ``model`` section; ``overrides`` replace section keys."""
    section = {**cfg.section("model"), **overrides}
    name = section.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"{cfg.source}: config key 'model.name' must name a detector, got {name!r}")
    try:
        cls = detector_class(name)
    except KeyError as err:
        raise ConfigError(f"{cfg.source}: {err.args[0]}") from None
    if section.get("pretrained_path"):
        p = Path(str(section["pretrained_path"])).expanduser()
        section["pretrained_path"] = p if p.is_absolute() else REPO_ROOT / p
    key_map = section.pop("key_map", None)
    section.pop("provenance", None)
    if key_map:     # another project's checkpoint: build without it, then load it with renamed keys
        path = section.pop("pretrained_path", None)
        if not path:
            raise ConfigError(f"{cfg.source}: model.key_map is set but model.pretrained_path names no file")
        detector = _build(cfg, name, cls, section)
        load_mapped_state(detector, path, key_map)
    else:
        detector = _build(cfg, name, cls, section)
    # the linear probe (stage 03, training.mode: probe): the pretrained head gives way to a linear one
    return attach_probe_head(detector) if cfg.get("training.mode") == "probe" else detector


def _build(cfg: Config, name: str, cls: type[Detector], section: dict) -> Detector:
    params = inspect.signature(cls.__init__).parameters
    # A mapping under `model` is one detector's own options (model.lib, model.window, ...): it goes
    # to the detector whose constructor takes that name, and is ignored by every other detector.
    section = {k: v for k, v in section.items() if not isinstance(v, dict) or k in params}
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(section) - set(params))
        if unknown:
            raise ConfigError(f"{cfg.source}: config key(s) {', '.join('model.' + k for k in unknown)} are not "
                              f"options of detector '{name}'; its options: "
                              f"{', '.join(k for k in params if k != 'self')}")
    return cls(**section)
