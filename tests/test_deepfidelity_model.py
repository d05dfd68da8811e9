"""DeepFidelity: SSAAFormer's symmetric block, the quality measures, the fidelity mapping and the SVR."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from common.config import Config, ConfigError
from common.io import InputError
from training import fidelity as FD
from training.detectors.factory import build_from_config
from training.detectors.ssaaformer import Attention, Block, SSAAFormer, local_mask, mirror_permutation

TINY = dict(patch_size=8, embed_dim=32, depth=3, num_heads=4, symmetric_blocks=2, local_window=3)


# small tensors: one thread is faster than two fighting over shared cores
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------------------- symmetric block
def test_mirror_permutation_mirrors_the_grid():
    perm = mirror_permutation(2, 3)
    assert perm.tolist() == [2, 1, 0, 5, 4, 3]
    grid = torch.arange(6).reshape(2, 3)
    assert torch.equal(grid.flatten()[perm].reshape(2, 3), grid.flip(1))


def test_symmetric_attention_is_mirror_equivariant():
    torch.manual_seed(0)
    h, w = 4, 5
    perm = mirror_permutation(h, w)
    mask = local_mask(h, w, 3)
    assert torch.equal(mask, mask[perm][:, perm])              # the local window is itself symmetric
    block = Block(16, 4, 2.0, symmetric=True, dropout=0.0).double()
    with torch.no_grad():
        block.attn.mirror_logits.copy_(torch.tensor([0.9, -0.4]))   # unequal weights: still equivariant
    block.attn.keep_attention = True
    x = torch.randn(2, h * w, 16, dtype=torch.float64)
    y = block(x, perm, mask)
    a = block.attn.last_attention
    y_m = block(x[:, perm], perm, mask)                          # mirrored input tokens
    a_m = block.attn.last_attention
    torch.testing.assert_close(a_m, a[:, :, perm][:, :, :, perm], rtol=0, atol=1e-12)   # mirrored map
    torch.testing.assert_close(y_m, y[:, perm], rtol=0, atol=1e-12)                      # mirrored output
    torch.testing.assert_close(a.sum(-1), torch.ones_like(a.sum(-1)))                    # rows still sum to 1
    assert torch.all(a[..., ~mask] == 0)                                                  # local: nothing outside


def test_blend_weights_sum_to_one_and_really_blend_the_mirror():
    torch.manual_seed(1)
    h, w = 3, 4
    perm = mirror_permutation(h, w)
    att = Attention(8, 2, symmetric=True).double()
    plain = Attention(8, 2, symmetric=False).double()
    plain.load_state_dict({k: v for k, v in att.state_dict().items() if k != "mirror_logits"})
    att.keep_attention = plain.keep_attention = True
    x = torch.randn(1, h * w, 8, dtype=torch.float64)
    plain(x)
    A = plain.last_attention
    for logits in ([0.0, 0.0], [3.0, -1.0], [-20.0, 20.0]):
        with torch.no_grad():
            att.mirror_logits.copy_(torch.tensor(logits))
        wts = att.mirror_weights
        wts = wts.detach()
        assert float(wts.sum()) == pytest.approx(1.0) and torch.all(wts > 0)
        att(x, perm)
        want = wts[0] * A + wts[1] * A[:, :, perm][:, :, :, perm]
        torch.testing.assert_close(att.last_attention, want.to(att.last_attention.dtype), rtol=0, atol=1e-12)
    # with all weight on the mirror, the map equals the plain block's map mirrored (and differs from it)
    assert not torch.allclose(att.last_attention, A, atol=1e-3)


def test_ssaaformer_forward_backward_small():
    torch.manual_seed(0)
    m = SSAAFormer(input_size=32, ssaaformer=TINY)
    assert m.grid == (4, 4) and m.n_symmetric == 2
    assert [b.attn.symmetric for b in m.blocks] == [True, True, False]
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 1, 0])
    out = m(x)
    assert out["logits"].shape == (4, 2) and out["feature"].shape == (4, 32) and out["prob"].shape == (4,)
    assert torch.all((out["fidelity"] > 0) & (out["fidelity"] < 1))
    fid = torch.tensor([0.8, 0.1, float("nan"), 0.7])              # a frame without a target is skipped
    loss, logs = m.training_step({"image": x, "label": y, "fidelity": fid})
    assert set(logs) == {"ce", "fidelity_mse", "loss"} and np.isfinite(logs["loss"])
    loss.backward()
    assert m.blocks[0].attn.mirror_logits.grad is not None and m.patch_embed[0].weight.grad.abs().sum() > 0
    assert m.fidelity_head.weight.grad.abs().sum() > 0
    # without targets it is plain cross-entropy
    m.eval()
    loss2, logs2 = m.training_step({"image": x, "label": y})
    assert set(logs2) == {"ce", "loss"} and logs2["loss"] == logs2["ce"]


def test_ssaaformer_config_and_errors():
    cfg = Config({"model": {"name": "ssaaformer", "input_size": 32, "ssaaformer": TINY, "lib": {"num_LIBs": 2}}})
    m = build_from_config(cfg)
    assert m.feature_dim == 32 and m.input_size == 32
    with pytest.raises(ConfigError, match="multiple"):
        SSAAFormer(input_size=30, ssaaformer=TINY)
    with pytest.raises(ConfigError, match="model.ssaaformer.heads"):
        SSAAFormer(input_size=32, ssaaformer={**TINY, "heads": 2})
    with pytest.raises(ConfigError, match="divisible"):
        SSAAFormer(input_size=32, ssaaformer={**TINY, "num_heads": 5})


# ----------------------------------------------------------------------------------- quality
def test_quality_mapping_ranges_and_monotonicity():
    rng = np.random.default_rng(0)
    q = rng.normal(size=200)
    lab = (np.arange(200) % 2)
    mp = FD.FidelityMapping().fit(q, lab)
    f = mp.apply(q, lab)
    assert f[lab == 1].min() == pytest.approx(0.0) and f[lab == 1].max() == pytest.approx(0.4)
    assert f[lab == 0].min() == pytest.approx(0.6) and f[lab == 0].max() == pytest.approx(1.0)
    for c in (0, 1):                                         # non-decreasing in quality within a class
        order = np.argsort(q[lab == c])
        assert np.all(np.diff(f[lab == c][order]) >= 0)
    # new data outside the fitted range is clipped into the class range
    g = mp.apply(np.array([-100.0, 100.0, -100.0, 100.0]), np.array([1, 1, 0, 0]))
    assert g.tolist() == pytest.approx([0.0, 0.4, 0.6, 1.0])
    # hand value: a fake at the middle of the fake range maps to 0.2
    mid = (mp.fake_min + mp.fake_max) / 2
    assert mp.apply(np.array([mid]), np.array([1]))[0] == pytest.approx(0.2)
    with pytest.raises(InputError, match="real"):
        FD.FidelityMapping().fit(q[lab == 1], lab[lab == 1])


def test_stability_formula():
    e = np.array([[0.0, 0.0], [3.0, 4.0]])                         # one pair at distance 5
    assert FD.stability_from_embeddings(e) == pytest.approx(2 / (1 + np.exp(5.0)))
    assert FD.stability_from_embeddings(np.zeros((3, 4))) == pytest.approx(1.0)


def test_quality_measures_on_real_faces(uadfv_root):
    paths = ["real/frames/0000/000.png", "real/frames/0001/000.png"]
    img, lm = FD.load_face(uadfv_root, paths[0])
    assert img.shape == (256, 256, 3) and lm.shape == (81, 2)
    import cv2
    blurred = cv2.GaussianBlur(img, (0, 0), 3)
    assert FD.sharpness_quality(blurred, lm) < FD.sharpness_quality(img, lm) - 1.0   # blur lowers sharpness
    es = FD.EmbeddingStability(perturbations=3, seed=0)
    e1 = es.embeddings(img, lm, paths[0])
    assert e1.shape == (4, 128)
    np.testing.assert_allclose(e1, es.embeddings(img, lm, paths[0]))      # seeded: same perturbations
    q_clean = FD.stability_from_embeddings(e1)
    assert 0.5 < q_clean < 1.0
    # the unperturbed faces of two different people are further apart than perturbed copies of one face
    e2 = es.embeddings(*FD.load_face(uadfv_root, paths[1]), paths[1])
    within = np.linalg.norm(e1[1:] - e1[0], axis=1).max()
    assert np.linalg.norm(e2[0] - e1[0]) > within
    assert FD.landmark_path(uadfv_root, paths[0]) == uadfv_root / "real/landmarks/0000/000.npy"
    with pytest.raises(InputError, match="layout"):
        FD.landmark_path(uadfv_root, "x/y.png")


def test_missing_landmarks_are_a_clear_error(tmp_path, uadfv_root):
    import shutil
    (tmp_path / "real/frames/v").mkdir(parents=True)
    shutil.copy(uadfv_root / "real/frames/0000/000.png", tmp_path / "real/frames/v/000.png")
    with pytest.raises(InputError, match="landmarks missing"):
        FD.load_face(tmp_path, "real/frames/v/000.png")


def test_cache_round_trip_and_refusals(tmp_path):
    split = tmp_path / "split.json"
    split.write_text("{}")
    cache = tmp_path / "fidelity_targets.csv"
    FD.write_cache(cache, ["a.png", "b.png"], ["v1", "v2"], [0, 1], ["train", "train"], [0.9, 0.2], [1.0, 0.0],
                   {"quality_method": "sharpness", "split_hash": FD.file_hash(split)})
    c = FD.read_cache(cache, split, "sharpness")
    assert c["fidelity"].tolist() == [1.0, 0.0] and c["label"].tolist() == [0, 1]
    assert FD.targets_for(c, ["b.png", "a.png"]).tolist() == [0.0, 1.0]
    with pytest.raises(InputError, match="c.png"):
        FD.targets_for(c, ["c.png"], "dump")
    with pytest.raises(InputError, match="quality_method"):
        FD.read_cache(cache, split, "embedding_stability")
    split.write_text('{"x": 1}')
    with pytest.raises(InputError, match="another split"):
        FD.read_cache(cache, split)
    with pytest.raises(InputError, match="03a_fidelity_targets"):
        FD.read_cache(tmp_path / "missing.csv")


# --------------------------------------------------------------------------------------- SVR
def test_svr_orders_two_separated_classes(tmp_path):
    rng = np.random.default_rng(0)
    real = rng.normal(+2.0, 1.0, size=(100, 8))
    fake = rng.normal(-2.0, 1.0, size=(100, 8))
    X = np.vstack([real, fake])
    lab = np.r_[np.zeros(100), np.ones(100)].astype(int)
    target = FD.FidelityMapping().fit(rng.normal(size=200), lab).apply(rng.normal(size=200), lab)
    svr = FD.FidelitySVR(seed=0).fit(X, target)
    test_real, test_fake = rng.normal(2.0, 1.0, (50, 8)), rng.normal(-2.0, 1.0, (50, 8))
    s_real, s_fake = svr.predict(test_real), svr.predict(test_fake)
    assert s_real.min() > s_fake.max()                             # every real above every fake
    assert s_real.mean() > 0.6 and s_fake.mean() < 0.4
    loaded = FD.FidelitySVR.load(svr.save(tmp_path / "svr.npz"))
    np.testing.assert_array_equal(loaded.predict(test_real), s_real)        # a reload predicts bit-identically
    # the arrays' prediction is scikit-learn's own on the same fit (peer answer), 1e-10
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR
    peer = make_pipeline(StandardScaler(), SVR(kernel="rbf", C=1.0, epsilon=0.05, gamma="scale")).fit(X, target)
    np.testing.assert_allclose(s_fake, peer.predict(test_fake), rtol=0, atol=1e-10)
    with np.load(tmp_path / "svr.npz", allow_pickle=False) as z:                  # arrays only: no pickle
        assert set(z.files) == set(FD.FidelitySVR.ARRAYS) | {"meta"}
    # video level = mean over the video's frames
    v = FD.video_level(np.array([0.2, 0.4, 0.9]), ["a", "a", "b"], [1, 1, 0])
    assert v["video_id"].tolist() == ["a", "b"] and v["score"].tolist() == pytest.approx([0.3, 0.9])
    assert v["n_frames"].tolist() == [2, 1]


def test_full_size_default_builds_and_runs():
    m = SSAAFormer().eval()                      # ViT-S sized defaults at 224 px (the GPU configuration)
    assert m.grid == (14, 14) and m.feature_dim == 384 and len(m.blocks) == 12 and m.n_symmetric == 4
    assert [type(layer).__name__ for layer in m.patch_embed][::3] == ["Conv2d"] * 4      # 16 = 2^4: four stride-2 convs
    with torch.no_grad():
        out = m(torch.randn(1, 3, 224, 224))
    assert out["feature"].shape == (1, 384) and out["logits"].shape == (1, 2)
    assert int(m.mask.sum(1).max()) == 49 and int(m.mask.sum(1).min()) == 16      # 7x7 window, 4x4 in a corner
