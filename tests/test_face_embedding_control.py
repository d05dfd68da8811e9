"""The shortcut control (training/detectors/face_embedding.py): dlib's face-identity embedding of a
crop. On UADFV every fake carries one donor's face, which the embedding sees: the fakes of different
targets lie closer together than those targets' real faces."""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import torch

from training.detectors import build_detector

VIDEOS = ("0001", "0003", "0006", "0007")


def _crops(root, label, video, n=3):
    paths = sorted((root / label / "frames" / video).glob("*.png"))[:n]
    return torch.stack([torch.from_numpy(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)).permute(2, 0, 1)
                        .float() / 255 for p in paths])


def _mean_dist(a, b):
    return float(np.linalg.norm(a[:, None] - b[None], axis=-1).mean())


def test_embedding_sees_identity_and_the_shared_donor(uadfv_root):
    det = build_detector("dlib_face_embedding")
    assert det.feature_dim == 128 and det.weights_path.name == "dlib_face_recognition_resnet_model_v1.dat"
    emb = {v: (det(_crops(uadfv_root, "real", v))["feature"].numpy(),
               det(_crops(uadfv_root, "fake", v + "_fake"))["feature"].numpy()) for v in VIDEOS}
    e = emb[VIDEOS[0]][0]
    # frames of one real video are closer to each other than to another identity
    assert _mean_dist(e, e) < 0.3 < _mean_dist(e, emb[VIDEOS[1]][0])
    # the donor: for every pair of targets, their fakes are closer than their real faces
    # (measured: 0.30-0.48 against 0.41-0.54)
    for a, b in itertools.combinations(VIDEOS, 2):
        assert _mean_dist(emb[a][1], emb[b][1]) < _mean_dist(emb[a][0], emb[b][0]), (a, b)
    out = det(_crops(uadfv_root, "real", VIDEOS[0], n=2))
    assert out["logits"].shape == (2, 2) and out["prob"].shape == (2,)
