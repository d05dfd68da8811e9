"""The MesoNet authors' published Keras weights (../shared/weights/mesonet, Apache-2.0, NOTICE there):
the port classifies their four test faces as their code does, and agrees layer by layer with an
independent NumPy forward pass written from the Keras layout (NHWC, channels-last flatten, sigmoid
P(real)); plus the key-mapped route for PyTorch state dicts."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch

from common.config import load_config
from training.data import fit_size, to_tensor
from training.detectors import build_detector
from training.detectors.factory import build_from_config
from training.dump import fake_logit



@pytest.fixture
def mesonet(mesonet_root) -> Path:
    return mesonet_root


def _faces(root: Path):
    paths = sorted((root / "test_images").rglob("*.jpg"))
    x = torch.stack([to_tensor(fit_size(cv2.imread(str(p))[:, :, ::-1], 256), (0, 0, 0), (1, 1, 1)) for p in paths])
    return [p.parent.name for p in paths], x


@pytest.mark.parametrize("name,file", [("meso4", "Meso4_DF.h5"), ("meso_inception4", "MesoInception_DF.h5")])
def test_published_weights_classify_the_authors_test_faces(mesonet, name, file):
    det = build_detector(name, pretrained_path=mesonet / "weights" / file).eval()
    kinds, x = _faces(mesonet)
    assert sorted(kinds) == ["df", "df", "real", "real"]
    with torch.no_grad():
        out = det(x)
    p_real = 1 - out["prob"].numpy()
    for kind, p in zip(kinds, p_real):
        assert (p > 0.9) if kind == "real" else (p < 0.1), (kind, p)
    # our fake logit is minus the Keras logit of P(real), and sigmoid(fake logit) our fake probability
    assert np.allclose(torch.sigmoid(fake_logit(out)).numpy(), out["prob"].numpy(), atol=1e-6)
    assert {round(m.eps, 6) for m in det.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1e-3}


# ---------------------------------------------------------------- independent NumPy forward (Keras layout)
def _keras(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        return {name: {w.split("/")[-1].split(":")[0]: np.asarray(f[name][w], np.float64)
                       for w in (x.decode() for x in f[name].attrs["weight_names"])}
                for name in (n.decode() for n in f.attrs["layer_names"]) if len(f[name].attrs["weight_names"])}


def _conv(x, w, dilation=1, relu=True):
    """'same' Conv2D on NHWC ``x`` with Keras kernel (kh, kw, cin, cout)."""
    k = w["kernel"]
    pad = dilation * (k.shape[0] - 1) // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    h, wd = x.shape[1:3]
    out = np.zeros((*x.shape[:3], k.shape[3])) + w["bias"]
    for i in range(k.shape[0]):
        for j in range(k.shape[1]):
            out += xp[:, i * dilation:i * dilation + h, j * dilation:j * dilation + wd, :] @ k[i, j]
    return np.maximum(out, 0) if relu else out


def _bn(x, w):
    return (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + 1e-3) * w["gamma"] + w["beta"]


def _pool(x, p):
    n, h, w, c = x.shape
    return x.reshape(n, h // p, p, w // p, p, c).max(axis=(2, 4))


def _numpy_meso(weights: dict, x: np.ndarray, inception: bool) -> list[np.ndarray]:
    """Block outputs (NHWC), then the Keras flatten, dense 16, and the logit of P(real)."""
    def number(n):
        return int(n.rsplit("_", 1)[1])
    conv = [weights[n] for n in sorted((n for n in weights if n.startswith("conv2d")), key=number)]
    bn = [weights[n] for n in sorted((n for n in weights if n.startswith("batch_norm")), key=number)]
    dense = [weights[n] for n in sorted((n for n in weights if n.startswith("dense")), key=number)]
    outs = []
    if inception:   # InceptionLayer(a, b, c, d): 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 dil 2 | 1x1 -> 3x3 dil 3
        for block in range(2):
            c = conv[7 * block:7 * block + 7]
            y = np.concatenate([_conv(x, c[0]), _conv(_conv(x, c[1]), c[2]), _conv(_conv(x, c[3]), c[4], 2),
                                _conv(_conv(x, c[5]), c[6], 3)], axis=-1)
            x = _pool(_bn(y, bn[block]), 2)
            outs.append(x)
        rest = list(zip(conv[14:], bn[2:], (2, 4)))
    else:
        rest = list(zip(conv, bn, (2, 2, 2, 4)))
    for c, b, p in rest:
        x = _pool(_bn(_conv(x, c), b), p)
        outs.append(x)
    flat = x.reshape(len(x), -1)                             # Keras Flatten: (h, w, c) order
    h = flat @ dense[0]["kernel"] + dense[0]["bias"]
    h = np.where(h > 0, h, 0.1 * h)
    return outs + [h, (h @ dense[1]["kernel"] + dense[1]["bias"])[:, 0]]


@pytest.mark.parametrize("name,file", [("meso4", "Meso4_DF.h5"), ("meso_inception4", "MesoInception_DF.h5"),
                                       ("meso4", "Meso4_F2F.h5"), ("meso_inception4", "MesoInception_F2F.h5")])
def test_port_matches_numpy_forward_layer_by_layer(mesonet, name, file):
    path = mesonet / "weights" / file
    det = build_detector(name, pretrained_path=path).eval().double()   # float64: the port, not rounding
    x = np.random.default_rng(0).random((2, 256, 256, 3))
    ref = _numpy_meso(_keras(path), x, inception=name == "meso_inception4")
    ours = []
    hooks = [b.register_forward_hook(lambda m, i, o: ours.append(o.permute(0, 2, 3, 1).double().numpy()))
             for b in det.backbone.blocks]
    hooks.append(det.head[2].register_forward_hook(lambda m, i, o: ours.append(o.double().numpy())))
    with torch.no_grad():
        out = det(torch.from_numpy(x).permute(0, 3, 1, 2))
    for h in hooks:
        h.remove()
    ours.append(-fake_logit(out).double().numpy())          # minus our fake logit = their logit of P(real)
    assert len(ours) == len(ref) == 6      # 4 blocks, dense 16 + LeakyReLU, logit
    for layer, (a, b) in enumerate(zip(ours, ref)):
        assert a.shape == b.shape, layer
        assert np.abs(a - b).max() < 1e-4, (layer, np.abs(a - b).max())
    assert np.abs(ref[-1]).max() > 0.1                       # not a trivially zero output


def test_keras_file_for_the_other_architecture_is_a_clear_error(mesonet):
    with pytest.raises(ValueError, match="model.pretrained_path.*conv2d layers.*another architecture"):
        build_detector("meso4", pretrained_path=mesonet / "weights" / "MesoInception_DF.h5")
    with pytest.raises(ValueError, match="only meso4 / meso_inception4"):
        build_detector("resnet34", pretrained_path=mesonet / "weights" / "Meso4_DF.h5")


def test_probe_mode_builds_a_linear_head_on_the_published_backbone(mesonet):
    path = mesonet / "weights" / "MesoInception_DF.h5"
    full = build_detector("meso_inception4", pretrained_path=path).eval()
    probe = build_from_config(load_config("configs/demo.yaml", [
        "model.name=meso_inception4", "model.input_size=256", f"model.pretrained_path={path}", "training.mode=probe"])).eval()
    x = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        assert torch.equal(full(x)["feature"], probe(x)["feature"])
    assert len(probe.head) == 1 and probe.head[0].in_features == 1024 and probe.head[0].out_features == 2


# ---------------------------------------------------------------- PyTorch state dicts with a key map
def test_state_dict_with_key_map_loads_a_foreign_layout(tmp_path):
    """A checkpoint in another project's layout (DeepfakeBench-like names: conv1, bn1, ..., fc1, fc2,
    under 'module.' and a 'state_dict' entry) loads through model.key_map, strictly."""
    torch.manual_seed(0)
    src = build_detector("meso4", input_size=64).eval()
    ours = {"backbone.blocks.0.0": "conv1", "backbone.blocks.0.2": "bn1", "backbone.blocks.1.0": "conv2",
            "backbone.blocks.1.2": "bn2", "backbone.blocks.2.0": "conv3", "backbone.blocks.2.2": "bn3",
            "backbone.blocks.3.0": "conv4", "backbone.blocks.3.2": "bn4", "head.1": "fc1", "head.4": "fc2"}
    foreign = {}
    for k, v in src.state_dict().items():
        prefix, leaf = k.rsplit(".", 1)
        foreign[f"module.{ours[prefix]}.{leaf}"] = v.clone()
    foreign["module.extra.counter"] = torch.tensor(1)        # a key the map drops
    path = tmp_path / "foreign.pth"
    torch.save({"state_dict": foreign, "epoch": 9}, path)
    key_map = {f"{theirs}.": f"{mine}." for mine, theirs in ours.items()} | {"extra.": None}
    sets = ["model.name=meso4", "model.input_size=64", f"model.pretrained_path={path}"]
    loaded = build_from_config(load_config("configs/demo.yaml", [*sets, f"model.key_map={json.dumps(key_map)}"])).eval()
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(src(x)["logits"], loaded(x)["logits"])
    partial = {k: v for k, v in key_map.items() if k != "fc2."}
    with pytest.raises(ValueError, match="model.key_map.*missing keys 2 .*head.4"):
        build_from_config(load_config("configs/demo.yaml", [*sets, f"model.key_map={json.dumps(partial)}"]))
