"""Weights and construction: strict save/load round trips, clear errors for files of another
architecture, backbone-only files in torchvision/ImageNet layouts, build_from_config, lazy registry."""
from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import torch
import torchvision

from common.config import ConfigError, load_config
from training.detectors import REGISTRY, build_detector
from training.detectors.factory import build_from_config

KEY = "model.pretrained_path"


def demo_cfg(*overrides: str):
    return load_config("configs/demo.yaml", list(overrides))


def _stir_batchnorm(det, size):
    """One train-mode pass so BN running statistics differ from their defaults."""
    det.train()
    with torch.no_grad():
        det(torch.randn(2, 3, size, size))
    det.eval()


@pytest.mark.parametrize("name,options,size", [
    ("meso4", {"input_size": 64}, 64), ("meso_inception4", {"input_size": 64}, 64),
    ("xception", {}, 64), ("efficientnet", {"variant": "b0"}, 64), ("resnet34", {}, 64),
])
def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, name, options, size):
    torch.manual_seed(0)
    det = build_detector(name, **options)
    _stir_batchnorm(det, size)
    path = tmp_path / f"{name}.pt"
    torch.save({"state_dict": det.state_dict(), "epoch": 3}, path)     # stage-03 style checkpoint
    torch.manual_seed(1)                                              # a different random init first
    sets = [f"model.name={name}", f"model.pretrained_path={path}"] + [f"model.{k}={v}" for k, v in options.items()]
    loaded = build_from_config(demo_cfg(*sets)).eval()
    x = torch.randn(3, 3, size, size)
    with torch.no_grad():
        a, b = det(x), loaded(x)
    for key in ("logits", "prob", "feature"):
        assert torch.equal(a[key], b[key]), key


def test_file_of_another_architecture_names_file_and_key(tmp_path):
    meso = tmp_path / "meso4.pt"
    torch.save(build_detector("meso4").state_dict(), meso)
    with pytest.raises(ValueError) as err:
        build_from_config(demo_cfg("model.name=meso_inception4", f"model.pretrained_path={meso}"))
    msg = str(err.value)
    assert KEY in msg and str(meso) in msg and "missing keys" in msg and "another architecture" in msg

    with pytest.raises(ValueError) as err:
        build_from_config(demo_cfg("model.name=resnet34", f"model.pretrained_path={meso}"))
    assert KEY in str(err.value) and str(meso) in str(err.value) and "detector 'resnet34'" in str(err.value)

    # an ImageNet-layout ResNet-18 file (no key in common with the detector: tried as a
    # backbone-only file) for an EfficientNet, and for a ResNet-34: still clear errors
    r18 = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), r18)
    with pytest.raises(ValueError) as err:
        build_detector("efficientnet", variant="b0", pretrained_path=r18)
    assert KEY in str(err.value) and str(r18) in str(err.value) and "EfficientNet-B0 backbone" in str(err.value)
    with pytest.raises(ValueError, match="ResNet-34 backbone: missing keys [1-9]"):
        build_detector("resnet34", pretrained_path=r18)


def test_missing_or_unreadable_weight_file_names_key(tmp_path):
    with pytest.raises(FileNotFoundError, match=KEY):
        build_detector("meso4", pretrained_path=tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a weight file")
    with pytest.raises(ValueError, match=f"{KEY}: '.*junk.pt' could not be read as a PyTorch weight file"):
        build_detector("meso4", pretrained_path=junk)


def test_random_init_is_logged(caplog):
    with caplog.at_level(logging.WARNING):
        build_detector("meso4")
    assert any("random initialisation" in r.getMessage() and KEY in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name,options,factory,drop", [
    ("resnet34", {"depth": 18}, lambda: torchvision.models.resnet18(weights=None), "fc."),
    ("efficientnet", {"variant": "b0"}, lambda: torchvision.models.efficientnet_b0(weights=None), "classifier."),
])
def test_torchvision_imagenet_file_loads_into_backbone(tmp_path, name, options, factory, drop):
    torch.manual_seed(5)
    reference = factory().state_dict()          # stands in for torchvision's ImageNet file (same layout)
    path = tmp_path / "imagenet.pth"
    torch.save(reference, path)
    det = build_detector(name, pretrained_path=path, **options)
    backbone = det.backbone.state_dict()
    assert set(backbone) == {k for k in reference if not k.startswith(drop)}
    for k, v in backbone.items():
        assert torch.equal(v, reference[k]), k


def test_xception_imagenet_port_layout_loads(tmp_path):
    """The PyTorch port's ImageNet Xception: same names, 2-D pointwise weights, a 1000-class fc."""
    torch.manual_seed(3)
    source = build_detector("xception").backbone.state_dict()
    port = {k: (v[:, :, 0, 0] if k.endswith("pointwise.weight") else v) for k, v in source.items()}
    port["fc.weight"], port["fc.bias"] = torch.randn(1000, 2048), torch.randn(1000)
    path = tmp_path / "xception-imagenet.pth"
    torch.save(port, path)
    torch.manual_seed(4)
    det = build_detector("xception", pretrained_path=path)
    for k, v in det.backbone.state_dict().items():
        assert torch.equal(v, source[k]), k


def test_build_from_config(mesonet_root):
    det = build_from_config(demo_cfg())
    assert det.name == "meso4" and det.input_size == 128 and det.feature_dim == 16 * 4 * 4   # 16 maps of 128 / 32 px
    det = build_from_config(demo_cfg("model.name=efficientnet", "model.variant=b0", "model.input_size=224"))
    assert det.name == "efficientnet_b0" and det.input_size == 224 and det.feature_dim == 1280
    with pytest.raises(ConfigError, match="model.depth"):
        build_from_config(demo_cfg("model.depth=18"))            # not an option of meso4
    with pytest.raises(ConfigError, match="model.name"):
        build_from_config(demo_cfg("model.name=nonexistent"))
    # the UADFV default: the published MesoInception_DF with a linear probe head (issue 18)
    probe = build_from_config(load_config("configs/uadfv.yaml", [
        f"model.pretrained_path={mesonet_root / 'weights' / 'MesoInception_DF.h5'}"]))
    assert probe.__class__.__name__ == "MesoInception4" and len(probe.head) == 1 and probe.feature_dim == 1024
    paper = ["model.name=srm", "model.pretrained_path=null", "training.mode=train"]
    assert build_from_config(load_config("configs/uadfv.yaml", paper)).__class__.__name__ == "SRMDetector"


def test_registry_is_lazy():
    """Building meso4 must not import torchvision or the other detectors' modules."""
    code = ("import sys; from training.detectors import build_detector; build_detector('meso4'); "
            "bad = [m for m in ('torchvision', 'training.detectors.srm', 'training.detectors.xception', "
            "'training.detectors.efficientnet') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert {"srm", "xception", "efficientnet_b4", "meso4", "meso_inception4", "resnet34"} <= set(REGISTRY)
