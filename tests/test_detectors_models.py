"""Every detector: forward + backward on a batch of 2 at its input size, the interface's shapes and
conventions, and parameter counts against the published architectures."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from training.detectors import build_detector
from training.detectors.backbones import build_backbone

# (registry name, options, feature_dim, feature-map shape at 256 px); srm: test_detectors_srm.py
CASES = [
    ("meso4", {}, 1024, (16, 8, 8)),
    ("meso_inception4", {}, 1024, (16, 8, 8)),
    ("xception", {}, 2048, (2048, 8, 8)),
    ("efficientnet_b4", {}, 1792, (1792, 8, 8)),
    ("resnet34", {}, 512, (512, 8, 8)),
]   # efficientnet with variant b0 is the same class as b4: covered in test_detectors_weights.py


def check_interface(det, out: dict, batch: int, feature_dim: int) -> None:
    assert out["logits"].shape == (batch, 2)
    assert out["prob"].shape == (batch,)
    assert out["feature"].shape == (batch, feature_dim) and det.feature_dim == feature_dim
    torch.testing.assert_close(out["prob"], F.softmax(out["logits"], dim=1)[:, 1])
    assert torch.isfinite(out["logits"]).all() and torch.isfinite(out["feature"]).all()


@pytest.mark.parametrize("name,options,feature_dim,map_shape", CASES,
                         ids=[c[0] + str(c[1].get("variant", "")) for c in CASES])
def test_forward_backward(name, options, feature_dim, map_shape):
    """One training-mode pass at the declared input size (batch 2): shapes, prob, gradients."""
    torch.manual_seed(0)
    det = build_detector(name, **options)
    assert det.input_size == 256 and len(det.mean) == 3 and len(det.std) == 3
    x = torch.randn(2, 3, det.input_size, det.input_size)
    det.train()
    det.return_feature_map = True
    out = det(x)
    check_interface(det, out, 2, feature_dim)
    assert out["feature_map"].shape == (2, *map_shape)
    loss = F.cross_entropy(out["logits"], torch.tensor([0, 1]))
    loss.backward()
    no_grad = [n for n, p in det.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters outside the graph: {no_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in det.parameters())
    assert any(float(p.grad.abs().sum()) > 0 for p in det.parameters())


def test_default_training_step_is_cross_entropy():
    torch.manual_seed(0)
    det = build_detector("meso4").eval()           # eval: no dropout, so both passes agree
    x, y = torch.randn(3, 3, 256, 256), torch.tensor([0, 1, 1])
    loss, logs = det.training_step({"image": x, "label": y})
    with torch.no_grad():
        expected = F.cross_entropy(det(x)["logits"], y)
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-6)
    assert logs["loss"] == pytest.approx(float(expected), rel=1e-6)


# Published parameter counts: MesoNet paper (Meso-4 27,977, MesoInception-4 28,615, one sigmoid
# output: ours has two logits, +17); torchvision docs (ResNet-34 21,797,672, EfficientNet-B4
# 19,341,616, B0 5,288,548, all with a 1000-class fc); ImageNet Xception (PyTorch port) 22,855,952.
@pytest.mark.parametrize("name,options,expected", [
    ("meso4", {}, 27_977 + 17),
    ("meso_inception4", {}, 28_615 + 17),
    ("resnet34", {}, 21_797_672 - 513_000 + 512 * 2 + 2),
    ("efficientnet_b4", {}, 19_341_616 - 1_793_000 + 1792 * 2 + 2),
    ("efficientnet", {"variant": "b0"}, 5_288_548 - 1_281_000 + 1280 * 2 + 2),
    ("xception", {}, 22_855_952 - 2_049_000 + 2048 * 2 + 2),
])
def test_parameter_counts_match_published_architectures(name, options, expected):
    det = build_detector(name, **options)
    assert sum(p.numel() for p in det.parameters()) == expected


def test_meso_map_is_16x8x8_at_256_and_input_size_is_checked():
    det = build_detector("meso4")
    det.return_feature_map = True
    with torch.no_grad():
        out = det.eval()(torch.rand(1, 3, 256, 256))
    assert out["feature_map"].shape == (1, 16, 8, 8)
    torch.testing.assert_close(out["feature"], out["feature_map"].flatten(1))
    assert build_detector("meso4", input_size=128).feature_dim == 16 * 4 * 4
    with pytest.raises(ValueError, match="model.input_size"):
        build_detector("meso4", input_size=100)


@pytest.mark.parametrize("name,dim,size", [("meso4", 1024, 256), ("meso_inception4", 256, 128),
                                           ("efficientnet_b0", 1280, 64), ("resnet18", 512, 64)])
def test_backbones_for_reuse(name, dim, size):
    """build_backbone gives (module, feature_dim); forward -> (B, dim) and forward_map a 4-D map."""
    options = {"input_size": size} if name.startswith("meso") else {}
    backbone, feature_dim = build_backbone(name, **options)
    assert feature_dim == dim == backbone.feature_dim
    x = torch.randn(3, 3, size, size)
    with torch.no_grad():
        backbone.eval()
        assert backbone(x).shape == (3, dim)
        assert backbone.forward_map(x).ndim == 4


def test_bad_variant_names_the_config_key():
    with pytest.raises(ValueError, match="model.variant"):
        build_detector("efficientnet", variant="b9")
    with pytest.raises(KeyError, match="model.name"):
        build_detector("no_such_detector")


def test_real_uadfv_crops_through_meso4(uadfv_root):
    """Real 256x256 crops, normalised as the detector declares, give finite outputs in eval mode."""
    import cv2
    import numpy as np
    paths = sorted((uadfv_root / "real" / "frames").glob("*/*.png"))[:4]
    assert len(paths) == 4
    imgs = np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]).astype(np.float32) / 255
    det = build_detector("meso4").eval()
    mean, std = torch.tensor(det.mean)[:, None, None], torch.tensor(det.std)[:, None, None]
    x = (torch.from_numpy(imgs).permute(0, 3, 1, 2) - mean) / std
    assert x.shape == (4, 3, det.input_size, det.input_size)
    with torch.no_grad():
        out = det(x)
    check_interface(det, out, 4, 1024)
    # different faces give different features
    assert float((out["feature"][0] - out["feature"][3]).abs().max()) > 0
