"""Self-blended images (SBI): training fakes made from one real face and its landmarks.

After Shiohara and Yamasaki (CVPR 2022), re-implemented from the method description in
``../shared/docs/seed_systems.md`` (system 4). A *source* copy of the face gets colour and
frequency changes and a small geometric warp; it is pasted onto the untouched *target* (the input
image) through a soft mask built from the landmark hull. The result carries the blending
boundary and the source/target statistics mismatch of a face swap without needing any fake video.

Conventions
- ``image_rgb``: (H, W, 3) uint8, RGB. Any size: an aligned 256 px crop or a full video frame.
- ``landmarks``: (K, 2) float, (x, y) in pixels of that image. K = 68 (iBUG order) or 81 (the
  68 iBUG points plus 13 forehead points, as in the UADFV crops); any other K >= 3 is accepted
  with the ``face`` hull variant only.
- Output: ``blended`` (H, W, 3) uint8 and ``mask`` (H, W) float32 in [0, 1], the weight of the
  source at each pixel: ``blended = round(mask * source + (1 - mask) * image)``. Outside
  ``mask > 0`` the output equals the input exactly (the target is never modified).
- Geometric magnitudes (translation, elastic warp, blur kernels) are stated for a 256 px face crop
  and scaled with the face size, so a full frame gets the same effect on its face as a crop; all
  work happens in a region of interest around the face, so large frames cost little extra.
- Every random draw comes from the ``rng`` argument: the same generator state gives the same output.

Options (keyword arguments of :func:`self_blend`, the config section ``training.sbi``) are the
fields of :class:`SBIOptions`.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from common import schema

log = logging.getLogger(__name__)

REF_SIDE = 256.0          # magnitudes below are in pixels of a 256 px aligned crop
CROP_TO_LANDMARKS = 1.4   # an aligned crop is about 1.4x the landmark extent (UADFV: 256 px vs ~180 px)

# iBUG 68-point groups (0-based); points 68-80 of the 81-point model are the forehead.
JAW, BROWS, NOSE, EYES, MOUTH = range(0, 17), range(17, 27), range(27, 36), range(36, 48), range(48, 68)
LEFT_PART = list(range(17, 22)) + list(range(36, 42))      # brow + eye (image left)
RIGHT_PART = list(range(22, 27)) + list(range(42, 48))
HULL_VARIANTS = ("face", "jaw_brows", "inner", "components")
# defaults of the options the schema declares (training.sbi.*); downscale_factors, sharpen_alpha and
# hull_deform have no schema default (UNSET there), so their paper values live in SBIOptions only
_D = schema.defaults("training.sbi")


@dataclass(frozen=True)
class SBIOptions:
    """Generator options; defaults follow the SBI paper (seed_systems.md, system 4)."""
    rgb_shift: float = float(_D["rgb_shift"])            # per-channel additive shift, +- pixel levels
    hue_shift_deg: float = float(_D["hue_shift_deg"])    # hue rotation, +- degrees (docs/sbi_fed.md: why not 0.3)
    sat_scale: float = float(_D["sat_scale"])            # saturation x (1 + u), u in +-sat_scale
    brightness: float = float(_D["brightness"])          # + u * 255, u in +-brightness
    contrast: float = float(_D["contrast"])              # (x - mean) * (1 + u) + mean, u in +-contrast
    downscale_factors: tuple = (2, 4)       # frequency change: down by 2 or 4 and back up ...
    sharpen_alpha: tuple = (0.2, 0.5)       # ... or sharpen (unsharp mask) with this strength
    sharpen_prob: float = float(_D["sharpen_prob"])      # probability of sharpening instead of downscaling
    translate: tuple = tuple(_D["translate"])            # affine shift, +- fraction of the face side (x, y)
    scale: tuple = tuple(_D["scale"])                    # affine scale range
    elastic_alpha: float = float(_D["elastic_alpha"])    # elastic warp strength (px at 256 px) ...
    elastic_sigma: float = float(_D["elastic_sigma"])    # ... and smoothness (px at 256 px)
    hull_variants: tuple = tuple(_D["hull_variants"])    # drawn uniformly per image
    hull_deform: tuple = (0.9, 1.05)        # anisotropic scale of the hull about its centroid
    blur_kernels: tuple = tuple(_D["blur_kernels"])      # Gaussian kernel sides (odd, px at 256 px), blurred twice
    blend_ratios: tuple = tuple(float(r) for r in _D["blend_ratios"])

    @classmethod
    def from_kwargs(cls, **options) -> "SBIOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ValueError(f"training.sbi: unknown option(s) {unknown}; known: {sorted(names)}")
        clean = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
        opts = cls(**clean)
        bad = [v for v in opts.hull_variants if v not in HULL_VARIANTS]
        if bad or not opts.hull_variants:
            raise ValueError(f"training.sbi.hull_variants: {list(opts.hull_variants)} is not a non-empty "
                             f"subset of {list(HULL_VARIANTS)}")
        if not opts.blend_ratios or not all(0 < r <= 1 for r in opts.blend_ratios):
            raise ValueError(f"training.sbi.blend_ratios: need values in (0, 1], got {list(opts.blend_ratios)}")
        lo, hi = opts.blur_kernels
        if not 1 <= lo <= hi:
            raise ValueError(f"training.sbi.blur_kernels: need 1 <= low <= high, got {list(opts.blur_kernels)}")
        return opts


@dataclass
class SBIResult:
    blended: np.ndarray            # (H, W, 3) uint8
    mask: np.ndarray               # (H, W) float32 in [0, 1]
    source: np.ndarray             # (h, w, 3) uint8: the augmented, warped source inside ``roi``
    roi: tuple                     # (x0, y0, x1, y1) region that was processed
    params: dict = field(default_factory=dict)   # what was drawn (for figures and debugging)


def self_blend(image_rgb: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
               **options) -> tuple[np.ndarray, np.ndarray]:
    """Make one self-blended fake from a real face. Returns ``(blended uint8 (H,W,3), mask float32 (H,W))``.

    ``mask`` is the source weight (0 = untouched input, 1 = pure source); see the module docstring.
    """
    res = self_blend_details(image_rgb, landmarks, rng, **options)
    return res.blended, res.mask


def check_inputs(image_rgb: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"self_blend: image must be (H, W, 3) uint8 RGB, got shape {image.shape} {image.dtype}")
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2 or lm.shape[0] < 3:
        raise ValueError(f"self_blend: landmarks must be (K, 2) (x, y) pixels with K >= 3, got shape {lm.shape}")
    if not np.isfinite(lm).all():
        raise ValueError("self_blend: landmarks contain NaN or inf")
    h, w = image.shape[:2]
    if lm[:, 0].max() < 0 or lm[:, 1].max() < 0 or lm[:, 0].min() >= w or lm[:, 1].min() >= h:
        raise ValueError(f"self_blend: landmarks lie outside the {w}x{h} image; are they (x, y) pixels "
                         f"of this image?")
    return image, lm


def face_scale(lm: np.ndarray, shape: tuple) -> float:
    """Face side in pixels (the side of an aligned crop of this face), capped by the image size."""
    extent = float(max(np.ptp(lm[:, 0]), np.ptp(lm[:, 1])))
    return max(8.0, min(float(min(shape[:2])), CROP_TO_LANDMARKS * extent))


def hull_polygons(lm: np.ndarray, variant: str) -> list[np.ndarray]:
    """Point sets whose convex hulls (union) make the mask of ``variant``."""
    k = len(lm)
    if k not in (68, 81) or variant == "face":
        return [lm]
    if variant == "jaw_brows":
        return [lm[list(JAW) + list(BROWS)]]
    if variant == "inner":
        return [lm[list(BROWS) + list(NOSE) + list(EYES) + list(MOUTH)]]
    if variant == "components":
        return [lm[LEFT_PART], lm[RIGHT_PART], lm[list(NOSE)], lm[list(MOUTH)]]
    raise ValueError(f"unknown hull variant {variant!r}; known: {HULL_VARIANTS}")


def hull_mask(shape: tuple, polygons: list[np.ndarray]) -> np.ndarray:
    """Filled convex hulls of ``polygons`` as a float32 (h, w) mask of 0/1."""
    mask = np.zeros(shape[:2], np.uint8)
    for pts in polygons:
        hull = cv2.convexHull(np.round(pts).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(np.float32)


def _odd(n: float) -> int:
    n = max(1, int(round(n)))
    return n if n % 2 else n + 1


def augment_colour(img: np.ndarray, rng: np.random.Generator, o: SBIOptions) -> tuple[np.ndarray, dict]:
    """RGB shift, hue/saturation change, brightness/contrast; uint8 in, uint8 out."""
    x = img.astype(np.float32)
    shift = rng.uniform(-o.rgb_shift, o.rgb_shift, 3).astype(np.float32)
    x = np.clip(x + shift, 0, 255)
    hsv = cv2.cvtColor(x.astype(np.uint8), cv2.COLOR_RGB2HSV_FULL).astype(np.float32)  # H in 0..255
    dh = rng.uniform(-o.hue_shift_deg, o.hue_shift_deg)
    ds = rng.uniform(-o.sat_scale, o.sat_scale)
    hsv[..., 0] = np.mod(hsv[..., 0] + dh * 256.0 / 360.0, 256.0)
    hsv[..., 1] = np.clip(hsv[..., 1] * (1 + ds), 0, 255)
    x = cv2.cvtColor(np.round(hsv).astype(np.uint8), cv2.COLOR_HSV2RGB_FULL).astype(np.float32)
    b = rng.uniform(-o.brightness, o.brightness)
    c = rng.uniform(-o.contrast, o.contrast)
    mean = x.mean()
    x = (x - mean) * (1 + c) + mean + b * 255.0
    return np.clip(np.round(x), 0, 255).astype(np.uint8), {"rgb_shift": shift.tolist(), "hue_deg": dh,
                                                           "sat": ds, "brightness": b, "contrast": c}


def augment_frequency(img: np.ndarray, rng: np.random.Generator, o: SBIOptions) -> tuple[np.ndarray, dict]:
    """Either down- and up-sample (loses high frequencies) or sharpen (boosts them)."""
    h, w = img.shape[:2]
    if rng.random() < o.sharpen_prob:
        alpha = rng.uniform(*o.sharpen_alpha)
        blur = cv2.GaussianBlur(img, (0, 0), 1.0).astype(np.float32)
        out = img.astype(np.float32) + alpha * 2.0 * (img.astype(np.float32) - blur)
        return np.clip(np.round(out), 0, 255).astype(np.uint8), {"frequency": f"sharpen {alpha:.2f}"}
    f = int(rng.choice(o.downscale_factors))
    small = cv2.resize(img, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), {"frequency": f"downscale x{f}"}


def _affine_matrix(shape: tuple, side: float, rng: np.random.Generator, o: SBIOptions) -> tuple[np.ndarray, dict]:
    h, w = shape[:2]
    tx = rng.uniform(-o.translate[0], o.translate[0]) * side
    ty = rng.uniform(-o.translate[1], o.translate[1]) * side
    s = rng.uniform(*o.scale)
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), 0.0, s)
    m[:, 2] += (tx, ty)
    return m, {"translate_px": (tx, ty), "scale": s}


def _elastic_maps(shape: tuple, k: float, rng: np.random.Generator, o: SBIOptions) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random displacement field (px) as cv2.remap maps; ``k`` = face side / 256."""
    h, w = shape[:2]
    sigma = max(0.5, o.elastic_sigma * k)
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma) * o.elastic_alpha * k
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma) * o.elastic_alpha * k
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return gx + dx, gy + dy


def blend_mask(hard: np.ndarray, rng: np.random.Generator, o: SBIOptions, k: float) -> tuple[np.ndarray, dict]:
    """Blur the 0/1 mask, keep only its fully inside part (erosion), blur again, scale by a blend ratio."""
    lo, hi = o.blur_kernels
    k1 = _odd(rng.integers(lo, hi + 1) * k)
    k2 = _odd(rng.integers(lo, hi + 1) * k)
    m = cv2.GaussianBlur(hard, (k1, k1), 0)
    m[m < 1 - 1e-6] = 0                  # shrink by the first kernel's radius so the soft edge ...
    m = cv2.GaussianBlur(m, (k2, k2), 0)  # ... of the second blur stays near the hull outline
    peak = float(m.max())
    if peak <= 0:                         # a tiny hull vanished in the erosion: fall back to one blur
        m = cv2.GaussianBlur(hard, (k2, k2), 0)
        peak = float(m.max())
    ratio = float(rng.choice(o.blend_ratios))
    m = m / max(peak, 1e-6) * ratio
    return np.clip(m, 0, 1).astype(np.float32), {"blur_kernels": (k1, k2), "blend_ratio": ratio}


def self_blend_details(image_rgb: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                       **options) -> SBIResult:
    """:func:`self_blend` with the intermediate source, the processed region and the drawn parameters."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"self_blend: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    o = options.pop("opts", None) or SBIOptions.from_kwargs(**options)
    image, lm = check_inputs(image_rgb, landmarks)
    h, w = image.shape[:2]
    side = face_scale(lm, image.shape)
    k = side / REF_SIDE

    # Region of interest: the landmark box plus room for warp and blur; nothing outside it changes.
    margin = 0.35 * side
    x0 = int(max(0, np.floor(lm[:, 0].min() - margin)))
    y0 = int(max(0, np.floor(lm[:, 1].min() - margin)))
    x1 = int(min(w, np.ceil(lm[:, 0].max() + margin) + 1))
    y1 = int(min(h, np.ceil(lm[:, 1].max() + margin) + 1))
    target = image[y0:y1, x0:x1]
    plm = lm - (x0, y0)

    variant = str(rng.choice(list(o.hull_variants))) if len(lm) in (68, 81) else "face"
    polys = hull_polygons(plm, variant)
    dsx, dsy = rng.uniform(*o.hull_deform, 2)
    centre = plm.mean(axis=0)
    polys = [(p - centre) * (dsx, dsy) + centre for p in polys]
    hard = hull_mask(target.shape, polys)

    source, p_col = augment_colour(target, rng, o)
    source, p_freq = augment_frequency(source, rng, o)
    m_aff, p_aff = _affine_matrix(target.shape, side, rng, o)
    size = (target.shape[1], target.shape[0])
    source = cv2.warpAffine(source, m_aff, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    hard = cv2.warpAffine(hard, m_aff, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mx, my = _elastic_maps(target.shape, k, rng, o)
    source = cv2.remap(source, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    hard = cv2.remap(hard, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    hard = (hard > 0.5).astype(np.float32)

    soft, p_mask = blend_mask(hard, rng, o, k)
    m3 = soft[..., None]
    out = np.round(m3 * source.astype(np.float32) + (1 - m3) * target.astype(np.float32))
    blended = image.copy()
    blended[y0:y1, x0:x1] = np.where(m3 > 0, np.clip(out, 0, 255), target).astype(np.uint8)
    mask = np.zeros((h, w), np.float32)
    mask[y0:y1, x0:x1] = soft
    params = {"hull_variant": variant, "hull_deform": (float(dsx), float(dsy)), "face_side_px": side,
              **p_col, **p_freq, **p_aff, **p_mask}
    return SBIResult(blended, mask, source, (x0, y0, x1, y1), params)


def make_sbi_options(section: dict | None) -> SBIOptions:
    """Options from the config section ``training.sbi`` (keys ``enabled``/``*_prob`` of the data mode removed)."""
    section = dict(section or {})
    for key in ("enabled",):
        section.pop(key, None)
    return SBIOptions.from_kwargs(**section)
