"""The paper's SRM detector: fixed truncated SRM residuals (checked against scipy on real UADFV
crops), AM-Softmax against a hand computation, and one forward + backward at 256 px."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import correlate

from training.detectors import build_detector
from training.detectors.srm import SRM_FILTERS, SRMConv, am_softmax_loss

KV = np.array([[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2],
               [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]]) / 12
KB = np.pad(np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]]), 1) / 4
K2 = np.pad(np.array([[1, -2, 1]]), ((2, 2), (1, 1))) / 2


def test_srm_kernels_are_the_three_fixed_filters():
    np.testing.assert_allclose(SRM_FILTERS.numpy(), np.stack([KV, KB, K2]), atol=1e-7)
    for k in (KV, KB, K2):
        assert abs(k.sum()) < 1e-12                  # high-pass: a flat image has zero residual
    conv = SRMConv(3)
    assert conv.kernel.shape == (3, 3, 5, 5) and not list(conv.parameters())   # a buffer, never trained
    assert "kernel" in conv.state_dict()
    for c in range(3):                               # the same filter on R, G and B
        np.testing.assert_allclose(conv.kernel[:, c].numpy(), np.stack([KV, KB, K2]), atol=1e-7)


def _real_crops(uadfv_root, n=2):
    paths = sorted((uadfv_root / "fake" / "frames").glob("*/*.png"))[:n]
    assert len(paths) == n
    rgb = np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]).astype(np.float64)
    return rgb.transpose(0, 3, 1, 2)                 # (n, 3, 256, 256), pixel values 0..255


def test_srm_residuals_match_scipy_and_are_truncated_at_3(uadfv_root):
    rgb = _real_crops(uadfv_root)
    conv = SRMConv(3)
    for scale, binds in ((1 / 127.5, False), (1.0, True)):   # [-1, 1] input (the detector's) and 0..255
        x = rgb * scale - (1.0 if scale != 1.0 else 0.0)
        got = conv(torch.from_numpy(x).float()).double().numpy()
        for i in range(len(x)):
            for f, k in enumerate((KV, KB, K2)):
                ref = sum(correlate(x[i, c], k, mode="constant", cval=0.0) for c in range(3))
                np.testing.assert_allclose(got[i, f], np.clip(ref, -3, 3), atol=1e-4 if binds is False else 1e-3)
                if binds:                            # on raw pixels the +-3 truncation is active
                    assert np.abs(ref).max() > 3 and np.abs(got[i, f]).max() == pytest.approx(3.0)
    per_channel = SRMConv(2, per_channel=True)
    y = per_channel(torch.from_numpy(rgb[:1, :2] / 127.5 - 1).float()).double().numpy()
    assert y.shape == (1, 6, 256, 256)
    ref = np.clip(correlate(rgb[0, 1] / 127.5 - 1, KV, mode="constant"), -3, 3)
    np.testing.assert_allclose(y[0, 3], ref, atol=1e-4)     # output 3 = filter 0 on channel 1


def test_am_softmax_matches_hand_computation():
    cos = torch.tensor([[0.2, 0.5], [0.9, -0.1], [0.3, 0.3]])
    y = torch.tensor([1, 0, 0])
    m, s = 0.45, 30.0
    expected = []
    for (c0, c1), label in zip(cos.tolist(), y.tolist()):
        true, other = (c1, c0) if label == 1 else (c0, c1)
        num = math.exp(s * (true - m))
        expected.append(-math.log(num / (num + math.exp(s * other))))
    got = am_softmax_loss(cos, y, m, s)
    assert float(got) == pytest.approx(sum(expected) / 3, rel=1e-6)
    # the margin only ever adds loss; with m = 0 it is plain softmax cross-entropy on s * cos
    assert float(am_softmax_loss(cos, y, 0.0, s)) == pytest.approx(float(F.cross_entropy(s * cos, y)), rel=1e-6)
    assert float(got) > float(am_softmax_loss(cos, y, 0.0, s))


@pytest.fixture(scope="module")
def srm_detector():
    torch.manual_seed(0)
    return build_detector("srm")            # 53 M parameters: built once for this file


def test_srm_detector_forward_backward_at_256(srm_detector):
    det = srm_detector
    assert (det.input_size, det.feature_dim, det.margin, det.scale) == (256, 2048, 0.45, 30.0)
    det.train()
    det.return_feature_map = True
    x = torch.randn(2, 3, 256, 256)
    y = torch.tensor([0, 1])
    out = det(x)
    assert out["logits"].shape == (2, 2) and out["prob"].shape == (2,) and out["feature"].shape == (2, 2048)
    assert out["feature_map"].shape == (2, 2048, 8, 8)
    torch.testing.assert_close(out["feature"], out["feature_map"].mean(dim=(2, 3)))
    torch.testing.assert_close(out["prob"], F.softmax(out["logits"], dim=1)[:, 1])
    # logits are s * cosine (no margin at test time); cosines of unit vectors lie in [-1, 1]
    torch.testing.assert_close(out["logits"], 30.0 * out["cosine"])
    assert float(out["cosine"].detach().abs().max()) <= 1 + 1e-6
    loss = am_softmax_loss(out["cosine"], y)
    loss.backward()
    no_grad = [n for n, p in det.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters outside the graph: {no_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in det.parameters())
    # both streams learn: the SRM stream's first conv and the RGB stream's get gradients
    assert float(det.srm.conv1.weight.grad.abs().sum()) > 0 and float(det.rgb.conv1.weight.grad.abs().sum()) > 0


def test_srm_training_step_uses_am_softmax_small_input(srm_detector):
    """training_step = AM-Softmax on the same forward (eval mode: deterministic); 64 px to stay fast."""
    torch.manual_seed(1)
    det = srm_detector.eval()
    det.zero_grad(set_to_none=True)
    x, y = torch.randn(2, 3, 64, 64), torch.tensor([1, 0])
    loss, logs = det.training_step({"image": x, "label": y})
    with torch.no_grad():
        expected = am_softmax_loss(det(x)["cosine"], y, 0.45, 30.0)
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    assert logs["loss"] == pytest.approx(float(expected), rel=1e-5)


def test_srm_checkpoint_round_trip(srm_detector, tmp_path):
    """Strict save/load of the whole two-stream model (with the SRM buffers) gives identical outputs."""
    det = srm_detector.eval()
    path = tmp_path / "srm.pt"
    torch.save({"model": det.state_dict()}, path)
    torch.manual_seed(7)
    loaded = build_detector("srm", pretrained_path=path).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = det(x), loaded(x)
    assert torch.equal(a["logits"], b["logits"]) and torch.equal(a["feature"], b["feature"])


def test_imagenet_xception_file_initialises_both_streams(srm_detector, tmp_path):
    """A backbone-only ImageNet Xception file (port layout, 1000-class fc) goes into both streams
    through the same entry point as a checkpoint (load_pretrained picks the layout by its keys)."""
    from training.detectors.backbones import load_pretrained
    from training.detectors.xception import Xception
    torch.manual_seed(11)
    source = Xception().state_dict()
    port = {k: (v[:, :, 0, 0] if k.endswith("pointwise.weight") else v) for k, v in source.items()}
    port["fc.weight"], port["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    path = tmp_path / "xception-imagenet.pth"
    torch.save(port, path)
    head_before = srm_detector.head.weight.detach().clone()
    load_pretrained(srm_detector, path)
    for stream in (srm_detector.rgb, srm_detector.srm):
        for k, v in stream.state_dict().items():
            assert torch.equal(v, source[k]), k
    assert torch.equal(srm_detector.head.weight, head_before)       # the head is not touched
