"""Self-blended image generator on real UADFV crops: locality, hull-following mask, reproducibility."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from preprocessing.sbi import HULL_VARIANTS, SBIOptions, face_scale, hull_mask, self_blend, self_blend_details

VIDEOS = ("0000", "0007", "0013", "0021", "0035")


def load(root, vid, idx=0):
    frames = sorted((root / "real" / "frames" / vid).glob("*.png"))
    p = frames[idx]
    img = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
    lm = np.load(root / "real" / "landmarks" / vid / (p.stem + ".npy")).astype(np.float64)
    return img, lm


@pytest.fixture(scope="module")
def faces(uadfv_root):
    return [load(uadfv_root, v) for v in VIDEOS]


def test_blend_changes_only_inside_mask(faces):
    rng = np.random.default_rng(7)
    for img, lm in faces:
        for _ in range(4):
            out, mask = self_blend(img, lm, rng)
            assert out.shape == img.shape and out.dtype == np.uint8
            assert mask.shape == img.shape[:2] and mask.dtype == np.float32
            assert 0.0 <= mask.min() and mask.max() <= 1.0 and mask.max() >= 0.25 - 1e-6
            changed = (out != img).any(axis=2)
            assert not (changed & (mask == 0)).any(), "pixels outside the mask were modified"
            # and the blend really changes the face: a sizeable part of the masked area differs
            assert changed.sum() > 0.3 * (mask > 0.05).sum() > 0


def test_mask_follows_landmark_hull(faces):
    rng = np.random.default_rng(11)
    for img, lm in faces:
        side = face_scale(lm, img.shape)
        hull = hull_mask(img.shape, [lm]).astype(np.uint8)
        k = int(0.12 * side) * 2 + 1     # tolerance for affine shift/scale, hull deform, warp and blur
        near = cv2.dilate(hull, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0
        for variant in HULL_VARIANTS:
            _, mask = self_blend(img, lm, rng, hull_variants=[variant])
            assert not ((mask > 0) & ~near).any(), f"{variant}: mask reaches outside the dilated landmark hull"
        _, mask = self_blend(img, lm, rng, hull_variants=["face"], blend_ratios=[1.0])
        core, h = mask > 0.5, hull > 0
        # the mask is the hull, shrunk by the first blur's erosion and moved by the warp (measured over
        # 50 draws: >= 95 % of the core inside the hull, IoU >= 0.56, >= 76 % of the hull covered)
        assert (core & h).sum() / core.sum() > 0.9
        assert (core & h).sum() / (core | h).sum() > 0.5
        assert ((mask > 0) & h).sum() / h.sum() > 0.7
        cm = np.argwhere(core).mean(0)
        ch = np.argwhere(h).mean(0)
        assert np.abs(cm - ch).max() < 0.06 * side


def test_seeded_generator_is_reproducible(faces):
    img, lm = faces[0]
    a, ma = self_blend(img, lm, np.random.default_rng(123))
    b, mb = self_blend(img, lm, np.random.default_rng(123))
    c, _ = self_blend(img, lm, np.random.default_rng(124))
    assert np.array_equal(a, b) and np.array_equal(ma, mb)
    assert not np.array_equal(a, c)


def test_blend_ratio_sets_mask_peak_and_hull_variants_differ(faces):
    img, lm = faces[1]
    for r in (0.25, 0.5, 1.0):
        _, mask = self_blend(img, lm, np.random.default_rng(3), blend_ratios=[r])
        assert mask.max() == pytest.approx(r, abs=1e-6)
    areas = {v: (self_blend(img, lm, np.random.default_rng(3), hull_variants=[v])[1] > 0.5).sum()
             for v in HULL_VARIANTS}
    assert areas["components"] < areas["inner"] < areas["face"]


def test_68_points_and_full_frames(faces):
    img, lm = faces[2]
    out, mask = self_blend(img, lm[:68], np.random.default_rng(5))
    assert (mask > 0).any() and not ((out != img).any(2) & (mask == 0)).any()
    frame = np.full((720, 1280, 3), 90, np.uint8)
    frame[300:556, 700:956] = img
    out, mask = self_blend(frame, lm + (700, 300), np.random.default_rng(5))
    assert mask.shape == (720, 1280)
    ys, xs = np.nonzero((out != frame).any(2))
    assert ys.min() >= 300 - 40 and ys.max() < 556 + 40 and xs.min() >= 700 - 40 and xs.max() < 956 + 40
    res = self_blend_details(frame, lm + (700, 300), np.random.default_rng(5))
    x0, y0, x1, y1 = res.roi
    assert (x1 - x0) * (y1 - y0) < 0.2 * 720 * 1280     # only the face region is processed


def test_source_is_augmented(faces):
    img, lm = faces[3]
    res = self_blend_details(img, lm, np.random.default_rng(9), blend_ratios=[1.0])
    x0, y0, x1, y1 = res.roi
    inside = res.mask[y0:y1, x0:x1] > 0.99
    diff = np.abs(res.source.astype(int) - img[y0:y1, x0:x1].astype(int))[inside].mean()
    assert diff > 2.0, "source and target are nearly identical: no colour/frequency change"


def test_bad_inputs_are_clear_errors(faces):
    img, lm = faces[0]
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="uint8"):
        self_blend(img.astype(np.float32), lm, rng)
    with pytest.raises(ValueError, match=r"\(K, 2\)"):
        self_blend(img, lm[:, :1], rng)
    with pytest.raises(ValueError, match="outside"):
        self_blend(img, lm + 5000, rng)
    with pytest.raises(ValueError, match="training.sbi: unknown option"):
        self_blend(img, lm, rng, blend_ratio=0.5)
    with pytest.raises(ValueError, match="hull_variants"):
        SBIOptions.from_kwargs(hull_variants=["ears"])
    with pytest.raises(TypeError, match="Generator"):
        self_blend(img, lm, 42)


def test_examples_script_writes_ten_examples(uadfv_root, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(repo / "training" / "sbi_examples.py"), "--config",
                           str(repo / "configs" / "uadfv.yaml"), "--set", f"dataset.root={uadfv_root}",
                           "--set", f"output_dir={tmp_path}"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    png = tmp_path / "sbi_examples" / "sbi_examples.png"
    assert str(png) in proc.stdout
    img = cv2.imread(str(png))
    assert img is not None and img.shape[1] > 1500 and img.shape[0] > 600
    summary = json.loads((tmp_path / "sbi_examples" / "sbi_examples.json").read_text())
    assert summary["n"] == 10 and len({e["frame"].split("/")[2] for e in summary["examples"]}) == 10
    assert all(e["changed_pixels"] > 1000 and 0 < e["mask_area_fraction"] < 0.8 for e in summary["examples"])
    bad = subprocess.run([sys.executable, str(repo / "training" / "sbi_examples.py"), "--config",
                          str(repo / "configs" / "uadfv.yaml"), "--set", f"dataset.root={tmp_path / 'nope'}",
                          "--set", f"output_dir={tmp_path}"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "dataset.root" in bad.stderr
