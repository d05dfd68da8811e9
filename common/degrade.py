"""Image degradations for the robustness stage (stage 15), and a JPEG quality estimate.

Every degradation is a pure function of ``(image, strength[, seed])``: RGB uint8 (H, W, 3) in, a new
RGB uint8 array of the same shape out, the input never modified, the same arguments always giving
the same bytes. Each family has an explicit **identity strength**, ``None``, for which the function
returns the input unchanged (an exact copy); that is the "clean" setting the stage compares with.
(JPEG quality 100 is *not* the identity: it still quantises and subsamples the colour.)

| family | strength | identity | stronger when | what it does |
|---|---|---|---|---|
| ``jpeg`` | quality, int 1..100 | ``None`` | lower | encode + decode with OpenCV (libjpeg, 4:2:0) |
| ``downscale`` | factor, 0 < f <= 1 | ``None`` or 1 | lower | ``INTER_AREA`` down to round(f * side), back up with ``INTER_LINEAR`` (or cubic) |
| ``blur`` | Gaussian sigma, px | ``None`` or 0 | higher | ``cv2.GaussianBlur``, kernel from sigma, reflected border |
| ``noise`` | Gaussian sigma, grey levels | ``None`` or 0 | higher | add N(0, sigma^2) per pixel and channel, round, clip to 0..255 |

``noise`` draws from a generator seeded by ``seed`` (use :func:`item_seed` to derive one per
image from the run's seed and the image's name, so the draw does not depend on order or resume).

``APPLIES_TO`` says where the stage applies a family: ``"frame"`` (the source video frame, then
re-cropped; only ``downscale``, where the crop's own resampling would otherwise hide most of the
loss) or ``"crop"`` (the aligned face crop).

:func:`estimate_jpeg_quality` reads a JPEG file's luminance quantisation table (DQT marker) and
returns the libjpeg (IJG) quality 1..100 whose scaled standard table is closest; ``None`` for a
file that is not a JPEG.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

FAMILIES = ("jpeg", "downscale", "blur", "noise")
APPLIES_TO = {"jpeg": "crop", "downscale": "frame", "blur": "crop", "noise": "crop"}
# +1: larger strength = stronger degradation; -1: smaller strength = stronger
DIRECTION = {"jpeg": -1, "downscale": -1, "blur": 1, "noise": 1}
UNITS = {"jpeg": "JPEG quality", "downscale": "scale factor", "blur": "Gaussian sigma (px)",
         "noise": "noise sigma (grey levels)"}
DEFAULT_DEGRADATIONS = {"jpeg": [90, 70, 50, 30], "downscale": [0.75, 0.5, 0.35], "blur": [0.5, 1, 2],
                        "noise": [2, 5, 10]}
VERSION = 1   # bump when a function's output changes (the stage's resume area keys on it)


class DegradationError(ValueError):
    """An unknown family or a strength out of range; the message says what is allowed."""


def _check_image(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise DegradationError(f"degradations take uint8 images (H, W[, C]), got {img.dtype} {img.shape}")
    return img


def is_identity(family: str, strength: Any) -> bool:
    """Whether ``strength`` is the family's identity (no change)."""
    if strength is None:
        return True
    if family == "downscale":
        return float(strength) == 1.0
    if family in ("blur", "noise"):
        return float(strength) == 0.0
    return False


def check_strength(family: str, strength: Any) -> None:
    """Raise :class:`DegradationError` naming the allowed range when ``strength`` is not allowed."""
    if family not in FAMILIES:
        raise DegradationError(f"unknown degradation '{family}'; known: {', '.join(FAMILIES)}")
    if strength is None:
        return
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.integer, np.floating)):
        raise DegradationError(f"{family}: strength must be a number, got {strength!r}")
    s = float(strength)
    if family == "jpeg" and not (float(int(s)) == s and 1 <= s <= 100):
        raise DegradationError(f"jpeg: quality must be an integer 1..100, got {strength!r}")
    if family == "downscale" and not 0 < s <= 1:
        raise DegradationError(f"downscale: factor must be in (0, 1], got {strength!r}")
    if family in ("blur", "noise") and not (np.isfinite(s) and s >= 0):
        raise DegradationError(f"{family}: sigma must be a finite number >= 0, got {strength!r}")


def jpeg(img: np.ndarray, quality: int | None) -> np.ndarray:
    """Encode as JPEG at ``quality`` (OpenCV/libjpeg) and decode; ``None``: an unchanged copy."""
    img = _check_image(img)
    if is_identity("jpeg", quality):
        return img.copy()
    check_strength("jpeg", quality)
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise DegradationError(f"jpeg: OpenCV could not encode a {img.shape} image")
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR if img.ndim == 3 else cv2.IMREAD_GRAYSCALE)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB) if img.ndim == 3 else out


def jpeg_bytes(img: np.ndarray, quality: int) -> bytes:
    """The JPEG file OpenCV writes for an RGB image at ``quality`` (for tests and casework examples)."""
    img = _check_image(img)
    check_strength("jpeg", quality)
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise DegradationError(f"jpeg: OpenCV could not encode a {img.shape} image")
    return buf.tobytes()


def downscale(img: np.ndarray, factor: float | None, up: str = "linear") -> np.ndarray:
    """Resize to ``round(factor * side)`` (at least 1 px) with ``INTER_AREA``, back to the original
    size with ``INTER_LINEAR`` (``up="cubic"``: ``INTER_CUBIC``); ``None`` or 1: an unchanged copy."""
    img = _check_image(img)
    if is_identity("downscale", factor):
        return img.copy()
    check_strength("downscale", factor)
    interp = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}.get(up)
    if interp is None:
        raise DegradationError(f"downscale: up must be 'linear' or 'cubic', got {up!r}")
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, int(round(w * factor))), max(1, int(round(h * factor)))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=interp)


def blur(img: np.ndarray, sigma: float | None) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` px (kernel side chosen by OpenCV from sigma,
    reflected border); ``None`` or 0: an unchanged copy."""
    img = _check_image(img)
    if is_identity("blur", sigma):
        return img.copy()
    check_strength("blur", sigma)
    return cv2.GaussianBlur(img, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma), borderType=cv2.BORDER_REFLECT_101)


def noise(img: np.ndarray, sigma: float | None, seed: int = 0) -> np.ndarray:
    """Add Gaussian noise of ``sigma`` grey levels (numpy PCG64 seeded by ``seed``, float32 ziggurat
    draws), round, clip to 0..255; ``None`` or 0: an unchanged copy."""
    img = _check_image(img)
    if is_identity("noise", sigma):
        return img.copy()
    check_strength("noise", sigma)
    rng = np.random.default_rng(int(seed))
    noisy = rng.standard_normal(img.shape, dtype=np.float32)     # float32 draws: 2x faster than float64
    noisy *= np.float32(sigma)
    noisy += img
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


FUNCTIONS: dict[str, Callable] = {"jpeg": jpeg, "downscale": downscale, "blur": blur, "noise": noise}


def apply(family: str, img: np.ndarray, strength: Any, seed: int = 0, up: str = "linear") -> np.ndarray:
    """Degrade ``img`` by ``family`` at ``strength`` (``seed`` used by ``noise`` only, ``up`` by
    ``downscale`` only)."""
    check_strength(family, strength)
    if family == "noise":
        return noise(img, strength, seed)
    if family == "downscale":
        return downscale(img, strength, up)
    return FUNCTIONS[family](img, strength)


def item_seed(seed: int, *keys: Any) -> int:
    """A 64-bit seed from the run's seed and any keys (family, strength, image path): stable across
    processes, orders and resumes (SHA-256, not Python's randomised ``hash``)."""
    blob = "\x1f".join([str(int(seed))] + [str(k) for k in keys]).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little")


def severity_order(family: str, strengths) -> list:
    """``strengths`` sorted from the mildest to the strongest degradation (identity first)."""
    check_strength(family, None)
    ident = [s for s in strengths if is_identity(family, s)]
    rest = [s for s in strengths if not is_identity(family, s)]
    return ident + sorted(rest, key=lambda s: DIRECTION[family] * float(s))


def strength_label(family: str, strength: Any) -> str:
    """Short readable name of a setting, also used in file names: ``jpeg_q30``, ``blur_s1``, ``clean``."""
    if is_identity(family, strength):
        return "clean"
    prefix = {"jpeg": "q", "downscale": "x", "blur": "s", "noise": "s"}[family]
    value = f"{float(strength):g}"
    return f"{family}_{prefix}{value}"


# ------------------------------------------------------------------------------------------ JPEG quality
# The IJG (libjpeg) standard luminance quantisation table (Annex K of ITU-T T.81), natural order.
STD_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.int64)


def ijg_table(quality: int, base: np.ndarray = STD_LUMINANCE) -> np.ndarray:
    """libjpeg's ``jpeg_quality_scaling`` of ``base`` at ``quality`` 1..100 (values clipped to 1..255)."""
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip((base * scale + 50) // 100, 1, 255)


def jpeg_quant_tables(data: bytes) -> dict[int, np.ndarray]:
    """The quantisation tables of a JPEG byte string, ``{table id: (64,) values}`` in file (zig-zag)
    order; {} when ``data`` is not a JPEG or has no DQT segment."""
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        return {}
    tables, i = {}, 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:              # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xDA or marker == 0xD9:   # start of scan: tables come before it
            break
        if marker == 0xDB:
            seg, j = data[i + 4:i + 2 + length], 0
            while j < len(seg):
                pq, tq = seg[j] >> 4, seg[j] & 0x0F
                n = 128 if pq else 64
                raw = seg[j + 1:j + 1 + n]
                if len(raw) < n:
                    break
                vals = (np.frombuffer(raw, dtype=">u2") if pq else np.frombuffer(raw, dtype=np.uint8)).astype(np.int64)
                tables[int(tq)] = vals
                j += 1 + n
        i += 2 + length
    return tables


def estimate_jpeg_quality(source: bytes | str | Path) -> int | None:
    """The IJG quality (1..100) whose scaled standard luminance table is closest to the file's
    luminance table (table 0), ties to the higher quality; ``None`` if not a JPEG. Exact for files
    written by libjpeg-based encoders (OpenCV, Pillow, most cameras' software); for encoders with
    their own tables it is the nearest IJG equivalent. The comparison is order-free (sorted values;
    the scaling is monotone, so this is exact for IJG tables whatever the storage order)."""
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    tables = jpeg_quant_tables(data)
    if not tables:
        return None
    lum = np.sort(tables.get(0, next(iter(tables.values()))))
    best_q, best_err = None, None
    for q in range(100, 0, -1):
        err = int(np.abs(np.sort(ijg_table(q)) - lum).sum())
        if best_err is None or err < best_err:
            best_q, best_err = q, err
    return best_q
