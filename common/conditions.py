"""Conditions of an item and of a validation pool: measured the same way for both, then compared.

An LR system is validated on its calib data; a statement about a questioned item is only as good as
the match between that item and the calib data (``../shared/docs/lr_validation.md`` section 6:
re-compressing genuine frames at JPEG quality 40 moved P(LLR < 0) from 0.54 to 0.96). This module
holds the measurements, so that stage 10 (recording the calib pool's conditions in the saved LR
system) and casework (measuring the questioned item) use one definition:

=====================  =====================================================================  ======
condition              measured as                                                             unit
=====================  =====================================================================  ======
``image_width_px``     width of the source frame (video frame or image)                        px
``image_height_px``    height of the source frame                                              px
``face_box_px``        sqrt(width x height) of the face detector's box in the source frame     px
``jpeg_quality``       IJG quality (1-100) whose scaled standard luminance table is nearest     1-100
                       the file's own quantisation table (JPEG files only: PNG is lossless,
                       a video's codec has no JPEG table; those are "not estimable")
``blockiness``         mean |step| across the 8x8 block grid / mean |step| inside blocks, in     ratio
                       the face box of the source frame (grayscale); about 1 for an
                       unblocked image, larger the coarser the block (JPEG / MPEG) quantisation
``colour_channels``    1 when the face box is grayscale (one channel, or R, G and B within       channels
                       3 grey levels of each other everywhere), else 3 (colour)
``frames_per_video``   frames read from a video (sampled as stage 01 samples them)              frames
``track_length``       frames of one video in which the face was found and cropped              frames
=====================  =====================================================================  ======

A pool's conditions are the ranges ``[min, max]`` of those values over its frames (frame-level
conditions) or videos (``frames_per_video``, ``track_length``), with their counts. A robustness
stage may add ``validated_degradations`` (docs/robustness.md; e.g. ``{"jpeg": {"min_quality": 50},
"downscale": {"min_factor": 0.5}}``: the system was shown to hold down to quality 50 and to half
size); :func:`check_conditions` honours ``jpeg`` (quality >= min_quality is inside; a null bound:
only the calib range is) and ``downscale`` (image and face sizes down to min_factor x the calib
minimum are inside); blur and noise cannot be measured on an item and are listed as not checked.

Layering: ``common`` imports no other package of this project, so reading frames here uses OpenCV
directly (sequential ``grab`` as stage 01 does).
"""
from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)

FRAME_CONDITIONS = ("image_width_px", "image_height_px", "face_box_px", "jpeg_quality", "blockiness", "colour_channels")
VIDEO_CONDITIONS = ("frames_per_video", "track_length")
SIZE_CONDITIONS = ("image_width_px", "image_height_px", "face_box_px")   # a validated downscale extends these
CONDITIONS = FRAME_CONDITIONS + VIDEO_CONDITIONS
UNITS = {"image_width_px": "px", "image_height_px": "px", "face_box_px": "px", "jpeg_quality": "IJG quality",
         "blockiness": "ratio", "colour_channels": "channels", "frames_per_video": "frames", "track_length": "frames"}
DESCRIPTIONS = {
    "image_width_px": "image width", "image_height_px": "image height",
    "face_box_px": "face box size in the source frame (sqrt of width x height)",
    "jpeg_quality": "estimated JPEG quality of the source", "blockiness": "8x8 block-grid strength in the face box",
    "colour_channels": "colour mode of the face (1 = grayscale, 3 = colour)",
    "frames_per_video": "frames read from the video", "track_length": "frames of the face track"}
JPEG_EXTS = (".jpg", ".jpeg", ".jfif", ".jpe")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")

# ITU-T T.81 Annex K, table K.1: the luminance quantisation table libjpeg scales by quality (natural order)
STD_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)


# ----------------------------------------------------------------------------------- measurements
def ijg_table(quality: int) -> np.ndarray:
    """libjpeg's luminance table for ``quality`` (1-100): scale 5000/q below 50, 200 - 2q from 50."""
    q = min(100, max(1, int(quality)))
    scale = 5000 / q if q < 50 else 200 - 2 * q
    return np.clip(np.floor((STD_LUMINANCE * scale + 50) / 100), 1, 255)


_IJG = np.stack([ijg_table(q) for q in range(1, 101)])


def jpeg_quality(path: str | Path) -> tuple[int | None, str]:
    """``(estimated IJG quality, note)`` of a JPEG file from its luminance quantisation table;
    ``(None, why)`` for a PNG (lossless), a video (no JPEG table) or any file PIL cannot read as JPEG."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext in VIDEO_EXTS:
        return None, "not estimable: a video (its codec has no JPEG quantisation table)"
    try:
        from PIL import Image
        with Image.open(path) as im:
            fmt = im.format
            tables = getattr(im, "quantization", None) if fmt == "JPEG" else None
    except Exception as exc:  # PIL's own error types; the item is judged elsewhere
        return None, f"not estimable: {type(exc).__name__}"
    if fmt != "JPEG":
        kind = "lossless" if fmt in ("PNG", "BMP", "TIFF") else "not JPEG"
        return None, f"not estimable: {fmt or 'unknown'} image ({kind}, no JPEG quantisation table)"
    if not tables or 0 not in tables:
        return None, "not estimable: the JPEG file holds no luminance quantisation table"
    lum = np.asarray(tables[0], dtype=np.float64)
    if lum.shape != (64,):
        return None, "not estimable: unexpected quantisation table"
    err = np.abs(_IJG - lum[None, :]).mean(axis=1)
    q = int(np.argmin(err)) + 1
    note = "IJG table match" if err[q - 1] < 0.5 else f"nearest IJG table (mean |difference| {err[q - 1]:.1f})"
    return q, note


def blockiness(gray: np.ndarray, box: Sequence[float] | None = None, grid: int = 8) -> float | None:
    """Block-grid strength of a grayscale frame inside ``box`` (left, top, right, bottom; the grid is
    the frame's own 8x8 grid): mean |horizontal and vertical step| across block boundaries divided
    by the mean |step| inside blocks. None when the region is too small (< 2 blocks a side) or flat."""
    g = np.asarray(gray, dtype=np.float64)
    if g.ndim == 3:
        g = g[..., :3] @ np.array([0.299, 0.587, 0.114])
    h, w = g.shape
    x0, t, r, b = (0, 0, w, h) if box is None else (int(box[0]), int(box[1]), int(box[2]), int(box[3]))
    x0, t, r, b = max(0, x0), max(0, t), min(w, r), min(h, b)
    if r - x0 < 2 * grid + 1 or b - t < 2 * grid + 1:
        return None
    region = g[t:b, x0:r]
    dx = np.abs(np.diff(region, axis=1))          # step between column x and x + 1 (frame coordinates x0 + x)
    dy = np.abs(np.diff(region, axis=0))
    bx = ((np.arange(x0, r - 1) + 1) % grid) == 0   # the step crosses a block boundary
    by = ((np.arange(t, b - 1) + 1) % grid) == 0
    across = np.r_[dx[:, bx].ravel(), dy[by, :].ravel()]
    inside = np.r_[dx[:, ~bx].ravel(), dy[~by, :].ravel()]
    if not across.size or not inside.size or inside.mean() <= 1e-9:
        return None
    return float(across.mean() / inside.mean())


GRAY_TOLERANCE = 3       # grey levels: R, G and B this close everywhere in the box = a grayscale face


def colour_channels(frame: np.ndarray, box: Sequence[float] | None = None) -> int:
    """1 when the frame (inside ``box``) is grayscale: one channel, or its R, G and B within
    ``GRAY_TOLERANCE`` grey levels of each other at every pixel (a grayscale image or video stored as
    colour, codec rounding included); else 3."""
    f = np.asarray(frame)
    if f.ndim == 2 or f.shape[2] < 3:
        return 1
    h, w = f.shape[:2]
    if box is not None:
        x0, t = max(0, int(box[0])), max(0, int(box[1]))
        r, b = min(w, int(box[2])), min(h, int(box[3]))
        if r > x0 and b > t:
            f = f[t:b, x0:r]
    c = f[..., :3].astype(np.int32)
    spread = np.abs(c - c[..., :1]).max() if c.size else 0
    return 1 if spread <= GRAY_TOLERANCE else 3


def face_box_px(box: Sequence[float]) -> float:
    """sqrt(width x height) of a (left, top, right, bottom) box, px."""
    w, h = max(0.0, float(box[2]) - float(box[0])), max(0.0, float(box[3]) - float(box[1]))
    return float(math.sqrt(w * h))


def measure_frame(frame: np.ndarray, box: Sequence[float] | None) -> dict:
    """Frame-level conditions of one source frame (RGB or gray) and one face box in it."""
    h, w = frame.shape[:2]
    out = {"image_width_px": int(w), "image_height_px": int(h)}
    if box is not None:
        out["face_box_px"] = face_box_px(box)
        out["blockiness"] = blockiness(frame, box)
    out["colour_channels"] = colour_channels(frame, box)
    return out


def measure_item(path: str | Path, kind: str, frame_measures: Sequence[Mapping],
                 frames_read: int | None = None, track_length: int | None = None) -> dict:
    """Conditions of one questioned face: ``{name: {"value": v | None, "note": str}}``.

    ``frame_measures``: :func:`measure_frame` of each frame the face is in (one for an image; a
    track's frames for a video). Frame-level values are the median over those frames (the frames
    of one track share their source conditions). ``frames_read``/``track_length``: videos only.
    """
    out: dict = {}
    for name in ("image_width_px", "image_height_px", "face_box_px", "blockiness", "colour_channels"):
        vals = [p[name] for p in frame_measures if p.get(name) is not None]
        out[name] = {"value": float(np.median(vals)) if vals else None,
                     "note": "" if vals else "not measurable (region too small or flat)"}
    q, note = jpeg_quality(path)
    out["jpeg_quality"] = {"value": q, "note": note}
    for name, v in (("frames_per_video", frames_read), ("track_length", track_length)):
        out[name] = ({"value": int(v), "note": ""} if v is not None and kind == "video" else
                     {"value": None, "note": "not applicable: a single image (frame-level statement)"})
    return out


# ----------------------------------------------------------------------------------- a pool
def _summary(values: Sequence[float]) -> dict:
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if not v.size:
        return {"min": None, "max": None, "n": 0}
    return {"min": float(v.min()), "max": float(v.max()), "n": int(v.size),
            "median": float(np.median(v)), "p05": float(np.percentile(v, 5)), "p95": float(np.percentile(v, 95))}


def _read_manifest(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _frames_of_source(src: Path, indices: Sequence[int]) -> dict[int, tuple]:
    """``{index: (gray frame, frame as stored)}`` of frames ``indices`` of a video (sequential grab, as
    stage 01) or of the image itself (index 0); the stored frame gives the colour mode."""
    import cv2

    out: dict[int, tuple] = {}
    if src.suffix.lower() in VIDEO_EXTS:
        cap = cv2.VideoCapture(str(src))
        try:
            want, pos = sorted(set(int(i) for i in indices)), 0
            for target in want:
                ok = True
                while ok and pos < target:
                    ok = cap.grab()
                    pos += 1
                if not ok or not cap.grab():
                    break
                pos += 1
                got, bgr = cap.retrieve()
                if got and bgr is not None:
                    out[target] = (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), bgr)
        finally:
            cap.release()
    elif src.is_file():
        img = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE)
        if img is not None:
            out[0] = (img, cv2.imread(str(src), cv2.IMREAD_UNCHANGED))
    return out


IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def _folder_frames(folder: Path) -> dict[int, Path]:
    """``{frame index: file}`` of a frame folder, indexed as stage 01 indexes them (the file's number,
    else its position in the sorted listing)."""
    imgs = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS]
    imgs.sort(key=lambda p: (0, int(p.stem), p.name) if p.stem.isdigit() else (1, 0, p.name))
    return {(int(p.stem) if p.stem.isdigit() else i): p for i, p in enumerate(imgs)}


def _source_qualities(inp: Path, cropped: list[dict], notes: dict) -> list:
    """The JPEG quality of each source (a frame folder: of its first 8 JPEG frames); a note when none."""
    quals, kinds = [], set()
    for s in sorted({r.get("source", "") for r in cropped}):
        src = inp / s
        if src.is_dir():                       # a frame folder: each frame its own image
            files = [p for p in sorted(src.iterdir()) if p.suffix.lower() in JPEG_EXTS]
            for p in files[:8]:
                q, _ = jpeg_quality(p)
                if q is not None:
                    quals.append(q)
            kinds.add("frame folder")
        else:
            q, note = jpeg_quality(src)
            kinds.add("video" if src.suffix.lower() in VIDEO_EXTS else src.suffix.lower() or "file")
            if q is not None:
                quals.append(q)
    if not quals:
        notes["jpeg_quality"] = f"not estimable for this pool's sources ({', '.join(sorted(kinds)) or 'none'})"
    return quals


def _source_pixels(inp: Path, cropped: list[dict], max_source_frames: int, progress: bool) -> tuple[list, list]:
    """(blockiness, colour channels) of at most ``max_source_frames`` evenly spaced cropped frames."""
    blocks, chans = [], []
    take = cropped if len(cropped) <= max_source_frames else \
        [cropped[i] for i in np.linspace(0, len(cropped) - 1, max_source_frames).astype(int)]
    by_source: dict[str, list[dict]] = {}
    for r in take:
        by_source.setdefault(r.get("source", ""), []).append(r)
    try:
        from tqdm import tqdm
        it = tqdm(by_source.items(), desc="calib conditions (sources)", unit="source", disable=not progress)
    except ImportError:  # pragma: no cover
        it = by_source.items()
    for s, rs in it:
        src = inp / s
        if src.is_dir():                       # a frame folder: frame index = the file's number, else position
            got = {}
            files = _folder_frames(src)
            for r in rs:
                f = files.get(int(r["frame_idx"]))
                fr = _frames_of_source(f, [0]).get(0) if f is not None else None
                if fr is not None:
                    got[int(r["frame_idx"])] = fr
        else:
            got = _frames_of_source(src, [int(r["frame_idx"]) for r in rs])
        for r in rs:
            g, stored = got.get(int(r["frame_idx"]), (None, None))
            box = [float(r[k]) for k in ("box_left", "box_top", "box_right", "box_bottom")]
            if g is not None:
                bl = blockiness(g, box)
                if bl is not None:
                    blocks.append(bl)
            if stored is not None:
                chans.append(colour_channels(stored, box))
    return blocks, chans


def pool_conditions(dataset_root: str | Path, videos: Iterable[str] | None = None, input_root: str | Path | None = None,
                    max_source_frames: int = 400, progress: bool = False) -> dict:
    """The validated ranges of a pool's conditions, from stage 01's ``<dataset_root>/manifest.csv``.

    ``videos``: the pool's video ids (e.g. ``{s.video_id for s in read_split(file, "calib")}``);
    None = every video of the manifest. ``input_root``: stage 01's input (``preprocessing.input``),
    where the manifest's ``source`` paths point; needed for the JPEG quality and blockiness (source
    pixels), at most ``max_source_frames`` evenly spaced frames are read for the blockiness.
    Returns ``{"source", "n_videos", "n_frames", "ranges": {name: {min, max, n, ...}}, "notes": {...}}``
    (a condition that cannot be measured has ``n = 0`` and a note saying why).
    """
    root = Path(dataset_root)
    manifest = root / "manifest.csv"
    notes: dict = {}
    if not manifest.is_file():
        return {"source": None, "n_videos": 0, "n_frames": 0,
                "ranges": {n: {"min": None, "max": None, "n": 0} for n in CONDITIONS},
                "notes": {n: f"no stage-01 manifest at {manifest}: not recorded" for n in CONDITIONS}}
    rows = _read_manifest(manifest)
    want = None if videos is None else {str(v) for v in videos}
    rows = [r for r in rows if want is None or r["video_id"] in want]
    frames = [r for r in rows if r.get("frame_idx", "") != ""]
    cropped = [r for r in frames if r.get("crop")]
    per_video: dict[str, dict] = {}
    for r in frames:
        d = per_video.setdefault(r["video_id"], {"read": 0, "track": 0, "source": r.get("source", "")})
        d["read"] += r["status"] != "unreadable"
        d["track"] += bool(r.get("crop"))
    ranges = {
        "image_width_px": _summary([float(r["frame_width"]) for r in frames if r.get("frame_width")]),
        "image_height_px": _summary([float(r["frame_height"]) for r in frames if r.get("frame_height")]),
        "face_box_px": _summary([face_box_px([float(r[k]) for k in ("box_left", "box_top", "box_right", "box_bottom")])
                                 for r in cropped if r.get("box_left") not in (None, "")]),
        "frames_per_video": _summary([d["read"] for d in per_video.values()]),
        "track_length": _summary([d["track"] for d in per_video.values() if d["track"] > 0]),
    }
    # source pixels: JPEG tables per source file, blockiness per (sub-sampled) cropped frame
    quals, blocks, chans = [], [], []
    if input_root is None or not Path(input_root).is_dir():
        why = "stage 01's input folder (preprocessing.input) is not available: source pixels not read"
        notes["jpeg_quality"] = notes["blockiness"] = notes["colour_channels"] = why
    else:
        quals = _source_qualities(Path(input_root), cropped, notes)
        blocks, chans = _source_pixels(Path(input_root), cropped, max_source_frames, progress)
        if not blocks:
            notes["blockiness"] = "no source frame could be read for the blockiness"
        if not chans:
            notes["colour_channels"] = "no source frame could be read for the colour mode"
    ranges["jpeg_quality"] = _summary(quals)
    ranges["blockiness"] = _summary(blocks)
    ranges["colour_channels"] = _summary(chans)
    return {"source": str(manifest), "n_videos": len(per_video), "n_frames": len(frames),
            "ranges": {n: ranges[n] for n in CONDITIONS}, "notes": notes}


# ----------------------------------------------------------------------------------- comparison
def _fmt(v) -> str:
    if v is None:
        return "n/a"
    return f"{v:.4g}" if isinstance(v, float) and not float(v).is_integer() else f"{int(v)}"


def _check_jpeg(entry: dict, v: float, lo, hi, jpeg: Mapping) -> str:
    """Fill the JPEG quality ``entry``'s range and reason; "inside" (calib range or validated) or "outside"."""
    value = entry["value"]
    q = jpeg.get("min_quality")
    in_calib = lo is not None and float(lo) <= v <= float(hi)
    calib_txt = f"the calib range [{_fmt(lo)}, {_fmt(hi)}]" if lo is not None else "no calib JPEG range"
    entry["range"] = [float(q), 100.0] if q is not None else entry["range"]
    if in_calib:
        entry["reason"] = f"quality {_fmt(value)} within {calib_txt}"
        return "inside"
    if q is not None and v >= float(q):
        entry["reason"] = (f"quality {_fmt(value)} >= {_fmt(float(q))}, the lowest JPEG quality the "
                           f"robustness stage validated")
        return "inside"
    rob = (f"below {_fmt(float(q))}, the lowest the robustness stage validated" if q is not None else
           f"the robustness stage validated no JPEG re-compression ({jpeg.get('status', 'none beyond clean')})")
    entry["reason"] = f"quality {_fmt(value)}: {rob}; {calib_txt}"
    return "outside"


def check_conditions(measured: Mapping, validated: Mapping | None, names: Sequence[str] | None = None) -> dict:
    """Each measured condition as inside / outside the validated range, or not checked (and why).

    ``measured``: :func:`measure_item`'s output ({name: {"value", "note"}} or {name: value});
    ``validated``: :func:`pool_conditions`'s output (``ranges`` and optional ``validated_degradations``),
    or None (no conditions recorded: everything is "not checked"). ``names`` limits the conditions
    compared (default: all measured). A value on the range's end is inside.
    Returns ``{"inside": [...], "outside": [...], "not_checked": [...]}``, each entry
    ``{"name", "value", "range": [min, max] | None, "reason"}``.
    """
    out = {"inside": [], "outside": [], "not_checked": []}
    validated = validated or {}
    ranges = validated.get("ranges") or {}
    notes = validated.get("notes") or {}
    degr = validated.get("validated_degradations") or {}
    jpeg = degr.get("jpeg") if isinstance(degr.get("jpeg"), Mapping) else None
    down = degr.get("downscale") if isinstance(degr.get("downscale"), Mapping) else None
    for name in (names or list(measured)):
        m = measured.get(name)
        value, mnote = (m.get("value"), m.get("note", "")) if isinstance(m, Mapping) else (m, "")
        rng = ranges.get(name) or {}
        lo, hi = rng.get("min"), rng.get("max")
        entry = {"name": name, "value": value, "range": None if lo is None else [lo, hi], "reason": ""}
        if value is None:
            entry["reason"] = f"not measured on the item: {mnote}" if mnote else "not measured on the item"
            out["not_checked"].append(entry)
            continue
        v = float(value)
        if name == "jpeg_quality" and jpeg is not None:
            out[_check_jpeg(entry, v, lo, hi, jpeg)].append(entry)
            continue
        if lo is None:
            why = notes.get(name) or ("no conditions recorded for the LR system" if not ranges else "no validated range")
            entry["reason"] = f"no validated range: {why}"
            out["not_checked"].append(entry)
            continue
        low, extra = float(lo), ""
        if name in SIZE_CONDITIONS and down is not None and down.get("min_factor") is not None:
            f = float(down["min_factor"])            # downscaling by f was validated: sizes down to f x calib min
            low, extra = min(low, low * f), f" (calib minimum x {_fmt(f)}, the smallest downscale the robustness stage validated)"
            entry["range"] = [low, hi]
        if low <= v <= float(hi):
            entry["reason"] = f"{_fmt(value)} within the validated range [{_fmt(low)}, {_fmt(hi)}]{extra}"
            out["inside"].append(entry)
        else:
            entry["reason"] = f"{_fmt(value)} outside the validated range [{_fmt(low)}, {_fmt(hi)}]{extra}"
            out["outside"].append(entry)
    for fam in sorted(degr):
        if fam not in ("jpeg", "downscale"):
            out["not_checked"].append({"name": f"validated_degradations.{fam}", "value": None, "range": None,
                                       "reason": f"the robustness stage validated '{fam}' degradations, which have no "
                                                 f"direct measurement on a questioned item"})
    return out


# ----------------------------------------------------------------------------------- in words
def _span(rng: Mapping, unit: str = "") -> str:
    lo, hi = _fmt(float(rng["min"])), _fmt(float(rng["max"]))
    return (lo if lo == hi else f"{lo}-{hi}") + (f" {unit}" if unit else "")


def describe_conditions(conditions: Mapping | None) -> list[str]:
    """What casework accepts from an LR system's recorded conditions, one sentence each (no JSON, no
    None): e.g. "face boxes 96-140 px (sqrt of width x height of the detector's box)"."""
    c = conditions or {}
    ranges, notes = c.get("ranges") or {}, c.get("notes") or {}
    if not any((ranges.get(n) or {}).get("min") is not None for n in CONDITIONS):
        return ["no conditions are recorded for this LR system: casework cannot compare a questioned item with "
                "the calib data (re-run stage 10 with stage 01's manifest present)"]

    def have(name):
        return (ranges.get(name) or {}).get("min") is not None

    def missing(name, what):
        return f"{what}: not checked ({notes.get(name) or 'no validated range recorded'})"

    out = []
    w, h = ranges.get("image_width_px") or {}, ranges.get("image_height_px") or {}
    if have("image_width_px") and have("image_height_px"):
        same = w["min"] == w["max"] and h["min"] == h["max"]
        out.append(f"images {_fmt(float(w['min']))}x{_fmt(float(h['min']))} px" if same else
                   f"images {_span(w)} px wide and {_span(h)} px high")
    out.append(f"face boxes {_span(ranges['face_box_px'], 'px')} (square root of width x height of the face "
               f"detector's box in the source frame)" if have("face_box_px") else missing("face_box_px", "face size"))
    out.append(f"JPEG quality {_span(ranges['jpeg_quality'])} (estimated from a JPEG file's quantisation table); "
               f"not checked for PNG images and videos, which have no JPEG table" if have("jpeg_quality") else
               missing("jpeg_quality", "JPEG quality") + "; PNG images and videos have no JPEG table either")
    out.append(f"8x8 block-grid strength (blockiness) {_span(ranges['blockiness'])} in the face box"
               if have("blockiness") else missing("blockiness", "blockiness"))
    if have("colour_channels"):
        cc = ranges["colour_channels"]
        out.append("colour faces only (a grayscale face is outside)" if cc["min"] >= 3 else
                   "grayscale faces only (a colour face is outside)" if cc["max"] <= 1 else
                   "colour and grayscale faces")
    else:
        out.append(missing("colour_channels", "colour mode"))
    if have("frames_per_video"):
        out.append(f"videos with {_span(ranges['frames_per_video'])} frames read")
    if have("track_length"):
        out.append(f"a video-level LR for face tracks of {_span(ranges['track_length'])} frames (others: frame level)")
    degr = c.get("validated_degradations") or {}
    for fam, d in sorted(degr.items()):
        if not isinstance(d, Mapping):
            continue
        bound = next(((k, d[k]) for k in d if k.startswith(("min_", "max_")) and d[k] is not None), None)
        out.append(f"validated {fam} degradation: {bound[0].replace('_', ' ')} {_fmt(float(bound[1]))} "
                   f"(robustness stage)" if bound else
                   f"{fam} degradation: none validated beyond the clean images ({d.get('status') or 'robustness stage'})")
    return out
