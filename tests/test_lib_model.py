"""LIB detector and losses: head shapes, every loss term against a hand computation, mixup, options."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import wasserstein_distance

from common.config import Config, ConfigError
from training import lib_losses as L
from training.detectors import build_detector
from training.detectors.factory import build_from_config
from training.detectors.lib import LIBDetector

# small tensors: one thread is faster than two fighting over shared cores
pytestmark = pytest.mark.usefixtures("one_torch_thread")


SMALL = dict(model="small_cnn", num_LIBs=3, bottleneck=[32, 16], seed=7)


def tiny(**over) -> LIBDetector:
    torch.manual_seed(0)
    return LIBDetector(input_size=32, lib={**SMALL, **over})


def softmax_np(z, T):
    e = np.exp(np.asarray(z, np.float64) / T)
    return e / e.sum(axis=1, keepdims=True)


def kl_np(p, q):
    return (p * np.log(p / q)).sum(axis=1)


# ------------------------------------------------------------------------------------ shapes
def test_every_head_has_the_documented_shape():
    m = tiny().eval()
    out = m(torch.randn(5, 3, 32, 32))
    assert out["logits"].shape == (5, 2) and out["prob"].shape == (5,)
    assert out["feature"].shape == (5, 16) and m.feature_dim == 16          # G = last bottleneck width
    assert out["logits_all"].shape == (5, 2)
    assert out["logits_without"].shape == (5, 3, 2)
    assert out["local_features"].shape == (5, 3, 64)
    assert torch.allclose(out["prob"], F.softmax(out["logits"], 1)[:, 1])
    # leave-one-out head i really ignores block i: changing block i's feature leaves head i unchanged
    feats = [torch.randn(5, 64) for _ in range(3)]
    z0 = m.heads_without[1](torch.cat([feats[0], feats[2]], 1))
    feats[1] = feats[1] + 100.0
    assert torch.equal(z0, m.heads_without[1](torch.cat([feats[0], feats[2]], 1)))
    assert len(m.blocks) == 3 and m.blocks[0] is not m.blocks[1]            # separate backbones


def test_default_is_four_resnet34_blocks_with_1000_500_bottleneck():
    m = build_detector("lib", input_size=32).eval()        # registry name, original defaults
    assert m.num_libs == 4 and m.local_dim == 512 and m.feature_dim == 500
    assert type(m.blocks[0]).__name__.lower().startswith("resnet")
    linears = [layer.out_features for layer in m.bottleneck if isinstance(layer, torch.nn.Linear)]
    assert linears == [1000, 500]
    with torch.no_grad():
        out = m(torch.randn(2, 3, 32, 32))
    assert out["logits_without"].shape == (2, 4, 2) and out["feature"].shape == (2, 500)


@pytest.mark.parametrize("name,dim", [("mobilenet_v3_small", 576), ("efficientnet_b0", 1280)])
def test_other_backbones(name, dim):
    m = LIBDetector(input_size=64, lib=dict(model=name, num_LIBs=2, bottleneck=[8, 4])).eval()
    with torch.no_grad():
        out = m(torch.randn(2, 3, 64, 64))
    assert out["local_features"].shape == (2, 2, dim) and out["logits_without"].shape == (2, 2, 2)


def test_config_options_and_errors():
    cfg = Config({"model": {"name": "lib", "input_size": 32, "lib": {**SMALL, "temperature": 2.0},
                            "ssaaformer": {"depth": 2}}})                   # another detector's section is ignored
    m = build_from_config(cfg)
    assert m.opts["temperature"] == 2.0 and m.opts["model"] == "small_cnn" and m.input_size == 32
    with pytest.raises(ConfigError, match="model.lib.num_libs"):
        LIBDetector(lib={"num_libs": 3})                                     # the key is num_LIBs
    with pytest.raises(ConfigError, match="mi_calculator"):
        LIBDetector(lib={**SMALL, "mi_calculator": "js"})
    with pytest.raises(ConfigError, match="model.lib.model"):
        LIBDetector(lib={**SMALL, "model": "vgg"})
    with pytest.raises(ConfigError, match="scales"):
        LIBDetector(lib={**SMALL, "scales": [1, 2]})


# ------------------------------------------------------------------------------------ losses
Z_ALL = np.array([[2.0, -1.0], [0.3, 0.8], [-1.2, 0.4]])
Z_G = np.array([[1.0, 0.5], [0.1, 0.2], [-0.5, 1.5]])
Z_WO = np.array([[[1.5, -0.5], [0.2, 0.1]], [[0.0, 1.0], [0.9, -0.3]], [[-2.0, 0.0], [0.3, 0.3]]])   # (B=3, n=2, 2)


def test_kl_and_gil_match_hand_computation():
    T = 1.5
    want = kl_np(softmax_np(Z_ALL, T), softmax_np(Z_G, T))
    got = L.kl_per_sample(torch.tensor(Z_ALL), torch.tensor(Z_G), T).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # and torch's own KL (kl_div takes log q and p) agrees
    ref = F.kl_div(F.log_softmax(torch.tensor(Z_G) / T, 1), F.softmax(torch.tensor(Z_ALL) / T, 1), reduction="batchmean")
    gil = L.global_information_loss(torch.tensor(Z_ALL), torch.tensor(Z_G), T)
    assert float(gil) == pytest.approx(want.mean(), rel=1e-12) == pytest.approx(float(ref), rel=1e-12)


def test_gil_only_moves_the_student():
    z_all = torch.tensor(Z_ALL, requires_grad=True)
    z_g = torch.tensor(Z_G, requires_grad=True)
    L.global_information_loss(z_all, z_g, 1.5).backward()
    assert z_all.grad is None or torch.count_nonzero(z_all.grad) == 0   # teacher detached
    assert torch.count_nonzero(z_g.grad) > 0


def test_lil_is_exp_of_minus_summed_kl():
    T = 1.5
    p = softmax_np(Z_ALL, T)
    s = sum(kl_np(p, softmax_np(Z_WO[:, i], T)).mean() for i in range(2))
    got = L.local_information_loss(torch.tensor(Z_ALL), torch.tensor(Z_WO), T)
    assert float(got) == pytest.approx(math.exp(-s), rel=1e-12)
    # identical heads -> KL 0 -> LIL at its maximum 1
    same = torch.tensor(Z_ALL)[:, None].repeat(1, 2, 1)
    assert float(L.local_information_loss(torch.tensor(Z_ALL), same, T)) == pytest.approx(1.0)


def test_sinkhorn_tends_to_the_wasserstein_distance():
    p = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]], dtype=torch.float64)
    q = torch.tensor([[0.2, 0.8], [0.4, 0.6], [0.5, 0.5]], dtype=torch.float64)
    got = L.sinkhorn_distance(p, q, epsilon=0.01, iterations=500).numpy()
    want = [wasserstein_distance([0, 1], [0, 1], p[i].numpy(), q[i].numpy()) for i in range(3)]   # scipy: 0.7, 0.1, 0
    np.testing.assert_allclose(got, want, atol=2e-3)
    # the wasserstein option is a valid mi_calculator for both losses
    w = L.global_information_loss(torch.tensor(Z_ALL), torch.tensor(Z_G), 1.5, "wasserstein")
    pa, pg = softmax_np(Z_ALL, 1.5), softmax_np(Z_G, 1.5)
    assert float(w) == pytest.approx(np.abs(pa[:, 0] - pg[:, 0]).mean(), abs=0.02)


def test_uncertainty_weighting_and_fixed_scales():
    losses = [torch.tensor(2.0), torch.tensor(0.3), torch.tensor(0.9)]
    s = torch.tensor([1.0, 0.5, 2.0])
    want = sum(0.5 / si ** 2 * li + math.log(1 + si ** 2) for si, li in zip([1.0, 0.5, 2.0], [2.0, 0.3, 0.9]))
    assert float(L.uncertainty_weighted(losses, s)) == pytest.approx(want, rel=1e-6)
    assert float(L.scaled_sum(losses, [1, 2, 10])) == pytest.approx(2.0 + 0.6 + 9.0)


def test_training_step_combines_the_terms_as_documented():
    x, y = torch.randn(6, 3, 32, 32), torch.tensor([0, 1, 0, 1, 1, 0])
    for method in ("auto", "hyper"):
        m = tiny(mixup=False, balance_loss_method=method).eval()    # eval: dropout/BN fixed for a hand check
        with torch.no_grad():
            m.loss_sigma.copy_(torch.tensor([1.3, 0.7, 2.0]))
            loss, logs = m.training_step({"image": x, "label": y})
            out = m(x)
        ce = F.cross_entropy(out["logits"], y) + F.cross_entropy(out["logits_all"], y) + \
            sum(F.cross_entropy(out["logits_without"][:, i], y) for i in range(3))
        za, zg, zw = (out[k].double().numpy() for k in ("logits_all", "logits", "logits_without"))
        gil = kl_np(softmax_np(za, 1.5), softmax_np(zg, 1.5)).mean()
        lil = math.exp(-sum(kl_np(softmax_np(za, 1.5), softmax_np(zw[:, i], 1.5)).mean() for i in range(3)))
        assert logs["ce"] == pytest.approx(float(ce), rel=1e-5)
        assert logs["gil"] == pytest.approx(gil, rel=1e-4) and logs["lil"] == pytest.approx(lil, rel=1e-5)
        if method == "hyper":
            want = float(ce) + 2 * gil + 10 * lil
        else:
            want = sum(0.5 / s ** 2 * t + math.log(1 + s ** 2) for s, t in zip([1.3, 0.7, 2.0], [float(ce), gil, lil]))
        assert float(loss) == pytest.approx(want, rel=1e-5)


def test_without_information_losses_it_is_plain_cross_entropy():
    x, y = torch.randn(6, 3, 32, 32), torch.tensor([0, 1, 0, 1, 1, 0])
    for method in ("auto", "hyper"):
        m = tiny(mixup=False, lil_loss=False, gil_loss=False, balance_loss_method=method).eval()
        with torch.no_grad():
            loss, logs = m.training_step({"image": x, "label": y})
            plain = F.cross_entropy(m(x)["logits"], y)
        assert float(loss) == pytest.approx(float(plain), rel=1e-6) and set(logs) == {"loss", "ce"}
    # gradients reach the G path only (the auxiliary heads get none)
    m = tiny(mixup=False, lil_loss=False, gil_loss=False).train()
    m.training_step({"image": x, "label": y})[0].backward()
    assert m.head_all.weight.grad is None and m.heads_without[0].weight.grad is None
    assert m.head_G.weight.grad.abs().sum() > 0 and m.loss_sigma.grad is None
    # parameters an objective never uses are frozen (DDP-safe without find_unused_parameters)
    assert not m.head_all.weight.requires_grad and not m.loss_sigma.requires_grad
    g = tiny(mixup=False, lil_loss=False, balance_loss_method="hyper")
    assert g.head_all.weight.requires_grad and not g.heads_without[0].weight.requires_grad
    assert not g.loss_sigma.requires_grad and g.active_terms == ("ce", "gil")
    a = tiny(mixup=False, gil_loss=False).train()
    assert a.loss_sigma.shape == (2,) and a.active_terms == ("ce", "lil")
    a.training_step({"image": x, "label": y})[0].backward()
    assert all(p.grad is not None for p in a.parameters() if p.requires_grad)


def test_mixup_is_reproducible_with_a_seed():
    x, y = torch.randn(8, 3, 4, 4), torch.arange(8) % 2

    def draw(seed):
        return L.mixup(x, y, 0.5, np.random.default_rng(seed), torch.Generator().manual_seed(seed))

    a, b, c = draw(3), draw(3), draw(4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2]) and a[3] == b[3]
    assert not torch.equal(a[0], c[0])
    mixed, ya, yb, lam = a
    assert 0.0 < lam < 1.0 and torch.equal(ya, y)
    # mixed = lam x + (1 - lam) x[perm], yb = y[perm], perm drawn from the seeded torch generator
    gen_perm = torch.randperm(8, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[gen_perm]) and torch.equal(yb, y[gen_perm])
    # mixed cross-entropy is the lam-weighted sum
    z = torch.randn(8, 2)
    assert float(L.mixed_cross_entropy(z, ya, yb, lam)) == pytest.approx(
        float(lam * F.cross_entropy(z, ya) + (1 - lam) * F.cross_entropy(z, yb)), rel=1e-6)
    # the detector's own stream: same seed -> same lambda sequence; reseed restarts it
    m1, m2 = tiny(), tiny()
    batch = {"image": torch.randn(4, 3, 32, 32), "label": torch.tensor([0, 1, 0, 1])}
    l1 = [m1.training_step(batch)[1]["mixup_lambda"] for _ in range(2)]
    l2 = [m2.training_step(batch)[1]["mixup_lambda"] for _ in range(2)]
    assert l1 == l2 and l1[0] != l1[1]
    m1.reseed(7)
    assert m1.training_step(batch)[1]["mixup_lambda"] == l1[0]
    m1.eval()
    assert "mixup_lambda" not in m1.training_step(batch)[1]         # no mixup outside training mode


def test_backbone_weights_load_into_every_block(tmp_path):
    from torchvision.models import mobilenet_v3_small
    torch.manual_seed(3)
    ref = mobilenet_v3_small(weights=None)
    path = tmp_path / "mnv3.pth"
    torch.save(ref.state_dict(), path)                               # published layout, classifier included
    m = LIBDetector(input_size=32, lib=dict(model="mobilenet_v3_small", num_LIBs=2, bottleneck=[8, 4],
                                            backbone_weights=str(path)))
    for block in m.blocks:
        assert torch.equal(block.net.features[0][0].weight, ref.features[0][0].weight)
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="model.lib.backbone_weights"):
        LIBDetector(input_size=32, lib=dict(model="mobilenet_v3_small", num_LIBs=2, backbone_weights=str(bad)))
    with pytest.raises(FileNotFoundError, match="model.lib.backbone_weights"):
        LIBDetector(input_size=32, lib=dict(model="mobilenet_v3_small", num_LIBs=2, backbone_weights=str(tmp_path / "no.pth")))
