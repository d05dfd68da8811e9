"""DeepFidelity learns on real data: quality -> fidelity targets -> SSAAFormer -> SVR, held-out persons.

CPU-sized: 64 px input, 8x8 tokens, 4 blocks (2 symmetric, local window 3), sharpness quality
(the embedding-stability measure costs ~0.2 s per frame on CPU; it is tested on a few faces in
test_deepfidelity_model.py). Measured (2026-11-21, 1 thread, seed 0) after 4 epochs on 544
frames: the SVR fidelity score separates the 240 frames of 15 unseen persons with AUC 0.865
(real high), the network's own fake probability with AUC 0.81; chance is 0.5. Asserted: SVR
AUC >= 0.72 (frame), classifier AUC >= 0.65.
"""
from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score

from _lib_df_uadfv import load_arrays, persons
from training import fidelity as FD
from training.detectors.ssaaformer import SSAAFormer


# small tensors: one thread is faster than two fighting over shared cores
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_deepfidelity_learns_on_person_disjoint_uadfv(uadfv_root):
    data = load_arrays(str(uadfv_root), 64, 8)
    Xtr, ytr, vtr, ptr = data["train"]
    Xte, yte, vte, _ = data["test"]
    assert not persons(vtr) & persons(vte)
    quality = FD.compute_quality(uadfv_root, ptr, "sharpness")
    target = FD.FidelityMapping().fit(quality, ytr.numpy()).apply(quality, ytr.numpy())
    assert target[ytr.numpy() == 1].max() <= 0.4 < 0.6 <= target[ytr.numpy() == 0].min()
    fid = torch.tensor(target, dtype=torch.float32)
    torch.manual_seed(0)
    m = SSAAFormer(input_size=64, ssaaformer=dict(patch_size=8, embed_dim=64, depth=4, num_heads=4,
                                                  symmetric_blocks=2, local_window=3))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.05)
    g = torch.Generator().manual_seed(0)
    for _ in range(4):
        m.train()
        perm = torch.randperm(len(ytr), generator=g)
        for i in range(0, len(perm) - 1, 32):
            idx = perm[i:i + 32]
            loss, logs = m.training_step({"image": Xtr[idx], "label": ytr[idx], "fidelity": fid[idx]})
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert "fidelity_mse" in logs
    for block in m.blocks[:2]:                                        # the blend weights stay a convex pair
        w = block.attn.mirror_weights.detach()
        assert float(w.sum()) == pytest.approx(1.0) and torch.all(w > 0)
    m.eval()
    with torch.no_grad():
        out_tr, out_te = m(Xtr), m(Xte)
    svr = FD.FidelitySVR(seed=0).fit(out_tr["feature"].numpy(), target)
    score = svr.predict(out_te["feature"].numpy())
    auc_svr = roc_auc_score(1 - yte.numpy(), score)                   # high fidelity = real
    auc_prob = roc_auc_score(yte.numpy(), out_te["prob"].numpy())
    v = FD.video_level(score, vte, yte.numpy())
    auc_video = roc_auc_score(1 - v["label"], v["score"])
    print(f"DeepFidelity held-out persons: SVR frame AUC {auc_svr:.4f}, video AUC {auc_video:.4f}, "
          f"classifier AUC {auc_prob:.4f}")
    assert auc_svr >= 0.72 and auc_prob >= 0.65
    assert score[yte.numpy() == 0].mean() > score[yte.numpy() == 1].mean()
