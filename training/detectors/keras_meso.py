"""The MesoNet authors' published Keras weights (``Meso4_DF.h5`` ...) loaded into ``meso4`` /
``meso_inception4``.

The files (Afchar et al. 2018, github.com/DariusAf/MesoNet, Apache-2.0: keep their NOTICE with any
use) are Keras 2 weight files read with h5py: one group per layer, the weights under the group's
``weight_names``. Keras names layers in creation order (``conv2d_1``, ``conv2d_2``, ...), which is
the order our modules are created in, so layers of one kind are matched by their number. The port:

- Conv2D kernels (kh, kw, cin, cout) -> (cout, cin, kh, kw) (both frameworks cross-correlate);
- BatchNormalization: gamma/beta/moving mean/variance, and Keras' epsilon 1e-3 set on our modules;
- the first Dense layer reads Keras' channels-last flatten (h, w, c); ours flattens (c, h, w), so its
  input columns are permuted;
- the last Dense unit is the logit of P(real) (their sigmoid output); our two-logit head gets
  (0, -z): its fake logit ``z_fake - z_real`` is -z and its softmax fake probability 1 - P(real).

With ``training.mode: probe`` the factory then replaces the head by one linear layer on the feature,
fitted by stage 03 (training/probe.py).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

log = logging.getLogger(__name__)

KERAS_BN_EPS = 1e-3


def read_keras_layers(path: Path, config_key: str) -> dict[str, list[tuple[str, dict]]]:
    """``{"conv2d": [(name, {"kernel": array, "bias": array}), ...], "batch_normalization": ...,
    "dense": ...}``, each list in creation order (the number in the layer name)."""
    import h5py
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{config_key}: '{path}' could not be read as a Keras HDF5 weight file ({err})") from err
    with f:
        root = f["model_weights"] if "model_weights" in f else f     # a full model file or weights only
        if "layer_names" not in root.attrs:
            raise ValueError(f"{config_key}: '{path}' is an HDF5 file without Keras 'layer_names'; "
                             f"expected a Keras weight file such as Meso4_DF.h5")
        kinds: dict[str, list[tuple[int, str, dict]]] = {}
        for raw in root.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            group = root[name]
            weights = {}
            for wraw in group.attrs.get("weight_names", []):
                wname = wraw.decode() if isinstance(wraw, bytes) else str(wraw)
                weights[wname.split("/")[-1].split(":")[0]] = np.asarray(group[wname], dtype=np.float32)
            if not weights:
                continue
            m = re.fullmatch(r"(.*?)(?:_(\d+))?", name)
            kinds.setdefault(m.group(1), []).append((int(m.group(2) or 0), name, weights))
    return {k: [(n, w) for _, n, w in sorted(v)] for k, v in kinds.items()}


def _copy(param: torch.Tensor, value: np.ndarray, where: str) -> None:
    if tuple(param.shape) != tuple(value.shape):
        raise ValueError(f"{where}: Keras shape {tuple(value.shape)} does not fit {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def _expect(layers: dict, kind: str, n: int, path: Path, config_key: str) -> list:
    got = layers.get(kind, [])
    if len(got) != n:
        raise ValueError(f"{config_key}: '{path}' has {len(got)} {kind} layers, the detector {n}: a weight "
                         f"file of another architecture (Meso4_*.h5 for meso4, MesoInception_*.h5 for "
                         f"meso_inception4)?")
    return got


def load_keras_meso(detector: nn.Module, path: Path, config_key: str) -> None:
    """Load the Keras file ``path`` into a MesoNet detector (see the module docstring)."""
    layers = read_keras_layers(Path(path), config_key)
    convs = [m for m in detector.backbone.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in detector.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    where = f"{config_key}: '{path}'"
    for module, (name, w) in zip(convs, _expect(layers, "conv2d", len(convs), path, config_key)):
        _copy(module.weight, w["kernel"].transpose(3, 2, 0, 1), f"{where} {name}")
        _copy(module.bias, w["bias"], f"{where} {name}")
    for module, (name, w) in zip(bns, _expect(layers, "batch_normalization", len(bns), path, config_key)):
        for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                             ("running_var", "moving_variance")):
            _copy(getattr(module, ours), w[theirs], f"{where} {name}")
        module.eps = KERAS_BN_EPS
    dense = [m for m in detector.head.modules() if isinstance(m, nn.Linear)]
    _load_dense(detector, dense, _expect(layers, "dense", len(dense), path, config_key), where)
    log.info("loaded the Keras MesoNet weights of %s into detector '%s' (BatchNorm eps %g)",
             path, detector.name, KERAS_BN_EPS)


def _load_dense(detector, dense: list[nn.Linear], keras: list, where: str) -> None:
    (n1, w1), (n2, w2) = keras
    side = detector.input_size // 32
    k1 = w1["kernel"]                                    # (h*w*c, 16), rows in Keras' (h, w, c) order
    if k1.shape[0] != side * side * 16:
        raise ValueError(f"{where} {n1}: {k1.shape[0]} inputs, the detector's feature has {side * side * 16}; "
                         f"the published MesoNet weights need model.input_size 256")
    k1 = k1.reshape(side, side, 16, -1).transpose(3, 2, 0, 1).reshape(k1.shape[1], -1)   # (16, c*h*w)
    _copy(dense[0].weight, k1, f"{where} {n1}")
    _copy(dense[0].bias, w1["bias"], f"{where} {n1}")
    k2, b2 = w2["kernel"], w2["bias"]                    # (16, 1): the logit of P(real)
    if k2.shape[1] != 1:
        raise ValueError(f"{where} {n2}: expected one output unit (P(real)), got {k2.shape[1]}")
    _copy(dense[1].weight, np.stack([np.zeros(len(k2), np.float32), -k2[:, 0]]), f"{where} {n2}")
    _copy(dense[1].bias, np.array([0.0, -b2[0]], np.float32), f"{where} {n2}")
